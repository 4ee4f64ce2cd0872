/**
 * Optimisers over named Float32Array parameters, updated in place from gradients, reproducing
 * torch.optim's single-tensor (CPU, `foreach=False`) update rules operation by operation in float32
 * (each tensor op rounded to float32 with `Math.fround`; fused multiply-adds — torch's vectorised
 * `add(alpha)` / `lerp` — rounded once, since a float32×float32 product is exact in float64).
 *
 * - {@link SGD}: `torch.optim.SGD` (momentum, dampening, nesterov, weight decay added to the
 *   gradient): d = g + wd·p; buf = d (first step) else momentum·buf + (1 − dampening)·d;
 *   d = nesterov ? d + momentum·buf : buf; p −= lr·d.
 * - {@link AdamW}: `torch.optim.AdamW` (decoupled weight decay p *= 1 − lr·wd, bias correction,
 *   eps outside the square root, no amsgrad): m = lerp(m, g, 1 − β1); v = β2·v + (1 − β2)·g²;
 *   p += −(lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + eps).
 *
 * Parameter groups carry their own lr / weight decay (and momentum / betas / eps); `initialLr` is
 * what schedules scale ({@link Optimizer.setLrFactor}), as torch's LambdaLR does with `initial_lr`.
 * Parameters without a gradient in a step are skipped (torch skips `p.grad is None`).
 */
import { InvalidArgumentError } from '@diffmix/core';

const f = Math.fround;

export interface ParamGroupOptions {
  /** Parameter names in this group. */
  params: readonly string[];
  lr?: number;
  weightDecay?: number;
  /** SGD */
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** AdamW */
  betas?: [number, number];
  eps?: number;
}

export interface ParamGroup {
  params: string[];
  lr: number;
  initialLr: number;
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  betas: [number, number];
  eps: number;
}

export type OptimizerKind = 'sgd' | 'adamw';

/** The JSON half of an optimiser checkpoint (the tensors go to safetensors). */
export interface OptimizerStateJson {
  kind: OptimizerKind;
  groups: ParamGroup[];
  /** Per-parameter step counts (AdamW bias correction). */
  steps: Record<string, number>;
}

export type ParamMap = ReadonlyMap<string, Float32Array>;

export abstract class Optimizer {
  abstract readonly kind: OptimizerKind;
  readonly groups: ParamGroup[];
  /** State tensors by slot and parameter name. */
  protected readonly slots = new Map<string, Map<string, Float32Array>>();
  protected readonly steps = new Map<string, number>();

  constructor(groups: readonly ParamGroupOptions[], defaults: Omit<ParamGroupOptions, 'params'>) {
    const seen = new Set<string>();
    this.groups = groups.map((g, i) => {
      for (const p of g.params) {
        if (seen.has(p)) throw new InvalidArgumentError(`groups[${i}]`, `parameter ${JSON.stringify(p)} is in two groups`);
        seen.add(p);
      }
      const lr = g.lr ?? defaults.lr;
      if (lr === undefined || !(lr >= 0)) throw new InvalidArgumentError(`groups[${i}].lr`, `must be ≥ 0, got ${lr}`);
      return {
        params: [...g.params],
        lr,
        initialLr: lr,
        weightDecay: g.weightDecay ?? defaults.weightDecay ?? 0,
        momentum: g.momentum ?? defaults.momentum ?? 0,
        dampening: g.dampening ?? defaults.dampening ?? 0,
        nesterov: g.nesterov ?? defaults.nesterov ?? false,
        betas: g.betas ?? defaults.betas ?? [0.9, 0.999],
        eps: g.eps ?? defaults.eps ?? 1e-8,
      };
    });
  }

  /** Sets every group's lr to initialLr · factor (what an LR schedule does each step). */
  setLrFactor(factor: number): void {
    for (const g of this.groups) g.lr = g.initialLr * factor;
  }

  /** One update of every parameter that has a gradient; `params` are modified in place. */
  step(params: ParamMap, grads: ParamMap): void {
    for (const group of this.groups) {
      for (const name of group.params) {
        const g = grads.get(name);
        if (!g) continue;
        const p = params.get(name);
        if (!p) throw new InvalidArgumentError('params', `no parameter ${JSON.stringify(name)}`);
        if (p.length !== g.length)
          throw new InvalidArgumentError('grads', `${name}: gradient has ${g.length} values, parameter ${p.length}`);
        this.steps.set(name, (this.steps.get(name) ?? 0) + 1);
        this.update(group, name, p, g);
      }
    }
  }

  protected abstract update(group: ParamGroup, name: string, p: Float32Array, g: Float32Array): void;

  protected slot(slot: string, name: string, length: number): { data: Float32Array; fresh: boolean } {
    let m = this.slots.get(slot);
    if (!m) {
      m = new Map();
      this.slots.set(slot, m);
    }
    const have = m.get(name);
    if (have) return { data: have, fresh: false };
    const data = new Float32Array(length);
    m.set(name, data);
    return { data, fresh: true };
  }

