// @diffmix/datasets benchmarks (run after `npm run build`; about 1–2 minutes on 2 cores):
//  1. decode + resize + crop throughput (images/s) for JPEG and PNG inputs at 512² and 224², with
//     the classifier eval steps (Resize(256) + CenterCrop(224)) and train steps
//     (RandomResizedCrop(224) + flip), one image at a time vs the loader's parallelism;
//  2. toy dataset generation throughput (10,000 images of 64², written as an ImageFolder tree);
//  3. peak memory (RSS sampled) while streaming those 10,000 images through the loader into float
//     CHW tensors: it must stay flat (RSS at 1k vs 10k images).
// Writes bench-results/datasets.json and prints it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { Rng } from '@diffmix/core';
import sharp from 'sharp';
import {
  classifierEvalSteps,
  classifierTrainSteps,
  createImageLoader,
  defaultDecodeConcurrency,
  RESIZE_KERNEL,
  renderToyImage,
  threadPoolSize,
  toFloatCHW,
  toyClasses,
  toyImageRng,
  writeToyDataset,
} from '../dist/index.js';

const SECONDS_PER_CASE = Number(process.env.BENCH_SECONDS ?? 1.5);
const TOY_IMAGES = Number(process.env.BENCH_TOY_IMAGES ?? 10_000);
const mb = (bytes) => +(bytes / 2 ** 20).toFixed(1);

// ---------------------------------------------------------------------------------------------
// 1. Throughput
// ---------------------------------------------------------------------------------------------

/** 24 distinct encoded images per (format, size): toy renders at full size (edges, texture, noise). */
async function makeInputs(format, size) {
  const classes = toyClasses(24);
  const out = [];
  for (let i = 0; i < 24; i++) {
    const img = renderToyImage(classes[i], toyImageRng('bench', 'train', i, 0), size);
    const p = sharp(img.data, { raw: { width: size, height: size, channels: 3 } });
    const buf = await (format === 'jpeg' ? p.jpeg({ quality: 90 }) : p.png()).toBuffer();
    out.push({ id: `${format}-${size}-${i}`, label: 0, bytes: new Uint8Array(buf) });
  }
  return out;
}

/** Images/s streaming `records` (cycled) through a loader for about SECONDS_PER_CASE. */
async function throughput(records, steps, concurrency) {
  const loader = createImageLoader({ concurrency, transform: steps, rng: Rng.fromSeed(1) });
  function* cycle(limit) {
    for (let i = 0; i < limit; i++) yield records[i % records.length];
  }
  // Warm-up (thread pool, caches, JIT).
  for await (const _ of loader.load(cycle(2 * concurrency + 8))) {
  }
  let n = 0;
  const t0 = performance.now();
  const deadline = t0 + SECONDS_PER_CASE * 1000;
  for await (const _ of loader.load(cycle(1_000_000))) {
    n++;
    if (performance.now() > deadline) break;
  }
  return n / ((performance.now() - t0) / 1000);
}

const parallel = defaultDecodeConcurrency();
const throughputRows = [];
for (const size of [512, 224]) {
  for (const format of ['jpeg', 'png']) {
    const records = await makeInputs(format, size);
    const avgKB = records.reduce((a, r) => a + r.bytes.length, 0) / records.length / 1024;
    for (const [name, steps] of [
      ['eval: Resize(256)+CenterCrop(224)', classifierEvalSteps(224)],
      ['train: RandomResizedCrop(224)+flip', classifierTrainSteps(224)],
    ]) {
      const one = await throughput(records, steps, 1);
      const many = await throughput(records, steps, parallel);
      throughputRows.push({
        input: `${format} ${size}²`,
        avgKB: +avgKB.toFixed(1),
        steps: name,
        imagesPerSecond1: +one.toFixed(1),
        imagesPerSecondParallel: +many.toFixed(1),
        parallelism: parallel,
        ratio: +(many / one).toFixed(2),
      });
    }
  }
}
console.table(throughputRows);

// ---------------------------------------------------------------------------------------------
// 2. Toy generation, 3. memory while streaming through the loader
// ---------------------------------------------------------------------------------------------

const dir = mkdtempSync(path.join(tmpdir(), 'diffmix-bench-toy-'));
let toy;
let memory;
try {
  const numClasses = 20;
  const perClass = Math.ceil(TOY_IMAGES / numClasses);
  const g0 = performance.now();
  const ds = await writeToyDataset(dir, { numClasses, imagesPerClass: perClass, testPerClass: 0, seed: 0 });
  const genSeconds = (performance.now() - g0) / 1000;
  toy = {
    images: ds.train.length,
    size: 64,
    seconds: +genSeconds.toFixed(2),
    imagesPerSecond: +(ds.train.length / genSeconds).toFixed(1),
  };
  console.log('toy generation', toy);

  // Shuffled order, as a training epoch reads it.
  const records = Rng.fromSeed(3).shuffle(ds.train);
  const loader = createImageLoader({
    transform: classifierTrainSteps(224),
    rng: Rng.fromSeed(4),
    map: (img) => toFloatCHW(img),
  });
  const samples = [];
  let peak = 0;
  let checksum = 0;
  const s0 = performance.now();
  for await (const { index, value } of loader.load(records)) {
    checksum += value[index % value.length];
    const done = index + 1;
    if (done % 100 === 0 || done === records.length) {
      const m = process.memoryUsage();
      peak = Math.max(peak, m.rss);
      samples.push({ images: done, rssMB: mb(m.rss), heapUsedMB: mb(m.heapUsed), externalMB: mb(m.external) });
    }
  }
  const streamSeconds = (performance.now() - s0) / 1000;
  const at = (n) => samples.find((s) => s.images >= n) ?? samples[samples.length - 1];
  const rss1k = at(1000).rssMB;
  const rssEnd = samples[samples.length - 1].rssMB;
  memory = {
    images: records.length,
    steps: 'RandomResizedCrop(224) + flip → toFloatCHW (588 KB per image)',
    concurrency: loader.concurrency,
    prefetch: loader.prefetch,
    seconds: +streamSeconds.toFixed(2),
    imagesPerSecond: +(records.length / streamSeconds).toFixed(1),
    rssAt1kMB: rss1k,
    rssAt5kMB: at(5000).rssMB,
    rssAtEndMB: rssEnd,
    peakRssMB: mb(peak),
    growth1kToEndMB: +(rssEnd - rss1k).toFixed(1),
    flat: rssEnd - rss1k < 64,
    checksum: Number.isFinite(checksum),
    samples: samples.filter((s) => s.images % 1000 === 0 || s.images === records.length),
  };
  console.log('memory while streaming', { ...memory, samples: undefined });
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const result = {
  bench: '@diffmix/datasets image IO + toy dataset',
  date: new Date().toISOString(),
  node: process.version,
  cpus: availableParallelism(),
  cpuModel: cpus()[0]?.model,
  sharp: sharp.versions.sharp,
  libvips: sharp.versions.vips,
  sharpConcurrency: sharp.concurrency(),
  uvThreadpoolSize: threadPoolSize(),
  resizeKernel: RESIZE_KERNEL,
  secondsPerCase: SECONDS_PER_CASE,
  throughput: throughputRows,
  toyGeneration: toy,
  memory,
};
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../bench-results/datasets.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
