/**
 * torch.optim.SGD and torch.optim.AdamW as tfjs ops, one tensor op per torch op (float32 throughout),
 * with the slot names of `@diffmix/ort-train`'s optimisers (`momentum_buffer/<key>`, `exp_avg/<key>`,
 * `exp_avg_sq/<key>`), so optimiser state moves between the engines.
 *
 * - SGD: d = g + wd·p; buf = d on the first step (torch clones the first gradient into the buffer),
 *   else momentum·buf + (1 − dampening)·d; d = nesterov ? d + momentum·buf : buf; p ← p − lr·d.
 * - AdamW: p ← p·(1 − lr·wd); m ← m + (1 − β1)(g − m); v ← β2·v + (1 − β2)·g²;
 *   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps).
 *
 * Must run inside `tf.tidy`: the returned tensors are new, the caller disposes the old ones.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { OptimizerSpec } from '../types.js';

export const SLOT_NAMES = { sgd: ['momentum_buffer'], adamw: ['exp_avg', 'exp_avg_sq'] } as const;

export interface UpdateResult {
  param: tf.Tensor;
  /** New slot tensors by slot name. */
  slots: Map<string, tf.Tensor>;
}

/**
 * One update of one parameter. `slots` holds this parameter's current slot tensors (absent on the
 * first step); `step` is the 1-based count including this update.
 */
export function updateParam(
  spec: OptimizerSpec,
  lr: number,
  step: number,
  p: tf.Tensor,
  g: tf.Tensor,
  slots: ReadonlyMap<string, tf.Tensor>,
): UpdateResult {
  const out = new Map<string, tf.Tensor>();
  if (spec.kind === 'sgd') {
    let d = spec.weightDecay !== 0 ? tf.add(g, tf.mul(p, spec.weightDecay)) : g;
    if (spec.momentum !== 0) {
      const prev = slots.get('momentum_buffer');
      const buf = prev ? tf.add(tf.mul(prev, spec.momentum), d) : tf.clone(d);
      out.set('momentum_buffer', buf);
      d = spec.nesterov ? tf.add(d, tf.mul(buf, spec.momentum)) : buf;
    }
    return { param: tf.sub(p, tf.mul(d, lr)), slots: out };
  }
  const [beta1, beta2] = spec.betas ?? [0.9, 0.999];
  const eps = spec.eps ?? 1e-8;
  const decayed = spec.weightDecay !== 0 ? tf.mul(p, 1 - lr * spec.weightDecay) : p;
  const m0 = slots.get('exp_avg') ?? tf.zerosLike(p);
  const v0 = slots.get('exp_avg_sq') ?? tf.zerosLike(p);
  const m = tf.add(m0, tf.mul(tf.sub(g, m0), 1 - beta1));
  const v = tf.add(tf.mul(v0, beta2), tf.mul(tf.mul(g, 1 - beta2), g));
  out.set('exp_avg', m);
  out.set('exp_avg_sq', v);
  const bc1 = 1 - beta1 ** step;
  const bc2Sqrt = Math.sqrt(1 - beta2 ** step);
  const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), eps);
  return { param: tf.sub(decayed, tf.div(tf.mul(m, lr / bc1), denom)), slots: out };
}