  /** State tensors keyed `<slot>/<parameter>` (e.g. `momentum_buffer/fc.weight`). */
  stateTensors(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [slot, m] of this.slots) for (const [name, t] of m) out.set(`${slot}/${name}`, t);
    return out;
  }

  stateJson(): OptimizerStateJson {
    return {
      kind: this.kind,
      groups: this.groups.map((g) => ({ ...g, params: [...g.params], betas: [...g.betas] as [number, number] })),
      steps: Object.fromEntries(this.steps),
    };
  }

  /** Restores {@link stateJson} + {@link stateTensors} (copies the tensors). */
  loadState(json: OptimizerStateJson, tensors: ReadonlyMap<string, Float32Array>): void {
    if (json.kind !== this.kind)
      throw new InvalidArgumentError('state.kind', `checkpoint holds ${json.kind} state, this optimiser is ${this.kind}`);
    if (json.groups.length !== this.groups.length) {
      throw new InvalidArgumentError(
        'state.groups',
        `checkpoint has ${json.groups.length} groups, the optimiser ${this.groups.length}`,
      );
    }
    json.groups.forEach((g, i) => {
      const mine = this.groups[i] as ParamGroup;
      if (g.params.join('\u0000') !== mine.params.join('\u0000')) {
        throw new InvalidArgumentError(`state.groups[${i}]`, 'parameter names differ from the optimiser’s group');
      }
      Object.assign(mine, { ...g, params: [...g.params], betas: [...g.betas] });
    });
    this.steps.clear();
    for (const [k, v] of Object.entries(json.steps)) this.steps.set(k, v);
    this.slots.clear();
    for (const [key, t] of tensors) {
      const cut = key.indexOf('/');
      if (cut < 0) throw new InvalidArgumentError('state.tensors', `bad key ${JSON.stringify(key)}`);
      const slot = key.slice(0, cut);
      let m = this.slots.get(slot);
      if (!m) {
        m = new Map();
        this.slots.set(slot, m);
      }
      m.set(key.slice(cut + 1), Float32Array.from(t));
    }
  }
}

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

/** torch.optim.SGD (see the module comment). `groups` may be parameter names (one group) or groups. */
export class SGD extends Optimizer {
  readonly kind = 'sgd';

  constructor(groups: readonly string[] | readonly ParamGroupOptions[], options: SGDOptions) {
    super(normalise(groups), options);
    for (const g of this.groups) {
      if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) {
        throw new InvalidArgumentError('nesterov', 'requires a momentum and zero dampening');
      }
    }
  }

  protected update(group: ParamGroup, name: string, p: Float32Array, g: Float32Array): void {
    const wd = f(group.weightDecay);
    const mom = f(group.momentum);
    const damp = f(1 - group.dampening);
    const negLr = f(-group.lr);
    const buf = group.momentum !== 0 ? this.slot('momentum_buffer', name, p.length) : undefined;
    const n = p.length;
    for (let i = 0; i < n; i++) {
      const pi = p[i] as number;
      let d = wd !== 0 ? f((g[i] as number) + wd * pi) : (g[i] as number);
      if (buf) {
        const b = buf.fresh ? d : f(f((buf.data[i] as number) * mom) + damp * d);
        buf.data[i] = b;
        d = group.nesterov ? f(d + mom * b) : b;
      }
      p[i] = f(pi + negLr * d);
    }
  }
}

export interface AdamWOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** torch.optim.AdamW (defaults lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01). */
export class AdamW extends Optimizer {
  readonly kind = 'adamw';

  constructor(groups: readonly string[] | readonly ParamGroupOptions[], options: AdamWOptions = {}) {
    super(normalise(groups), { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.01, ...options });
  }

  protected update(group: ParamGroup, name: string, p: Float32Array, g: Float32Array): void {
    const t = this.steps.get(name) ?? 1;
    const [beta1, beta2] = group.betas;
    const decay = f(1 - group.lr * group.weightDecay);
    const w1 = f(1 - beta1);
    const b2 = f(beta2);
    const w2 = f(1 - beta2);
    const bc1 = 1 - beta1 ** t;
    const bc2Sqrt = f(Math.sqrt(1 - beta2 ** t));
    const negStep = f(-(group.lr / bc1));
    const eps = f(group.eps);
    const m = this.slot('exp_avg', name, p.length).data;
    const v = this.slot('exp_avg_sq', name, p.length).data;
    const n = p.length;
    for (let i = 0; i < n; i++) {
      let pi = p[i] as number;
      if (group.weightDecay !== 0) pi = f(pi * decay);
      const gi = g[i] as number;
      const mi = f((m[i] as number) + w1 * f(gi - (m[i] as number)));
      const vi = f(f((v[i] as number) * b2) + f(f(w2 * gi) * gi));
      m[i] = mi;
      v[i] = vi;
      const denom = f(f(f(Math.sqrt(vi)) / bc2Sqrt) + eps);
      p[i] = f(pi + f(f(negStep * mi) / denom));
    }
  }
}

function normalise(groups: readonly string[] | readonly ParamGroupOptions[]): ParamGroupOptions[] {
  if (groups.length > 0 && typeof groups[0] === 'string') return [{ params: groups as readonly string[] }];
  return [...(groups as readonly ParamGroupOptions[])];
}

/**
 * torch.nn.utils.clip_grad_norm_: total norm = the `normType`-norm of the per-tensor norms (2 by
 * default, `Infinity` for the max norm), every gradient scaled in place by min(1, maxNorm /
 * (total + 1e-6)). Returns the total norm before clipping.
 */
export function clipGradNorm(grads: Iterable<Float32Array>, maxNorm: number, normType = 2): number {
  const list = [...grads];
  let total: number;
  if (normType === Infinity) {
    total = 0;
    for (const g of list) for (let i = 0; i < g.length; i++) total = Math.max(total, Math.abs(g[i] as number));
  } else {
    let acc = 0;
    for (const g of list) {
      let s = 0;
      for (let i = 0; i < g.length; i++) s += Math.abs(g[i] as number) ** normType;
      acc += f(s ** (1 / normType)) ** normType;
    }
    total = f(acc ** (1 / normType));
  }
  const coef = Math.min(f(maxNorm / (total + 1e-6)), 1);
  if (coef < 1) for (const g of list) for (let i = 0; i < g.length; i++) g[i] = f((g[i] as number) * coef);
  return total;
}
