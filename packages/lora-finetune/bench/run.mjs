// Fine-tuning throughput on the tiny golden SD model (ORT CPU by default), batch 2 at 64 px (8×8
// latents): one training step (text encoder fwd + UNet fwd/bwd + rows bwd + AdamW) per mode — ti, db,
// ti+db, full — next to the baseline measured in the same run: the exported UNet's forward alone on
// the same batch (ratio = what training costs per UNet forward). Plus fineTune() end to end (decode,
// crop/flip, VAE encode, tokenise, noise, step) on the toy dataset for ti+db.
// Writes bench-results/lora-finetune.json. Run after `npm run build` (uses dist/).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseNpy } from '@diffmix/core';
import { writeToyDataset } from '@diffmix/datasets';
import { loadOnnxModel } from '@diffmix/onnx';
import { graphFromOnnxModel } from '@diffmix/ort-train';
import { timeRuns } from '@diffmix/tooling/bench';
import * as ort from 'onnxruntime-node';
import { fineTune, LoraTiStepper } from '../dist/index.js';

// DIFFMIX_GOLDEN_DIR (as the tests) when set, e.g. when this script runs bundled on another machine.
const GOLDEN = process.env.DIFFMIX_GOLDEN_DIR;
const TINY_SD = GOLDEN
  ? join(GOLDEN, 'tiny-sd')
  : fileURLToPath(new URL('../../diffusion/fixtures/golden/tiny-sd', import.meta.url));
const STEP = GOLDEN
  ? join(GOLDEN, 'grads', 'lora_step')
  : fileURLToPath(new URL('../../ort-train/fixtures/golden/grads/lora_step', import.meta.url));
const REPS = Number(process.env.DIFFMIX_BENCH_REPS ?? 20);
// DIFFMIX_DEVICE=webgpu (or cuda) runs every session there, CPU fallback for unsupported nodes.
const device = process.env.DIFFMIX_DEVICE ?? 'cpu';
const sessionOptions = { executionProviders: device === 'cpu' ? ['cpu'] : [device, 'cpu'] };
const npy = (n) => parseNpy(readFileSync(join(STEP, n)), n).data;

const batch = {
  noisyLatents: npy('noisy_latents.npy'),
  noise: npy('noise.npy'),
  timesteps: Array.from(npy('timesteps.npy'), Number),
  inputIds: npy('input_ids.npy'),
};

const time = async (fn, reps) => (await timeRuns(fn, { reps })).median;

// Baseline: the exported UNet, forward only, same batch.
const unetSession = await ort.InferenceSession.create(join(TINY_SD, 'unet', 'model.onnx'), sessionOptions);
const teOut = await (await ort.InferenceSession.create(join(TINY_SD, 'text_encoder', 'model.onnx'), sessionOptions)).run({
  input_ids: new ort.Tensor(
    'int32',
    Int32Array.from(batch.inputIds, (v) => (v >= 49408 ? 320 : v)),
    [2, 77],
  ),
});
const ehs = Object.values(teOut)[0];
const forwardMs = await time(
  () =>
    unetSession.run({
      sample: new ort.Tensor('float32', batch.noisyLatents, [2, 4, 8, 8]),
      timestep: new ort.Tensor('float32', Float32Array.from(batch.timesteps), [2]),
      encoder_hidden_states: ehs,
    }),
  REPS,
);

const rows = new Float32Array(64).fill(0.01);
const modes = [];
for (const mode of ['ti', 'db', 'ti+db', 'full']) {
  const t0 = performance.now();
  const s = await LoraTiStepper.create({
    ort,
    unet: await graphFromOnnxModel(await loadOnnxModel(join(TINY_SD, 'unet', 'model.onnx'))),
    textEncoder: await graphFromOnnxModel(await loadOnnxModel(join(TINY_SD, 'text_encoder', 'model.onnx'))),
    mode,
    batchSize: 2,
    latentShape: [4, 8, 8],
    hiddenSize: 32,
    ...(mode === 'db' ? {} : { rows }),
    sessionOptions,
  });
  const setupMs = performance.now() - t0;
  const ids = mode === 'db' ? Int32Array.from(batch.inputIds, (v) => (v >= 49408 ? 320 : v)) : batch.inputIds;
  const stepMs = await time(() => s.step({ ...batch, inputIds: ids }), REPS);
  modes.push({
    mode,
    trainableParams: [...s.unetParamNames, ...(s.rows ? ['ti.rows'] : [])].reduce((a, k) => a + s.params.get(k).length, 0),
    setupMs: +setupMs.toFixed(0),
    stepMs: +stepMs.toFixed(2),
    stepsPerSecond: +(1000 / stepMs).toFixed(1),
    stepOverUnetForward: +(stepMs / forwardMs).toFixed(2),
  });
}

// End to end: fineTune() on the toy dataset (4 classes × 4 images, 64 px), ti+db, batch 2.
const toy = await writeToyDataset(mkdtempSync(join(tmpdir(), 'bench-toy-')), {
  numClasses: 4,
  imagesPerClass: 4,
  testPerClass: 1,
  size: 64,
  seed: 0,
});
const E2E_STEPS = 30;
const e0 = performance.now();
let firstStepAt;
await fineTune({
  model: TINY_SD,
  dataset: toy,
  outDir: mkdtempSync(join(tmpdir(), 'bench-ft-')),
  steps: E2E_STEPS,
  batchSize: 2,
  progress: 'silent',
  checkpointEvery: 0,
  sessionOptions,
  onStep: ({ step }) => {
    if (step === 1) firstStepAt = performance.now();
  },
});
const e2eMs = (performance.now() - firstStepAt) / (E2E_STEPS - 1);

const out = {
  bench: '@diffmix/lora-finetune training steps on tiny-sd',
  date: new Date().toISOString(),
  node: process.version,
  device: `${device} (onnxruntime-node)`,
  batch: 2,
  resolution: 64,
  reps: REPS,
  unetForwardMs: +forwardMs.toFixed(2),
  modes,
  fineTuneEndToEnd: {
    mode: 'ti+db',
    msPerStep: +e2eMs.toFixed(1),
    stepsPerSecond: +(1000 / e2eMs).toFixed(1),
    overUnetForward: +(e2eMs / forwardMs).toFixed(1),
    setupAndFirstStepMs: +(firstStepAt - e0).toFixed(0),
  },
};
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../bench-results/lora-finetune.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out, null, 2));

// The SD 1.5-sized UNet (bench/sd15-unet.mjs: minutes and ~14 GB of memory on a CPU) runs by default on
// a GPU device; DIFFMIX_BENCH_SD15=1 runs it on the CPU too, =0 never.
const sd15 = process.env.DIFFMIX_BENCH_SD15;
if (sd15 === '1' || (sd15 !== '0' && device !== 'cpu')) await import('./sd15-unet.mjs');
