/**
 * The training loop on the toy dataset (CPU, ORT engine, small CNN): batches (smoothed targets,
 * determinism), the end-to-end run that must beat chance, checkpoint resume, synthetic replacement
 * plumbing, bad input.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AbortedError,
  type Dataset,
  type DatasetRecord,
  InvalidArgumentError,
  synthesisJobId,
  ValidationError,
} from '@diffmix/core';
import { decodeRecord, encodePng, readSyntheticSet, SyntheticSetWriter } from '@diffmix/datasets';
import { describe, expect, it } from 'vitest';
import { classifierPreset, resolveTransform, runFewShot, TrainPlan, trainClassifier } from '../src/index.js';
import { tempDir, toy } from './helpers.js';

const base = {
  arch: 'smallcnn',
  imageSize: 32,
  engine: 'ort',
  device: 'cpu',
  progress: 'silent',
  concurrency: 2,
} as const;

describe('training batches', () => {
  it('carry official smoothed targets ε/(C−1) + (1−ε)·y and are reproducible from any batch', async () => {
    const ds = await toy(4, 8, 0);
    const plan = new TrainPlan({
      train: ds.train,
      numClasses: 4,
      seed: 9,
      batchSize: 8,
      transform: resolveTransform({ size: 32 }),
      labelSmoothing: 0.1,
    });
    const all = [];
    for await (const b of plan.batches(1)) all.push(b);
    expect(all).toHaveLength(4);
    const order = plan.order(1);
    const first = all[0];
    if (!first) throw new Error('no batch');
    for (let i = 0; i < 8; i++) {
      const label = ds.train[order[i] as number]?.label as number;
      for (let c = 0; c < 4; c++) {
        expect(first.targets[i * 4 + c]).toBeCloseTo(0.1 / 3 + (c === label ? 0.9 : 0), 6);
      }
    }
    // Starting at batch 2 (a resume) gives the same batch 2, pixels included.
    const again = [];
    for await (const b of plan.batches(1, 2)) again.push(b);
    expect(again[0]?.index).toBe(2);
    expect(again[0]?.images).toEqual(all[2]?.images);
    expect(again[0]?.targets).toEqual(all[2]?.targets);
  }, 60_000);
});

describe('trainClassifier on the toy dataset', () => {
  // 4 classes (chance 25 %), 48 train / 16 test images per class at 40 px, cropped to 32 px.
  it('beats chance (25 %) by at least 30 points after 8 epochs; lr follows warmup + cosine', async () => {
    const dataset = await toy(4, 48, 16);
    const out = await tempDir('e2e');
    const result = await trainClassifier({
      ...base,
      dataset,
      epochs: 8,
      batchSize: 16,
      lr: 0.05,
      evalEvery: 2,
      seed: 0,
      outDir: out,
    });
    if (process.env.DIFFMIX_REPORT)
      console.log(`toy e2e: final top-1 ${result.final.top1}, best ${result.best.top1} (epoch ${result.best.epoch})`);
    // Measured when written: final top-1 0.7–0.8 (seed 0); the bound leaves room for platform noise.
    expect(result.final.top1).toBeGreaterThanOrEqual(0.55);
    expect(result.best.top1).toBeGreaterThanOrEqual(result.final.top1);
    expect(result.epochs).toHaveLength(8);
    expect(result.final.confusion.flat().reduce((a, b) => a + b, 0)).toBe(64);
    expect(result.epochs.filter((e) => e.testTop1 !== undefined).map((e) => e.epoch)).toEqual([1, 3, 5, 7]);
    // Loss goes down from the first to the last epoch.
    expect((result.epochs[7]?.trainLoss as number) < (result.epochs[0]?.trainLoss as number)).toBe(true);
    // Per-iteration schedule: 12 steps/epoch × 8 = 96 steps, warmup 9 steps.
    const T = 96;
    const W = 9;
    expect(result.stepLrs).toHaveLength(T);
    result.stepLrs.forEach((lr, s) => {
      const f = s < W ? s / W : 0.5 * (1 + Math.cos((Math.PI * (s - W)) / (T - W)));
      expect(lr).toBeCloseTo(0.05 * f, 12);
    });
    const saved = JSON.parse(await readFile(join(out, 'results.json'), 'utf8'));
    expect(saved.final.top1).toBe(result.final.top1);
    expect(saved.best.epoch).toBe(result.best.epoch);
    expect(result.engine.backend).toMatch(/onnxruntime-node .* cpu/);
  }, 120_000);

  it('resumes after an abort: the following steps give the same losses as an uninterrupted run', async () => {
    const dataset = await toy(3, 8, 2, 24, 5);
    const opts = {
      ...base,
      imageSize: 16,
      dataset,
      epochs: 3,
      batchSize: 6,
      lr: 0.05,
      evalEvery: 1,
      seed: 4,
      mixup: { prob: 0.5 },
      cutmix: { prob: 0.3 },
    };
    const full = await trainClassifier(opts);
    expect(full.stepLosses).toHaveLength(12);
    const out = await tempDir('resume');
    const ctl = new AbortController();
    await expect(
      trainClassifier({
        ...opts,
        outDir: out,
        signal: ctl.signal,
        onStep: (s) => {
          if (s.globalStep === 5) ctl.abort();
        },
      }),
    ).rejects.toThrow(AbortedError);
    const resumed = await trainClassifier({ ...opts, outDir: out });
    expect(resumed.resumed).toBe(true);
    expect(resumed.stepsThisRun).toBe(6);
    expect(resumed.stepLosses).toEqual(full.stepLosses);
    expect(resumed.final.top1).toBe(full.final.top1);
    // A finished run resumed again does no step, and other options are refused.
    const again = await trainClassifier({ ...opts, outDir: out });
    expect(again.stepsThisRun).toBe(0);
    await expect(trainClassifier({ ...opts, lr: 0.1, outDir: out })).rejects.toThrow(ValidationError);
  }, 120_000);

  it('trains with synthetic replacement from a SyntheticSetWriter set (soft labels read back)', async () => {
    const dataset = await toy(3, 12, 4, 24, 6);
    const root = await tempDir('syn');
    const classes = dataset.classes.map((c) => ({ id: c.id, name: c.name }));
    const writer = await SyntheticSetWriter.open(root, { classes });
    // Fake synthetic samples: real toy images relabelled as source → (source + 1) at strength 0.5.
    for (const [i, r] of dataset.train.slice(0, 12).entries()) {
      const img = await decodeRecord(r);
      const tgt = (r.label + 1) % 3;
      const spec = {
        strategy: 'fake-relabel',
        sourceRecordId: r.id,
        sourceClass: r.label,
        targetClass: tgt,
        strength: 0.5,
        prompt: 'toy',
        seed: i,
      };
      await writer.write(
        {
          ...spec,
          id: synthesisJobId(spec),
          label: [
            [r.label, 0.5],
            [tgt, 0.5],
          ],
        },
        await encodePng(img.data, img.width, img.height),
      );
    }
    await writer.close();
    const set = await readSyntheticSet(root, { classes });
    expect(set.records).toHaveLength(12);
    const result = await trainClassifier({
      ...base,
      imageSize: 16,
      dataset,
      epochs: 2,
      batchSize: 6,
      lr: 0.05,
      seed: 1,
      synthetic: { records: set.records, probability: 0.5 },
    });
    const fraction = result.epochs.reduce((a, e) => a + e.syntheticFraction, 0) / 2;
    // 12 samples/epoch × 2 epochs at p = 0.5: 24 Bernoulli draws, 5σ ≈ 0.51 of the fraction.
    expect(fraction).toBeGreaterThan(0);
    expect(fraction).toBeLessThan(1);
    expect(result.stepLosses.every(Number.isFinite)).toBe(true);
  }, 120_000);

  it('runs the few-shot protocol (mean ± std over seeds)', async () => {
    const dataset = await toy(3, 6, 2, 24, 7);
    const rows = await runFewShot({
      ...base,
      imageSize: 16,
      dataset,
      shots: [2, 'all'],
      seeds: [1, 2],
      epochs: 1,
      batchSize: 4,
      lr: 0.05,
    });
    expect(rows.map((r) => [r.shots, r.trainSize, r.trials.length])).toEqual([
      [2, 6, 2],
      ['all', 18, 2],
    ]);
    for (const r of rows) {
      const [a, b] = r.final.values as [number, number];
      expect(r.final.mean).toBeCloseTo((a + b) / 2, 12);
      expect(r.final.std).toBeCloseTo(Math.abs(a - b) / Math.SQRT2, 12);
    }
  }, 120_000);

  it('rejects bad input with named errors', async () => {
    const dataset = await toy(3, 4, 1, 24, 8);
    await expect(trainClassifier({ ...base, dataset, epochs: 1, batchSize: 64, lr: 0.1 })).rejects.toThrow(
      /larger than the training set/,
    );
    await expect(trainClassifier({ ...base, dataset, epochs: 0, batchSize: 4, lr: 0.1 })).rejects.toThrow(InvalidArgumentError);
    await expect(trainClassifier({ ...base, dataset, epochs: 1, batchSize: 4, lr: -1 })).rejects.toThrow(/lr/);
    await expect(
      trainClassifier({ ...base, engine: 'mxnet' as never, dataset, epochs: 1, batchSize: 4, lr: 0.1 }),
    ).rejects.toThrow(/'ort', 'tfjs' or 'auto'/);
    const noTest: Dataset = { ...dataset, test: [] };
    await expect(trainClassifier({ ...base, dataset: noTest, epochs: 1, batchSize: 4, lr: 0.1 })).rejects.toThrow(
      /test split is empty/,
    );
    const badLabel: Dataset = { ...dataset, train: [...dataset.train, { ...(dataset.train[0] as DatasetRecord), label: 9 }] };
    await expect(trainClassifier({ ...base, dataset: badLabel, epochs: 1, batchSize: 4, lr: 0.1 })).rejects.toThrow(/label 9/);
    await expect(
      trainClassifier({ ...base, dataset, weights: '/nonexistent/w.safetensors', epochs: 1, batchSize: 4, lr: 0.1 }),
    ).rejects.toThrow(/nonexistent/);
    expect(() => classifierPreset('imagenet')).toThrow(/unknown preset/);
    expect(classifierPreset('cub-resnet50-448')).toMatchObject({ lr: 0.02, batchSize: 64, epochs: 128, imageSize: 448 });
    expect(classifierPreset('cub-resnet50-448', 'code')).toMatchObject({ lr: 0.025, weightDecay: 5e-4 });
  }, 60_000);
});
