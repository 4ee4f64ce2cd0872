// Training throughput on ONNX Runtime (CPU by default; DIFFMIX_DEVICE=webgpu on a GPU machine).
//
// ResNet-18: one training step = the autodiff graph (forward in train mode + label-smoothed CE + all
// gradients), weights as initializers, batch 16, 200 classes, at 64² and (unless DIFFMIX_BENCH_QUICK)
// 224². Baselines measured in the same run, interleaved: the eval-mode forward on the same batch (so
// the ratio says what the backward costs) and, when DIFFMIX_BASELINE_DIST points at the dist/index.js
// of an older build of this package, that build's training step (built the way that version's bench
// did: symbolic N/H/W input dims) — the before/after speed-up.
//
// ViT (see vitBench): training images/s of a tiny ViT and of ViT-B/16 at 224² (batch 2).
//
// Writes bench-results/ort-train.json. Run after `npm run build`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Rng } from '@diffmix/core';
import { median } from '@diffmix/tooling/bench';
import * as ort from 'onnxruntime-node';
import * as cur from '../dist/index.js';

const device = process.env.DIFFMIX_DEVICE ?? 'cpu';
const BATCH = 16;
const CLASSES = 200;
const quick = !!process.env.DIFFMIX_BENCH_QUICK;
const sizes = quick ? [64] : [64, 224];
const baselineDist = process.env.DIFFMIX_BASELINE_DIST;
const base = baselineDist ? await import(baselineDist) : undefined;

/**
 * Times several sessions interleaved (one run of each per round), after one warm-up run each. Returns
 * the median wall time per case; `cpu` holds the median process CPU time (user + system, all ORT
 * threads) — on a shared, loaded machine with DIFFMIX_BENCH_THREADS=1 that is the stabler measure of
 * the work a step does.
 */
const cpuMs = new Map();
async function timeInterleaved(cases, reps) {
  for (const c of cases) await c.session.run(c.feeds);
  const t = cases.map(() => []);
  const u = cases.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (const [i, c] of cases.entries()) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await c.session.run(c.feeds);
      t[i].push(performance.now() - t0);
      const dc = process.cpuUsage(c0);
      u[i].push((dc.user + dc.system) / 1000);
    }
  }
  const wall = t.map(median);
  cpuMs.set(wall, u.map(median));
  return wall;
}
const cpuOf = (wall) => cpuMs.get(wall) ?? [];
const threads = process.env.DIFFMIX_BENCH_THREADS ? Number(process.env.DIFFMIX_BENCH_THREADS) : undefined;
const sessionOptions = { executionProviders: [device], ...(threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}) };

/** Label-smoothed CE appended to a `Graph` (same ops in every version of the package). */
function addLoss(lib, g, logits, batch, classes) {
  const target = new Float32Array(batch * classes).fill(0.1 / (classes - 1));
  for (let i = 0; i < batch; i++) target[i * classes + (i % classes)] += 0.9;
  g.addInitializer('target', lib.tensorOf('float32', [batch, classes], target));
  const logp = g.node('LogSoftmax', [logits], { axis: -1 });
  const sum = g.node('ReduceSum', [g.node('Mul', [logp, 'target'])], { keepdims: 0 });
  const loss = g.node('Div', [sum, g.scalar(-batch, 'float32')], {}, { output: 'loss' });
  g.addOutput(loss, 'float32', []);
  return loss;
}

async function resnetTrainSession(lib, state, size, staticShapes) {
  const built = lib.buildClassifier('resnet18', {
    state,
    mode: 'train',
    numClasses: CLASSES,
    ...(staticShapes ? { inputShape: [BATCH, 3, size, size] } : {}),
  });
  // Older builds had no `graph` field: go through the serialised model as their bench did.
  const { parseOnnxModel } = await import('@diffmix/onnx');
  const g = built.graph ? built.graph.clone() : await lib.graphFromOnnxModel(parseOnnxModel(built.builder.toBytes()));
  const loss = addLoss(lib, g, built.logits, BATCH, CLASSES);
  const tg = lib.buildGradientGraph(g, { loss, wrt: built.params });
  const session = await lib.createGraphSession(ort, tg.graph, { sessionOptions });
  return { session, input: built.input, nodes: tg.graph.nodes.length };
}

const results = [];
for (const size of sizes) {
  const state = cur.initClassifierState('resnet18', Rng.fromSeed(0), { numClasses: CLASSES });
  const x = Rng.fromSeed(1).fillNormal(new Float32Array(BATCH * 3 * size * size));
  const feed = (name) => ({ [name]: new ort.Tensor('float32', x, [BATCH, 3, size, size]) });
  const train = await resnetTrainSession(cur, state, size, true);
  const evalBuilt = cur.buildClassifier('resnet18', { state, mode: 'eval', numClasses: CLASSES });
  const evalSession = await cur.createGraphSession(ort, evalBuilt.graph, { sessionOptions });
  const cases = [
    { session: train.session, feeds: feed(train.input) },
    { session: evalSession, feeds: feed(evalBuilt.input) },
  ];
  let old;
  if (base) {
    old = await resnetTrainSession(base, state, size, false);
    cases.push({ session: old.session, feeds: feed(old.input) });
  }
  const reps = size >= 224 ? 3 : 8;
  const wall = await timeInterleaved(cases, reps);
  const [stepMs, fwdMs, oldMs] = wall;
  const [stepCpu, fwdCpu, oldCpu] = cpuOf(wall);
  results.push({
    model: 'resnet18',
    size,
    batch: BATCH,
    trainStepMs: +stepMs.toFixed(1),
    trainImagesPerSecond: +((BATCH * 1000) / stepMs).toFixed(1),
    evalForwardMs: +fwdMs.toFixed(1),
    stepOverForwardRatio: +(stepMs / fwdMs).toFixed(2),
    trainStepCpuMs: +stepCpu.toFixed(1),
    evalForwardCpuMs: +fwdCpu.toFixed(1),
    stepOverForwardCpuRatio: +(stepCpu / fwdCpu).toFixed(2),
    trainGraphNodes: train.nodes,
    ...(old
      ? {
          baselineStepMs: +oldMs.toFixed(1),
          baselineStepOverForwardRatio: +(oldMs / fwdMs).toFixed(2),
          speedupOverBaseline: +(oldMs / stepMs).toFixed(2),
          baselineStepCpuMs: +oldCpu.toFixed(1),
          baselineStepOverForwardCpuRatio: +(oldCpu / fwdCpu).toFixed(2),
          cpuSpeedupOverBaseline: +(oldCpu / stepCpu).toFixed(2),
          baselineGraphNodes: old.nodes,
        }
      : {}),
  });
  console.error(JSON.stringify(results.at(-1)));
  for (const c of cases) await c.session.release?.();
}

if (typeof cur.buildVit === 'function' && !process.env.DIFFMIX_BENCH_NO_VIT) {
  const { vitBench } = await import('./vit.mjs');
  for (const r of await vitBench(cur, { quick, timeInterleaved, cpuOf, sessionOptions })) {
    results.push(r);
    console.error(JSON.stringify(r));
  }
}

const out = {
  bench: '@diffmix/ort-train training throughput',
  date: new Date().toISOString(),
  node: process.version,
  device,
  intraOpThreads: threads ?? 'ORT default',
  baseline: baselineDist ?? null,
  results,
};
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../bench-results/ort-train.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out, null, 2));
