// Benchmark of CLIP scoring on the tiny golden CLIP (CPU; DIFFMIX_DEVICE=webgpu where a GPU is).
// Run after `npm run build`. Everything below is measured in this run, on the same images:
//   - baseline: a bare vision-graph session.run on ready [B, 3, 224, 224] tensors (images/s);
//   - preprocessing alone (decode + resize + crop + normalise) per resampler (images/s);
//   - end-to-end ClipScorer.scoreSources (decode, preprocess, vision graph, score) per resampler,
//     as images/s and as a ratio to the bare session and to preprocessing alone;
//   - filterSyntheticSet on a synthetic set of the same images (scores + every output file);
//   - whether the webgpu provider can run here (probe), and peak RSS.
// Images: N synthetic 512×512 PNGs (the size Stable Diffusion writes; DIFFMIX_BENCH_SIZE to change).
// Writes bench-results/clip-filter.json and bench-results/clip-filter.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { annotate, createSynthesisJob } from '@diffmix/core';
import { encodePng, SyntheticSetWriter } from '@diffmix/datasets';
import { probeDevices } from '@diffmix/diffusion';
import ort from 'onnxruntime-node';
import { ClipImageProcessor, ClipModel, ClipScorer, filterSyntheticSet } from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const modelDir = process.env.DIFFMIX_BENCH_MODEL ?? path.join(here, '../fixtures/golden/tiny-clip');
const device = process.env.DIFFMIX_DEVICE ?? 'cpu';
const N = Number(process.env.DIFFMIX_BENCH_IMAGES ?? 64);
const SIZE = Number(process.env.DIFFMIX_BENCH_SIZE ?? 512);
const BATCH = Number(process.env.DIFFMIX_BENCH_BATCH ?? 16);
const REPS = Number(process.env.DIFFMIX_BENCH_REPS ?? 3);

let peakRss = 0;
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const rssTimer = setInterval(sampleRss, 20);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
async function best(fn) {
  await fn(); // warm-up
  const t = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    await fn();
    t.push(performance.now() - t0);
  }
  return median(t);
}
const rate = (count, ms) => +((count * 1000) / ms).toFixed(1);

// Images: a synthetic set written with SyntheticSetWriter (also the filter's input).
const tmp = await mkdtemp(path.join(os.tmpdir(), 'clip-bench-'));
const setRoot = path.join(tmp, 'set');
const writer = await SyntheticSetWriter.open(setRoot, { classes: ['a', 'b'] });
const files = [];
for (let i = 0; i < N; i++) {
  const data = new Uint8Array(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const p = (y * SIZE + x) * 3;
      data[p] = (x * (3 + i)) & 255;
      data[p + 1] = (y * (5 + i)) & 255;
      data[p + 2] = ((x ^ y) + i * 17) & 255;
    }
  }
  const job = createSynthesisJob({
    strategy: 'bench',
    sourceClass: i % 2,
    targetClass: (i + 1) % 2,
    strength: 0.7,
    prompt: 'p',
    seed: i,
  });
  const line = await writer.write(
    { ...job, label: annotate({ strength: 0.7, gamma: 0.8, sourceClass: i % 2, targetClass: (i + 1) % 2 }) },
    await encodePng(data, SIZE, SIZE),
  );
  files.push({ id: line.id, path: path.join(setRoot, line.path) });
}
await writer.close();

const model = await ClipModel.load(modelDir, { device });

// Baseline: bare vision session on ready tensors, same batch size.
const vision = await ort.InferenceSession.create(model.files.kind === 'dual' ? model.files.vision : model.files.model, {
  executionProviders: [device],
});
const pixels = new ort.Tensor('float32', new Float32Array(BATCH * 3 * 224 * 224).fill(0.1), [BATCH, 3, 224, 224]);
const bareMs = await best(async () => {
  for (let i = 0; i < N; i += BATCH) await vision.run({ pixel_values: pixels });
});
await vision.release();

