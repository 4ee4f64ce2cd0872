// Benchmark of the img2img pipeline on the tiny golden model (CPU by default; DIFFMIX_DEVICE=webgpu
// on a GPU machine). Reports, all measured in this run:
//   - ms per UNet call (batch 2 = CFG) through a bare session.run loop: the baseline;
//   - img2img at strength 0.7, 25 steps, guidance 7.5: ms per image, images/hour, and the pipeline's
//     overhead as a ratio of its time to the bare UNet loop over the same number of calls;
//   - batching: images/hour at batch 1 vs batch 4 (jobs of one strength share the UNet call);
//   - peak RSS.
// Writes bench-results/diffusion.json and bench-results/diffusion.md. Run after `npm run build`.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { StableDiffusion, img2img } from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const modelDir = process.env.DIFFMIX_BENCH_MODEL ?? path.join(here, '../fixtures/golden/tiny-sd');
const device = process.env.DIFFMIX_DEVICE ?? 'cpu';
const SIZE = Number(process.env.DIFFMIX_BENCH_SIZE ?? 64);
const REPS = Number(process.env.DIFFMIX_BENCH_REPS ?? 6);

let peakRss = 0;
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const rssTimer = setInterval(sampleRss, 20);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Baseline: the bare UNet session, same inputs as the pipeline's CFG call.
const unet = await ort.InferenceSession.create(path.join(modelDir, 'unet/model.onnx'), { executionProviders: [device] });
const lat = SIZE / 8;
const sample = new ort.Tensor('float32', new Float32Array(2 * 4 * lat * lat).fill(0.1), [2, 4, lat, lat]);
const hiddenDim = unet.inputMetadata?.find?.((m) => m.name === 'encoder_hidden_states')?.shape?.[2] ?? 768;
const ctx = new ort.Tensor('float32', new Float32Array(2 * 77 * hiddenDim).fill(0.01), [2, 77, hiddenDim]);
const ts = new ort.Tensor('float32', Float32Array.from([500, 500]), [2]);
for (let i = 0; i < 3; i++) await unet.run({ sample, timestep: ts, encoder_hidden_states: ctx });
const unetMs = [];
for (let i = 0; i < 40; i++) {
  const t0 = performance.now();
  await unet.run({ sample, timestep: ts, encoder_hidden_states: ctx });
  unetMs.push(performance.now() - t0);
}
const unetCallMs = median(unetMs);
await unet.release();

// The pipeline.
const model = await StableDiffusion.load(modelDir, { device });
const image = { data: new Uint8Array(SIZE * SIZE * 3).fill(128), width: SIZE, height: SIZE, channels: 3 };
async function timeBatch(batch, strength, steps = 25) {
  const jobs = Array.from({ length: batch }, (_, i) => ({ image, prompt: 'a photo of a bird', seed: i }));
  await img2img(model, jobs, strength, { steps, size: SIZE }); // warm-up
  const times = [];
  for (let r = 0; r < REPS; r++) {
    const t0 = performance.now();
    await img2img(model, jobs, strength, { steps, size: SIZE });
    times.push(performance.now() - t0);
  }
  return median(times);
}
const b1 = await timeBatch(1, 0.7);
const b4 = await timeBatch(4, 0.7);
const calls = Math.trunc(25 * 0.7);
const perStrength = {};
for (const s of [0.1, 0.3, 0.5, 0.7, 0.9, 1.0]) {
  const ms = await timeBatch(1, s);
  perStrength[s.toFixed(1)] = { msPerImage: +ms.toFixed(1), imagesPerHour: Math.round(3_600_000 / ms) };
}
await model.release();
clearInterval(rssTimer);
sampleRss();

const result = {
  bench: '@diffmix/diffusion img2img',
  date: new Date().toISOString(),
  node: process.version,
  onnxruntime: ort.env.versions?.node ?? 'unknown',
  device,
  model: path.relative(process.cwd(), modelDir),
  imageSize: SIZE,
  baseline: { name: 'bare UNet session.run, batch 2 (CFG)', msPerCall: +unetCallMs.toFixed(3) },
  img2img: {
    strength: 0.7,
    steps: 25,
    unetCallsPerImage: calls,
    batch1: { msPerImage: +b1.toFixed(1), imagesPerHour: Math.round(3_600_000 / b1) },
    batch4: { msPerImage: +(b4 / 4).toFixed(1), imagesPerHour: Math.round((4 * 3_600_000) / b4) },
    batch4SpeedupVsBatch1: +(b1 / (b4 / 4)).toFixed(2),
    overheadRatioVsBareUnetLoop: +(b1 / (calls * unetCallMs)).toFixed(2),
  },
  perStrength,
  peakRssMiB: +(peakRss / 2 ** 20).toFixed(1),
};
const outDir = path.join(here, '../bench-results');
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, 'diffusion.json'), `${JSON.stringify(result, null, 2)}\n`);
const md = [
  `# @diffmix/diffusion bench (${result.date}, ${device}, ${SIZE}² on ${result.model})`,
  '',
  `| measure | value |`,
  `|---|---|`,
  `| bare UNet call, batch 2 (baseline) | ${result.baseline.msPerCall} ms |`,
  `| img2img s=0.7, 25 steps, batch 1 | ${result.img2img.batch1.msPerImage} ms/image, ${result.img2img.batch1.imagesPerHour} images/h |`,
  `| same, batch 4 | ${result.img2img.batch4.msPerImage} ms/image (${result.img2img.batch4SpeedupVsBatch1}× batch 1) |`,
  `| pipeline time / (${calls} × bare UNet call) | ${result.img2img.overheadRatioVsBareUnetLoop} |`,
  `| peak RSS | ${result.peakRssMiB} MiB |`,
  '',
  '| strength | ms/image | images/hour |',
  '|---|---|---|',
  ...Object.entries(perStrength).map(([s, v]) => `| ${s} | ${v.msPerImage} | ${v.imagesPerHour} |`),
  '',
].join('\n');
writeFileSync(path.join(outDir, 'diffusion.md'), md);
console.log(md);
