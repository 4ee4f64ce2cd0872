/**
 * Writes a full-mode fine-tuned UNet back as a diffusers/optimum ONNX folder: every file of the source
 * model folder is copied, and `unet/model.onnx` is rewritten from the source graph with the trained
 * weights swapped in (same nodes, names, inputs and outputs), so `StableDiffusion.load(outDir)` and
 * every other tool that read the source folder read the result.
 */
import { cp, mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, ModelFormatError, NotFoundError } from '@diffmix/core';
import { loadOnnxModel } from '@diffmix/onnx';

export interface SaveUnetOptions {
  /**
   * External data file for the UNet weights (e.g. `model.onnx_data`), `false` to inline, `auto`
   * (default): inline when they fit in one protobuf (as `OnnxModel.save`).
   */
  externalData?: string | false | 'auto';
}

/**
 * Copies `modelDir` to `outDir` (which must not be `modelDir`) and writes `outDir/unet/model.onnx` with
 * `weights` (initializer name → data) replacing the source UNet's initializers. Every name must be an
 * initializer of the source UNet with the same element count.
 */
export async function saveUnetOnnx(
  modelDir: string,
  outDir: string,
  weights: ReadonlyMap<string, Float32Array>,
  options: SaveUnetOptions = {},
): Promise<string> {
  const src = path.resolve(modelDir);
  const dst = path.resolve(outDir);
  if (src === dst) throw new InvalidArgumentError('outDir', `must differ from the source model folder ${src}`);
  const unetFile = path.join(src, 'unet', 'model.onnx');
  if (!(await stat(unetFile).catch(() => undefined))) throw new NotFoundError(unetFile, 'UNet model');
  const model = await loadOnnxModel(unetFile);
  await model.loadExternalData();
  for (const [name, data] of weights) {
    if (!model.hasInitializer(name)) throw new ModelFormatError(unetFile, `no initializer ${JSON.stringify(name)} to replace`);
    const info = model.initializerInfo(name);
    const n = info.dims.reduce((a, b) => a * b, 1);
    if (n !== data.length)
      throw new ModelFormatError(unetFile, `initializer ${name} has ${n} elements, the trained tensor ${data.length}`);
    // A copy: setInitializer keeps the array, and the caller's may keep training.
    model.setInitializer(name, { data: Float32Array.from(data), dims: info.dims, type: 'float32' });
  }
  await mkdir(dst, { recursive: true });
  for (const entry of await readdir(src)) {
    if (entry === 'unet') continue;
    await cp(path.join(src, entry), path.join(dst, entry), { recursive: true });
  }
  await mkdir(path.join(dst, 'unet'), { recursive: true });
  // Non-weight files of unet/ (config.json) come along; the old external weights do not.
  for (const entry of await readdir(path.join(src, 'unet'))) {
    if (entry === 'model.onnx' || entry.startsWith('model.onnx_data') || entry === 'weights.pb') continue;
    await cp(path.join(src, 'unet', entry), path.join(dst, 'unet', entry), { recursive: true });
  }
  const out = path.join(dst, 'unet', 'model.onnx');
  await model.save(out, { externalData: options.externalData ?? 'auto' });
  return out;
}
