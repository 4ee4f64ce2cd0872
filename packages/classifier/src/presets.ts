/**
 * Training presets from the paper (supplementary Table 9, §few-shot, §long-tail) and the official code
 * (shared reference notes). Where they disagree, `paper` holds the paper's value (the default) and
 * `code` the official code's:
 *
 * | preset | paper | official code |
 * |---|---|---|
 * | CUB R50 @448 | lr 0.02, wd 5e-5 | lr 0.025, wd 5e-4 |
 * | CUB ViT-B/16 @384 | lr 1e-3, wd 5e-5, SGD | lr 1e-3, wd 5e-4 |
 * | few-shot R50 @224 | bs 256, lr 0.05 | bs 256, lr 0.05 (cub), wd 5e-4 |
 *
 * The CLI's presets (`packages/cli/src/presets.ts`, same names) carry the code values for `train`
 * (lr 0.025, wd 5e-4); `classifierPreset(name, 'code')` returns exactly those numbers.
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { ClassifierArchName } from './engine/types.js';

export type DatasetName = 'cub' | 'aircraft' | 'car' | 'flower' | 'dog';

/** Official per-dataset learning rates (reference notes, "Classifier training"). */
export const DATASET_LR: Readonly<
  Record<'resnet50@448' | 'resnet50@224' | 'vit_b_16@384', Readonly<Record<DatasetName, number>>>
> = {
  'resnet50@448': { dog: 0.005, cub: 0.025, flower: 0.05, car: 0.05, aircraft: 0.05 },
  'resnet50@224': { dog: 0.005, cub: 0.05, flower: 0.05, car: 0.1, aircraft: 0.1 },
  'vit_b_16@384': { dog: 1e-5, cub: 1e-3, flower: 5e-4, car: 1e-3, aircraft: 1e-3 },
};

/** Official epochs per dataset (CUB 128, cars / flowers 150, dogs 40; aircraft as CUB). */
export const DATASET_EPOCHS: Readonly<Record<DatasetName, number>> = { cub: 128, car: 150, flower: 150, dog: 40, aircraft: 128 };

export interface ClassifierPreset {
  description: string;
  arch: ClassifierArchName;
  imageSize: number;
  batchSize: number;
  epochs: number;
  lr: number;
  optimizer: 'sgd' | 'adamw';
  momentum: number;
  weightDecay: number;
  /** ε of the official label smoothing. */
  labelSmoothing: number;
  warmupFraction: number;
  evalEvery: number;
  /** Synthetic replacement p and the label exponent γ of the synthetic set. */
  syntheticProbability: number;
  gamma: number;
  /** Few-shot presets: shots per class. */
  shots?: number;
}

const common = { optimizer: 'sgd', momentum: 0.9, labelSmoothing: 0.1, warmupFraction: 0.1, evalEvery: 4 } as const;

const PAPER = {
  'cub-resnet50-448': {
    ...common,
    description: 'CUB-200-2011, conventional: ResNet-50 @448 (ImageNet weights), Diff-Mix p = 0.1, γ = 0.8',
    arch: 'resnet50',
    imageSize: 448,
    batchSize: 64,
    epochs: 128,
    lr: 0.02,
    weightDecay: 5e-5,
    syntheticProbability: 0.1,
    gamma: 0.8,
  },
  'cub-vitb16-384': {
    ...common,
    description: 'CUB-200-2011, conventional: ViT-B/16 @384, Diff-Mix p = 0.1, γ = 0.8',
    arch: 'vit_b_16',
    imageSize: 384,
    batchSize: 32,
    epochs: 100,
    lr: 1e-3,
    weightDecay: 5e-5,
    syntheticProbability: 0.1,
    gamma: 0.8,
  },
  'cub-fewshot-5': {
    ...common,
    description: 'CUB-200-2011, 5-shot: ResNet-50 @224, bs 256, lr 0.05, p = 0.3, γ = 0.5',
    arch: 'resnet50',
    imageSize: 224,
    batchSize: 256,
    epochs: 128,
    lr: 0.05,
    weightDecay: 5e-5,
    syntheticProbability: 0.3,
    gamma: 0.5,
    shots: 5,
  },
  'cub-lt-100': {
    ...common,
    description: 'CUB-LT (imbalance 100): ResNet-50 @224, lr 0.005, bs 128, 200 epochs, re-weighted replacement p = 0.5',
    arch: 'resnet50',
    imageSize: 224,
    batchSize: 128,
    epochs: 200,
    lr: 0.005,
    weightDecay: 2e-4,
    syntheticProbability: 0.5,
    gamma: 0.8,
  },
} as const satisfies Record<string, ClassifierPreset>;

export type ClassifierPresetName = keyof typeof PAPER;

/** Where the official code differs from the paper. */
const CODE: Record<ClassifierPresetName, Partial<ClassifierPreset>> = {
  'cub-resnet50-448': { lr: 0.025, weightDecay: 5e-4 },
  'cub-vitb16-384': { weightDecay: 5e-4 },
  'cub-fewshot-5': { weightDecay: 5e-4 },
  // Long-tail: the paper-era code's replacement default.
  'cub-lt-100': { syntheticProbability: 0.3 },
};

export const CLASSIFIER_PRESETS: Readonly<Record<ClassifierPresetName, ClassifierPreset>> = PAPER;

/** A preset with the paper's numbers (default) or the official code's. */
export function classifierPreset(name: string, source: 'paper' | 'code' = 'paper'): ClassifierPreset {
  if (!(name in PAPER)) {
    throw new InvalidArgumentError('preset', `unknown preset ${JSON.stringify(name)}; one of ${Object.keys(PAPER).join(', ')}`);
  }
  const base: ClassifierPreset = { ...PAPER[name as ClassifierPresetName] };
  return source === 'code' ? { ...base, ...CODE[name as ClassifierPresetName] } : base;
}

/** The official learning rate for a dataset, backbone and resolution (throws where the code has none). */
export function datasetLr(dataset: DatasetName, arch: ClassifierArchName, imageSize: number): number {
  const key = `${arch}@${imageSize}` as keyof typeof DATASET_LR;
  const table = DATASET_LR[key];
  if (!table)
    throw new InvalidArgumentError(
      'arch',
      `no official learning rates for ${arch} @${imageSize} (have ${Object.keys(DATASET_LR).join(', ')})`,
    );
  const lr = table[dataset];
  if (lr === undefined) throw new InvalidArgumentError('dataset', `no official learning rate for ${JSON.stringify(dataset)}`);
  return lr;
}
