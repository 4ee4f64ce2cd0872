#!/usr/bin/env node
/**
 * Stage 2 of the toy-SD model: trains every tiny-sd UNet weight plus one textual-inversion row per
 * toy class (`<class_i>`; the text encoder is otherwise frozen) with @diffmix/lora-finetune's
 * `LoraTiStepper` in `full` mode, on latents of the stage-1 VAE: ε-prediction MSE, DDPM noise
 * (`add_noise` with the model's betas), uniform timesteps, AdamW, grad-norm clipping 1.0 on the UNet.
 *
 * Prompts: `a photo of a <class_i> shape` or `… object` (the toy dataset's metaclass), and the empty
 * prompt with probability `--uncond` so classifier-free guidance has an unconditional branch to use.
 * Each row starts from the mean embedding of its class's colour and pattern words.
 * Resumable (checkpoint every `--checkpoint-every` steps in `<out>/checkpoint`).
 *
 *   node tooling/demo-model/train-unet.mjs --steps 6000 [--vae tooling/demo-model/.work/vae]
 *     [--dest packages/cli/assets/toy-sd]
 *
 * Writes the complete model folder to `--dest`: tiny-sd's text encoder, tokenizer and scheduler
 * unchanged, the trained VAE (scaling_factor = 1 / std of its latents) and UNet, learned_embeds.safetensors
 * and training.json (settings, loss curves, seeds).
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createProgress, Rng } from '@diffmix/core';
import { toyClasses } from '@diffmix/datasets';
import { DDIMScheduler, loadClipTokenizer, readSchedulerConfig, sampleLatents } from '@diffmix/diffusion';
import { LoraTiStepper, saveUnetOnnx } from '@diffmix/lora-finetune';
import { findEmbeddingGather } from '@diffmix/ort-train';
import * as ort from 'onnxruntime-node';
import { loadGraph, NUM_CLASSES, parseArgs, readCheckpoint, SIZE, toyBatch, writeCheckpoint } from './lib.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const repo = path.resolve(here, '../..');
const o = parseArgs(process.argv.slice(2), {
  model: path.join(repo, 'packages/diffusion/fixtures/golden/tiny-sd'),
  vae: path.join(here, '.work/vae'),
  out: path.join(here, '.work/unet'),
  dest: path.join(repo, 'packages/cli/assets/toy-sd'),
  steps: 6000,
  batch: 16,
  lr: 1e-3,
  embLr: 5e-3,
  uncond: 0.1,
  seed: 4321,
  checkpointEvery: 200,
});
const B = o.batch;
const LAT = SIZE / 8;
const PER = 4 * LAT * LAT;
const TEMPLATES = ['a photo of a {} shape', 'a photo of a {} object'];
const classes = toyClasses(NUM_CLASSES);
const tokens = classes.map((c) => `<class_${c.id}>`);

const encFile = path.join(o.vae, 'vae_encoder/model.onnx');
const encoder = await ort.InferenceSession.create(encFile);
/** Posterior samples of the trained VAE, unscaled, for a batch of images. */
async function encode(pixels, n, noise) {
  const out = await encoder.run({ [encoder.inputNames[0]]: new ort.Tensor('float32', pixels, [n, 3, SIZE, SIZE]) });
  const p = out[encoder.outputNames[0]];
  return sampleLatents(p.data, p.dims, 1, noise);
}

// Scaling factor (as SD's 0.18215 was chosen): 1 / std of the VAE's latents over held-out toy images.
let s1 = 0;
let s2 = 0;
let cnt = 0;
for (let b = 0; b < 8; b++) {
  const { pixels } = toyBatch(o.seed, 'scale', b, B);
  const z = await encode(
    pixels,
    B,
    Rng.fromSeed(o.seed)
      .split('scale-eps')
      .split(b)
      .fillNormal(new Float32Array(B * PER)),
  );
  for (const v of z) {
    s1 += v;
    s2 += v * v;
    cnt++;
  }
}
const latentStd = Math.sqrt(s2 / cnt - (s1 / cnt) ** 2);
const scalingFactor = Number((1 / latentStd).toPrecision(5));
console.log(`latent mean ${(s1 / cnt).toFixed(4)} std ${latentStd.toFixed(4)} → scaling_factor ${scalingFactor}`);

const unet = await loadGraph(path.join(o.model, 'unet/model.onnx'));
const textEncoder = await loadGraph(path.join(o.model, 'text_encoder/model.onnx'));
const tokenizer = await loadClipTokenizer(path.join(o.model, 'tokenizer'));
const gather = findEmbeddingGather(textEncoder, 'input_ids');
const table = textEncoder.initializers.get(gather.table);
const [vocab, hidden] = table.dims;
const wordRow = (word) => {
  const id = tokenizer.encode(word).inputIds[1];
  return table.data.subarray(id * hidden, (id + 1) * hidden);
};
const rows = new Float32Array(NUM_CLASSES * hidden);
classes.forEach((c, i) => {
  const a = wordRow(c.colour);
  const b = wordRow(c.pattern);
  for (let k = 0; k < hidden; k++) rows[i * hidden + k] = 0.5 * (a[k] + b[k]);
});
const ids = tokenizer.addTokens(tokens);
if (ids.some((id, i) => id !== vocab + i)) throw new Error(`placeholder ids ${ids} do not follow the ${vocab}-row table`);

const stepper = await LoraTiStepper.create({
  ort,
  unet,
  textEncoder,
  mode: 'full',
  batchSize: B,
  latentShape: [4, LAT, LAT],
  hiddenSize: hidden,
  rows,
  lr: o.lr,
  embeddingLr: o.embLr,
  weightDecay: 1e-2,
  clip: 1.0,
});
const schedulerRaw = await readSchedulerConfig(path.join(o.model, 'scheduler'));
const noiseScheduler = DDIMScheduler.fromConfig(schedulerRaw, {}, path.join(o.model, 'scheduler/scheduler_config.json'));
const T = noiseScheduler.config.num_train_timesteps;

