// LoRA fine-tuning speed on an SD 1.5-sized UNet (860 M parameters, random torch-default weights built
// by @diffmix/ort-train's buildUnet from diffusers' SD 1.5 config), next to two baselines measured in
// the same run:
//   1. the same UNet's forward alone (ONNX Runtime, same device, same batch): step / forward says what
//      training costs per UNet evaluation;
//   2. PyTorch on the same machine (tooling/device/torch_sd_unet.py: the same architecture and LoRA by
//      hand in torch, eager fp32), when a python with torch is available (DIFFMIX_TORCH_PYTHON, default
//      `python3`; DIFFMIX_TORCH=0 skips it).
// The step is LoraTiStepper's (mode ti+db, rank 10 on to_q/k/v/out.0 of attn1 and attn2, one placeholder
// row, AdamW, clipping). The text encoder is a stand-in: CLIP's token-embedding lookup only (CLIP-L's
// 123 M-parameter transformer over 77 tokens is ≈1 % of a 512² UNet step's FLOPs, and is not trained).
//
//   DIFFMIX_DEVICE=cpu|webgpu|cuda   (default cpu)
//   DIFFMIX_SD_RESOLUTION=512        image side in pixels (latents /8; default 512, or 256 on cpu)
//   DIFFMIX_SD_BATCH=1   DIFFMIX_BENCH_REPS=3
// Writes bench-results/sd15-unet-<device>.json. Run after `npm run build` (uses dist/).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Rng } from '@diffmix/core';
import { buildUnet, createGraphSession, Graph, SD15_UNET, unetParameterCount } from '@diffmix/ort-train';
import { timeRuns } from '@diffmix/tooling/bench';
import * as ort from 'onnxruntime-node';
import { LoraTiStepper } from '../dist/index.js';

