#!/usr/bin/env node
/**
 * Stage 1 of the toy-SD model: trains every weight of the tiny-sd VAE (encoder + decoder graphs, as
 * exported) as a KL-regularised autoencoder on toy images at 64², with @diffmix/ort-train's autodiff.
 *
 * The two exported graphs are joined into one training graph: encoder → latent_parameters → split into
 * mean / logvar → z = mean + exp(logvar / 2)·ε (ε fed, drawn from the seeded Rng) → decoder → image;
 * loss = mean(w·(x̂ − x)²) + β·mean(KL(q(z|x) ‖ N(0, 1))), w = 1 + `--sat-weight`·saturation² per pixel. AdamW, constant lr with a cosine tail.
 * Resumable: a checkpoint every `--checkpoint-every` steps in `<out>/checkpoint`; re-running continues.
 *
 *   node tooling/demo-model/train-vae.mjs --steps 3000 [--out tooling/demo-model/.work/vae]
 *
 * Writes `<out>/vae_encoder/model.onnx`, `<out>/vae_decoder/model.onnx` and `<out>/vae.json`
 * (config, losses, reconstruction error on held-out images and the latent std for the scaling factor).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createProgress, Rng } from '@diffmix/core';
import { AdamW, buildGradientGraph, createGraphSession } from '@diffmix/ort-train';
import * as ort from 'onnxruntime-node';
import {
  appendGraph,
  checkFold,
  floatWeights,
  foldPads,
  loadGraph,
  parseArgs,
  readCheckpoint,
  SIZE,
  saveWithWeights,
  toyBatch,
  writeCheckpoint,
} from './lib.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const repo = path.resolve(here, '../..');
const o = parseArgs(process.argv.slice(2), {
  model: path.join(repo, 'packages/diffusion/fixtures/golden/tiny-sd'),
  out: path.join(here, '.work/vae'),
  steps: 3000,
  batch: 8,
  lr: 1e-3,
  kl: 1e-4,
  satWeight: 10,
  seed: 1234,
  checkpointEvery: 100,
  evalImages: 64,
});
const B = o.batch;
const LAT = SIZE / 8;

const enc0 = await loadGraph(path.join(o.model, 'vae_encoder/model.onnx'));
const dec = await loadGraph(path.join(o.model, 'vae_decoder/model.onnx'));
const enc = enc0.clone();
const folded = foldPads(enc);
await checkFold(ort, enc0, enc, toyBatch(o.seed, 'fold-check', 0, 2).pixels, [2, 3, SIZE, SIZE]);

// The joined training graph (decoder names prefixed `dec:`).
const g = enc.clone();
g.inputs = [{ name: 'sample', type: 'float32', shape: [B, 3, SIZE, SIZE] }];
const lp = g.outputs[0].name;
const [mean, logvar] = g.nodeN('Split', [lp, g.int64s([4, 4])], 2, { axis: 1 });
g.addInput('eps', 'float32', [B, 4, LAT, LAT]);
const std = g.node('Exp', [g.node('Mul', [logvar, g.scalar(0.5)])]);
const z = g.node('Add', [mean, g.node('Mul', [std, 'eps'])]);
const decOut = appendGraph(g, dec, 'dec:', { latent_sample: z });
const xhat = decOut.sample;
const d = g.node('Sub', [xhat, 'sample']);
const d2 = g.node('Mul', [d, d]);
g.node('ReduceMean', [d2], { keepdims: 0 }, { output: 'rec' });
// The loss weights each pixel by 1 + w·sat², sat = (max − min) of its RGB in [0, 1]: the class is told by
// a small saturated patch (~1 % of the pixels) that a plain MSE at 48× compression washes out.
g.addInput('weight', 'float32', [B, 1, SIZE, SIZE]);
const wrec = g.node('ReduceMean', [g.node('Mul', [d2, 'weight'])], { keepdims: 0 }, { output: 'wrec' });
// KL(N(μ, σ²) ‖ N(0, 1)) per element = ½(μ² + σ² − 1 − log σ²), averaged.
const klEl = g.node('Sub', [
  g.node('Add', [g.node('Mul', [mean, mean]), g.node('Exp', [logvar])]),
  g.node('Add', [logvar, g.scalar(1)]),
]);
const kl = g.node('Mul', [g.node('ReduceMean', [klEl], { keepdims: 0 }), g.scalar(0.5)], {}, { output: 'kl' });
const loss = g.node('Add', [wrec, g.node('Mul', [kl, g.scalar(o.kl)])], {}, { output: 'loss' });
g.outputs = [];
g.addOutput('rec', 'float32', []);
g.addOutput('kl', 'float32', []);
g.addOutput(loss, 'float32', []);
g.addOutput(xhat, 'float32', [B, 3, SIZE, SIZE]);
g.addOutput(mean, 'float32', [B, 4, LAT, LAT]);

const encW = floatWeights(enc);
const decW = floatWeights(dec).map((w) => ({ ...w, name: `dec:${w.name}` }));
const weights = [...encW, ...decW];
const tg = buildGradientGraph(g, { loss, wrt: weights.map((w) => w.name), wrtAsInputs: true });
const session = await createGraphSession(ort, tg.graph);

const params = new Map(weights.map((w) => [w.name, Float32Array.from(g.initializers.get(w.name).data)]));
const optimizer = new AdamW([{ params: weights.map((w) => w.name), lr: o.lr }], { weightDecay: 0 });
const ckDir = path.join(o.out, 'checkpoint');
await mkdir(o.out, { recursive: true });
let start = 0;
let losses = [];
const ck = await readCheckpoint(ckDir);
if (ck) {
  for (const [k, v] of ck.params) params.get(k).set(v);
  optimizer.loadState(ck.state.optimizer, ck.optimizerTensors);
  start = ck.state.step;
  losses = ck.state.losses;
  console.log(`resuming at step ${start}`);
}
const nParams = weights.reduce((a, w) => a + w.dims.reduce((x, y) => x * y, 1), 0);
console.log(`VAE: ${weights.length} tensors, ${nParams} weights; ${folded} Pad→Conv folds verified; batch ${B}`);

/** Per-pixel loss weights 1 + satWeight·sat² (see the graph). */
function pixelWeights(pixels, n) {
  const P = SIZE * SIZE;
  const w = new Float32Array(n * P);
  for (let k = 0; k < n; k++) {
    for (let p = 0; p < P; p++) {
      const r = pixels[k * 3 * P + p];
      const g2 = pixels[k * 3 * P + P + p];
      const b = pixels[k * 3 * P + 2 * P + p];
      const sat = (Math.max(r, g2, b) - Math.min(r, g2, b)) / 2;
      w[k * P + p] = 1 + o.satWeight * sat * sat;
    }
  }
  return w;
}

