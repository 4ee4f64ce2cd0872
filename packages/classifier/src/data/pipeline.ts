/**
 * The training and evaluation data streams.
 *
 * Determinism: everything random is a function of (seed, epoch, position), never of timing or
 * decode concurrency, so a run resumed from a checkpoint at any batch boundary sees exactly the
 * batches it would have seen:
 * - epoch order: `Rng(seed).split('order').split(epoch)` shuffles the real indices;
 * - sample at (epoch, position): `Rng(seed).split('sample').split(epoch).split(position)` and its
 *   children `replace` (synthetic replacement), `cutmix`, `augment` and `augment-partner` (crop / flip);
 * - batch b of an epoch: `Rng(seed).split('mixup').split(epoch).split(b)`.
 *
 * Parallelism: images are decoded by `createImageLoader` (sharp tasks on libuv's thread pool), with
 * `prefetch` ≥ two batches in flight, so the next batch decodes while the engine runs a step (the
 * ORT session runs off the main thread too). Incomplete last batches are dropped in training (as the
 * official DataLoader's `drop_last=True`), kept in evaluation.
 */
import { type DatasetRecord, densify, InvalidArgumentError, oneHot, Rng, smoothLabel } from '@diffmix/core';
import { createImageLoader, decodeRecord, type SyntheticRecord, toFloatCHW } from '@diffmix/datasets';
import {
  applyMixup,
  type CutMixConfig,
  type CutMixDraw,
  drawCutMix,
  drawMixup,
  type MixupConfig,
  mixLabels,
  pasteBox,
} from './mix.js';
import type { SyntheticReplacer } from './replacement.js';
import { type ResolvedTransform, testSteps, trainAugment, trainDecodeSteps } from './transforms.js';

export interface TrainPlanOptions {
  train: readonly DatasetRecord[];
  numClasses: number;
  seed: number;
  batchSize: number;
  transform: ResolvedTransform;
  replacement?: SyntheticReplacer;
  cutmix?: CutMixConfig;
  mixup?: MixupConfig;
  /** Label smoothing ε of the official loss (default 0.1); `target = ε/(C−1) + (1−ε)·y`. */
  labelSmoothing?: number;
  /** Decode concurrency (default: the loader's, min(cores, libuv pool)). */
  concurrency?: number;
}

/** What one position of an epoch holds, before decoding. */
export interface PlannedSample {
  /** The real index this position visits. */
  realIndex: number;
  source: 'real' | 'synthetic';
  record: DatasetRecord;
  /** Dense label before mixing and smoothing. */
  label: Float32Array;
  cutmix: (CutMixDraw & { record: DatasetRecord; label: Float32Array }) | null;
}

export interface Batch {
  epoch: number;
  /** Batch index within the epoch. */
  index: number;
  n: number;
  images: Float32Array;
  /** Mixed and smoothed targets, `[n, C]`. */
  targets: Float32Array;
  /** How many samples came from the synthetic set. */
  synthetic: number;
}

function syntheticAsRecord(s: SyntheticRecord): DatasetRecord {
  return { id: s.id, path: s.path, label: s.targetClass };
}

export class TrainPlan {
  readonly stepsPerEpoch: number;
  private readonly root: Rng;
  private readonly eps: number;

  constructor(readonly options: TrainPlanOptions) {
    const { train, batchSize, numClasses } = options;
    if (!Number.isInteger(batchSize) || batchSize < 2)
      throw new InvalidArgumentError('batchSize', `must be an integer ≥ 2, got ${batchSize}`);
    if (train.length < batchSize) {
      throw new InvalidArgumentError(
        'batchSize',
        `${batchSize} is larger than the training set (${train.length} images): no complete batch`,
      );
    }
    train.forEach((r, i) => {
      if (!Number.isInteger(r.label) || r.label < 0 || r.label >= numClasses) {
        throw new InvalidArgumentError(
          'dataset.train',
          `record ${i} (${JSON.stringify(r.id)}) has label ${r.label}, outside 0..${numClasses - 1}`,
        );
      }
    });
    this.eps = options.labelSmoothing ?? 0.1;
    if (!(this.eps >= 0 && this.eps < 1)) throw new InvalidArgumentError('labelSmoothing', `must be in [0, 1), got ${this.eps}`);
    this.stepsPerEpoch = Math.floor(train.length / batchSize);
    this.root = Rng.fromSeed(options.seed);
  }

  order(epoch: number): number[] {
    const out = Array.from({ length: this.options.train.length }, (_, i) => i);
    this.root.split('order').split(epoch).shuffleInPlace(out);
    return out;
  }

  private sampleRng(epoch: number, position: number): Rng {
    return this.root.split('sample').split(epoch).split(position);
  }

