/**
 * The ORT engine: golden ResNet-18 eval logits (torchvision), the soft-target cross-entropy and the
 * SGD update against hand computations, head replacement, state round trip, bad input.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, ModelFormatError, parseNpy, parseSafetensors } from '@diffmix/core';
import { buildSpecSafetensors, type WeightsSpec } from '@diffmix/ort-train';
import { describe, expect, it } from 'vitest';
import { createOrtEngine, type ModelState } from '../src/index.js';

const goldenDir = process.env.DIFFMIX_GOLDEN_DIR ?? fileURLToPath(new URL('../fixtures/golden', import.meta.url));
const npy = (name: string) => {
  const p = join(goldenDir, 'resnet', name);
  return parseNpy(readFileSync(p), p);
};

function resnet18Weights(): ModelState {
  const spec = JSON.parse(readFileSync(join(goldenDir, 'resnet', 'weights_spec.json'), 'utf8')) as WeightsSpec;
  const file = parseSafetensors(buildSpecSafetensors(spec, 'resnet18'), 'resnet18.safetensors');
  const state: ModelState = new Map();
  for (const k of file.keys()) {
    if (k.endsWith('num_batches_tracked')) continue;
    const t = file.float32(k);
    state.set(k, { shape: t.shape, data: Float32Array.from(t.data) });
  }
  return state;
}

const sgd = { kind: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4 } as const;

describe('ORT engine', () => {
  it('ResNet-18 eval logits match torchvision ≤ 1e-4 (golden resnet/)', async () => {
    const input = npy('input.npy');
    const ref = npy('resnet18_logits.npy').data as Float32Array;
    const [n, , size] = input.shape as [number, number, number, number];
    const engine = await createOrtEngine({ device: 'cpu' });
    await engine.init({ arch: 'resnet18', numClasses: 1000, imageSize: size, weights: resnet18Weights(), seed: 0 }, sgd);
    const logits = await engine.predict(input.data as Float32Array, n);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs((logits[i] as number) - (ref[i] as number)));
    // 1e-4 absolute on logits of magnitude ~1–10: float32 accumulation-order noise is ~1e-6 here.
    expect(worst).toBeLessThanOrEqual(1e-4);
    await engine.dispose();
  }, 120_000);

  it('replaces the head when numClasses differs and keeps every other tensor', async () => {
    const weights = resnet18Weights();
    const engine = await createOrtEngine({ device: 'cpu' });
    await engine.init({ arch: 'resnet18', numClasses: 10, imageSize: 32, weights, seed: 3 }, sgd);
    const state = await engine.getState();
    expect(state.model.get('fc.weight')?.shape).toEqual([10, 512]);
    expect(state.model.get('conv1.weight')?.data).toEqual(weights.get('conv1.weight')?.data);
    expect(state.model.get('layer4.1.bn2.running_var')?.data).toEqual(weights.get('layer4.1.bn2.running_var')?.data);
    const bound = 1 / Math.sqrt(512);
    const fc = state.model.get('fc.weight')?.data as Float32Array;
    expect(fc.every((v) => Math.abs(v) <= bound)).toBe(true);
    await engine.dispose();
  }, 120_000);

  it('soft-target cross-entropy and the SGD update match a hand computation', async () => {
    // With fc.weight = 0 the logits are fc.bias for every image, whatever BatchNorm does, so the loss
    // and the head's gradient have closed forms.
    const C = 3;
    const engine = await createOrtEngine({ device: 'cpu' });
    await engine.init({ arch: 'smallcnn', numClasses: C, imageSize: 16, seed: 1 }, sgd);
    const state = await engine.getState();
    const bias = Float32Array.from([0.5, -1, 2]);
    (state.model.get('fc.weight') as { data: Float32Array }).data.fill(0);
    (state.model.get('fc.bias') as { data: Float32Array }).data.set(bias);
    await engine.setState(state);
    const n = 2;
    const images = new Float32Array(n * 3 * 16 * 16).map((_, i) => Math.sin(i));
    const targets = Float32Array.from([0.05, 0.9, 0.05, 0.3, 0.2, 0.5]);
    const lse = Math.log(Math.exp(0.5) + Math.exp(-1) + Math.exp(2));
    const logp = Array.from(bias, (b) => b - lse);
    let want = 0;
    for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) want -= (targets[i * C + c] as number) * (logp[c] as number);
    want /= n;
    const { loss } = await engine.trainStep({ images, targets, n }, 0.1);
    expect(Math.abs(loss - want)).toBeLessThan(1e-6);
    // d loss / d bias_c = mean_i (p_c·Σt_i − t_ic); SGD, fresh momentum: b' = b − lr·(g + wd·b).
    const after = (await engine.getState()).model.get('fc.bias')?.data as Float32Array;
    for (let c = 0; c < C; c++) {
      let g = 0;
      for (let i = 0; i < n; i++) g += Math.exp(logp[c] as number) - (targets[i * C + c] as number);
      g /= n;
      const b = bias[c] as number;
      expect(Math.abs((after[c] as number) - (b - 0.1 * (g + 5e-4 * b)))).toBeLessThan(1e-6);
    }
    await engine.dispose();
  }, 60_000);

  it('state round trip restores weights, running statistics and momentum', async () => {
    const mk = async () => {
      const e = await createOrtEngine({ device: 'cpu' });
      await e.init({ arch: 'smallcnn', numClasses: 2, imageSize: 16, seed: 5 }, sgd);
      return e;
    };
    const images = new Float32Array(4 * 3 * 16 * 16).map((_, i) => Math.cos(i * 0.37));
    const targets = Float32Array.from([1, 0, 0, 1, 1, 0, 0, 1]);
    const a = await mk();
    await a.trainStep({ images, targets, n: 4 }, 0.05);
    const saved = await a.getState();
    expect(saved.optimizer.has('momentum_buffer/fc.weight')).toBe(true);
    expect(saved.step).toBe(1);
    const la = (await a.trainStep({ images, targets, n: 4 }, 0.05)).loss;
    const b = await mk();
    await b.setState(saved);
    const lb = (await b.trainStep({ images, targets, n: 4 }, 0.05)).loss;
    expect(lb).toBe(la);
    await a.dispose();
    await b.dispose();
  }, 60_000);

  it('trains a (tiny) ViT with torchvision ViT keys', async () => {
    // ViT-B/16's graph and keys at a test size: width 32, 2 layers, 2 heads, patch 8 (ViT-B/16 itself
    // is 86 M parameters, too heavy for CI).
    const e = await createOrtEngine({
      device: 'cpu',
      vitConfig: { hiddenDim: 32, numLayers: 2, numHeads: 2, mlpDim: 64, patchSize: 8 },
    });
    await e.init({ arch: 'vit_b_16', numClasses: 3, imageSize: 16, seed: 0 }, { kind: 'adamw', lr: 1e-3, weightDecay: 0.05 });
    const state = await e.getState();
    expect(state.model.get('heads.head.weight')?.shape).toEqual([3, 32]);
    expect(state.model.has('encoder.layers.encoder_layer_1.self_attention.in_proj_weight')).toBe(true);
    const images = new Float32Array(4 * 3 * 16 * 16).map((_, i) => Math.sin(i * 0.1));
    const targets = Float32Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0]);
    const first = (await e.trainStep({ images, targets, n: 4 }, 1e-2)).loss;
    let last = first;
    for (let i = 0; i < 10; i++) last = (await e.trainStep({ images, targets, n: 4 }, 1e-2)).loss;
    expect(last).toBeLessThan(first);
    expect((await e.getState()).optimizer.has('exp_avg/heads.head.weight')).toBe(true);
    expect(await e.predict(images, 4)).toHaveLength(12);
    await e.dispose();
  }, 60_000);

  it('rejects bad input with named errors', async () => {
    await expect(createOrtEngine({ device: 'tpu' })).rejects.toThrow(InvalidArgumentError);
    const e = await createOrtEngine({ device: 'cpu' });
    await expect(e.trainStep({ images: new Float32Array(1), targets: new Float32Array(1), n: 1 }, 0.1)).rejects.toThrow(
      /init\(\) first/,
    );

    const bad: ModelState = new Map([['conv1.weight', { shape: [1], data: new Float32Array(1) }]]);
    await expect(e.init({ arch: 'smallcnn', numClasses: 2, imageSize: 16, seed: 0, weights: bad }, sgd)).rejects.toThrow(
      ModelFormatError,
    );
    const ok = await createOrtEngine({ device: 'cpu' });
    await ok.init({ arch: 'smallcnn', numClasses: 2, imageSize: 16, seed: 0 }, sgd);
    await expect(ok.trainStep({ images: new Float32Array(10), targets: new Float32Array(4), n: 2 }, 0.1)).rejects.toThrow(
      /expected 1536 values/,
    );
    await expect(ok.predict(new Float32Array(3 * 16 * 16), 1)).resolves.toHaveLength(2);
    await ok.dispose();
  }, 60_000);
});
