// Benchmark of the synthesis sampler end to end (plan → decode sources → img2img → resize back →
// PNG → crash-safe writes → meta.csv) on the tiny golden model (CPU by default; DIFFMIX_DEVICE=webgpu
// or cuda on a GPU machine, DIFFMIX_BENCH_MODEL=<dir> for another SD export, then without adapters).
// Reports, all measured in this run:
//   - images/hour at batch 1 and at every batch size tried, the best batch and its ratio to batch 1;
//   - the sampler's overhead: the same jobs through a bare img2img loop (sources pre-decoded, no IO);
//   - images/hour per strength s ∈ {0.1, 0.3, 0.5, 0.7, 0.9, 1.0} (the paper's Fig. 11 curve), with the
//     paper's RTX 3090 numbers for the shape of the curve (relative to s = 1.0);
// and writes bench-results/sampler.json, sampler.md and sampler-strength.svg. Run after `npm run build`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeRecord, generateToyDataset } from '@diffmix/datasets';
import { StableDiffusion, img2img, planSynthesis, runSampler } from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const golden = path.join(here, '../fixtures/golden/tiny-sd');
const modelDir = process.env.DIFFMIX_BENCH_MODEL ?? golden;
const custom = modelDir !== golden;
const device = process.env.DIFFMIX_DEVICE ?? 'cpu';
const SIZE = Number(process.env.DIFFMIX_BENCH_SIZE ?? 64);
const JOBS = Number(process.env.DIFFMIX_BENCH_JOBS ?? 24);
// Every measure is repeated REPS times, interleaved with the others, and the median kept (shared CI
// machines are noisy).
const REPS = Number(process.env.DIFFMIX_BENCH_REPS ?? 3);
const BATCHES = (process.env.DIFFMIX_BENCH_BATCHES ?? '1,2,4,8').split(',').map(Number);
const STRENGTHS = [0.1, 0.3, 0.5, 0.7, 0.9, 1.0];
// Supplementary Fig. 11 / Table 11: images per RTX 3090 hour, 512², 25 steps, fp16.
const PAPER = { 0.1: 20502, 0.3: 8763, 0.5: 5492, 0.7: 4055, 0.9: 3335, '1.0': 2958 };

const strategy = custom ? 'real-mix' : 'diff-mix';
const model = await StableDiffusion.load(
  modelDir,
  custom
    ? { device }
    : {
        device,
        lora: [path.join(golden, 'lora/pytorch_lora_weights.safetensors')],
        textualInversion: [path.join(golden, 'ti/learned_embeds.safetensors')],
      },
);
// Two classes (the golden TI knows <class_0>, <class_1>), 48² sources so results are resized back.
const dataset = await generateToyDataset({ numClasses: 2, imagesPerClass: 8, testPerClass: 0, seed: 1, size: 48 });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'diffmix-bench-sampler-'));
let runNo = 0;

function plan(strength, count = JOBS, seed = 1) {
  return planSynthesis({
    dataset,
    strategy,
    seed,
    count,
    strengths: strength,
    params: { steps: 25, guidance: 7.5, size: SIZE, model: 'bench' },
  });
}

