/**
 * Cross-engine: the same small-CNN state and batches give the same losses, updated weights, running
 * statistics and optimiser slots on the tfjs engine (cpu backend) as on `@diffmix/ort-train` used
 * directly (its train-mode graph, generated gradient graph on ONNX Runtime CPU, and its torch-exact
 * SGD / AdamW in JavaScript) — not through the classifier's own ORT engine, so a bug there cannot
 * hide one here. Two steps, so the second uses the momentum / Adam slots of the first.
 *
 * Tolerance: max |Δ| ≤ 2e-5 · max |ref| per tensor (relative: Adam's second moments are ~1e-6). Both sides are float32 with different
 * summation orders (ORT's MLAS vs tfjs's JS kernels): the observed gap is ~1e-6 relative; a wrong
 * rule (a missing weight decay, a biased running var, a momentum buffer off by one step) moves these
 * values by 1e-3 or more.
 */
import { Rng } from '@diffmix/core';
import { parseOnnxModel } from '@diffmix/onnx';
import {
  AdamW,
  buildClassifier,
  buildGradientGraph,
  createGraphSession,
  crossEntropyGraph,
  graphFromOnnxModel,
  initClassifierState,
  type Optimizer,
  SGD,
} from '@diffmix/ort-train';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { ModelState, OptimizerSpec } from '../types.js';
import { createTfjsEngine } from './index.js';
import { maxAbs, maxAbsDiff } from './test-support.js';

const C = 5;
const SIDE = 16;
const N = 6;

function batch(seed: number): { images: Float32Array; targets: Float32Array; n: number } {
  const rng = Rng.fromSeed(seed);
  const images = rng.fillNormal(new Float32Array(N * 3 * SIDE * SIDE));
  // Soft targets (as CutMix / Mixup + label smoothing produce): random rows normalised to 1.
  const targets = new Float32Array(N * C);
  for (let i = 0; i < N; i++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += targets[i * C + c] = rng.uniform() ** 3;
    for (let c = 0; c < C; c++) targets[i * C + c] = (targets[i * C + c] as number) / s;
  }
  return { images, targets, n: N };
}

/** The ort-train reference: returns losses and the final params / buffers / slots. */
async function ortReference(state: ModelState, spec: OptimizerSpec, batches: ReturnType<typeof batch>[], lr: number) {
  const train = buildClassifier('smallcnn', { numClasses: C, mode: 'train', weights: 'inputs' });
  const target = train.builder.input('target', ['N', C]);
  const loss = crossEntropyGraph(train.builder, train.logits, target, C, { epsilon: 0 });
  train.builder.output(loss, []);
  const forward = await graphFromOnnxModel(parseOnnxModel(train.builder.toBytes()));
  const tg = buildGradientGraph(forward, { loss, wrt: train.params, keepOutputs: true });
  const session = (await createGraphSession(ort, tg.graph)) as ort.InferenceSession;
  const values = new Map([...state].map(([k, t]) => [k, Float32Array.from(t.data)]));
  const shapes = new Map([...state].map(([k, t]) => [k, t.shape]));
  const opt: Optimizer =
    spec.kind === 'sgd'
      ? new SGD(train.params, { lr: spec.lr, momentum: spec.momentum, weightDecay: spec.weightDecay })
      : new AdamW(train.params, { lr: spec.lr, weightDecay: spec.weightDecay });
  const losses: number[] = [];
  for (const b of batches) {
    const feeds: Record<string, ort.Tensor> = {
      [train.input]: new ort.Tensor('float32', b.images, [b.n, 3, SIDE, SIDE]),
      [target]: new ort.Tensor('float32', b.targets, [b.n, C]),
    };
    for (const [k, v] of values) feeds[k] = new ort.Tensor('float32', v, shapes.get(k) as number[]);
    const out = await session.run(feeds);
    const f32 = (name: string) => Float32Array.from((out[name] as ort.Tensor).data as Float32Array);
    losses.push(f32(loss)[0] as number);
    const grads = new Map(train.params.map((k) => [k, f32(tg.gradients[k] as string)]));
    for (const [buf, o] of train.bufferUpdates) values.set(buf, f32(o));
    opt.setLrFactor(lr / spec.lr);
    opt.step(values, grads);
  }
  await session.release();
  return { losses, values, slots: opt.stateTensors() };
}

describe.each([
  { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 } as OptimizerSpec,
  { kind: 'adamw', lr: 1e-3, weightDecay: 0.05 } as OptimizerSpec,
])('small CNN, tfjs vs ort-train ($kind)', (spec) => {
  it('same losses, weights, running statistics and optimiser slots after two steps', async () => {
    const state: ModelState = initClassifierState('smallcnn', Rng.fromSeed(11), { numClasses: C });
    const batches = [batch(1), batch(2)];
    const lr = spec.lr * 0.8; // a scheduled rate, not the base one
    const ref = await ortReference(state, spec, batches, lr);

    const engine = await createTfjsEngine({ backend: 'cpu' });
    await engine.init({ arch: 'smallcnn', numClasses: C, imageSize: SIDE, seed: 0, weights: state }, spec);
    const losses: number[] = [];
    for (const b of batches) losses.push((await engine.trainStep(b, lr)).loss);
    const got = await engine.getState();
    await engine.dispose();

    const report: string[] = [];
    const bad: string[] = [];
    const check = (label: string, a: ArrayLike<number>, b: ArrayLike<number>) => {
      const d = maxAbsDiff(a, b);
      const tol = 2e-5 * maxAbs(b);
      report.push(`${label.padEnd(36)} max|Δ| ${d.toExponential(2)}  max|ref| ${maxAbs(b).toExponential(2)}`);
      if (!(d <= tol)) bad.push(label);
    };
    check('losses', losses, ref.losses);
    for (const [k, v] of ref.values) check(k, got.model.get(k)?.data ?? [], v);
    expect([...got.optimizer.keys()].sort()).toEqual([...ref.slots.keys()].sort());
    for (const [k, v] of ref.slots) check(k, got.optimizer.get(k)?.data ?? [], v);
    if (process.env.DIFFMIX_REPORT) console.log(`tfjs vs ort-train (${spec.kind}):\n${report.join('\n')}`);
    expect(bad, report.join('\n')).toEqual([]);
    // The step moved the weights by much more than the tolerance (the comparison is not vacuous).
    expect(maxAbsDiff(got.model.get('conv1.weight')?.data ?? [], state.get('conv1.weight')?.data ?? [])).toBeGreaterThan(1e-4);
    expect(got.step).toBe(2);
  }, 60_000);
});