const ckDir = path.join(o.out, 'checkpoint');
await mkdir(o.out, { recursive: true });
let start = 0;
let losses = [];
const ck = await readCheckpoint(ckDir);
if (ck) {
  stepper.restore({ params: ck.params, optimizer: ck.state.optimizer, optimizerTensors: ck.optimizerTensors });
  start = ck.state.step;
  losses = ck.state.losses;
  console.log(`resuming at step ${start}`);
}
const nParams = stepper.unetParamNames.reduce((a, k) => a + stepper.params.get(k).length, 0);
console.log(`UNet: ${stepper.unetParamNames.length} tensors, ${nParams} weights; ${NUM_CLASSES} rows × ${hidden}; batch ${B}`);

const progress = createProgress({ label: 'train unet', total: o.steps, initial: start, mode: 'auto' });
const t0 = Date.now();
const cosineFrom = Math.floor(o.steps * 0.7);
for (let s = start; s < o.steps; s++) {
  stepper.optimizer.setLrFactor(s < cosineFrom ? 1 : 0.5 * (1 + Math.cos((Math.PI * (s - cosineFrom)) / (o.steps - cosineFrom))));
  const { pixels, labels } = toyBatch(o.seed, 'unet-train', s, B);
  const r = Rng.fromSeed(o.seed).split('unet-step').split(s);
  const latents = (await encode(pixels, B, r.split('vae').fillNormal(new Float32Array(B * PER)))).map((v) =>
    Math.fround(v * scalingFactor),
  );
  const inputIds = new Int32Array(B * 77);
  const pr = r.split('prompt');
  for (let j = 0; j < B; j++) {
    const template = TEMPLATES[pr.int(TEMPLATES.length)];
    const prompt = pr.uniform() < o.uncond ? '' : template.replace('{}', tokens[labels[j]]);
    inputIds.set(tokenizer.encode(prompt, { padding: 'max_length', truncation: true }).inputIds, j * 77);
  }
  const timesteps = Array.from({ length: B }, () => r.int(T));
  const noise = r.split('noise').fillNormal(new Float32Array(B * PER));
  const noisyLatents = noiseScheduler.addNoise(latents, noise, timesteps);
  const res = await stepper.step({ noisyLatents, noise, timesteps, inputIds });
  if (!Number.isFinite(res.loss)) throw new Error(`loss ${res.loss} at step ${s + 1}`);
  losses.push(res.loss);
  progress.tick();
  if ((s + 1) % 50 === 0) {
    const last = losses.slice(-50);
    console.log(
      `step ${s + 1}: loss ${(last.reduce((a, x) => a + x, 0) / last.length).toFixed(5)} (${((s + 1 - start) / ((Date.now() - t0) / 1000)).toFixed(2)} steps/s)`,
    );
  }
  if ((s + 1) % o.checkpointEvery === 0 || s + 1 === o.steps)
    await writeCheckpoint(ckDir, stepper.params, stepper.optimizer, { step: s + 1, losses, options: o });
}
progress.stop();

// Assemble the model folder.
const tmp = path.join(o.out, 'saved');
await rm(tmp, { recursive: true, force: true });
await saveUnetOnnx(o.model, tmp, stepper.unetWeights(), { externalData: false });
await rm(o.dest, { recursive: true, force: true });
await mkdir(o.dest, { recursive: true });
for (const p of ['model_index.json', 'scheduler', 'text_encoder', 'tokenizer'])
  await cp(path.join(o.model, p), path.join(o.dest, p), { recursive: true });
await cp(path.join(tmp, 'unet'), path.join(o.dest, 'unet'), { recursive: true });
for (const part of ['vae_encoder', 'vae_decoder']) {
  await mkdir(path.join(o.dest, part), { recursive: true });
  await cp(path.join(o.vae, part, 'model.onnx'), path.join(o.dest, part, 'model.onnx'));
  const cfg = JSON.parse(await readFile(path.join(o.model, part, 'config.json'), 'utf8'));
  cfg.scaling_factor = scalingFactor;
  await writeFile(path.join(o.dest, part, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
}
await writeFile(path.join(o.dest, 'learned_embeds.safetensors'), stepper.embeddingsSafetensors(tokens));
const vaeReport = JSON.parse(await readFile(path.join(o.vae, 'vae.json'), 'utf8'));
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const training = {
  format: 'diffmix-toy-sd/v1',
  base: 'packages/diffusion/fixtures/golden/tiny-sd (graphs, text encoder, tokenizer, scheduler)',
  classes: Object.fromEntries(classes.map((c, i) => [tokens[i], c.name])),
  templates: TEMPLATES,
  scalingFactor,
  vae: { ...vaeReport, losses: undefined, lossEvery10: vaeReport.losses },
  unet: {
    options: { ...o, model: undefined, vae: undefined, out: undefined, dest: undefined },
    weights: nParams,
    steps: o.steps,
    lossFirst100: mean(losses.slice(0, 100)),
    lossLast100: mean(losses.slice(-100)),
    lossEvery50: Array.from({ length: Math.floor(losses.length / 50) }, (_, i) =>
      Number(mean(losses.slice(i * 50, i * 50 + 50)).toFixed(5)),
    ),
  },
};
await writeFile(path.join(o.dest, 'training.json'), `${JSON.stringify(training, null, 1)}\n`);
console.log(
  `wrote ${o.dest}; loss first 100 ${training.unet.lossFirst100.toFixed(4)}, last 100 ${training.unet.lossLast100.toFixed(4)}`,
);
