// Parity report: how far our preprocessing and scores are from transformers' CLIPProcessor +
// CLIPModel on a golden folder (DIFFMIX_GOLDEN_DIR, default fixtures/golden), per image and
// resampler. The tests assert the bounds; this prints the measured numbers (the README quotes
// them). Run after `npm run build`: `node bench/parity.mjs`. Writes bench-results/clip-filter-parity.json.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseNpy } from '@diffmix/core';
import { decodeImage } from '@diffmix/datasets';
import { ClipImageProcessor, ClipModel, ClipScorer } from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const golden = path.resolve(process.env.DIFFMIX_GOLDEN_DIR ?? path.join(here, '../fixtures/golden'));
const cf = path.join(golden, 'clip_filter');
const ref = JSON.parse(readFileSync(path.join(cf, 'reference.json'), 'utf8'));
const npy = (f) => parseNpy(readFileSync(path.join(cf, f)), f);
const images = ref.images.map((i) => i.file);
const primary = ref.primary_backend ?? 'torchvision';
const maxAbs = (a, b) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const model = await ClipModel.load(path.join(golden, 'tiny-clip'));
const pv = npy('pixel_values.npy');
const per = pv.data.length / images.length;
const out = {
  golden: path.relative(path.join(here, '..'), golden) || '.',
  primary,
  images: {},
  scoresGivenReferencePixels: {},
  embeddings: {},
};

for (const [i, file] of images.entries()) {
  const img = await decodeImage(path.join(cf, file));
  const row = { size: `${img.width}×${img.height}` };
  for (const resampler of ['torchvision', 'pil', 'sharp']) {
    const p = new ClipImageProcessor(model.preprocessorConfig, { resampler });
    const crop = await p.resizeAndCrop(img);
    const r = {};
    for (const backend of ['torchvision', 'pil']) {
      const f = path.join(cf, 'crops', `crop_${backend}_${/(\d+)\.png$/.exec(file)[1]}.png`);
      if (!existsSync(f)) continue;
      const c = await decodeImage(f);
      let sum = 0;
      let max = 0;
      for (let k = 0; k < c.data.length; k++) {
        const d = Math.abs(c.data[k] - crop.data[k]);
        sum += d;
        max = Math.max(max, d);
      }
      r[`crop_vs_${backend}`] = { maxLevels: max, meanLevels: +(sum / c.data.length).toFixed(3) };
    }
    const values = p.toPixelValues(crop);
    r[`pixel_values_vs_${primary}`] = maxAbs(values, pv.data.subarray(i * per, (i + 1) * per));
    row[resampler] = r;
  }
  out.images[file] = row;
}

const scorer = new ClipScorer(model, { captions: ref.captions });
const given = await scorer.scorePixelValues(pv.data, images.length);
out.scoresGivenReferencePixels = {
  maxAbsScore: maxAbs(
    given.map((s) => s.score),
    npy('scores.npy').data,
  ),
  maxAbsLogits: maxAbs(
    given.flatMap((s) => s.logits),
    npy('logits_per_image.npy').data,
  ),
};
for (const suffix of ['', '_pad77']) {
  const rows = (a) =>
    Array.from({ length: a.shape[0] }, (_, i) => Array.from(a.data.subarray(i * a.shape[1], (i + 1) * a.shape[1]), Number));
  const e = await model.encodeTokens(rows(npy(`input_ids${suffix}.npy`)), rows(npy(`attention_mask${suffix}.npy`)));
  out.embeddings[`text_embeds${suffix}`] = maxAbs(e.data, npy(`text_embeds${suffix}.npy`).data);
}
out.embeddings.image_embeds = maxAbs((await model.encodeImages(pv.data, images.length)).data, npy('image_embeds.npy').data);

out.scoresFromFiles = {};
for (const resampler of ['torchvision', 'pil', 'sharp']) {
  const s = new ClipScorer(model, { captions: ref.captions, resampler });
  const got = [];
  for await (const b of s.scoreSources(
    images.map((f) => ({ id: f, path: path.join(cf, f) })),
    { progress: 'silent' },
  )) {
    got.push(...b.map((x) => x.score));
  }
  const refFile = resampler === 'pil' && existsSync(path.join(cf, 'scores_pil.npy')) ? 'scores_pil.npy' : 'scores.npy';
  out.scoresFromFiles[resampler] = { reference: refFile, maxAbsScore: maxAbs(got, npy(refFile).data) };
}
await model.release();

const dir = path.join(here, '../bench-results');
mkdirSync(dir, { recursive: true });
writeFileSync(path.join(dir, 'clip-filter-parity.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(JSON.stringify(out, null, 2));
