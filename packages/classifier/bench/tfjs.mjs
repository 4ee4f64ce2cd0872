// tfjs engine throughput next to @diffmix/ort-train (ONNX Runtime) in the same run (issue #4's
// missing comparison). Self-contained: run `npm run build` first (turbo builds ort-train too), then
//
//   node bench/tfjs.mjs [--backend cpu|webgpu|tensorflow|tensorflow-gpu|auto] [--ort-device cpu|webgpu]
//                       [--quick] [--no-ort] [--batch224 N] [--out FILE]
//
// Cases: small CNN at 32², ResNet-18 at 64² (batch 16) and 224² (batch --batch224: 4 by default on the
// cpu backend, where one batch-16 step takes many minutes, 16 otherwise). For each: a training step
// (train-mode forward, soft-target CE, backward, SGD momentum 0.9 + weight decay, BatchNorm running
// statistics) and an eval forward, timed after one warm-up, tfjs and ORT interleaved step by step so
// that both see the same machine load. The ORT side is ort-train used directly: the train-mode graph
// with weights as inputs, its generated gradient graph, its torch-exact SGD in JavaScript — what the
// classifier's ORT engine runs.
//
// Prints one JSON line per measurement and writes them all (plus the machine) to
// bench-results/tfjs.json (or --out).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '@diffmix/core';
import { parseOnnxModel } from '@diffmix/onnx';
import {
  buildClassifier,
  buildGradientGraph,
  createGraphSession,
  crossEntropyGraph,
  graphFromOnnxModel,
  initClassifierState,
  SGD,
} from '@diffmix/ort-train';
import { median } from '@diffmix/tooling/bench';
import * as ort from 'onnxruntime-node';
import { createEngine } from '../dist/index.js';

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const backend = opt('--backend', 'cpu');
const ortDevice = opt('--ort-device', 'cpu');
const quick = flag('--quick');
const withOrt = !flag('--no-ort');
const here = dirname(fileURLToPath(import.meta.url));
const out = opt('--out', join(here, '..', 'bench-results', 'tfjs.json'));
const batch224 = Number(opt('--batch224', backend === 'cpu' ? '4' : '16'));

const CLASSES = 100;
const SGD_SPEC = { kind: 'sgd', lr: 0.02, momentum: 0.9, weightDecay: 5e-4 };
const cases = [
  { arch: 'smallcnn', size: 32, batch: 16, steps: 5 },
  { arch: 'resnet18', size: 64, batch: 16, steps: quick ? 1 : 2 },
  ...(quick ? [] : [{ arch: 'resnet18', size: 224, batch: batch224, steps: 1 }]),
];

let peakRss = 0;
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const timer = setInterval(sampleRss, 200);
const results = [];
const emit = (r) => {
  results.push(r);
  console.log(JSON.stringify(r));
};

function makeBatch(n, size, seed) {
  const rng = Rng.fromSeed(seed);
  const images = rng.fillNormal(new Float32Array(n * 3 * size * size));
  const targets = new Float32Array(n * CLASSES).fill(0.1 / (CLASSES - 1));
  for (let i = 0; i < n; i++) targets[i * CLASSES + rng.int(CLASSES)] = 0.9;
  return { images, targets, n };
}

/** The ort-train step and eval forward for one case (weights fed as inputs each step, as the ORT engine does). */
async function ortRunner(arch, size, state, batch) {
  // Static input shapes: ort-train then picks its faster gradient forms, and the MaxPool gradient
  // that runs on WebGPU (ORT's WebGPU MaxPool has no Indices output).
  const inputShape = [batch, 3, size, size];
  const train = buildClassifier(arch, { numClasses: CLASSES, mode: 'train', weights: 'inputs', inputShape });
  const target = train.builder.input('target', [batch, CLASSES]);
  const loss = crossEntropyGraph(train.builder, train.logits, target, CLASSES, { epsilon: 0 });
  train.builder.output(loss, []);
  const forward = await graphFromOnnxModel(parseOnnxModel(train.builder.toBytes()));
  const tg = buildGradientGraph(forward, { loss, wrt: train.params, keepOutputs: true });
  const options = { executionProviders: [ortDevice] };
  const session = await createGraphSession(ort, tg.graph, { sessionOptions: options });
  const evalBuilt = buildClassifier(arch, { numClasses: CLASSES, mode: 'eval', weights: 'inputs', inputShape });
  const evalSession = await ort.InferenceSession.create(evalBuilt.builder.toBytes(), options);
  const values = new Map([...state].map(([k, t]) => [k, Float32Array.from(t.data)]));
  const shapes = new Map([...state].map(([k, t]) => [k, t.shape]));
  const sgd = new SGD(train.params, { lr: SGD_SPEC.lr, momentum: SGD_SPEC.momentum, weightDecay: SGD_SPEC.weightDecay });
  const weightFeeds = (keys) => Object.fromEntries(keys.map((k) => [k, new ort.Tensor('float32', values.get(k), shapes.get(k))]));
  return {
    async step(b) {
      const feeds = {
        ...weightFeeds([...values.keys()]),
        [train.input]: new ort.Tensor('float32', b.images, [b.n, 3, size, size]),
        [target]: new ort.Tensor('float32', b.targets, [b.n, CLASSES]),
      };
      const o = await session.run(feeds);
      const grads = new Map(train.params.map((k) => [k, Float32Array.from(o[tg.gradients[k]].data)]));
      for (const [buf, name] of train.bufferUpdates) values.set(buf, Float32Array.from(o[name].data));
      sgd.step(values, grads);
      return o[loss].data[0];
    },
    async predict(b) {
      const o = await evalSession.run({
        ...weightFeeds(evalBuilt.weightInputs),
        [evalBuilt.input]: new ort.Tensor('float32', b.images, [b.n, 3, size, size]),
      });
      return o[evalBuilt.logits].data;
    },
    async release() {
      await session.release();
      await evalSession.release();
    },
  };
}

