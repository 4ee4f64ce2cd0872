// Classifier engines, measured in one run on one machine: training images/s (one optimiser step on a
// batch: train-mode forward, soft-target CE, backward, update) and eval images/s (eval forward) for the
// small CNN and ResNet-18 at 64² and 224² (200 classes), ORT engine and — when it loads — the tfjs
// engine; peak RSS; ratios ort/tfjs. Plus the whole loop (`trainClassifier` on toy images at 64²,
// decoding + augmentation + steps) against the bare engine step, which says whether the model waits on
// decoding. Writes bench-results/classifier.json. Run after `npm run build`.
// Env: DIFFMIX_DEVICE (cpu | cuda | webgpu | auto, default cpu), DIFFMIX_BENCH_QUICK=1 (64² only),
// DIFFMIX_BENCH_ENGINES=ort,tfjs (default both).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Rng } from '@diffmix/core';
import { generateToyDataset } from '@diffmix/datasets';
import { median } from '@diffmix/tooling/bench';
import { createEngine, trainClassifier } from '../dist/index.js';

const device = process.env.DIFFMIX_DEVICE ?? 'cpu';
const sizes = process.env.DIFFMIX_BENCH_QUICK ? [64] : [64, 224];
const engines = (process.env.DIFFMIX_BENCH_ENGINES ?? 'ort,tfjs').split(',');
const CLASSES = 200;
// A single measurement slower than this is reported alone instead of repeated.
const SLOW_MS = 20_000;
const rssMiB = () => +(process.resourceUsage().maxRSS / 1024).toFixed(0);
const log = (...a) => console.error('[bench]', ...a);

async function time(fn, reps) {
  const t0 = performance.now();
  await fn();
  const first = performance.now() - t0;
  if (first > SLOW_MS) return { ms: first, reps: 1 };
  const t = [];
  for (let i = 0; i < reps; i++) {
    const s = performance.now();
    await fn();
    t.push(performance.now() - s);
  }
  return { ms: median(t), reps };
}

const results = [];
const skipped = [];
for (const name of engines) {
  // Set when a step of this engine took longer than SLOW_MS: the larger configurations would take
  // minutes per step (the tfjs CPU backend runs pure-JS kernels), so they are skipped with the reason.
  let slow;
  for (const arch of ['smallcnn', 'resnet18']) {
    for (const size of sizes) {
      const batch = size >= 224 ? 8 : 16;
      if (slow) {
        const reason = `${name} ${arch} ${size}²: not run, ${slow}`;
        skipped.push(reason);
        log('skipped', reason);
        continue;
      }
      let engine;
      try {
        engine = await createEngine(name, { device });
        const t0 = performance.now();
        await engine.init(
          { arch, numClasses: CLASSES, imageSize: size, seed: 0 },
          { kind: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 5e-4 },
        );
        const initMs = performance.now() - t0;
        const images = Rng.fromSeed(1).fillNormal(new Float32Array(batch * 3 * size * size));
        const targets = new Float32Array(batch * CLASSES).fill(0.1 / (CLASSES - 1));
        for (let i = 0; i < batch; i++) targets[i * CLASSES + (i % CLASSES)] += 0.9;
        const reps = size >= 224 ? 3 : 8;
        const train = await time(() => engine.trainStep({ images, targets, n: batch }, 0.01), reps);
        const evalT = await time(() => engine.predict(images, batch), reps);
        const row = {
          engine: name,
          backend: engine.info.backend,
          arch,
          size,
          batch,
          initMs: +initMs.toFixed(0),
          trainStepMs: +train.ms.toFixed(1),
          trainImagesPerSecond: +((batch * 1000) / train.ms).toFixed(2),
          evalMs: +evalT.ms.toFixed(1),
          evalImagesPerSecond: +((batch * 1000) / evalT.ms).toFixed(2),
          trainOverEval: +(train.ms / evalT.ms).toFixed(2),
          reps: train.reps,
          peakRssMiB: rssMiB(),
        };
        results.push(row);
        log(JSON.stringify(row));
        if (train.ms > SLOW_MS) slow = `one ${arch} ${size}² step took ${(train.ms / 1000).toFixed(0)} s`;
      } catch (err) {
        const reason = `${name} ${arch} ${size}²: ${String(err?.message ?? err).split('\n')[0]}`;
        skipped.push(reason);
        log('skipped', reason);
        if (/not available|could not be loaded/.test(reason)) break;
      } finally {
        await engine?.dispose?.();
      }
    }
  }
}

// The whole loop vs the bare step: small CNN, 64², batch 16, toy images (72 px, so the square resize
// and the padded crop do real work).
let loop;
{
  const dataset = await generateToyDataset({ numClasses: 8, imagesPerClass: 24, testPerClass: 2, size: 72, seed: 3 });
  const stamps = [];
  const r = await trainClassifier({
    dataset,
    arch: 'smallcnn',
    imageSize: 64,
    engine: 'ort',
    device,
    epochs: 2,
    batchSize: 16,
    lr: 0.05,
    evalEvery: 100,
    progress: 'silent',
    onStep: () => stamps.push(performance.now()),
  });
  // From the end of the first step to the last: steady state, first decode excluded.
  const steps = stamps.length - 1;
  const ms = (stamps[stamps.length - 1] - stamps[0]) / steps;
  const bare = results.find((x) => x.engine === 'ort' && x.arch === 'smallcnn' && x.size === 64);
  loop = {
    what: 'trainClassifier, smallcnn 64², batch 16, 8 classes (decode 72 px PNG → resize 73 → padded crop 64 → flip → normalise, prefetched)',
    classes: 8,
    msPerStep: +ms.toFixed(1),
    imagesPerSecond: +((16 * 1000) / ms).toFixed(1),
    bareStepMsAt200Classes: bare?.trainStepMs,
    loopOverBareStep: bare ? +(ms / bare.trainStepMs).toFixed(2) : undefined,
    finalTop1: r.final.top1,
  };
  log(JSON.stringify(loop));
}

const ratios = [];
for (const o of results.filter((x) => x.engine === 'ort')) {
  const t = results.find((x) => x.engine === 'tfjs' && x.arch === o.arch && x.size === o.size);
  if (t) {
    ratios.push({
      arch: o.arch,
      size: o.size,
      trainOrtOverTfjs: +(o.trainImagesPerSecond / t.trainImagesPerSecond).toFixed(2),
      evalOrtOverTfjs: +(o.evalImagesPerSecond / t.evalImagesPerSecond).toFixed(2),
      tfjsBackend: t.backend,
    });
  }
}
const out = {
  bench: '@diffmix/classifier engines',
  date: new Date().toISOString(),
  node: process.version,
  device,
  cpus: os.availableParallelism(),
  // Other processes share the machine: the 1-minute load average at the end says how much.
  loadAverage1m: +os.loadavg()[0].toFixed(2),
  results,
  ratios,
  skipped,
  loop,
  peakRssMiB: rssMiB(),
};
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../bench-results/classifier.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out, null, 2));
for (const r of ratios)
  console.log(`${r.arch} ${r.size}²: ort/tfjs(${r.tfjsBackend}) train ×${r.trainOrtOverTfjs}, eval ×${r.evalOrtOverTfjs}`);
if (loop) console.log(`loop vs bare step (smallcnn 64²): ×${loop.loopOverBareStep}`);
