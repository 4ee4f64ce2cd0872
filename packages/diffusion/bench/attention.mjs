// Benchmark of cross-attention capture on the tiny golden model (CPU by default; DIFFMIX_DEVICE to
// change). img2img at strength 0.7, 25 steps, guidance 7.5, measured in this run, repetitions
// interleaved so that drift hits every variant alike:
//   - plain:    img2img on the loaded model (the baseline);
//   - idle:     img2img through the instrumented UNet with capture off (extra outputs not fetched);
//   - capture:  the same with capture on: every UNet call fetches the attn2 probabilities and sums
//               the conditional rows' heads into per-layer accumulators;
//   - maps:     computeAttentionMaps end to end (capture + aggregation + token selection).
// Ratios are against plain. Writes bench-results/attention.json. Run after `npm run build`.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { AttentionAccumulator, AttentionCapture, StableDiffusion, computeAttentionMaps, img2img } from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const modelDir = process.env.DIFFMIX_BENCH_MODEL ?? path.join(here, '../fixtures/golden/tiny-sd');
const device = process.env.DIFFMIX_DEVICE ?? 'cpu';
const SIZE = Number(process.env.DIFFMIX_BENCH_SIZE ?? 64);
const REPS = Number(process.env.DIFFMIX_BENCH_REPS ?? 15);
const STRENGTH = 0.7;
const STEPS = 25;

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const model = await StableDiffusion.load(modelDir, { device });
const capture = await AttentionCapture.open(model);
const image = { data: new Uint8Array(SIZE * SIZE * 3), width: SIZE, height: SIZE, channels: 3 };
for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 37) % 251;
const prompt = 'a photo of a bird';
const options = { steps: STEPS, guidanceScale: 7.5, size: SIZE };

let attentionBytesPerCall = 0;
function variants(batch) {
  const jobs = Array.from({ length: batch }, (_, i) => ({ image, prompt, seed: i }));
  return {
    plain: () => img2img(model, jobs, STRENGTH, options),
    idle: () => img2img(capture.model, jobs, STRENGTH, options),
    capture: () => {
      const acc = new AttentionAccumulator(batch, true);
      return capture.record(
        (call) => {
          attentionBytesPerCall = 0;
          for (const t of call.layers.values()) attentionBytesPerCall += t.data.byteLength;
          acc.add(call.layers, call.batch);
        },
        () => img2img(capture.model, jobs, STRENGTH, options),
      );
    },
    maps: () =>
      computeAttentionMaps(
        capture,
        jobs.map((j) => ({ ...j, strength: STRENGTH })),
        { ...options, batchSize: batch },
      ),
  };
}

async function measure(batch) {
  const v = variants(batch);
  const names = Object.keys(v);
  for (const n of names) await v[n](); // warm-up
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < REPS; r++) {
    for (const n of names) {
      const t0 = performance.now();
      await v[n]();
      times[n].push(performance.now() - t0);
    }
  }
  const ms = Object.fromEntries(names.map((n) => [n, median(times[n]) / batch]));
  return {
    batch,
    msPerImage: Object.fromEntries(names.map((n) => [n, +ms[n].toFixed(2)])),
    ratioVsPlain: Object.fromEntries(names.filter((n) => n !== 'plain').map((n) => [n, +(ms[n] / ms.plain).toFixed(3)])),
  };
}

const b1 = await measure(1);
const b4 = await measure(4);
await capture.release();
await model.release();

const result = {
  bench: '@diffmix/diffusion cross-attention capture',
  date: new Date().toISOString(),
  node: process.version,
  onnxruntime: ort.env.versions?.node ?? 'unknown',
  device,
  model: path.relative(process.cwd(), modelDir),
  imageSize: SIZE,
  img2img: { strength: STRENGTH, steps: STEPS, guidanceScale: 7.5, unetCallsPerImage: Math.trunc(STEPS * STRENGTH) },
  capturedLayers: capture.layers.map((l) => l.module),
  attentionBytesPerUnetCall: { batch4: attentionBytesPerCall },
  repetitions: REPS,
  results: [b1, b4],
  ratio: b1.ratioVsPlain.capture,
};
const outDir = path.join(here, '../bench-results');
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, 'attention.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