const engine0 = await createEngine('tfjs', { backend });
emit({
  kind: 'machine',
  tfjsBackend: engine0.info.backend,
  reason: engine0.info.reason,
  ort: withOrt ? `onnxruntime-node ${ort.env.versions?.common ?? ''} ${ortDevice}`.trim() : null,
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model,
  memGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  date: new Date().toISOString(),
});
await engine0.dispose();

for (const c of cases) {
  const state = initClassifierState(c.arch, Rng.fromSeed(1).split('init'), { numClasses: CLASSES });
  const tfjs = await createEngine('tfjs', { backend });
  await tfjs.init({ arch: c.arch, numClasses: CLASSES, imageSize: c.size, seed: 1, weights: state }, SGD_SPEC);
  const ortR = withOrt ? await ortRunner(c.arch, c.size, state, c.batch) : undefined;
  const b = makeBatch(c.batch, c.size, 7);
  const label = `${c.arch}@${c.size} b${c.batch}`;
  process.stderr.write(`${label}: warm-up…\n`);
  // Warm-up (kernel compilation on webgpu, session set-up, JIT), then interleaved timed steps.
  await tfjs.trainStep(b, SGD_SPEC.lr);
  await tfjs.predict(b.images, b.n);
  if (ortR) {
    await ortR.step(b);
    await ortR.predict(b);
  }
  const t = { tfjsTrain: [], ortTrain: [], tfjsEval: [], ortEval: [] };
  for (let s = 0; s < c.steps; s++) {
    let t0 = performance.now();
    await tfjs.trainStep(b, SGD_SPEC.lr);
    t.tfjsTrain.push(performance.now() - t0);
    sampleRss();
    if (ortR) {
      t0 = performance.now();
      await ortR.step(b);
      t.ortTrain.push(performance.now() - t0);
    }
    t0 = performance.now();
    await tfjs.predict(b.images, b.n);
    t.tfjsEval.push(performance.now() - t0);
    if (ortR) {
      t0 = performance.now();
      await ortR.predict(b);
      t.ortEval.push(performance.now() - t0);
    }
    process.stderr.write(
      `${label}: step ${s + 1}/${c.steps} tfjs ${t.tfjsTrain.at(-1).toFixed(0)} ms${ortR ? `, ort ${t.ortTrain.at(-1).toFixed(0)} ms` : ''}\n`,
    );
  }
  const row = (engine, mode, times) => {
    const ms = median(times);
    return {
      kind: 'measurement',
      arch: c.arch,
      size: c.size,
      batch: c.batch,
      mode,
      engine,
      backend: engine === 'tfjs' ? tfjs.info.backend : `onnxruntime-node ${ortDevice}`,
      steps: times.length,
      msPerStep: Math.round(ms * 10) / 10,
      imagesPerSec: Math.round((c.batch / (ms / 1000)) * 100) / 100,
    };
  };
  const tr = row('tfjs', 'train', t.tfjsTrain);
  const ev = row('tfjs', 'eval', t.tfjsEval);
  emit({ ...tr, peakRssMiB: Math.round(peakRss / 2 ** 20) });
  emit(ev);
  if (ortR) {
    const otr = row('ort-train', 'train', t.ortTrain);
    const oev = row('ort-train', 'eval', t.ortEval);
    emit(otr);
    emit(oev);
    emit({
      kind: 'ratio',
      arch: c.arch,
      size: c.size,
      batch: c.batch,
      what: 'tfjs images/s ÷ ort-train images/s (same run, interleaved)',
      train: Math.round((tr.imagesPerSec / otr.imagesPerSec) * 1000) / 1000,
      eval: Math.round((ev.imagesPerSec / oev.imagesPerSec) * 1000) / 1000,
    });
    await ortR.release();
  }
  await tfjs.dispose();
}
clearInterval(timer);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ bench: 'tfjs engine vs ort-train', args, results }, null, 2)}\n`);
process.stderr.write(`wrote ${out}\n`);
