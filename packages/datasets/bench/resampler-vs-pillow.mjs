// Measures how far diffmix's resize (sharp/libvips, RESIZE_KERNEL) is from Pillow's resize and from
// torch's non-antialiased bicubic, on 8-bit RGB images. One-off, not part of `npm run bench`: it
// needs python3 with numpy, plus Pillow for the Pillow columns (e.g. Debian's python3-pil; if your
// python3 is not the system one, point PYTHONPATH at a folder holding only its PIL package).
//
//   npm run build && node bench/resampler-vs-pillow.mjs [extra images…]
//
// Writes bench-results/resampler-vs-pillow.json. Run after `npm run build`.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { decodeImage, RESIZE_KERNEL, renderToyImage, toyClasses, toyImageRng } from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const python = process.env.PYTHON ?? 'python3';

/** A zone plate (chirp) + gradient: worst case for aliasing. */
function chirp(size) {
  const data = new Uint8Array(size * size * 3);
  const k = Math.PI / (2 * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x - size / 2;
      const dy = y - size / 2;
      const v = 127.5 + 127.5 * Math.cos(k * (dx * dx + dy * dy));
      const i = (y * size + x) * 3;
      data[i] = Math.round(v);
      data[i + 1] = Math.round((x / size) * 255);
      data[i + 2] = Math.round(0.5 * v + 0.5 * (y / size) * 255);
    }
  }
  return { data, width: size, height: size, channels: 3 };
}

/** The toy renderer at a large size: flat regions, antialiased edges, fine patterns, noise. */
function toy(size, k) {
  const c = toyClasses(192);
  return renderToyImage(c[[1, 66, 163][k]], toyImageRng(7, 'train', k, 0), size);
}

async function sharpResize(img, width, height, kernel) {
  const p = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  if (kernel === 'affine-centred') {
    // Diagnostic for upscales: libvips' Catmull-Rom interpolator with the centre offset libvips 8.19
    // uses, 0.5·(1 − 1/scale) (8.18's resize uses 0.5). Edges blend with black (affine's background).
    const sx = width / img.width;
    const sy = height / img.height;
    p.affine([sx, 0, 0, sy], { idx: 0.5 * (1 - 1 / sx), idy: 0.5 * (1 - 1 / sy), interpolator: 'bicubic' });
  } else {
    p.resize({ width, height, fit: 'fill', kernel });
  }
  const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height) return undefined;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function stats(a, b, width, height, border = 3) {
  let sum = 0;
  let max = 0;
  let isum = 0;
  let imax = 0;
  let in_ = 0;
  const hist = new Uint32Array(256);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const inner = x >= border && y >= border && x < width - border && y < height - border;
      for (let c = 0; c < 3; c++) {
        const i = (y * width + x) * 3 + c;
        const d = Math.abs(a[i] - b[i]);
        sum += d;
        hist[d]++;
        if (d > max) max = d;
        if (inner) {
          isum += d;
          in_++;
          if (d > imax) imax = d;
        }
      }
    }
  }
  const n = width * height * 3;
  let acc = 0;
  let p99 = 0;
  for (let d = 0; d < 256; d++) {
    acc += hist[d];
    if (acc >= 0.99 * n) {
      p99 = d;
      break;
    }
  }
  return { mean: +(sum / n).toFixed(3), max, p99, interiorMean: +(isum / in_).toFixed(3), interiorMax: imax };
}

const images = [...[0, 1, 2].map((k) => ({ name: `toy-${k}`, make: (s) => toy(s, k) })), { name: 'chirp', make: chirp }];
const extra = process.argv.slice(2);
const cases = [
  { name: '512→224', in: [512, 512], out: [224, 224] },
  { name: '512→256', in: [512, 512], out: [256, 256] },
  { name: '1024→224', in: [1024, 1024], out: [224, 224] },
  { name: '64→224 (up)', in: [64, 64], out: [224, 224] },
  { name: '224→512 (up)', in: [224, 224], out: [512, 512] },
];
const pairs = [
  { ours: RESIZE_KERNEL, theirs: 'bicubic' },
  { ours: 'linear', theirs: 'bilinear' },
  { ours: 'lanczos3', theirs: 'lanczos' },
  { ours: 'mitchell', theirs: 'bicubic' },
  { ours: RESIZE_KERNEL, theirs: 'torch-bicubic' },
  { ours: 'affine-centred', theirs: 'bicubic', upscaleOnly: true },
];

