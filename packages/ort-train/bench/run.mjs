// ResNet-18 training throughput on ONNX Runtime (CPU by default; DIFFMIX_DEVICE=webgpu on a GPU machine):
// one training step = the autodiff graph (forward in train mode + label-smoothed CE + all gradients),
// weights as initializers, batch 16, at 64² and (unless DIFFMIX_BENCH_QUICK) 224². Baseline in the same
// run: the eval-mode forward alone on the same batch, so the ratio says what the backward costs.
// The tfjs engine comparison the issue asks for is not here yet (no tfjs engine exists).
// Writes bench-results/ort-train.json. Run after `npm run build`.
import { mkdirSync, writeFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { Rng } from '@diffmix/core';
import { parseOnnxModel } from '@diffmix/onnx';
import { buildClassifier, buildGradientGraph, createGraphSession, graphFromOnnxModel, initClassifierState, tensorOf } from '../dist/index.js';

const device = process.env.DIFFMIX_DEVICE ?? 'cpu';
const BATCH = 16;
const CLASSES = 200;
const sizes = process.env.DIFFMIX_BENCH_QUICK ? [64] : [64, 224];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function timeRuns(session, feeds, reps) {
  await session.run(feeds);
  const t = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await session.run(feeds);
    t.push(performance.now() - t0);
  }
  return median(t);
}

const results = [];
for (const size of sizes) {
  const state = initClassifierState('resnet18', Rng.fromSeed(0), { numClasses: CLASSES });
  const train = buildClassifier('resnet18', { state, mode: 'train', numClasses: CLASSES });
  const g = await graphFromOnnxModel(parseOnnxModel(train.builder.toBytes()));
  const target = new Float32Array(BATCH * CLASSES).fill(0.1 / (CLASSES - 1));
  for (let i = 0; i < BATCH; i++) target[i * CLASSES + (i % CLASSES)] += 0.9;
  g.addInitializer('target', tensorOf('float32', [BATCH, CLASSES], target));
  const logp = g.node('LogSoftmax', [train.logits], { axis: -1 });
  const sum = g.node('ReduceSum', [g.node('Mul', [logp, 'target'])], { keepdims: 0 });
  const loss = g.node('Div', [sum, g.scalar(-BATCH, 'float32')], {}, { output: 'loss' });
  g.addOutput(loss, 'float32', []);
  const tg = buildGradientGraph(g, { loss, wrt: train.params });
  const trainSession = await createGraphSession(ort, tg.graph, { sessionOptions: { executionProviders: [device] } });
  const evalBuilt = buildClassifier('resnet18', { state, mode: 'eval', numClasses: CLASSES });
  const evalSession = await ort.InferenceSession.create(evalBuilt.builder.toBytes(), { executionProviders: [device] });
  const x = Rng.fromSeed(1).fillNormal(new Float32Array(BATCH * 3 * size * size));
  const reps = size >= 224 ? 3 : 8;
  const stepMs = await timeRuns(trainSession, { [train.input]: new ort.Tensor('float32', x, [BATCH, 3, size, size]) }, reps);
  const fwdMs = await timeRuns(evalSession, { [evalBuilt.input]: new ort.Tensor('float32', x, [BATCH, 3, size, size]) }, reps);
  results.push({
    size,
    batch: BATCH,
    trainStepMs: +stepMs.toFixed(1),
    trainImagesPerSecond: +((BATCH * 1000) / stepMs).toFixed(1),
    evalForwardMs: +fwdMs.toFixed(1),
    stepOverForwardRatio: +(stepMs / fwdMs).toFixed(2),
  });
  await trainSession.release?.();
  await evalSession.release();
}

const out = { bench: '@diffmix/ort-train ResNet-18 training', date: new Date().toISOString(), node: process.version, device, results };
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../bench-results/ort-train.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out, null, 2));