const resamplers = ['torchvision', 'pil', 'sharp'];
const preprocess = {};
const scoring = {};
for (const resampler of resamplers) {
  const processor = new ClipImageProcessor(model.preprocessorConfig, { resampler });
  // Preprocessing alone, with the same decode concurrency as the scorer's loader.
  const ppMs = await best(async () => {
    const queue = [...files];
    const workers = Array.from({ length: Math.min(4, os.availableParallelism()) }, async () => {
      while (queue.length) await processor.preprocessSource(queue.shift().path);
    });
    await Promise.all(workers);
  });
  preprocess[resampler] = { imagesPerSecond: rate(N, ppMs) };
  const scorer = new ClipScorer(model, { metaclass: 'bird', resampler, batchSize: BATCH });
  const scoreMs = await best(async () => {
    for await (const _ of scorer.scoreSources(files, { progress: 'silent' })) {
      // consume
    }
  });
  scoring[resampler] = {
    imagesPerSecond: rate(N, scoreMs),
    ratioToBareSession: +(rate(N, scoreMs) / rate(N, bareMs)).toFixed(3),
    ratioToPreprocessingAlone: +(rate(N, scoreMs) / rate(N, ppMs)).toFixed(3),
  };
}

// The whole filter (scores + every output file + contact sheet), fresh each time.
const filterMs = await best(async () => {
  await filterSyntheticSet(setRoot, { model, metaclass: 'bird', batchSize: BATCH, progress: 'silent', rescore: true });
});
await model.release();

const probes = await probeDevices(['webgpu', 'cuda']);
clearInterval(rssTimer);
sampleRss();
await rm(tmp, { recursive: true, force: true });

const result = {
  bench: '@diffmix/clip-filter scoring',
  date: new Date().toISOString(),
  node: process.version,
  onnxruntime: ort.env.versions?.node ?? 'unknown',
  cpu: `${os.cpus()[0]?.model ?? 'unknown'} × ${os.availableParallelism()}`,
  device,
  model: path.relative(process.cwd(), modelDir),
  images: { count: N, size: `${SIZE}×${SIZE} PNG`, batch: BATCH },
  baseline: { name: `bare vision session.run, batch ${BATCH}, ready tensors`, imagesPerSecond: rate(N, bareMs) },
  preprocessingAlone: preprocess,
  scoring,
  filter: {
    imagesPerSecond: rate(N, filterMs),
    note: 'filterSyntheticSet with rescore: scoring + all output files + contact sheet',
  },
  otherDevices: probes.map((p) => ({ device: p.device, usable: p.usable, ...(p.reason ? { reason: p.reason } : {}) })),
  peakRssMiB: +(peakRss / 2 ** 20).toFixed(1),
};
const outDir = path.join(here, '../bench-results');
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, 'clip-filter.json'), `${JSON.stringify(result, null, 2)}\n`);
const md = [
  `# @diffmix/clip-filter bench (${result.date}, ${device}, ${result.cpu}, ${N} × ${SIZE}² PNG, batch ${BATCH}, ${result.model})`,
  '',
  '| measure | images/s | × bare session | × preprocessing alone |',
  '|---|---|---|---|',
  `| bare vision session.run (baseline) | ${result.baseline.imagesPerSecond} | 1 | |`,
  ...resamplers.map((r) => `| preprocessing alone, ${r} | ${preprocess[r].imagesPerSecond} | | 1 |`),
  ...resamplers.map(
    (r) =>
      `| scoring end to end, ${r} | ${scoring[r].imagesPerSecond} | ${scoring[r].ratioToBareSession} | ${scoring[r].ratioToPreprocessingAlone} |`,
  ),
  `| filterSyntheticSet (all outputs) | ${result.filter.imagesPerSecond} | | |`,
  '',
  ...result.otherDevices.map((p) => `- ${p.device}: ${p.usable ? 'usable' : `not usable here (${p.reason})`}`),
  `- peak RSS: ${result.peakRssMiB} MiB`,
  '',
].join('\n');
writeFileSync(path.join(outDir, 'clip-filter.md'), md);
console.log(md);
