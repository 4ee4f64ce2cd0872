#!/usr/bin/env node
/**
 * Pictures and a measured check of the shipped toy-SD model, through @diffmix/diffusion's own
 * `StableDiffusion` (txt2img / img2img at 64², DPM-Solver++):
 *
 *   docs/images/toy-sd-samples.png        per class: 2 real toy images, then txt2img samples
 *   docs/images/toy-sd-strength-grid.png  one real image (column 1) → target classes (rows) × strength 0.1…1.0
 *   docs/images/toy-sd-vae.png            real images (top) and their VAE reconstructions (bottom)
 *
 * and prints (and writes to `<model>/evaluation.json`) the nearest-class-centroid accuracy of
 * txt2img samples by patch-colour features (see `colourFeatures`), the measure the cli test asserts.
 *
 *   node tooling/demo-model/figures.mjs [--model packages/cli/assets/toy-sd] [--images docs/images]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { encodePng, makeContactSheet, renderToyImage, TOY_COLOURS, toyClasses, toyImageRng } from '@diffmix/datasets';
import { img2img, StableDiffusion, txt2img } from '@diffmix/diffusion';
import * as ort from 'onnxruntime-node';
import { NUM_CLASSES, parseArgs, SIZE } from './lib.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const repo = path.resolve(here, '../..');
const o = parseArgs(process.argv.slice(2), {
  model: path.join(repo, 'packages/cli/assets/toy-sd'),
  images: path.join(repo, 'docs/images'),
  steps: 20,
  guidance: 3,
  samples: 6,
  evalSamples: 16,
  seed: 7,
  template: 'a photo of a {} shape',
});
const classes = toyClasses(NUM_CLASSES);
const sd = await StableDiffusion.load(o.model, { textualInversion: [path.join(o.model, 'learned_embeds.safetensors')] });
const prompt = (c) => o.template.replace('{}', `<class_${c}>`);
const real = (c, i, split = 'test') => renderToyImage(classes[c], toyImageRng(99, split, c, i), SIZE);

/**
 * Patch-colour features: the fraction of pixels whose colour is within 60 (RGB distance) of each toy
 * chromatic patch colour and saturated (HSV saturation > 0.6). Toy bodies and backgrounds
 * are muted, so these pixels are almost only the class's patch (same rule as the cli's
 * `patchColourFeatures`).
 */
export function colourFeatures(img) {
  // White is left out: it cannot be told from a bright background.
  const cols = Object.entries(TOY_COLOURS)
    .filter(([name]) => name !== 'white')
    .map(([, c]) => c);
  const f = new Array(cols.length).fill(0);
  const n = img.width * img.height;
  for (let p = 0; p < n; p++) {
    const r = img.data[3 * p];
    const g = img.data[3 * p + 1];
    const b = img.data[3 * p + 2];
    const mx = Math.max(r, g, b);
    const sat = mx > 0 ? (mx - Math.min(r, g, b)) / mx : 0;
    cols.forEach((c, k) => {
      if ((r - c[0]) ** 2 + (g - c[1]) ** 2 + (b - c[2]) ** 2 < 60 * 60 && sat > 0.6) f[k] += 1 / n;
    });
  }
  return f;
}
const meanVec = (vs) => vs[0].map((_, k) => vs.reduce((a, v) => a + v[k], 0) / vs.length);
const dist = (a, b) => Math.sqrt(a.reduce((s, x, k) => s + (x - b[k]) ** 2, 0));

await mkdir(o.images, { recursive: true });
const save = async (name, sheet) => {
  await writeFile(path.join(o.images, name), await encodePng(sheet.data, sheet.width, sheet.height));
  console.log(`wrote ${path.join(o.images, name)} (${sheet.width}×${sheet.height})`);
};

// Samples sheet.
const cells = [];
const generated = [];
for (let c = 0; c < NUM_CLASSES; c++) {
  const jobs = Array.from({ length: o.evalSamples }, (_, i) => ({ prompt: prompt(c), seed: o.seed * 1000 + c * 100 + i }));
  const { images } = await txt2img(sd, jobs, { steps: o.steps, guidanceScale: o.guidance });
  generated.push(images);
  cells.push(real(c, 0), real(c, 1), ...images.slice(0, o.samples));
}
await save('toy-sd-samples.png', makeContactSheet(cells, { columns: 2 + o.samples }));

