// Profiles one ResNet-18 training step (autodiff graph) and the eval forward with ONNX Runtime's
// profiler and prints the time per op type (summed over nodes), so the backward's costly patterns
// show up. Usage: node bench/profile.mjs [size=64] [batch=16]. Run after `npm run build`.
// DIFFMIX_PROFILE_LIB=<dist/index.js of another build> profiles that build's graph instead (built the
// way its bench did); DIFFMIX_BENCH_THREADS sets ORT's intra-op threads (1: least noise on a shared machine).
import { readFileSync, rmSync } from 'node:fs';
import { Rng } from '@diffmix/core';
import * as ort from 'onnxruntime-node';
import * as current from '../dist/index.js';

const lib = process.env.DIFFMIX_PROFILE_LIB ? await import(process.env.DIFFMIX_PROFILE_LIB) : current;
const { buildClassifier, buildGradientGraph, createGraphSession, initClassifierState, tensorOf } = lib;
const threads = process.env.DIFFMIX_BENCH_THREADS ? { intraOpNumThreads: Number(process.env.DIFFMIX_BENCH_THREADS) } : {};

const size = Number(process.argv[2] ?? 64);
const BATCH = Number(process.argv[3] ?? 16);
const CLASSES = 200;
const state = initClassifierState('resnet18', Rng.fromSeed(0), { numClasses: CLASSES });
const train = buildClassifier('resnet18', { state, mode: 'train', numClasses: CLASSES, inputShape: [BATCH, 3, size, size] });
const g = train.graph
  ? train.graph.clone()
  : await lib.graphFromOnnxModel((await import('@diffmix/onnx')).parseOnnxModel(train.builder.toBytes()));
const target = new Float32Array(BATCH * CLASSES).fill(1 / CLASSES);
g.addInitializer('target', tensorOf('float32', [BATCH, CLASSES], target));
const logp = g.node('LogSoftmax', [train.logits], { axis: -1 });
const sum = g.node('ReduceSum', [g.node('Mul', [logp, 'target'])], { keepdims: 0 });
const loss = g.node('Div', [sum, g.scalar(-BATCH, 'float32')], {}, { output: 'loss' });
g.addOutput(loss, 'float32', []);
const tg = buildGradientGraph(g, { loss, wrt: train.params });
const counts = {};
for (const n of tg.graph.nodes) counts[n.opType] = (counts[n.opType] ?? 0) + 1;
console.log('training graph nodes by op type:', JSON.stringify(counts));
const x = Rng.fromSeed(1).fillNormal(new Float32Array(BATCH * 3 * size * size));

async function warm(session, feeds) {
  await session.run(feeds);
  await session.run(feeds);
  session.endProfiling?.();
}
function summarise(label, file) {
  const events = JSON.parse(readFileSync(file, 'utf8'));
  const byOp = new Map();
  let total = 0;
  let runs = 0;
  for (const e of events) {
    if (e.cat === 'Session' && e.name === 'model_run') runs++;
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    const r = byOp.get(op) ?? { us: 0, n: 0 };
    r.us += e.dur;
    r.n++;
    byOp.set(op, r);
    total += e.dur;
  }
  runs = Math.max(runs, 1);
  console.log(`\n${label}: ${(total / 1000 / runs).toFixed(1)} ms of kernel time per run`);
  for (const [op, r] of [...byOp].sort((a, b) => b[1].us - a[1].us).slice(0, 20)) {
    console.log(
      `  ${op.padEnd(22)} ${(r.us / 1000 / runs).toFixed(1).padStart(8)} ms  ${(r.n / runs).toFixed(0).padStart(5)} nodes  ${((100 * r.us) / total).toFixed(1)}%`,
    );
  }
}
const prefixT = `/tmp/ort-train-profile-train-${process.pid}`;
const trainSession = await createGraphSession(ort, tg.graph, {
  sessionOptions: { ...threads, enableProfiling: true, profileFilePrefix: prefixT },
});
await warm(trainSession, { [train.input]: new ort.Tensor('float32', x, [BATCH, 3, size, size]) });
const evalBuilt = buildClassifier('resnet18', { state, mode: 'eval', numClasses: CLASSES });
const prefixE = `/tmp/ort-train-profile-eval-${process.pid}`;
const evalSession = await ort.InferenceSession.create(evalBuilt.builder.toBytes(), {
  ...threads,
  enableProfiling: true,
  profileFilePrefix: prefixE,
});
await warm(evalSession, { [evalBuilt.input]: new ort.Tensor('float32', x, [BATCH, 3, size, size]) });
const { readdirSync } = await import('node:fs');
for (const [label, prefix] of [
  ['train step', prefixT],
  ['eval forward', prefixE],
]) {
  const base = prefix.split('/').pop();
  const file = readdirSync('/tmp').find((f) => f.startsWith(base) && f.endsWith('.json'));
  if (file) {
    summarise(label, `/tmp/${file}`);
    rmSync(`/tmp/${file}`);
  } else console.log(`${label}: no profile file written`);
}
