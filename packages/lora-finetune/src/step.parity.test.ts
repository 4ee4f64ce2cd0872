/**
 * One LoRA + TI step through `LoraTiStepper` (trainable tensors fed as inputs, TE → UNet → TE chain)
 * against the golden PyTorch step `grads/lora_step` (tiny-sd, r 4, alpha 4). Tolerance as in
 * @diffmix/ort-train's parity test: max |Δ| ≤ 1e-4 · max |ref|.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseNpy, parseSafetensors } from '@diffmix/core';
import { StableDiffusion } from '@diffmix/diffusion';
import { loadOnnxModel } from '@diffmix/onnx';
import { graphFromOnnxModel } from '@diffmix/ort-train';
import { maxAbs, maxAbsDiff } from '@diffmix/tooling/testing';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { LoraTiStepper } from './step.js';

const GOLDEN = process.env.DIFFMIX_GOLDEN_DIR ?? fileURLToPath(new URL('../../ort-train/fixtures/golden', import.meta.url));
const STEP = join(GOLDEN, 'grads', 'lora_step');
const TINY_SD = process.env.DIFFMIX_GOLDEN_DIR
  ? join(GOLDEN, 'tiny-sd')
  : fileURLToPath(new URL('../../diffusion/fixtures/golden/tiny-sd', import.meta.url));
const npy = (name: string) => parseNpy(readFileSync(join(STEP, name)), name);
const f32 = (name: string) => npy(name).data as Float32Array;

interface GradsIndex {
  lora: Record<string, { file: string }>;
  ti: Record<string, { row: number }>;
}

async function makeStepper(mode: 'ti+db' | 'db' | 'ti', targets?: string[], zeroUp = false, alpha = 4) {
  const lora = parseSafetensors(new Uint8Array(readFileSync(join(TINY_SD, 'lora', 'pytorch_lora_weights.safetensors'))));
  const ti = parseSafetensors(new Uint8Array(readFileSync(join(TINY_SD, 'ti', 'learned_embeds.safetensors'))));
  const rows = new Float32Array(64);
  rows.set(ti.float32('<class_0>').data, 0);
  rows.set(ti.float32('<class_1>').data, 32);
  return LoraTiStepper.create({
    ort,
    unet: await graphFromOnnxModel(await loadOnnxModel(join(TINY_SD, 'unet', 'model.onnx'))),
    textEncoder: await graphFromOnnxModel(await loadOnnxModel(join(TINY_SD, 'text_encoder', 'model.onnx'))),
    mode,
    batchSize: 2,
    latentShape: [4, 8, 8],
    hiddenSize: 32,
    rank: 4,
    alpha,
    ...(targets ? { targets } : {}),
    loraInit: (m, kind, dims) =>
      zeroUp && kind === 'up'
        ? new Float32Array(dims[0] * dims[1])
        : lora.float32(`unet.${m}.lora.${kind}.weight`, { copy: true }).data,
    ...(mode === 'db' ? {} : { rows }),
  });
}

const batch = () => ({
  noisyLatents: f32('noisy_latents.npy'),
  noise: f32('noise.npy'),
  timesteps: Array.from(npy('timesteps.npy').data as BigInt64Array, Number),
  inputIds: npy('input_ids.npy').data as Int32Array,
});

describe('LoraTiStepper', () => {
  it('one ti+db step: loss, unet_out, encoder_hidden_states, 64 LoRA grads and grad_ti equal the golden PyTorch step; AdamW changes only trainables', async () => {
    const s = await makeStepper('ti+db');
    const index = JSON.parse(readFileSync(join(STEP, 'grads_index.json'), 'utf8')) as GradsIndex;
    const r = await s.gradients(batch());
    const bad: string[] = [];
    const check = (label: string, got: Float32Array, ref: Float32Array) => {
      if (!(maxAbsDiff(got, ref) <= 1e-4 * maxAbs(ref))) bad.push(`${label} ${maxAbsDiff(got, ref)} vs ${maxAbs(ref)}`);
    };
    check('loss', Float32Array.of(r.loss), f32('loss.npy'));
    check('unet_out', r.prediction, f32('unet_out.npy'));
    check('encoder_hidden_states', r.encoderHiddenStates, f32('encoder_hidden_states.npy'));
    check('grad_ehs', r.gradEncoderHiddenStates, f32('grad_encoder_hidden_states.npy'));
    expect(Object.keys(index.lora).sort()).toEqual([...s.loraNames].sort());
    for (const [k, e] of Object.entries(index.lora)) check(k, r.gradients.get(k) as Float32Array, f32(e.file));
    check('grad_ti', r.gradients.get('ti.rows') as Float32Array, f32('grad_ti.npy'));
    expect(bad).toEqual([]);

    // One optimiser step: every LoRA matrix and the rows move; loss changes.
    const before = new Map([...s.params].map(([k, v]) => [k, Float32Array.from(v)]));
    await s.step(batch());
    for (const [k, v] of s.params) expect(maxAbsDiff(v, before.get(k) as Float32Array), k).toBeGreaterThan(0);
    const after = await s.gradients(batch());
    expect(after.loss).not.toBe(r.loss);
    // Export keys.
    const lora = parseSafetensors(s.loraSafetensors());
    expect(lora.keys().sort()).toEqual(Object.keys(index.lora).sort());
    const emb = parseSafetensors(s.embeddingsSafetensors(['<class_0>', '<class_1>']));
    expect(Array.from(emb.float32('<class_1>').data)).toEqual(Array.from((s.params.get('ti.rows') as Float32Array).slice(32)));
  }, 120_000);

  it('rejects an unknown target module and ti/db without rows', async () => {
    await expect(makeStepper('ti+db', ['no_such_module'])).rejects.toThrow(/no_such_module/);
  }, 60_000);

  it('db mode updates only LoRA, ti mode only the rows; 20 ti+db steps reduce the loss', async () => {
    const b = batch();
    const db = await makeStepper('db');
    const dbBatch = { ...b, inputIds: b.inputIds.map((v) => (v >= 49408 ? 320 : v)) };
    const r0 = await db.step(dbBatch);
    expect(db.params.has('ti.rows')).toBe(false);
    expect(Number.isFinite(r0.loss)).toBe(true);
    const ti = await makeStepper('ti');
    // ti inserts no LoRA: the rows are its only parameter, and with up = 0 (peft's init) the LoRA of a
    // ti+db stepper is a no-op, so both see the same loss and the same gradient for the rows.
    expect([...ti.params.keys()]).toEqual(['ti.rows']);
    expect(ti.unetStep.branches).toEqual([]);
    expect(() => ti.loraSafetensors()).toThrow(/ti mode trains no LoRA/);
    const fresh = await (await makeStepper('ti+db', undefined, true)).gradients(b);
    const g0 = await ti.gradients(b);
    expect(g0.loss).toBeCloseTo(fresh.loss, 6);
    expect(maxAbsDiff(g0.gradients.get('ti.rows') as Float32Array, fresh.gradients.get('ti.rows') as Float32Array)).toBeLessThan(
      1e-6,
    );
    const before = new Map([...ti.params].map(([k, v]) => [k, Float32Array.from(v)]));
    await ti.step(b);
    for (const [k, v] of ti.params) {
      const moved = maxAbsDiff(v, before.get(k) as Float32Array) > 0;
      expect(moved, k).toBe(k === 'ti.rows');
    }
    const s = await makeStepper('ti+db');
    s.optimizer.groups.forEach((g) => {
      g.lr = 1e-3;
    });
    const losses: number[] = [];
    for (let i = 0; i < 20; i++) losses.push((await s.step(b)).loss);
    expect(losses[19] as number).toBeLessThan(0.95 * (losses[0] as number));
  }, 120_000);

  it('checkpoint / restore continues bit-identically', async () => {
    const b = batch();
    const a = await makeStepper('ti+db');
    await a.step(b);
    const ck = a.checkpoint();
    await a.step(b);
    await a.step(b);
    const c = await makeStepper('ti+db');
    c.restore(ck);
    await c.step(b);
    await c.step(b);
    for (const [k, v] of a.params) expect(Array.from(c.params.get(k) as Float32Array), k).toEqual(Array.from(v));
  }, 120_000);

  // alpha ≠ rank: the file has no alpha (diffusers' LoRA layout), so the scale must be folded into up.
  it.each([4, 16])(
    'round trip (rank 4, alpha %i): saved LoRA + embeddings loaded by StableDiffusion.load reproduce the trained graph',
    async (alpha) => {
      const b = batch();
      const s = await makeStepper('ti+db', undefined, false, alpha);
      for (const g of s.optimizer.groups) g.lr = 1e-3;
      for (let i = 0; i < 3; i++) await s.step(b);
      const r = await s.gradients(b);
      const dir = mkdtempSync(join(tmpdir(), 'lora-finetune-'));
      writeFileSync(join(dir, 'pytorch_lora_weights.safetensors'), s.loraSafetensors());
      writeFileSync(join(dir, 'learned_embeds.safetensors'), s.embeddingsSafetensors(['<class_0>', '<class_1>']));
      const sd = await StableDiffusion.load(TINY_SD, {
        lora: [join(dir, 'pytorch_lora_weights.safetensors')],
        textualInversion: [join(dir, 'learned_embeds.safetensors')],
      });
      const enc = await sd.encodePrompts(['a photo of a <class_0> bird', 'a photo of a <class_1> bird']);
      expect(enc.ids.flat()).toEqual(Array.from(b.inputIds));
      expect(maxAbsDiff(enc.data, r.encoderHiddenStates)).toBeLessThanOrEqual(1e-5);
      for (let i = 0; i < 2; i++) {
        const pred = await sd.unet.predict(
          b.noisyLatents.slice(i * 256, (i + 1) * 256),
          [1, 4, 8, 8],
          b.timesteps[i] as number,
          r.encoderHiddenStates.slice(i * 77 * 32, (i + 1) * 77 * 32),
          [1, 77, 32],
        );
        expect(maxAbsDiff(pred, r.prediction.slice(i * 256, (i + 1) * 256))).toBeLessThanOrEqual(1e-5);
      }
    },
    120_000,
  );
});