const dir = mkdtempSync(path.join(tmpdir(), 'diffmix-resample-'));
try {
  const jobs = [];
  const ours = [];
  const inputs = [];
  for (const c of cases) {
    for (const im of images) inputs.push({ name: im.name, case: c, img: im.make(c.in[0]) });
  }
  for (const file of extra) {
    const img = await decodeImage(file);
    inputs.push({
      name: path.basename(file),
      case: { name: `${img.width}×${img.height}→224`, in: [img.width, img.height], out: [224, 224] },
      img,
    });
  }
  let n = 0;
  for (const inp of inputs) {
    const input = `in-${n}.rgb`;
    writeFileSync(path.join(dir, input), inp.img.data);
    for (const p of pairs) {
      const [ow, oh] = inp.case.out;
      if (p.upscaleOnly && (ow < inp.img.width || oh < inp.img.height)) continue;
      const output = `out-${n}-${p.theirs}.rgb`;
      jobs.push({ input, width: inp.img.width, height: inp.img.height, outWidth: ow, outHeight: oh, filter: p.theirs, output });
      const data = await sharpResize(inp.img, ow, oh, p.ours);
      if (data) ours.push({ inp, pair: p, output, data });
    }
    n++;
  }
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify(jobs.filter((j, i) => jobs.findIndex((k) => k.output === j.output) === i)),
  );
  const versions = JSON.parse(
    execFileSync(python, [path.join(here, 'pillow_resize.py'), dir], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .pop(),
  );
  const rows = [];
  for (const o of ours) {
    let theirs;
    try {
      theirs = new Uint8Array(readFileSync(path.join(dir, o.output)));
    } catch {
      continue; // Pillow missing: only the torch column exists
    }
    const [ow, oh] = o.inp.case.out;
    rows.push({
      image: o.inp.name,
      case: o.inp.case.name,
      sharp: o.pair.ours,
      reference: o.pair.theirs,
      ...stats(o.data, theirs, ow, oh),
    });
  }
  // Aggregate per (pair, case) over the toy images; chirp and extra images reported separately.
  const summary = [];
  for (const p of pairs) {
    for (const c of [...cases.map((x) => x.name)]) {
      const rs = rows.filter((r) => r.sharp === p.ours && r.reference === p.theirs && r.case === c && r.image.startsWith('toy'));
      if (!rs.length) continue;
      summary.push({
        sharp: p.ours,
        reference: p.theirs,
        case: c,
        mean: +(rs.reduce((a, r) => a + r.mean, 0) / rs.length).toFixed(3),
        max: Math.max(...rs.map((r) => r.max)),
        p99: Math.max(...rs.map((r) => r.p99)),
        interiorMean: +(rs.reduce((a, r) => a + r.interiorMean, 0) / rs.length).toFixed(3),
        interiorMax: Math.max(...rs.map((r) => r.interiorMax)),
      });
    }
  }
  const result = {
    bench: '@diffmix/datasets resampler vs Pillow / torch',
    date: new Date().toISOString(),
    sharp: sharp.versions.sharp,
    libvips: sharp.versions.vips,
    ...versions,
    note: '8-bit RGB, |Δ| in levels of 255 over all channels; interior excludes a 3 px border; summary = toy images (mean of means, max of maxima)',
    summary,
    rows,
  };
  mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../bench-results/resampler-vs-pillow.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  console.table(summary);
  console.table(rows.filter((r) => !r.image.startsWith('toy')));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
