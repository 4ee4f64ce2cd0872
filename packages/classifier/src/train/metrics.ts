/** Evaluation maths on logits and labels: top-1, per-class accuracy, confusion matrix. */
import { InvalidArgumentError } from '@diffmix/core';

export interface EvalMetrics {
  /** Correct / total over the whole test set (what the paper reports). */
  top1: number;
  /** Accuracy of each class over its own test images; `null` for a class without test images. */
  perClass: Array<number | null>;
  /** Mean of the defined per-class accuracies (balanced accuracy). */
  meanPerClass: number;
  /** `confusion[true][predicted]` counts. */
  confusion: number[][];
  total: number;
}

/** Row-wise argmax of `[n, C]` logits (the first maximum on ties). */
export function argmax(logits: Float32Array, numClasses: number): Int32Array {
  if (logits.length % numClasses !== 0)
    throw new InvalidArgumentError('logits', `length ${logits.length} is not a multiple of ${numClasses}`);
  const n = logits.length / numClasses;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let v = logits[i * numClasses] as number;
    for (let c = 1; c < numClasses; c++) {
      const x = logits[i * numClasses + c] as number;
      if (x > v) {
        v = x;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

/** Accumulates predictions batch by batch. */
export class ConfusionMatrix {
  readonly counts: number[][];

  constructor(readonly numClasses: number) {
    if (!Number.isInteger(numClasses) || numClasses < 1)
      throw new InvalidArgumentError('numClasses', `must be a positive integer, got ${numClasses}`);
    this.counts = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  }

  add(labels: ArrayLike<number>, predictions: ArrayLike<number>): void {
    if (labels.length !== predictions.length) {
      throw new InvalidArgumentError('predictions', `${predictions.length} predictions for ${labels.length} labels`);
    }
    for (let i = 0; i < labels.length; i++) {
      const t = labels[i] as number;
      const p = predictions[i] as number;
      if (!(Number.isInteger(t) && t >= 0 && t < this.numClasses))
        throw new InvalidArgumentError('labels', `label ${t} at ${i} is outside 0..${this.numClasses - 1}`);
      if (!(Number.isInteger(p) && p >= 0 && p < this.numClasses))
        throw new InvalidArgumentError('predictions', `prediction ${p} at ${i} is outside 0..${this.numClasses - 1}`);
      (this.counts[t] as number[])[p] = ((this.counts[t] as number[])[p] as number) + 1;
    }
  }

  metrics(): EvalMetrics {
    let correct = 0;
    let total = 0;
    const perClass = this.counts.map((row, c) => {
      const n = row.reduce((a, b) => a + b, 0);
      correct += row[c] as number;
      total += n;
      return n === 0 ? null : (row[c] as number) / n;
    });
    const defined = perClass.filter((x): x is number => x !== null);
    return {
      top1: total === 0 ? 0 : correct / total,
      perClass,
      meanPerClass: defined.length === 0 ? 0 : defined.reduce((a, b) => a + b, 0) / defined.length,
      confusion: this.counts.map((r) => [...r]),
      total,
    };
  }
}

/** Metrics of `[n, C]` logits against integer labels. */
export function evalMetrics(logits: Float32Array, labels: ArrayLike<number>, numClasses: number): EvalMetrics {
  const m = new ConfusionMatrix(numClasses);
  m.add(labels, argmax(logits, numClasses));
  return m.metrics();
}
