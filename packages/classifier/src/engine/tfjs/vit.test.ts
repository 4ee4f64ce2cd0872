/**
 * ViT has no golden fixture here: its gradients (and the rules for Softmax, Erf, LayerNorm's ops,
 * SplitV, Concat, Tile, Slice and rank-4 BatchMatMul that only ViT uses) are checked against central
 * finite differences of the loss along a random direction, on a tiny ViT (patch 4, hidden 8, 2
 * heads) in float32, along a unit-norm direction. Tolerance 1 % of |directional derivative| + 1e-5: float32 round-off of the loss
 * (~1e-7 / 2h with h = 1e-2) and the O(h²) truncation are both far below it, while a wrong rule
 * (e.g. a missing 1/√d or a transposed matMul gradient) is off by tens of percent or more.
 */
import { Rng } from '@diffmix/core';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createTfjsEngine, initTfjsWeights, tfjsModelDef, type VitConfig } from './index.js';
import { toEngineTensor } from './layout.js';

const TINY: VitConfig = { patchSize: 4, hidden: 8, layers: 2, heads: 2, mlp: 16 };
const C = 3;
const SIDE = 8;

describe('ViT (tiny config)', () => {
  it('gradients match finite differences along a random direction', async () => {
    await createTfjsEngine({ backend: 'cpu' }); // activates the backend and registers the gradient rules
    const def = tfjsModelDef('vit_b_16', C, SIDE, { vit: TINY });
    const rng = Rng.fromSeed(4);
    const state = initTfjsWeights(def, rng);
    // torchvision zero-initialises the head (and the class token): give them values so every
    // parameter gets a gradient.
    for (const k of ['heads.head.weight', 'heads.head.bias', 'class_token'])
      rng.fillNormal(state.get(k)?.data as Float32Array, 0, 0.5);
    const keys = [...state.keys()];
    const params = keys.map((k) => toEngineTensor(state.get(k) as { shape: number[]; data: Float32Array }));
    // A unit-norm direction over all parameters (per-element N(0, 1) would make h·|v| ≫ 1).
    const raw = params.map((p) => rng.fillNormal(new Float32Array(p.size)));
    const norm = Math.sqrt(raw.reduce((a, r) => a + r.reduce((b, v) => b + v * v, 0), 0));
    const dirs = params.map((p, i) =>
      tf.tensor(
        (raw[i] as Float32Array).map((v) => v / norm),
        p.shape,
      ),
    );
    const n = 2;
    const x = tf.tensor4d(rng.fillNormal(new Float32Array(n * SIDE * SIDE * 3)), [n, SIDE, SIDE, 3]);
    const t = tf.tensor2d([0.7, 0.2, 0.1, 0.1, 0.1, 0.8], [n, C]);
    const loss = (...vals: tf.Tensor[]) => {
      const m = new Map(keys.map((k, i) => [k, vals[i] as tf.Tensor]));
      const logits = def.forward({ params: m, train: true }, x);
      return tf.div(tf.neg(tf.sum(tf.mul(t, tf.logSoftmax(logits)))), n) as tf.Scalar;
    };
    const { grads } = tf.valueAndGrads(loss)(params);
    let analytic = 0;
    for (let i = 0; i < grads.length; i++)
      analytic += tf.sum(tf.mul(grads[i] as tf.Tensor, dirs[i] as tf.Tensor)).dataSync()[0] as number;
    const h = 1e-2;
    const at = (s: number) => loss(...params.map((p, i) => tf.add(p, tf.mul(dirs[i] as tf.Tensor, s)))).dataSync()[0] as number;
    const numeric = (at(h) - at(-h)) / (2 * h);
    expect(Math.abs(analytic)).toBeGreaterThan(1e-3);
    if (process.env.DIFFMIX_REPORT) console.log(`ViT directional derivative: analytic ${analytic}, numeric ${numeric}`);
    expect(Math.abs(analytic - numeric)).toBeLessThanOrEqual(0.01 * Math.abs(numeric) + 1e-5);
    // Per-tensor: every parameter has a non-zero gradient (no rule silently drops a path).
    const zero = keys.filter((_, i) => (tf.max(tf.abs(grads[i] as tf.Tensor)).dataSync()[0] as number) === 0);
    expect(zero).toEqual([]);
  });

  it('trains through the engine (tiny config) and keeps torchvision keys', async () => {
    const e = await createTfjsEngine({ backend: 'cpu', model: { vit: TINY } });
    await e.init({ arch: 'vit_b_16', numClasses: C, imageSize: SIDE, seed: 1 }, { kind: 'adamw', lr: 3e-3, weightDecay: 0.05 });
    const rng = Rng.fromSeed(9);
    const n = 6;
    const images = rng.fillNormal(new Float32Array(n * 3 * SIDE * SIDE));
    const targets = new Float32Array(n * C);
    for (let i = 0; i < n; i++) targets[i * C + (i % C)] = 1;
    const first = (await e.trainStep({ images, targets, n }, 3e-3)).loss;
    // Zero head: the first loss is exactly log(C).
    expect(first).toBeCloseTo(Math.log(C), 5);
    let last = first;
    for (let s = 0; s < 10; s++) last = (await e.trainStep({ images, targets, n }, 3e-3)).loss;
    expect(last).toBeLessThan(first);
    const st = await e.getState();
    expect(st.model.get('conv_proj.weight')?.shape).toEqual([8, 3, 4, 4]);
    expect(st.model.get('encoder.layers.encoder_layer_1.self_attention.in_proj_weight')?.shape).toEqual([24, 8]);
    expect(st.model.get('encoder.pos_embedding')?.shape).toEqual([1, 5, 8]);
    expect(st.optimizer.has('exp_avg_sq/heads.head.weight')).toBe(true);
    await e.dispose();
  });
});
