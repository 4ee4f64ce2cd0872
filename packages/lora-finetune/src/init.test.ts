/** peft-style default LoRA init: down ~ U(±1/√in) from the seeded Rng, up = 0; gradients flow at step 1. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseNpy, Rng } from '@diffmix/core';
import { loadOnnxModel } from '@diffmix/onnx';
import { graphFromOnnxModel } from '@diffmix/ort-train';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { LoraTiStepper, peftLoraInit } from './step.js';

const GOLDEN = process.env.DIFFMIX_GOLDEN_DIR ?? fileURLToPath(new URL('../../ort-train/fixtures/golden', import.meta.url));
const STEP = join(GOLDEN, 'grads', 'lora_step');
const TINY_SD = process.env.DIFFMIX_GOLDEN_DIR
  ? join(GOLDEN, 'tiny-sd')
  : fileURLToPath(new URL('../../diffusion/fixtures/golden/tiny-sd', import.meta.url));
const npy = (name: string) => parseNpy(readFileSync(join(STEP, name)), name);

describe('peft LoRA init', () => {
  it('draws down from U(±1/√in) per module and seed, keeps up at zero', () => {
    const a = peftLoraInit(Rng.fromSeed(1));
    const d = a('m.attn1.to_q', 'down', [4, 32]);
    expect(Math.max(...d.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(32));
    // Uniform on ±0.177: the spread is near the bound, not concentrated (a sign or scale bug shows here).
    expect(Math.max(...d)).toBeGreaterThan(0.8 / Math.sqrt(32));
    expect(Math.min(...d)).toBeLessThan(-0.8 / Math.sqrt(32));
    expect(Array.from(a('m.attn1.to_q', 'up', [32, 4]))).toEqual(new Array(128).fill(0));
    expect(Array.from(peftLoraInit(Rng.fromSeed(1))('m.attn1.to_q', 'down', [4, 32]))).toEqual(Array.from(d));
    expect(Array.from(peftLoraInit(Rng.fromSeed(2))('m.attn1.to_q', 'down', [4, 32]))).not.toEqual(Array.from(d));
    expect(Array.from(a('m.attn1.to_k', 'down', [4, 32]))).not.toEqual(Array.from(d));
  });

  it('is the db default: every up matrix gets a gradient at step 1 (down none while up is zero)', async () => {
    const s = await LoraTiStepper.create({
      ort,
      unet: await graphFromOnnxModel(await loadOnnxModel(join(TINY_SD, 'unet', 'model.onnx'))),
      textEncoder: await graphFromOnnxModel(await loadOnnxModel(join(TINY_SD, 'text_encoder', 'model.onnx'))),
      mode: 'db',
      batchSize: 2,
      latentShape: [4, 8, 8],
      hiddenSize: 32,
      seed: 5,
    });
    const ids = Int32Array.from(npy('input_ids.npy').data as Int32Array, (v) => (v >= 49408 ? 320 : v)); // no placeholder rows in db
    const r = await s.gradients({
      noisyLatents: npy('noisy_latents.npy').data as Float32Array,
      noise: npy('noise.npy').data as Float32Array,
      timesteps: Array.from(npy('timesteps.npy').data as BigInt64Array, Number),
      inputIds: ids,
    });
    const ups = s.loraNames.filter((k) => k.endsWith('up.weight'));
    expect(ups).toHaveLength(32);
    for (const k of ups) expect(Math.max(...(r.gradients.get(k) as Float32Array).map(Math.abs))).toBeGreaterThan(0);
    // d/d down = sUᵀ·… = 0 while up is zero (peft's behaviour too).
    for (const k of s.loraNames.filter((n) => n.endsWith('down.weight')))
      expect(Math.max(...(r.gradients.get(k) as Float32Array).map(Math.abs))).toBe(0);
  }, 60_000);
});