// Nearest-centroid accuracy of the samples by patch-colour features (real centroids: 32 test images).
const centroids = classes.map((_, c) => meanVec(Array.from({ length: 32 }, (_, i) => colourFeatures(real(c, i)))));
const perClass = generated.map((imgs, c) => {
  const m = meanVec(imgs.map(colourFeatures));
  const d = centroids.map((z) => dist(m, z));
  const colourOf = (k) => classes[k].colour;
  const sameColour = classes.filter((k) => k.colour === classes[c].colour).map((k) => k.id);
  const other = classes.filter((k) => k.colour !== classes[c].colour).map((k) => k.id);
  return {
    class: classes[c].name,
    nearest: classes[d.indexOf(Math.min(...d))].name,
    nearestColourMatches: colourOf(d.indexOf(Math.min(...d))) === classes[c].colour,
    distOwn: d[c],
    distSameColourMin: Math.min(...sameColour.map((k) => d[k])),
    distOtherColourMin: Math.min(...other.map((k) => d[k])),
  };
});
console.table(perClass);

// Strength grid: source = a red-plain circle (class 0); targets = one class per colour × pattern pair.
const source = real(0, 3);
const strengths = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
const targets = [0, 2, 4, 5, 7];
const grid = [];
for (const t of targets) {
  grid.push(source);
  for (const s of strengths) {
    const { images } = await img2img(sd, [{ image: source, prompt: prompt(t), seed: o.seed }], s, {
      steps: o.steps,
      guidanceScale: o.guidance,
    });
    grid.push(images[0]);
  }
}
await save('toy-sd-strength-grid.png', makeContactSheet(grid, { columns: 1 + strengths.length }));

// VAE reconstructions (posterior mean; decoder output clamped like the pipeline).
const vaeDir = (p) => path.join(o.model, p, 'model.onnx');
const enc = await ort.InferenceSession.create(vaeDir('vae_encoder'));
const dec = await ort.InferenceSession.create(vaeDir('vae_decoder'));
const originals = classes.map((_, c) => real(c, 5));
const recon = [];
for (const img of originals) {
  const x = new Float32Array(3 * SIZE * SIZE);
  for (let p = 0; p < SIZE * SIZE; p++) for (let ch = 0; ch < 3; ch++) x[ch * SIZE * SIZE + p] = img.data[3 * p + ch] / 127.5 - 1;
  const lp = (await enc.run({ [enc.inputNames[0]]: new ort.Tensor('float32', x, [1, 3, SIZE, SIZE]) }))[enc.outputNames[0]];
  const mean = lp.data.slice(0, 4 * (SIZE / 8) ** 2);
  const y = (await dec.run({ [dec.inputNames[0]]: new ort.Tensor('float32', mean, [1, 4, SIZE / 8, SIZE / 8]) }))[
    dec.outputNames[0]
  ].data;
  const data = new Uint8Array(3 * SIZE * SIZE);
  for (let p = 0; p < SIZE * SIZE; p++)
    for (let ch = 0; ch < 3; ch++)
      data[3 * p + ch] = Math.round(Math.min(1, Math.max(0, y[ch * SIZE * SIZE + p] / 2 + 0.5)) * 255);
  recon.push({ data, width: SIZE, height: SIZE, channels: 3 });
}
await save('toy-sd-vae.png', makeContactSheet([...originals, ...recon], { columns: originals.length }));

const evaluation = {
  settings: { steps: o.steps, guidance: o.guidance, samplesPerClass: o.evalSamples, template: o.template, seed: o.seed },
  colourNearestAccuracy: perClass.filter((r) => r.nearestColourMatches).length / perClass.length,
  classNearestAccuracy: perClass.filter((r) => r.nearest === r.class).length / perClass.length,
  perClass,
};
await writeFile(path.join(o.model, 'evaluation.json'), `${JSON.stringify(evaluation, null, 1)}\n`);
console.log(JSON.stringify({ ...evaluation, perClass: undefined }));