const device = process.env.DIFFMIX_DEVICE ?? 'cpu';
const resolution = Number(process.env.DIFFMIX_SD_RESOLUTION ?? (device === 'cpu' ? 256 : 512));
const batch = Number(process.env.DIFFMIX_SD_BATCH ?? 1);
const reps = Number(process.env.DIFFMIX_BENCH_REPS ?? 3);
const latent = resolution / 8;
const seq = 77;
const hidden = SD15_UNET.crossAttentionDim;
const sessionOptions = { executionProviders: device === 'cpu' ? ['cpu'] : [device, 'cpu'] };
const log = (m) => process.stderr.write(`[sd15-unet ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const rssGiB = () => +(process.resourceUsage().maxRSS / 1024 / 1024).toFixed(2);

// Two warm-up runs: after one, the next step on CPU was still ~3× slower (allocator growth).
const time = (fn) => timeRuns(fn, { reps, warmup: 2 });

const rng = Rng.fromSeed('sd15-bench');
const randn = (n, std = 1) => {
  const a = new Float32Array(n);
  rng.fillNormal(a, 0, std);
  return a;
};
const secs = (ms) => +(ms / 1000).toFixed(1);

// The result document, rewritten after every phase: a run that dies or times out on a GPU machine still
// leaves what it measured. Each phase that throws records its error and the bench goes on.
const out = {
  bench: '@diffmix/lora-finetune: LoRA (ti+db) step on an SD 1.5-sized UNet, random weights',
  date: new Date().toISOString(),
  node: process.version,
  device: `${device} (onnxruntime-node)`,
  unetParameters: unetParameterCount(SD15_UNET),
  batch,
  resolution,
  latent: [4, latent, latent],
  reps,
  errors: {},
};
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
const save = () => {
  out.peakRssGiB = rssGiB();
  writeFileSync(new URL(`../bench-results/sd15-unet-${device}.json`, import.meta.url), `${JSON.stringify(out, null, 2)}\n`);
};
async function phase(name, fn) {
  try {
    await fn();
  } catch (e) {
    out.errors[name] = String(e?.stack ?? e).slice(0, 2000);
    log(`${name} failed: ${String(e?.message ?? e).slice(0, 300)}`);
  }
  save();
}

// Baseline 2 first (it is quick on a GPU): PyTorch, same architecture, LoRA and step, on this machine.
await phase('torch', async () => {
  if (process.env.DIFFMIX_TORCH === '0') {
    out.torch = { skipped: 'DIFFMIX_TORCH=0' };
    return;
  }
  const script =
    process.env.DIFFMIX_TORCH_SCRIPT ?? fileURLToPath(new URL('../../../tooling/device/torch_sd_unet.py', import.meta.url));
  if (!existsSync(script)) {
    out.torch = { skipped: `no ${script}` };
    return;
  }
  const python = process.env.DIFFMIX_TORCH_PYTHON ?? 'python3';
  const args = [
    script,
    '--device',
    device === 'cpu' ? 'cpu' : 'cuda',
    '--batch',
    `${batch}`,
    '--resolution',
    `${resolution}`,
    '--reps',
    `${reps}`,
    '--warmup',
    '2',
  ];
  // torch's OpenMP pool may start with one thread here; ONNX Runtime uses every core by default.
  if (device === 'cpu') args.push('--threads', `${availableParallelism()}`);
  log(`PyTorch: ${python} ${args.join(' ')}`);
  const r = spawnSync(python, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  try {
    out.torch = JSON.parse(r.stdout);
  } catch {
    out.torch = {
      skipped: `${python} exited ${r.status}${r.error ? ` (${r.error.message})` : ''}`,
      stdout: r.stdout?.slice(-500),
    };
  }
});

log(
  `building SD 1.5 UNet (${out.unetParameters.toLocaleString()} parameters), batch ${batch}, ${resolution}² (latents ${latent}²)`,
);
let t0 = performance.now();
const built = buildUnet(SD15_UNET, { rng: rng.split('weights'), batch, height: latent, width: latent, sequence: seq });
out.buildSeconds = secs(performance.now() - t0);
log(`built in ${out.buildSeconds} s`);

const sample = new ort.Tensor('float32', randn(batch * 4 * latent * latent), [batch, 4, latent, latent]);
const ehs = new ort.Tensor('float32', randn(batch * seq * hidden), [batch, seq, hidden]);
const timestep = new ort.Tensor(
  'float32',
  Float32Array.from({ length: batch }, (_, i) => 100 + 400 * i),
  [batch],
);

// Baseline 1: the UNet's forward alone.
await phase('forward', async () => {
  t0 = performance.now();
  const session = await createGraphSession(ort, built.graph, { sessionOptions });
  out.forwardSessionSeconds = secs(performance.now() - t0);
  try {
    const f = await time(() => session.run({ sample, timestep, encoder_hidden_states: ehs }));
    out.forwardMs = +f.median.toFixed(1);
    out.forwardRunsMs = f.all.map((x) => +x.toFixed(0));
    log(`forward ${f.median.toFixed(0)} ms (session ${out.forwardSessionSeconds} s)`);
  } finally {
    await session.release();
  }
});

// The training step: LoraTiStepper (ti+db) on the same graph.
await phase('step', async () => {
  const vocab = 49408;
  const te = new Graph('clip_token_embedding');
  te.addInput('input_ids', 'int32', [batch, seq]);
  te.addInitializer('embeddings.token_embedding.weight', {
    type: 'float32',
    data: randn(vocab * hidden, 0.02),
    dims: [vocab, hidden],
  });
  te.node(
    'Gather',
    ['embeddings.token_embedding.weight', 'input_ids'],
    { axis: 0 },
    { name: '/embeddings/token_embedding/Gather', output: 'last_hidden_state' },
  );
  te.addOutput('last_hidden_state', 'float32', [batch, seq, hidden]);
  t0 = performance.now();
  const stepper = await LoraTiStepper.create({
    ort,
    unet: built.graph,
    textEncoder: te,
    mode: 'ti+db',
    batchSize: batch,
    latentShape: [4, latent, latent],
    hiddenSize: hidden,
    seqLen: seq,
    rows: randn(hidden, 0.02),
    sessionOptions,
  });
  out.stepSetupSeconds = secs(performance.now() - t0);
  out.loraParameters = stepper.loraNames.reduce((a, k) => a + stepper.params.get(k).length, 0);
  log(`step graph + session in ${out.stepSetupSeconds} s; ${stepper.loraNames.length} LoRA tensors`);
  const ids = new Int32Array(batch * seq).fill(vocab - 1);
  for (let b = 0; b < batch; b++) ids.set([49406, 320, 1125, 539, 320, vocab], b * seq); // "<sot> a photo of a <class_0>"
  const stepBatch = {
    noisyLatents: sample.data,
    noise: randn(batch * 4 * latent * latent),
    timesteps: Array.from(timestep.data),
    inputIds: ids,
  };
  let lastLoss = Number.NaN;
  const st = await time(async () => {
    lastLoss = (await stepper.step(stepBatch)).loss;
  });
  out.stepMs = +st.median.toFixed(1);
  out.stepRunsMs = st.all.map((x) => +x.toFixed(0));
  out.stepsPerSecond = +(1000 / st.median).toFixed(3);
  out.lastLoss = +lastLoss.toFixed(5);
  log(`step ${st.median.toFixed(0)} ms (loss ${lastLoss.toFixed(4)})`);
});

if (out.forwardMs && out.stepMs) out.stepOverForward = +(out.stepMs / out.forwardMs).toFixed(2);
if (out.torch?.step_ms && out.stepMs && out.forwardMs) {
  out.vsTorch = {
    forward: +(out.forwardMs / out.torch.forward_ms).toFixed(2),
    step: +(out.stepMs / out.torch.step_ms).toFixed(2),
    note: 'ours / PyTorch time (>1: slower than PyTorch), same machine, same run',
  };
}
save();
console.log(JSON.stringify(out, null, 2));
