/**
 * Training losses as ONNX subgraph builders (logits / predictions + a target tensor → a scalar loss
 * value) and plain-TypeScript float64 references (with the gradient w.r.t. the logits, for tests and
 * for hand-written step functions).
 *
 * Soft-target cross-entropy with label smoothing, over C classes, batch mean:
 *   t = floor + (1 − ε)·y,  loss = mean_b( −Σ_c t_bc · log_softmax(z_b)_c )
 * with floor = ε/(C−1) (`official`: the Diff-Mix code; every class gets ε/(C−1), the true one too, so
 * a one-hot target sums to 1 + ε/(C−1)) or ε/C (`torch`: `F.cross_entropy(label_smoothing=ε)`).
 * Targets are dense [N, C] rows (one-hot or soft, e.g. `densify` of a Diff-Mix soft label).
 */
import { InvalidArgumentError, type LabelSmoothingMode } from '@diffmix/core';
import type { Graph } from '../graph/graph.js';
import { attr, GraphBuilder } from '../models/builder.js';

const asBuilder = (g: GraphBuilder | Graph): GraphBuilder => (g instanceof GraphBuilder ? g : new GraphBuilder(g));

export interface CrossEntropyOptions {
  /** Label smoothing ε in [0, 1) (default 0). */
  epsilon?: number;
  /** How ε is spread (default `official`). */
  mode?: LabelSmoothingMode;
}

function smoothing(numClasses: number, options: CrossEntropyOptions): { floor: number; keep: number } {
  const eps = options.epsilon ?? 0;
  const mode = options.mode ?? 'official';
  if (!(eps >= 0 && eps < 1)) throw new InvalidArgumentError('epsilon', `must be in [0, 1), got ${eps}`);
  if (!Number.isInteger(numClasses) || numClasses < 2)
    throw new InvalidArgumentError('numClasses', `must be an integer ≥ 2, got ${numClasses}`);
  return { floor: eps === 0 ? 0 : mode === 'official' ? eps / (numClasses - 1) : eps / numClasses, keep: 1 - eps };
}

/**
 * Appends soft-target cross-entropy to `graph` (a `Graph`, or the older `GraphBuilder` facade): `logits` [N, C] and `target` [N, C] (float32 value names)
 * → the name of a scalar (shape []) loss. Ops: LogSoftmax, Mul, Add, ReduceSum, ReduceMean.
 */
export function crossEntropyGraph(
  graph: GraphBuilder | Graph,
  logits: string,
  target: string,
  numClasses: number,
  options: CrossEntropyOptions = {},
): string {
  const g = asBuilder(graph);
  const { floor, keep } = smoothing(numClasses, options);
  let t = target;
  if (floor !== 0 || keep !== 1) {
    t = g.op(
      'Add',
      [g.op('Mul', [target, g.constF32('ce_keep', [keep], [])], {}, 'ce'), g.constF32('ce_floor', [floor], [])],
      {},
      'ce_target',
    );
  }
  const logp = g.op('LogSoftmax', [logits], { axis: attr.int(1) }, 'ce_logp');
  const rows = g.op(
    'ReduceSum',
    [g.op('Mul', [t, logp], {}, 'ce'), g.constI64('ce_axes', [1])],
    { keepdims: attr.int(0) },
    'ce_rows',
  );
  const mean = g.op('ReduceMean', [rows], { keepdims: attr.int(0) }, 'ce_mean');
  return g.op('Mul', [mean, g.constF32('ce_neg', [-1], [])], {}, 'loss');
}

/** Appends mean squared error: mean over every element of (pred − target)² → scalar loss name. */
export function mseGraph(graph: GraphBuilder | Graph, pred: string, target: string): string {
  const g = asBuilder(graph);
  const d = g.op('Sub', [pred, target], {}, 'mse');
  return g.op('ReduceMean', [g.op('Mul', [d, d], {}, 'mse')], { keepdims: attr.int(0) }, 'loss');
}

export interface LossWithGrad {
  loss: number;
  /** d loss / d input, same layout as the input. */
  grad: Float32Array;
}

/** Reference soft-target cross-entropy (float64) and its gradient w.r.t. the logits [N, C]. */
export function crossEntropy(
  logits: ArrayLike<number>,
  target: ArrayLike<number>,
  numClasses: number,
  options: CrossEntropyOptions = {},
): LossWithGrad {
  const { floor, keep } = smoothing(numClasses, options);
  const c = numClasses;
  if (logits.length % c !== 0 || target.length !== logits.length) {
    throw new InvalidArgumentError('target', `logits (${logits.length}) and target (${target.length}) must both be [N, ${c}]`);
  }
  const n = logits.length / c;
  const grad = new Float32Array(logits.length);
  let total = 0;
  const logp = new Float64Array(c);
  for (let b = 0; b < n; b++) {
    let max = -Infinity;
    for (let j = 0; j < c; j++) max = Math.max(max, logits[b * c + j] as number);
    let sum = 0;
    for (let j = 0; j < c; j++) sum += Math.exp((logits[b * c + j] as number) - max);
    const lse = max + Math.log(sum);
    let tsum = 0;
    for (let j = 0; j < c; j++) {
      logp[j] = (logits[b * c + j] as number) - lse;
      const t = floor + keep * (target[b * c + j] as number);
      tsum += t;
      total -= t * (logp[j] as number);
    }
    // d/dz_j (−Σ t_k log p_k) = p_j·Σt − t_j
    for (let j = 0; j < c; j++) {
      const t = floor + keep * (target[b * c + j] as number);
      grad[b * c + j] = (Math.exp(logp[j] as number) * tsum - t) / n;
    }
  }
  return { loss: total / n, grad };
}

/** Reference mean squared error (float64) and its gradient w.r.t. `pred`. */
export function mse(pred: ArrayLike<number>, target: ArrayLike<number>): LossWithGrad {
  if (pred.length !== target.length) throw new InvalidArgumentError('target', `length ${target.length} ≠ ${pred.length}`);
  const n = pred.length;
  const grad = new Float32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const d = (pred[i] as number) - (target[i] as number);
    total += d * d;
    grad[i] = (2 * d) / n;
  }
  return { loss: total / n, grad };
}

/** Dense one-hot rows [N, C] from class indices. */
export function oneHotRows(labels: ArrayLike<number | bigint>, numClasses: number): Float32Array {
  const out = new Float32Array(labels.length * numClasses);
  for (let i = 0; i < labels.length; i++) {
    const k = Number(labels[i]);
    if (!Number.isInteger(k) || k < 0 || k >= numClasses)
      throw new InvalidArgumentError('labels', `label ${k} is not in [0, ${numClasses})`);
    out[i * numClasses + k] = 1;
  }
  return out;
}
