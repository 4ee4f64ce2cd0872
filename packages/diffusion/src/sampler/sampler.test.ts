/**
 * The sampler on the golden tiny Stable Diffusion (random weights, 64² model size, CPU): real
 * img2img / txt2img, real PNGs, the real synthetic-set writer.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { annotate } from '@diffmix/core';
import type { Dataset, LogFields, Logger, ManifestLine } from '@diffmix/core';
import {
  META_CSV_COLUMNS,
  decodeImage,
  generateToyDataset,
  mergeShardManifests,
  parseMetaCsv,
  readAllManifests,
  readSyntheticSet,
} from '@diffmix/datasets';
import type { RgbImage } from '@diffmix/datasets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StableDiffusion } from '../model/stable-diffusion.js';
import { loadGoldenAdapters } from '../test-support/golden-model.js';
import { goldenPath } from '../test-support/golden.js';
import type { GenerateRequest, ImageGenerator } from './generator.js';
import { PLAN_FILE } from './plan-file.js';
import { planSynthesis } from './plan.js';
import type { PlanSynthesisOptions } from './plan.js';
import { runSampler } from './run.js';

let tmp: string;
let model: StableDiffusion;
let dataset: Dataset;
let n = 0;
const dir = () => path.join(tmp, `set-${n++}`);

function recordingLogger(): Logger & { lines: Array<{ level: string; message: string; fields?: LogFields }> } {
  const lines: Array<{ level: string; message: string; fields?: LogFields }> = [];
  const push = (level: string) => (message: string, fields?: LogFields) => {
    lines.push({ level, message, ...(fields ? { fields } : {}) });
  };
  return { lines, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diffmix-sampler-'));
  model = await StableDiffusion.load(goldenPath('tiny-sd'), await loadGoldenAdapters());
  // 2 classes (the golden TI has <class_0>, <class_1>), 48² sources: the sampler must size results back.
  dataset = await generateToyDataset({ numClasses: 2, imagesPerClass: 3, testPerClass: 0, seed: 7, size: 48 });
});

afterAll(async () => {
  await model?.release();
  await rm(tmp, { recursive: true, force: true });
});

function plan(extra: Partial<PlanSynthesisOptions> = {}) {
  return planSynthesis({
    dataset,
    strategy: 'diff-mix',
    seed: 5,
    count: 8,
    annotation: { gamma: 0.5, scaler: 0.9 },
    params: { steps: 10, guidance: 7.5, size: 64, model: 'golden-tiny-sd' },
    ...extra,
  });
}

async function shaById(root: string): Promise<Map<string, string>> {
  const { kept } = await readAllManifests(root);
  const out = new Map<string, string>();
  for (const { line } of kept) {
    const bytes = await readFile(path.join(root, line.path));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(line.sha256);
    out.set(line.id, line.sha256);
  }
  return out;
}

async function listData(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const folder of await readdir(path.join(root, 'data'))) {
    for (const f of await readdir(path.join(root, 'data', folder))) out.push(`data/${folder}/${f}`);
  }
  return out.sort();
}

describe('runSampler on the tiny model', () => {
  it('writes every job in the official layout, sized back to the source, with labels that meta.csv reproduces', async () => {
    const p = plan();
    const out = dir();
    const logger = recordingLogger();
    const seen: ManifestLine[] = [];
    const s = await runSampler({ model, plan: p, dataset, out, batchSize: 3, logger, onImage: (l) => seen.push(l) });
    expect(s).toMatchObject({
      status: 'completed',
      exitCode: 0,
      planned: 8,
      inShard: 8,
      alreadyDone: 0,
      generated: 8,
      failed: 0,
      remaining: 0,
    });
    expect(s.imagesPerHour).toBeGreaterThan(0);
    expect(seen).toHaveLength(8);
    expect(logger.lines.some((l) => /^images 8 of 8 · failures 0 · .* images\/hour · completed$/.test(l.message))).toBe(true);
    expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([]); // TI + LoRA loaded, tokens known

    const { kept } = await readAllManifests(out);
    expect(new Set(kept.map((e) => e.line.id))).toEqual(new Set(p.jobs.map((j) => j.id)));
    const classFolders = dataset.classes.map((c) => c.name.replace(/\s/g, '_'));
    for (const { line } of kept) {
      const job = p.jobs.find((j) => j.id === line.id)!;
      expect(line.label).toEqual(job.label);
      expect(line.path).toMatch(
        new RegExp(`^data/${classFolders[job.sourceClass]}/${classFolders[job.targetClass]}-\\d{6,}-${job.strength}\\.png$`),
      );
      const img = await decodeImage(path.join(out, line.path));
      expect([img.width, img.height]).toEqual([48, 48]);
      expect([line.width, line.height]).toEqual([48, 48]);
    }

    // meta.csv: the official columns; an official reader (relabelling from Strength with γ and c) gets our labels.
    const csv = await readFile(path.join(out, 'meta.csv'), 'utf8');
    expect(csv.split('\n')[0]).toBe(META_CSV_COLUMNS.join(','));
    expect(parseMetaCsv(csv)).toHaveLength(8);
    const official = await readSyntheticSet(out, { source: 'meta-csv', classes: dataset.classes, gamma: 0.5, scaler: 0.9 });
    expect(official.records).toHaveLength(8);
    for (const r of official.records) {
      const line = kept.find((e) => path.join(out, e.line.path) === r.path)!.line;
      expect([r.sourceClass, r.targetClass, r.strength]).toEqual([line.sourceClass, line.targetClass, line.strength]);
      expect(r.label).toEqual(
        annotate({
          strength: line.strength,
          gamma: 0.5,
          scaler: 0.9,
          sourceClass: line.sourceClass,
          targetClass: line.targetClass,
        }),
      );
    }
    const record = JSON.parse(await readFile(path.join(out, PLAN_FILE), 'utf8'));
    expect(record).toMatchObject({ strategy: 'diff-mix', seed: 5, jobCount: 8, annotation: { gamma: 0.5, scaler: 0.9 } });

    // Re-running is a no-op.
    const again = await runSampler({ model, plan: p, dataset, out, batchSize: 3 });
    expect(again).toMatchObject({ status: 'completed', generated: 0, alreadyDone: 8, batches: 0 });
  });

  it('batching never changes an image (Beta strengths batch by their number of denoising steps)', async () => {
    const p = plan({ count: 10, strengths: { kind: 'beta', alpha: 5, beta: 5, min: 0.1, max: 0.9 } });
    const one = dir();
    const four = dir();
    const s1 = await runSampler({ model, plan: p, dataset, out: one, batchSize: 1 });
    const s4 = await runSampler({ model, plan: p, dataset, out: four, batchSize: 4 });
    expect(s1.batches).toBe(10);
    expect(s4.batches).toBeLessThan(10);
    expect(await shaById(four)).toEqual(await shaById(one));
  });

  it('stops after the batch in flight when the signal aborts, and a re-run finishes the set', async () => {
    // Batch 1's images are written while batch 2 generates: aborting on the first image lets batch 2 finish.
    const p = plan({ strengths: 0.7 });
    const out = dir();
    const ac = new AbortController();
    const logger = recordingLogger();
    const s = await runSampler({
      model,
      plan: p,
      dataset,
      out,
      batchSize: 2,
      signal: ac.signal,
      logger,
      resumeCommand: 'diffmix sample …',
      onImage: () => ac.abort(),
    });
    expect(s).toMatchObject({ status: 'interrupted', exitCode: 130, generated: 4, remaining: 4, batches: 2 });
    expect(s.resumeHint).toMatch(/interrupted: 4 of 8 images .* Run the same command again to resume \(diffmix sample …\)/);
    expect(logger.lines.at(-1)?.message).toBe(s.resumeHint);
    expect(parseMetaCsv(await readFile(path.join(out, 'meta.csv'), 'utf8'))).toHaveLength(4); // closed and flushed
    const rest = await runSampler({ model, plan: p, dataset, out, batchSize: 2 });
    expect(rest).toMatchObject({ status: 'completed', alreadyDone: 4, generated: 4 });
    expect((await shaById(out)).size).toBe(8);
  });

  it('shards write disjoint parts of one set; together they are the plan', async () => {
    const p = plan({ count: 12 });
    const out = dir();
    let total = 0;
    for (let index = 0; index < 3; index++) {
      const s = await runSampler({ model, plan: p, dataset, out, shard: { index, count: 3 }, batchSize: 2 });
      expect(s.status).toBe('completed');
      total += s.generated;
      const own = await readAllManifests(out);
      expect(own.files.some((f) => f.endsWith(`manifest.shard-${index}-of-3.jsonl`))).toBe(true);
    }
    expect(total).toBe(12);
    await mergeShardManifests(out);
    const { kept } = await readAllManifests(out);
    expect(kept.map((e) => e.line.id).sort()).toEqual(p.jobs.map((j) => j.id).sort());
    expect(await listData(out)).toEqual(kept.map((e) => e.line.path).sort());
  });

  it('txt2img strategies generate at the model size with one-hot labels', async () => {
    const p = plan({ strategy: 'diff-gen', count: 4 });
    const out = dir();
    const s = await runSampler({ model, plan: p, out, batchSize: 4 });
    expect(s).toMatchObject({ status: 'completed', generated: 4, batches: 1 });
    const set = await readSyntheticSet(out);
    for (const r of set.records) {
      expect(r.label).toEqual([[r.sourceClass, 1]]);
      const img = await decodeImage(r.path);
      expect(img.width).toBe(64);
    }
  });

  it('refuses a folder planned with other settings, and a dataset that lacks the sources', async () => {
    const out = dir();
    await runSampler({ model, plan: plan({ count: 2 }), dataset, out });
    await expect(runSampler({ model, plan: plan({ count: 2, seed: 6 }), dataset, out })).rejects.toThrow(
      /other settings \(seed differs\)/,
    );
    // a larger plan with the same settings extends the set
    const more = await runSampler({ model, plan: plan({ count: 4 }), dataset, out });
    expect(more).toMatchObject({ alreadyDone: 2, generated: 2 });
    await expect(runSampler({ model, plan: plan(), dataset: { train: [] }, out: dir() })).rejects.toThrow(/not in the dataset/);
    await expect(runSampler({ model, plan: plan(), out: dir() })).rejects.toThrow(/pass the dataset/);
  });

  it('warns when the loaded adapters do not fit the strategy', async () => {
    const logger = recordingLogger();
    await runSampler({ model, plan: plan({ strategy: 'real-aug', count: 1 }), dataset, out: dir(), logger });
    const warnings = logger.lines.filter((l) => l.level === 'warn').map((l) => l.message);
    expect(warnings).toEqual([
      'strategy real-aug uses no textual inversion, but embeddings are loaded',
      'strategy real-aug uses no LoRA, but LoRA weights are merged',
    ]);
  });
});

describe('runSampler failures (test generator)', () => {
  /** Returns grey images; throws for prompts of class 1 when `failClass1`. */
  function fakeGenerator(options: { failClass1?: boolean } = {}): ImageGenerator & { requests: GenerateRequest[] } {
    const requests: GenerateRequest[] = [];
    return {
      requests,
      async generate(req) {
        requests.push(req);
        if (options.failClass1 && req.items.some((it) => it.prompt.includes('<class_1>'))) throw new Error('boom');
        return req.items.map((it): RgbImage => {
          const w = it.image?.width ?? 16;
          const h = it.image?.height ?? 16;
          return { data: new Uint8Array(w * h * 3).fill(it.seed % 251), width: w, height: h, channels: 3 };
        });
      },
    };
  }

  it('retries a failed batch one job at a time, reports the failures and leaves them for the next run', async () => {
    const p = plan({ count: 12, strengths: 0.5 });
    const out = dir();
    const gen = fakeGenerator({ failClass1: true });
    const s = await runSampler({ model: gen, plan: p, dataset, out, batchSize: 4 });
    const bad = p.jobs.filter((j) => j.targetClass === 1).length;
    expect(bad).toBeGreaterThan(0);
    expect(s).toMatchObject({ status: 'incomplete', exitCode: 1, failed: bad, generated: 12 - bad, remaining: bad });
    expect(s.failures.every((f) => f.stage === 'generate' && f.error === 'boom')).toBe(true);
    expect(s.resumeHint).toMatch(/job\(s\) failed/);
    const fixed = await runSampler({ model: fakeGenerator(), plan: p, dataset, out, batchSize: 4 });
    expect(fixed).toMatchObject({ status: 'completed', generated: bad, alreadyDone: 12 - bad });
  });

  it('a source image that cannot be decoded fails its jobs only; maxFailures stops the run', async () => {
    const broken: Dataset = {
      ...dataset,
      train: dataset.train.map((r, i) => (i === 0 ? { id: r.id, label: r.label, bytes: new Uint8Array([1, 2, 3]) } : r)),
    };
    const p = planSynthesis({ dataset: broken, strategy: 'real-aug', seed: 1, count: 30, params: { steps: 10, size: 64 } });
    const uses = p.jobs.filter((j) => j.sourceRecordId === broken.train[0]!.id).length;
    expect(uses).toBeGreaterThan(0);
    const s = await runSampler({ model: fakeGenerator(), plan: p, dataset: broken, out: dir(), batchSize: 3 });
    expect(s).toMatchObject({ status: 'incomplete', failed: uses, generated: 30 - uses });
    expect(s.failures[0]).toMatchObject({ stage: 'decode', sourceRecordId: broken.train[0]!.id });
    const capped = await runSampler({
      model: fakeGenerator(),
      plan: p,
      dataset: broken,
      out: dir(),
      batchSize: 1,
      maxFailures: 1,
    });
    expect(capped.failed).toBe(1);
    expect(capped.generated).toBeLessThan(30 - uses);
    expect(capped.resumeHint).toMatch(/too many failures/);
  });

  it('passes steps, guidance, size and negative prompt from the job params', async () => {
    const p = plan({ count: 3, strengths: 0.7, params: { steps: 20, guidance: 3, size: 256, negativePrompt: 'blurry' } });
    const gen = fakeGenerator();
    await runSampler({ model: gen, plan: p, dataset, out: dir(), batchSize: 8 });
    expect(gen.requests).toHaveLength(1);
    expect(gen.requests[0]).toMatchObject({
      mode: 'img2img',
      strength: 0.7,
      steps: 20,
      guidance: 3,
      size: 256,
      negativePrompt: 'blurry',
    });
  });
});