async function sample(strength, batchSize, count = JOBS) {
  const out = path.join(tmp, `run-${runNo++}`);
  const s = await runSampler({ model, plan: plan(strength, count), dataset, out, batchSize });
  if (s.status !== 'completed') throw new Error(`bench run ${out}: ${s.status}`);
  rmSync(out, { recursive: true, force: true });
  return s;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

// Warm-up (session first-run costs, sharp, file-system caches).
await sample(0.7, 1, 4);
await sample(0.7, Math.max(...BATCHES), Math.max(...BATCHES));

// 1. Batch sizes at s = 0.7.
const batchRuns = Object.fromEntries(BATCHES.map((b) => [b, []]));
for (let r = 0; r < REPS; r++) {
  for (const b of BATCHES) batchRuns[b].push((await sample(0.7, b)).imagesPerHour);
}
const batches = {};
for (const b of BATCHES) {
  const iph = median(batchRuns[b]);
  batches[b] = { imagesPerHour: Math.round(iph), msPerImage: +(3_600_000 / iph).toFixed(1) };
}
const best = Object.entries(batches).sort((a, b) => b[1].imagesPerHour - a[1].imagesPerHour)[0];
const batch1 = batches[1] ?? Object.values(batches)[0];

// 2. Overhead: the same jobs through a bare img2img loop (sources decoded beforehand, nothing written).
const p = plan(0.7);
const byId = new Map(dataset.train.map((r) => [r.id, r]));
const images = await Promise.all(p.jobs.map((j) => decodeRecord(byId.get(j.sourceRecordId))));
const bareRuns = [];
for (let r = 0; r < REPS; r++) {
  const t0 = performance.now();
  for (let i = 0; i < p.jobs.length; i++) {
    const j = p.jobs[i];
    await img2img(model, [{ image: images[i], prompt: j.prompt, seed: j.seed }], 0.7, { steps: 25, size: SIZE });
  }
  bareRuns.push((performance.now() - t0) / p.jobs.length);
}
const bareMs = median(bareRuns);
const bare = { imagesPerHour: Math.round(3_600_000 / bareMs), msPerImage: +bareMs.toFixed(1) };

// 3. Strengths, batch 1 and the best batch.
const strengthRuns = Object.fromEntries(STRENGTHS.map((s) => [s, { batch1: [], bestBatch: [] }]));
for (let r = 0; r < REPS; r++) {
  for (const s of STRENGTHS) {
    strengthRuns[s].batch1.push((await sample(s, 1)).imagesPerHour);
    strengthRuns[s].bestBatch.push((await sample(s, Number(best[0]))).imagesPerHour);
  }
}
const perStrength = {};
for (const s of STRENGTHS) {
  perStrength[s.toFixed(1)] = {
    batch1: Math.round(median(strengthRuns[s].batch1)),
    bestBatch: Math.round(median(strengthRuns[s].bestBatch)),
  };
}
await model.release();
rmSync(tmp, { recursive: true, force: true });

const result = {
  bench: '@diffmix/diffusion sampler',
  date: new Date().toISOString(),
  node: process.version,
  device,
  cpus: os.cpus().length,
  model: path.relative(process.cwd(), modelDir),
  strategy,
  modelSize: SIZE,
  sourceSize: 48,
  steps: 25,
  guidance: 7.5,
  jobsPerMeasure: JOBS,
  repetitions: REPS,
  batches,
  bestBatch: Number(best[0]),
  bestBatchVsBatch1: +(best[1].imagesPerHour / batch1.imagesPerHour).toFixed(2),
  bareImg2imgBatch1: bare,
  samplerOverheadBatch1: +(bare.imagesPerHour / batch1.imagesPerHour).toFixed(2),
  perStrength,
  paperFig11ImagesPerGpuHour: PAPER,
};

// ---- SVG line charts (no dependency) ----
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
function chart({ x0, y0, w, h, title, yLabel, series, yMax }) {
  const left = 70;
  const right = 16;
  const top = 34;
  const bottom = 46;
  const pw = w - left - right;
  const ph = h - top - bottom;
  const max = yMax ?? niceMax(Math.max(...series.flatMap((s) => s.points.map((p) => p[1]))));
  const X = (s) => x0 + left + ((s - 0.1) / 0.9) * pw;
  const Y = (v) => y0 + top + ph - (v / max) * ph;
  const out = [
    `<text x="${x0 + w / 2}" y="${y0 + 20}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = (max * i) / 5;
    const y = Y(v);
    out.push(`<line x1="${x0 + left}" y1="${y}" x2="${x0 + left + pw}" y2="${y}" stroke="#ddd"/>`);
    const label = max >= 1000 ? `${Math.round(v / 1000)}k` : v.toFixed(v < 10 ? 1 : 0);
    out.push(`<text x="${x0 + left - 6}" y="${y + 4}" text-anchor="end" font-size="11">${label}</text>`);
  }
  for (const s of STRENGTHS) {
    out.push(`<line x1="${X(s)}" y1="${y0 + top + ph}" x2="${X(s)}" y2="${y0 + top + ph + 4}" stroke="#333"/>`);
    out.push(`<text x="${X(s)}" y="${y0 + top + ph + 17}" text-anchor="middle" font-size="11">${s.toFixed(1)}</text>`);
  }
  out.push(`<rect x="${x0 + left}" y="${y0 + top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${x0 + left + pw / 2}" y="${y0 + h - 8}" text-anchor="middle" font-size="12">strength s</text>`);
  out.push(
    `<text x="${x0 + 16}" y="${y0 + top + ph / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${x0 + 16} ${y0 + top + ph / 2})">${esc(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const pts = s.points.map(([x, v]) => `${X(x).toFixed(1)},${Y(v).toFixed(1)}`).join(' ');
    out.push(
      `<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5 4"' : ''}/>`,
    );
    for (const [x, v] of s.points) out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(v).toFixed(1)}" r="3" fill="${s.color}"/>`);
    const ly = y0 + top + 14 + i * 16;
    out.push(
      `<line x1="${x0 + left + pw - 170}" y1="${ly - 4}" x2="${x0 + left + pw - 150}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5 4"' : ''}/>`,
    );
    out.push(`<text x="${x0 + left + pw - 145}" y="${ly}" font-size="11">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}
const pts = (key) => STRENGTHS.map((s) => [s, perStrength[s.toFixed(1)][key]]);
const rel = (points) => points.map(([s, v]) => [s, v / points[points.length - 1][1]]);
const paperPts = STRENGTHS.map((s) => [s, PAPER[s === 1 ? '1.0' : s]]);
const W = 520;
const H = 340;
const svg = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H}" viewBox="0 0 ${2 * W} ${H}" font-family="sans-serif">`,
  `<rect width="${2 * W}" height="${H}" fill="white"/>`,
  chart({
    x0: 0,
    y0: 0,
    w: W,
    h: H,
    title: `Sampler throughput, tiny SD on ${device} (${SIZE}², 25 steps)`,
    yLabel: 'images / hour',
    series: [
      { name: 'batch 1', color: '#1f77b4', points: pts('batch1') },
      { name: `batch ${best[0]}`, color: '#ff7f0e', points: pts('bestBatch') },
    ],
  }),
  chart({
    x0: W,
    y0: 0,
    w: W,
    h: H,
    title: 'Shape of the curve (relative to s = 1.0)',
    yLabel: 'throughput / throughput at s = 1.0',
    series: [
      { name: 'this run, batch 1', color: '#1f77b4', points: rel(pts('batch1')) },
      { name: 'paper Fig. 11 (RTX 3090)', color: '#2ca02c', dash: true, points: rel(paperPts) },
    ],
  }),
  '</svg>',
  '',
].join('\n');

const outDir = path.join(here, '../bench-results');
mkdirSync(outDir, { recursive: true });
writeFileSync(path.join(outDir, 'sampler.json'), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(path.join(outDir, 'sampler-strength.svg'), svg);
const md = [
  `# @diffmix/diffusion sampler bench (${result.date}, ${device}, ${os.cpus().length} CPUs)`,
  '',
  `${strategy} on ${result.model}: ${SIZE}² model size, 48² sources (resized back), 25 DPM-Solver++ steps, guidance 7.5,`,
  `${JOBS} jobs per measure, median of ${REPS} interleaved repetitions, end to end (decode, img2img, resize, PNG,`,
  'fsynced writes, manifest, meta.csv).',
  '',
  '| batch | images/hour | ms/image |',
  '|---|---|---|',
  ...Object.entries(batches).map(([b, v]) => `| ${b} | ${v.imagesPerHour} | ${v.msPerImage} |`),
  '',
  `Best batch ${best[0]}: ${result.bestBatchVsBatch1}× batch 1. Bare img2img loop at batch 1: ${bare.imagesPerHour} images/hour ` +
    `(${bare.msPerImage} ms/image); the sampler's overhead at batch 1: ${result.samplerOverheadBatch1}×.`,
  '',
  `| strength | images/hour, batch 1 | images/hour, batch ${best[0]} | relative to s = 1.0 | paper (RTX 3090) | paper relative |`,
  '|---|---|---|---|---|---|',
  ...STRENGTHS.map((s) => {
    const k = s.toFixed(1);
    const v = perStrength[k];
    const p = PAPER[s === 1 ? '1.0' : s];
    return `| ${k} | ${v.batch1} | ${v.bestBatch} | ${(v.batch1 / perStrength['1.0'].batch1).toFixed(2)} | ${p} | ${(p / PAPER['1.0']).toFixed(2)} |`;
  }),
  '',
  '![images per hour by strength](sampler-strength.svg)',
  '',
].join('\n');
writeFileSync(path.join(outDir, 'sampler.md'), md);
console.log(md);
