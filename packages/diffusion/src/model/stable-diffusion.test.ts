import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ModelFormatError, NotFoundError } from '@diffmix/core';
import { onnx } from '@diffmix/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { img2img, txt2img } from '../pipeline/generate.js';
import { goldenPath, maxAbsDiff } from '../test-support/golden.js';
import { StableDiffusion } from './stable-diffusion.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diffmix-sd-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A text-encoder-shaped graph (input_ids → Gather → last_hidden_state [B, S, width]). */
function fakeTextEncoder(width: number): Uint8Array {
  const vocab = 49408;
  const table = new Float32Array(vocab * width);
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'fake_text_encoder',
      node: [{ opType: 'Gather', input: ['embeddings.token_embedding.weight', 'input_ids'], output: ['last_hidden_state'], name: '/embeddings/token_embedding/Gather' }],
      initializer: [{ name: 'embeddings.token_embedding.weight', dataType: 1, dims: [vocab, width], rawData: new Uint8Array(table.buffer) }],
      input: [
        {
          name: 'input_ids',
          type: { tensorType: { elemType: 6, shape: { dim: [{ dimParam: 'batch' }, { dimParam: 'sequence' }] } } },
        },
      ],
      output: [
        {
          name: 'last_hidden_state',
          type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimParam: 'sequence' }, { dimValue: width }] } } },
        },
      ],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

async function copyModel(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await cp(goldenPath('tiny-sd'), dir, { recursive: true });
  return dir;
}

describe('StableDiffusion.load', () => {
  it('names every missing part of the folder', async () => {
    const dir = await copyModel('missing');
    await rm(path.join(dir, 'vae_decoder'), { recursive: true });
    await rm(path.join(dir, 'scheduler'), { recursive: true });
    const err = await StableDiffusion.load(dir).catch((e) => e);
    expect(ModelFormatError.isInstance(err)).toBe(true);
    expect(err.message).toContain('vae_decoder/model.onnx');
    expect(err.message).toContain('scheduler/scheduler_config.json');
    await expect(StableDiffusion.load(path.join(tmp, 'nope'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('refuses a UNet whose cross-attention width differs from the text encoder', async () => {
    const dir = await copyModel('mismatch');
    await writeFile(path.join(dir, 'text_encoder', 'model.onnx'), fakeTextEncoder(48));
    const err = await StableDiffusion.load(dir).catch((e) => e);
    expect(ModelFormatError.isInstance(err)).toBe(true);
    expect(err.message).toMatch(/cross-attention width 32 does not match the text encoder's hidden size 48/);
  });

  it('a file that is not ONNX is a ModelFormatError naming it', async () => {
    const dir = await copyModel('corrupt');
    await writeFile(path.join(dir, 'unet', 'model.onnx'), 'not a model');
    const err = await StableDiffusion.load(dir).catch((e) => e);
    expect(ModelFormatError.isInstance(err)).toBe(true);
    expect(err.message).toContain(path.join('unet', 'model.onnx'));
  });

  it('reads what the graphs expect and the model size from the configs', async () => {
    const m = await StableDiffusion.load(goldenPath('tiny-sd'));
    expect(m.defaultSize).toBe(64);
    expect(m.scalingFactor).toBe(0.18215);
    expect(m.vaeEncoder?.outputKind).toBe('parameters');
    expect(m.unet.crossAttentionDim).toBe(32);
    expect(m.device).toBe('cpu');
    await m.release();
  });
});

describe('generation', () => {
  let model: StableDiffusion;
  beforeAll(async () => {
    model = await StableDiffusion.load(goldenPath('tiny-sd'));
  });
  afterAll(async () => model.release());

  const image = { data: Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 7) % 256), width: 64, height: 64, channels: 3 as const };

  it('a job depends only on its seed: batching and order do not change its image', async () => {
    const a = await img2img(model, [{ image, prompt: 'a photo of a bird', seed: 11 }], 0.5, { steps: 10, size: 64 });
    const again = await img2img(model, [{ image, prompt: 'a photo of a bird', seed: 11 }], 0.5, { steps: 10, size: 64 });
    const batch = await img2img(
      model,
      [
        { image, prompt: 'a photo of a cat', seed: 12 },
        { image, prompt: 'a photo of a bird', seed: 11 },
      ],
      0.5,
      { steps: 10, size: 64 },
    );
    expect(again.floatImages[0]).toEqual(a.floatImages[0]);
    // Batched kernels may sum in another order: float32 round-off only.
    expect(maxAbsDiff(batch.floatImages[1]!, a.floatImages[0]!)).toBeLessThan(1e-5);
    expect(maxAbsDiff(batch.floatImages[0]!, a.floatImages[0]!)).toBeGreaterThan(1e-3);
  });

  it('img2img resizes to the model size and back to the source size', async () => {
    const small = { data: new Uint8Array(40 * 24 * 3).fill(100), width: 40, height: 24, channels: 3 as const };
    const r = await img2img(model, [{ image: small, prompt: '', seed: 1 }], 0.3, { steps: 5, size: 64 });
    expect([r.images[0]!.width, r.images[0]!.height]).toEqual([40, 24]);
  });

  it('txt2img runs every timestep and needs a seed or noise', async () => {
    const r = await txt2img(model, [{ prompt: 'a bird', seed: 3 }], { steps: 4, size: 64, guidanceScale: 1 });
    expect(r.timesteps).toHaveLength(4);
    await expect(txt2img(model, [{ prompt: 'a bird' }], { steps: 2, size: 64 })).rejects.toThrow(/seed or injected noise/);
    await expect(img2img(model, [{ image, prompt: '', seed: 1 }], 0.5, { size: 60 })).rejects.toThrow(/multiple of 8/);
  });
});

describe('unknown placeholder tokens', () => {
  it('warns once per <token> that is not in the vocabulary, and not for known or loaded ones', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
    const m = await StableDiffusion.load(goldenPath('tiny-sd'), { logger, skipVaeEncoder: true });
    try {
      m.tokenize(['a photo of a <class_3> bird', 'a <class_3> and a <other>']);
      expect(warnings).toHaveLength(2);
      expect(warnings[0]).toContain('<class_3>');
      expect(warnings[1]).toContain('<other>');
      // `<|startoftext|>` is a vocabulary entry: no warning.
      m.tokenize(['<|startoftext|> plain words']);
      expect(warnings).toHaveLength(2);
    } finally {
      await m.release();
    }
  });
});
