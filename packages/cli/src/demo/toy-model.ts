/**
 * The toy Stable Diffusion model that ships with the cli (`assets/toy-sd/`): tiny-sd's graphs with
 * weights the project trained itself on the procedural toy dataset (tooling/demo-model/, see the
 * folder's MODEL_CARD.md), so `diffmix demo` can fine-tune / sample without downloading anything.
 * One textual-inversion row per demo class: `<class_0>` … `<class_7>` (the first 8 toy classes).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NotFoundError } from '@diffmix/core';
import { type RgbImage, TOY_COLOURS } from '@diffmix/datasets';
import { type LoadStableDiffusionOptions, StableDiffusion } from '@diffmix/diffusion';

/** Classes the shipped model has a `<class_i>` row for (the first `TOY_SD_CLASSES` toy classes). */
export const TOY_SD_CLASSES = 8;
/** The prompt the model was trained with (also `a photo of a <class_i> object`). */
export const toySdPrompt = (classId: number, metaclass = 'shape'): string => `a photo of a <class_${classId}> ${metaclass}`;

/**
 * The shipped model folder. Found by walking up from this module to the `@diffmix/cli` package root
 * (the same code runs from `src/demo/` under vitest and from the bundled `dist/`).
 */
export function toySdDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === '@diffmix/cli') {
      const model = path.join(dir, 'assets', 'toy-sd');
      if (!existsSync(path.join(model, 'unet', 'model.onnx')))
        throw new NotFoundError(model, 'toy-sd model (assets of @diffmix/cli)');
      return model;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new NotFoundError(fileURLToPath(import.meta.url), 'the @diffmix/cli package root (for assets/toy-sd)');
    dir = up;
  }
}

/** Loads the shipped model with its learned `<class_i>` embeddings. */
export async function loadToySd(options: Omit<LoadStableDiffusionOptions, 'textualInversion'> = {}): Promise<StableDiffusion> {
  const dir = toySdDir();
  return StableDiffusion.load(dir, { ...options, textualInversion: [path.join(dir, 'learned_embeds.safetensors')] });
}

/** The chromatic toy patch colours, in `TOY_COLOURS` order: the axes of `patchColourFeatures`. */
export const PATCH_COLOURS = (Object.keys(TOY_COLOURS) as (keyof typeof TOY_COLOURS)[]).filter((c) => c !== 'white');

/**
 * Patch-colour features of a toy-like image: for each chromatic toy patch colour (`PATCH_COLOURS`), the
 * fraction of pixels within RGB distance 60 of it with HSV saturation > 0.6. Toy bodies and backgrounds are muted, so these pixels are (almost) only the
 * class's saturated patch: a cheap, model-free way to tell which colour class an image shows.
 */
export function patchColourFeatures(img: RgbImage): number[] {
  // White is left out: it cannot be told from a bright background.
  const cols = PATCH_COLOURS.map((name) => TOY_COLOURS[name]) as readonly (readonly [number, number, number])[];
  const f = new Array<number>(cols.length).fill(0);
  const n = img.width * img.height;
  for (let p = 0; p < n; p++) {
    const r = img.data[3 * p] as number;
    const g = img.data[3 * p + 1] as number;
    const b = img.data[3 * p + 2] as number;
    const mx = Math.max(r, g, b);
    const sat = mx > 0 ? (mx - Math.min(r, g, b)) / mx : 0;
    for (let k = 0; k < cols.length; k++) {
      const c = cols[k] as readonly [number, number, number];
      // Saturated pixels only: generated backgrounds can drift toward a dull green or red that is near
      // the patch colour in RGB but not saturated.
      if ((r - c[0]) ** 2 + (g - c[1]) ** 2 + (b - c[2]) ** 2 < 3600 && sat > 0.6) f[k] = (f[k] as number) + 1 / n;
    }
  }
  return f;
}
