/**
 * The few-shot protocol (paper §few-shot, official code): shots 1 / 5 / 10 / all per class; the subset
 * of each shot count is drawn once (seed 0, fixed across trials, as the official code), and three
 * trials differ by the training seed (2020, 2021, 2022). Reported: mean ± sample standard deviation
 * (n − 1) of the final and of the best top-1 over the trials.
 */
import { join } from 'node:path';
import { type Dataset, InvalidArgumentError } from '@diffmix/core';
import { fewShot } from '@diffmix/datasets';
import { type SyntheticOptions, type TrainClassifierOptions, type TrainResult, trainClassifier } from './train/train.js';

export type Shots = number | 'all';

export interface FewShotOptions extends Omit<TrainClassifierOptions, 'dataset' | 'seed' | 'outDir' | 'synthetic'> {
  dataset: Dataset;
  /** Default [1, 5, 10, 'all']. */
  shots?: readonly Shots[];
  /** Training seeds of the trials (default [2020, 2021, 2022]). */
  seeds?: readonly number[];
  /** Seed of the subset draw (default 0). */
  subsetSeed?: number;
  /** The synthetic set for a shot count (generated from that subset), if any. */
  synthetic?: (shots: Shots) => SyntheticOptions | undefined;
  /** Each trial writes `<outDir>/shot<k>/seed<s>/` (checkpoints, results.json), so the protocol resumes. */
  outDir?: string;
}

export interface MeanStd {
  mean: number;
  std: number;
  values: number[];
}

export interface FewShotRow {
  shots: Shots;
  trainSize: number;
  final: MeanStd;
  best: MeanStd;
  trials: Array<{ seed: number; final: number; best: number }>;
}

export function meanStd(values: readonly number[]): MeanStd {
  if (values.length === 0) throw new InvalidArgumentError('values', 'needs at least one value');
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const std = values.length < 2 ? 0 : Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
  return { mean, std, values: [...values] };
}

export async function runFewShot(options: FewShotOptions): Promise<FewShotRow[]> {
  const { dataset, shots = [1, 5, 10, 'all'], seeds = [2020, 2021, 2022], subsetSeed = 0, synthetic, outDir, ...train } = options;
  if (seeds.length === 0) throw new InvalidArgumentError('seeds', 'needs at least one seed');
  const rows: FewShotRow[] = [];
  for (const k of shots) {
    if (k !== 'all' && (!Number.isInteger(k) || k < 1))
      throw new InvalidArgumentError('shots', `must be positive integers or 'all', got ${k}`);
    const subset = k === 'all' ? dataset : fewShot(dataset, { shots: k, seed: subsetSeed });
    const trials: FewShotRow['trials'] = [];
    for (const seed of seeds) {
      const syn = synthetic?.(k);
      const r: TrainResult = await trainClassifier({
        ...train,
        dataset: subset,
        seed,
        ...(syn ? { synthetic: syn } : {}),
        ...(outDir ? { outDir: join(outDir, `shot${k}`, `seed${seed}`) } : {}),
      });
      trials.push({ seed, final: r.final.top1, best: r.best.top1 });
    }
    rows.push({
      shots: k,
      trainSize: subset.train.length,
      final: meanStd(trials.map((t) => t.final)),
      best: meanStd(trials.map((t) => t.best)),
      trials,
    });
  }
  return rows;
}
