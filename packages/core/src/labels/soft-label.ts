/**
 * Sparse soft labels and the label maths of Diff-Mix.
 *
 * A soft label is a list of `[classId, weight]` pairs. Synthetic images carry at most two
 * classes, so the sparse form keeps manifests small; `densify` turns it into a vector for the loss.
 */
import { InvalidArgumentError } from '../errors/index.js';

export type SoftLabel = Array<[classId: number, weight: number]>;

function checkClassId(id: number, numClasses?: number): void {
  if (!Number.isInteger(id) || id < 0) throw new InvalidArgumentError('classId', `must be a non-negative integer, got ${id}`);
  if (numClasses !== undefined && id >= numClasses) {
    throw new InvalidArgumentError('classId', `${id} is out of range for ${numClasses} classes`);
  }
}

/** `[[c, 1]]`. */
export function oneHot(classId: number): SoftLabel {
  checkClassId(classId);
  return [[classId, 1]];
}

/**
 * Merges duplicate class ids (summing their weights), drops exact zeros and sorts by class id,
 * so that equal labels have one representation (and one hash).
 */
export function canonicalSoftLabel(label: SoftLabel): SoftLabel {
  const sums = new Map<number, number>();
  for (const [id, w] of label) {
    checkClassId(id);
    if (!Number.isFinite(w)) throw new InvalidArgumentError('weight', `class ${id} has non-finite weight ${w}`);
    sums.set(id, (sums.get(id) ?? 0) + w);
  }
  return [...sums.entries()].filter(([, w]) => w !== 0).sort((a, b) => a[0] - b[0]);
}

/** Dense float32 vector of length `numClasses`; throws if a class id is out of range. */
export function densify(label: SoftLabel, numClasses: number): Float32Array {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new InvalidArgumentError('numClasses', `must be a positive integer, got ${numClasses}`);
  }
  const out = new Float32Array(numClasses);
  for (const [id, w] of label) {
    checkClassId(id, numClasses);
    out[id] = (out[id] ?? 0) + w;
  }
  return out;
}

/** Sum of the weights (1 for one-hot, `c` for a Diff-Mix label with scaler c). */
export function labelMass(label: SoftLabel): number {
  let s = 0;
  for (const [, w] of label) s += w;
  return s;
}

export interface AnnotateOptions {
  /** img2img strength s in [0, 1]. */
  strength: number;
  /** Exponent γ > 0: 0.5 few-shot, 0.8 conventional (official code). */
  gamma: number;
  /** Scaler c in (0, 1]: 0.9 in the official head code, 1.0 paper-era / long-tail. */
  scaler?: number;
  sourceClass: number;
  targetClass: number;
}

/**
 * The Diff-Mix annotation: `y = c·(1 − s^γ)·onehot(src) + c·s^γ·onehot(tgt)`.
 *
 * When source and target coincide (intra-class strategies, or a Diff-Mix draw that picked its own
 * class) the two terms merge into `[[src, c]]`. Weights are computed in float64.
 */
export function annotate({ strength, gamma, scaler = 1, sourceClass, targetClass }: AnnotateOptions): SoftLabel {
  if (!(strength >= 0 && strength <= 1)) throw new InvalidArgumentError('strength', `must be in [0, 1], got ${strength}`);
  if (!(gamma > 0) || !Number.isFinite(gamma)) throw new InvalidArgumentError('gamma', `must be > 0, got ${gamma}`);
  if (!(scaler > 0 && scaler <= 1)) throw new InvalidArgumentError('scaler', `must be in (0, 1], got ${scaler}`);
  checkClassId(sourceClass);
  checkClassId(targetClass);
  const toTarget = scaler * strength ** gamma;
  const toSource = scaler * (1 - strength ** gamma);
  return canonicalSoftLabel([
    [sourceClass, toSource],
    [targetClass, toTarget],
  ]);
}

/** `lam·a + (1 − lam)·b`: the label of a CutMix (lam = kept area) or Mixup sample. */
export function mixSoftLabels(a: SoftLabel, b: SoftLabel, lam: number): SoftLabel {
  if (!(lam >= 0 && lam <= 1)) throw new InvalidArgumentError('lam', `must be in [0, 1], got ${lam}`);
  return canonicalSoftLabel([
    ...a.map(([id, w]): [number, number] => [id, lam * w]),
    ...b.map(([id, w]): [number, number] => [id, (1 - lam) * w]),
  ]);
}

export type LabelSmoothingMode =
  /** Official Diff-Mix code: `target = ε/(C−1) + (1−ε)·y` (every class gets ε/(C−1), also the true one). */
  | 'official'
  /** PyTorch `CrossEntropyLoss(label_smoothing=ε)`: `target = ε/C + (1−ε)·y`. */
  | 'torch';

/**
 * Label smoothing over a dense (possibly soft) target.
 *
 * The official Diff-Mix loss adds ε/(C−1) to every entry, so a one-hot target sums to
 * `1 + ε/(C−1)`, and a Diff-Mix label with scaler c sums to `c(1−ε) + ε·C/(C−1)`: we reproduce that
 * exactly rather than renormalising, because the paper's numbers were obtained with it.
 */
export function smoothLabel(dense: Float32Array, epsilon: number, mode: LabelSmoothingMode = 'official'): Float32Array {
  const c = dense.length;
  if (!(epsilon >= 0 && epsilon < 1)) throw new InvalidArgumentError('epsilon', `must be in [0, 1), got ${epsilon}`);
  if (mode === 'official' && c < 2) throw new InvalidArgumentError('numClasses', 'official label smoothing needs at least 2 classes');
  const floor = mode === 'official' ? epsilon / (c - 1) : epsilon / c;
  const out = new Float32Array(c);
  for (let i = 0; i < c; i++) out[i] = floor + (1 - epsilon) * (dense[i] ?? 0);
  return out;
}