  /** The plan of every position of an epoch from `fromPosition` (inclusive) to the last complete batch. */
  plan(epoch: number, fromPosition = 0): PlannedSample[] {
    const { train, numClasses, replacement, cutmix, transform } = this.options;
    const order = this.order(epoch);
    const end = this.stepsPerEpoch * this.options.batchSize;
    const out: PlannedSample[] = [];
    for (let pos = fromPosition; pos < end; pos++) {
      const rng = this.sampleRng(epoch, pos);
      const realIndex = order[pos] as number;
      const real = train[realIndex] as DatasetRecord;
      const syn = replacement ? replacement.pick(rng.split('replace')) : null;
      const record = syn ? syntheticAsRecord(syn) : real;
      const label = syn && replacement ? replacement.label(syn) : densify(oneHot(real.label), numClasses);
      let mix: PlannedSample['cutmix'] = null;
      if (cutmix) {
        const d = drawCutMix(rng.split('cutmix'), cutmix, train.length, transform.size, transform.size);
        if (d) {
          const partner = train[d.partner] as DatasetRecord;
          mix = { ...d, record: partner, label: densify(oneHot(partner.label), numClasses) };
        }
      }
      out.push({ realIndex, source: syn ? 'synthetic' : 'real', record, label, cutmix: mix });
    }
    return out;
  }

  /**
   * The batches of an epoch from batch `fromBatch`, decoded ahead of the consumer. Break out of the
   * loop (or abort `signal`) to stop the prefetch.
   */
  async *batches(epoch: number, fromBatch = 0, signal?: AbortSignal): AsyncGenerator<Batch, void, undefined> {
    const { batchSize, transform, numClasses, mixup } = this.options;
    const start = fromBatch * batchSize;
    const items = this.plan(epoch, start);
    const steps = trainDecodeSteps(transform);
    const s = transform.size;
    const imageLen = 3 * s * s;
    const loader = createImageLoader<Float32Array>({
      ...(this.options.concurrency !== undefined ? { concurrency: this.options.concurrency } : {}),
      prefetch: Math.max(2 * batchSize, this.options.concurrency ?? 1),
      transform: steps,
      map: async (image, _record, index) => {
        const rng = this.sampleRng(epoch, start + index);
        const x = toFloatCHW(trainAugment(image, transform, rng.split('augment')), transform.normalization);
        const item = items[index] as PlannedSample;
        if (item.cutmix) {
          const partner = await decodeRecord(item.cutmix.record, { steps });
          const px = trainAugment(partner, transform, rng.split('augment-partner'));
          pasteBox(x, toFloatCHW(px, transform.normalization), s, s, item.cutmix);
        }
        return x;
      },
      ...(signal ? { signal } : {}),
    });
    let b = fromBatch;
    let images: Float32Array = new Float32Array(batchSize * imageLen);
    let labels: Float32Array[] = [];
    let synthetic = 0;
    for await (const loaded of loader.load(items.map((i) => i.record))) {
      const item = items[loaded.index] as PlannedSample;
      images.set(loaded.value, labels.length * imageLen);
      labels.push(item.cutmix ? mixLabels(item.label, item.cutmix.label, item.cutmix.lambda) : item.label);
      if (item.source === 'synthetic') synthetic++;
      if (labels.length === batchSize) {
        let targets: Float32Array = new Float32Array(batchSize * numClasses);
        for (const [i, l] of labels.entries()) targets.set(l, i * numClasses);
        if (mixup) {
          const d = drawMixup(this.root.split('mixup').split(epoch).split(b), mixup, batchSize);
          if (d) ({ images, targets } = applyMixup(images, targets, batchSize, d));
        }
        for (let i = 0; i < batchSize; i++) {
          targets.set(smoothLabel(targets.subarray(i * numClasses, (i + 1) * numClasses), this.eps, 'official'), i * numClasses);
        }
        yield { epoch, index: b, n: batchSize, images, targets, synthetic };
        b++;
        images = new Float32Array(batchSize * imageLen);
        labels = [];
        synthetic = 0;
      }
    }
  }
}

export interface EvalBatch {
  n: number;
  images: Float32Array;
  labels: Int32Array;
}

/** Test batches (square resize → center crop → normalise), the last one possibly smaller. */
export async function* evalBatches(
  records: readonly DatasetRecord[],
  transform: ResolvedTransform,
  batchSize: number,
  options: { concurrency?: number; signal?: AbortSignal } = {},
): AsyncGenerator<EvalBatch, void, undefined> {
  const s = transform.size;
  const imageLen = 3 * s * s;
  const loader = createImageLoader<Float32Array>({
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    prefetch: Math.max(2 * batchSize, options.concurrency ?? 1),
    transform: testSteps(transform),
    map: (image) => toFloatCHW(image, transform.normalization),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  let images = new Float32Array(batchSize * imageLen);
  let labels: number[] = [];
  for await (const loaded of loader.load(records)) {
    images.set(loaded.value, labels.length * imageLen);
    labels.push(loaded.record.label);
    if (labels.length === batchSize) {
      yield { n: batchSize, images, labels: Int32Array.from(labels) };
      images = new Float32Array(batchSize * imageLen);
      labels = [];
    }
  }
  if (labels.length > 0)
    yield { n: labels.length, images: images.slice(0, labels.length * imageLen), labels: Int32Array.from(labels) };
}
