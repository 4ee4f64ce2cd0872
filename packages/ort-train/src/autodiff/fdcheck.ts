/**
 * Finite-difference check of generated gradients: runs the training graph and the forward graph in
 * ONNX Runtime and compares each gradient element (or a sample of them) with a central difference
 * (L(θ + ε·e_i) − L(θ − ε·e_i)) / 2ε, plus one random direction over the whole tensor.
 */
import type { OnnxTensorData } from '@diffmix/onnx';
import { createGraphSession } from '../graph/convert.js';
import type { Graph, Tensor } from '../graph/graph.js';
import { buildGradientGraph } from './autodiff.js';
import { lowerForTraining } from './lower.js';

/** The part of onnxruntime-node used here. */
export interface OrtLike {
  InferenceSession: { create(buffer: Uint8Array, options?: object): Promise<OrtSessionLike> };
  Tensor: new (type: string, data: OnnxTensorData, dims: readonly number[]) => unknown;
}
interface OrtSessionLike {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: ArrayLike<number | bigint>; dims: readonly number[] }>>;
}

export interface FdCheckOptions {
  loss: string;
  wrt: readonly string[];
  /** Values of the graph inputs (and of wrt inputs). */
  feeds?: Record<string, Tensor>;
  /** Step (default 1e-6 for float64, 1e-2 for float32). */
  eps?: number;
  /** Elements checked one by one per tensor (a deterministic sample above this; default 64). */
  maxElements?: number;
}

export interface FdCheckResult {
  tensors: {
    name: string;
    maxAbsErr: number;
    maxAbsGrad: number;
    relErr: number;
    directional: { fd: number; analytic: number; relErr: number };
  }[];
  /** Worst `relErr` over the tensors (max |fd − grad| / max(max |grad|, 1e-12)). */
  worst: number;
}

const ORT_TYPE: Record<string, string> = { float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', bool: 'bool' };

function ortTensor(ort: OrtLike, t: Tensor): unknown {
  return new ort.Tensor(ORT_TYPE[t.type] ?? t.type, t.data, t.dims);
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

export async function checkGradients(ort: OrtLike, forward: Graph, options: FdCheckOptions): Promise<FdCheckResult> {
  const { loss, wrt } = options;
  const base = new Map<string, Tensor>();
  for (const w of wrt) {
    const t = forward.initializers.get(w) ?? options.feeds?.[w];
    if (!t) throw new Error(`no value for ${w}`);
    base.set(w, t);
  }
  const isF64 = [...base.values()].every((t) => t.type === 'float64');
  const eps = options.eps ?? (isF64 ? 1e-6 : 1e-2);
  const tg = buildGradientGraph(forward, { loss, wrt, wrtAsInputs: true, keepOutputs: false });
  const gradSession = (await createGraphSession(ort as never, tg.graph)) as OrtSessionLike;
  const fwd = forward.clone();
  fwd.initializersToInputs(wrt.filter((w) => fwd.initializers.has(w)));
  fwd.outputs = [{ name: loss }];
  lowerForTraining(fwd); // the same decomposition the training graph computes (training-mode BatchNorm…)
  fwd.pruneDeadNodes();
  const fwdSession = (await createGraphSession(ort as never, fwd)) as OrtSessionLike;
  const feedsFor = (over: Map<string, Tensor>, inputs: { name: string }[]) => {
    const f: Record<string, unknown> = {};
    for (const i of inputs) {
      const t = over.get(i.name) ?? options.feeds?.[i.name];
      if (!t) throw new Error(`no feed for input ${i.name}`);
      f[i.name] = ortTensor(ort, t);
    }
    return f;
  };
  const gradOut = await gradSession.run(feedsFor(base, tg.graph.inputs));
  const lossAt = async (over: Map<string, Tensor>) => {
    const r = await fwdSession.run(feedsFor(over, fwd.inputs));
    const v = r[loss];
    if (!v) throw new Error('no loss');
    return Array.from(v.data as ArrayLike<number>).reduce((a, b) => a + b, 0);
  };
  const tensors: FdCheckResult['tensors'] = [];
  const rand = rng(12345);
  for (const w of wrt) {
    const t = base.get(w) as Tensor;
    const g = Array.from(gradOut[tg.gradients[w] as string]?.data as ArrayLike<number>);
    const n = t.data.length;
    const max = options.maxElements ?? 64;
    const idx = n <= max ? [...Array(n).keys()] : Array.from({ length: max }, () => Math.floor(rand() * n));
    let maxAbsErr = 0;
    let maxAbsGrad = 0;
    for (const v of g) maxAbsGrad = Math.max(maxAbsGrad, Math.abs(v));
    const at = async (mutate: (d: Float64Array | Float32Array) => void) => {
      const d = (t.data as Float32Array | Float64Array).slice();
      mutate(d);
      return lossAt(new Map([...base, [w, { ...t, data: d }]]));
    };
    for (const i of idx) {
      const orig = (t.data as Float32Array)[i] as number;
      const lp = await at((d) => {
        d[i] = orig + eps;
      });
      const lm = await at((d) => {
        d[i] = orig - eps;
      });
      const fd = (lp - lm) / (2 * eps);
      maxAbsErr = Math.max(maxAbsErr, Math.abs(fd - (g[i] as number)));
    }
    const dir = Array.from({ length: n }, () => rand() * 2 - 1);
    const lp = await at((d) => {
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) + eps * (dir[i] as number);
    });
    const lm = await at((d) => {
      for (let i = 0; i < n; i++) d[i] = (d[i] as number) - eps * (dir[i] as number);
    });
    const fdDir = (lp - lm) / (2 * eps);
    const an = g.reduce((a, v, i) => a + v * (dir[i] as number), 0);
    tensors.push({
      name: w,
      maxAbsErr,
      maxAbsGrad,
      relErr: maxAbsErr / Math.max(maxAbsGrad, 1e-12),
      directional: { fd: fdDir, analytic: an, relErr: Math.abs(fdDir - an) / Math.max(Math.abs(an), 1e-12) },
    });
  }
  return { tensors, worst: Math.max(...tensors.map((t) => t.relErr)) };
}