async function run(pixels, eps, n = B) {
  const feeds = {
    sample: new ort.Tensor('float32', pixels, [n, 3, SIZE, SIZE]),
    weight: new ort.Tensor('float32', pixelWeights(pixels, n), [n, 1, SIZE, SIZE]),
    eps: new ort.Tensor('float32', eps, [n, 4, LAT, LAT]),
  };
  for (const w of weights) feeds[w.name] = new ort.Tensor('float32', params.get(w.name), w.dims);
  return session.run(feeds);
}

const progress = createProgress({ label: 'train vae', total: o.steps, initial: start, mode: 'auto' });
const t0 = Date.now();
const cosineFrom = Math.floor(o.steps * 0.7);
for (let s = start; s < o.steps; s++) {
  // Constant lr, then a cosine decay over the last 30 % (settles the weights for shipping).
  optimizer.setLrFactor(s < cosineFrom ? 1 : 0.5 * (1 + Math.cos((Math.PI * (s - cosineFrom)) / (o.steps - cosineFrom))));
  const { pixels } = toyBatch(o.seed, 'vae-train', s, B);
  const eps = Rng.fromSeed(o.seed)
    .split('vae-eps')
    .split(s)
    .fillNormal(new Float32Array(B * 4 * LAT * LAT));
  const out = await run(pixels, eps);
  const grads = new Map(weights.map((w) => [w.name, out[tg.gradients[w.name]].data]));
  optimizer.step(params, grads);
  losses.push([out.rec.data[0], out.kl.data[0]]);
  progress.tick();
  if ((s + 1) % 50 === 0) {
    const last = losses.slice(-50);
    const r = last.reduce((a, x) => a + x[0], 0) / last.length;
    const k = last.reduce((a, x) => a + x[1], 0) / last.length;
    console.log(
      `step ${s + 1}: rec ${r.toFixed(5)} kl ${k.toFixed(3)} (${((s + 1 - start) / ((Date.now() - t0) / 1000)).toFixed(2)} steps/s)`,
    );
  }
  if ((s + 1) % o.checkpointEvery === 0 || s + 1 === o.steps)
    await writeCheckpoint(ckDir, params, optimizer, { step: s + 1, losses, options: o });
}
progress.stop();

// Held-out reconstruction error (posterior mean, as img2img encodes) and latent statistics.
let se = 0;
let count = 0;
let sum = 0;
let sum2 = 0;
let nz = 0;
const evalB = Math.ceil(o.evalImages / B);
for (let b = 0; b < evalB; b++) {
  const { pixels } = toyBatch(o.seed, 'vae-eval', b, B);
  const out = await run(pixels, new Float32Array(B * 4 * LAT * LAT));
  const x = out[xhat]?.data;
  if (x) {
    for (let i = 0; i < x.length; i++) se += (Math.max(-1, Math.min(1, x[i])) - pixels[i]) ** 2;
    count += x.length;
  }
  const m = out[mean]?.data;
  for (const v of m ?? []) {
    sum += v;
    sum2 += v * v;
    nz++;
  }
}
const report = {
  steps: o.steps,
  options: o,
  weights: nParams,
  finalRec: losses.slice(-100).reduce((a, x) => a + x[0], 0) / Math.min(100, losses.length),
  finalKl: losses.slice(-100).reduce((a, x) => a + x[1], 0) / Math.min(100, losses.length),
  heldOutMse: count ? se / count : null,
  heldOutPsnr: count ? 10 * Math.log10(4 / (se / count)) : null,
  latentMean: nz ? sum / nz : null,
  latentStd: nz ? Math.sqrt(sum2 / nz - (sum / nz) ** 2) : null,
  losses: losses.filter((_, i) => i % 10 === 9),
};
console.log(JSON.stringify({ ...report, losses: undefined }, null, 1));
const encWeights = new Map(encW.map((w) => [w.name, params.get(w.name)]));
const decWeights = new Map(decW.map((w) => [w.name.slice(4), params.get(w.name)]));
await saveWithWeights(path.join(o.model, 'vae_encoder/model.onnx'), path.join(o.out, 'vae_encoder/model.onnx'), encWeights);
await saveWithWeights(path.join(o.model, 'vae_decoder/model.onnx'), path.join(o.out, 'vae_decoder/model.onnx'), decWeights);
await writeFile(path.join(o.out, 'vae.json'), `${JSON.stringify(report)}\n`);
