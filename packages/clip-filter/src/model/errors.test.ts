/** Bad models and inputs get errors that name the file and say what is wrong. */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatSafetensors, InvalidArgumentError, ModelFormatError, NotFoundError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { ClipScorer } from '../score/scorer.js';
import { npy, TINY_CLIP, tempDir } from '../test-support/golden.js';
import { buildNarrowVision, buildUnprojectedVision, copyClipConfigs, makeClipFolder } from '../test-support/models.js';
import { ClipModel } from './clip-model.js';

async function caught(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('ClipModel.load errors', () => {
  it('mismatched projection widths (static dims): refused at load, naming both graphs', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const folder = await makeClipFolder(path.join(dir, 'm'), { vision: await buildNarrowVision(8) });
      const err = await caught(ClipModel.load(folder));
      expect(ModelFormatError.isInstance(err)).toBe(true);
      expect(err.message).toMatch(
        /mismatched projection widths: text_model\.onnx gives 16-dim .* vision_model\.onnx gives 8-dim/,
      );
    } finally {
      await cleanup();
    }
  });

  it('mismatched projection widths (symbolic output dim): refused at load or at the first image batch', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const folder = await makeClipFolder(path.join(dir, 'm'), { vision: await buildNarrowVision(8, { symbolic: true }) });
      // ONNX Runtime may infer the width from the graph (then load refuses); otherwise the first run does.
      const err = await caught(
        (async () => {
          const model = await ClipModel.load(folder);
          try {
            const pv = npy('pixel_values.npy');
            const per = (pv.data as Float32Array).length / (pv.shape[0] ?? 1);
            await new ClipScorer(model, { metaclass: 'bird' }).scorePixelValues((pv.data as Float32Array).subarray(0, per), 1);
          } finally {
            await model.release();
          }
        })(),
      );
      expect(ModelFormatError.isInstance(err)).toBe(true);
      expect(err.message).toMatch(/mismatched projection widths: .*16-dim .*8-dim/);
    } finally {
      await cleanup();
    }
  });

  it('a vision export without its projection says so', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const folder = await makeClipFolder(path.join(dir, 'm'), { vision: await buildUnprojectedVision() });
      const err = await caught(ClipModel.load(folder));
      expect(ModelFormatError.isInstance(err)).toBe(true);
      expect(err.message).toMatch(/vision_model\.onnx: outputs pooler_output .* but no image_embeds: .*without the projection/);
      expect(err.message).toMatch(/projections: 'model\.safetensors' holding visual_projection\.weight/);
    } finally {
      await cleanup();
    }
  });

  it('projection weights that are missing or do not fit are refused, naming the file', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const folder = await makeClipFolder(path.join(dir, 'm'), { vision: await buildUnprojectedVision() });
      const wrongKey = path.join(dir, 'wrong.safetensors');
      await writeFile(
        wrongKey,
        formatSafetensors({ 'text_projection.weight': { shape: [16, 32], data: new Float32Array(512) } }),
      );
      expect((await caught(ClipModel.load(folder, { projections: wrongKey }))).message).toMatch(
        /wrong\.safetensors: has no visual_projection\.weight/,
      );
      const wrongShape = path.join(dir, 'shape.safetensors');
      await writeFile(
        wrongShape,
        formatSafetensors({ 'visual_projection.weight': { shape: [16, 24], data: new Float32Array(384) } }),
      );
      expect((await caught(ClipModel.load(folder, { projections: wrongShape }))).message).toMatch(
        /vision_model\.onnx: pooler_output has 32 dims but shape\.safetensors: visual_projection\.weight is \[16, 24\]/,
      );
      expect(
        NotFoundError.isInstance(await caught(ClipModel.load(folder, { projections: path.join(dir, 'none.safetensors') }))),
      ).toBe(true);
    } finally {
      await cleanup();
    }
  });

  it('missing graphs, a missing folder, a file instead of a folder, a corrupt graph', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const err1 = await caught(ClipModel.load(path.join(dir, 'nope')));
      expect(NotFoundError.isInstance(err1)).toBe(true);
      const only = path.join(dir, 'only-text');
      await copyClipConfigs(only);
      await copyFile(path.join(TINY_CLIP, 'text_model.onnx'), path.join(only, 'text_model.onnx'));
      expect((await caught(ClipModel.load(only))).message).toMatch(/vision_model\.onnx: vision graph .*not found/);
      const empty = path.join(dir, 'empty');
      await mkdir(empty);
      expect((await caught(ClipModel.load(empty))).message).toMatch(/CLIP ONNX model .* not found/);
      expect(InvalidArgumentError.isInstance(await caught(ClipModel.load(path.join(TINY_CLIP, 'config.json'))))).toBe(true);
      const corrupt = path.join(dir, 'corrupt');
      await makeClipFolder(corrupt, { vision: new TextEncoder().encode('not onnx') });
      const err = await caught(ClipModel.load(corrupt));
      expect(ModelFormatError.isInstance(err)).toBe(true);
      expect(err.message).toMatch(/vision_model\.onnx: ONNX Runtime cannot load it/);
    } finally {
      await cleanup();
    }
  });

  it('a model.onnx without logits_per_image is refused', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const folder = path.join(dir, 'single');
      await copyClipConfigs(folder);
      await copyFile(path.join(TINY_CLIP, 'vision_model.onnx'), path.join(folder, 'model.onnx'));
      expect((await caught(ClipModel.load(folder))).message).toMatch(/model\.onnx: has no logits_per_image output/);
    } finally {
      await cleanup();
    }
  });

  it('a crop size the vision graph cannot take is refused at load', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const folder = await makeClipFolder(path.join(dir, 'm'), {});
      await writeFile(
        path.join(folder, 'preprocessor_config.json'),
        JSON.stringify({ size: { shortest_edge: 256 }, crop_size: 256 }),
      );
      expect((await caught(ClipModel.load(folder))).message).toMatch(
        /vision_model\.onnx: expects 224×224 images but preprocessor_config\.json produces 256×256/,
      );
    } finally {
      await cleanup();
    }
  });

  it('finds graphs in an onnx/ subfolder (transformers.js layout)', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await copyClipConfigs(dir);
      await mkdir(path.join(dir, 'onnx'));
      for (const f of ['text_model.onnx', 'vision_model.onnx'])
        await copyFile(path.join(TINY_CLIP, f), path.join(dir, 'onnx', f));
      const model = await ClipModel.load(dir);
      expect(model.files).toMatchObject({ kind: 'dual', text: path.join(dir, 'onnx', 'text_model.onnx') });
      await model.release();
    } finally {
      await cleanup();
    }
  });
});

describe('scorer input errors', () => {
  it('unknown metaclass without captions; bad captions', async () => {
    const model = await ClipModel.load(TINY_CLIP);
    try {
      expect(() => new ClipScorer(model, { metaclass: 'submarine' })).toThrow(
        /no captions known for metaclass "submarine" .*pass captions/,
      );
      expect(() => new ClipScorer(model, {})).toThrow(/give a metaclass/);
      expect(() => new ClipScorer(model, { captions: ['only one'] })).toThrow(/expected \[positive, negative\]/);
      expect(new ClipScorer(model, { metaclass: 'submarine', captions: ['a sub', 'no sub'] }).captions).toEqual([
        'a sub',
        'no sub',
      ]);
      expect(() => new ClipScorer(model, { metaclass: 'bird', batchSize: 0 })).toThrow(/batchSize/);
      await expect(model.encodeImages(new Float32Array(10), 1)).rejects.toThrow(/expected 1×3×224×224/);
    } finally {
      await model.release();
    }
  });
});
