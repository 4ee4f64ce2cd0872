/**
 * Test helper: single-op (or small) graphs with random trainable initializers and a random-weighted
 * sum as the loss, checked against finite differences.
 */
import type { OnnxDataType } from '@diffmix/onnx';
import * as ort from 'onnxruntime-node';
import { Graph, type Tensor, tensorOf } from '../graph/graph.js';
import { inferShapes } from '../graph/infer.js';
import { checkGradients, type FdCheckResult } from './fdcheck.js';

export interface ParamOptions {
  /** Not differentiated (a constant input of the op). */
  frozen?: boolean;
  /** Values in [lo, hi] (default [−1, 1]). */
  range?: [number, number];
  /** Explicit values. */
  values?: number[];
  type?: OnnxDataType;
}

let seed = 1;
function rand(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296;
}

export interface FdCase {
  result: FdCheckResult;
  graph: Graph;
}

/** Builds `loss = Σ R ⊙ f(params)` and checks d loss / d params by finite differences. */
export async function fdCase(
  type: 'float32' | 'float64',
  build: (g: Graph, p: (name: string, dims: number[], o?: ParamOptions) => string) => string,
  options: { eps?: number; maxElements?: number } = {},
): Promise<FdCase> {
  const g = new Graph('fd');
  const wrt: string[] = [];
  const p = (name: string, dims: number[], o: ParamOptions = {}) => {
    const t = o.type ?? type;
    const [lo, hi] = o.range ?? [-1, 1];
    const n = dims.reduce((a, b) => a * b, 1);
    const values = o.values ?? Array.from({ length: n }, () => lo + (hi - lo) * rand());
    g.addInitializer(name, tensorOf(t, dims, values) as Tensor);
    if (!o.frozen) wrt.push(name);
    return name;
  };
  const y = build(g, p);
  const shape = inferShapes(g).get(y)?.shape;
  if (!shape?.every((d) => typeof d === 'number')) throw new Error(`fdCase: static shape of ${y} unknown`);
  const dims = shape as number[];
  const r = g.addInitializer(
    'R',
    tensorOf(
      type,
      dims,
      Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1),
    ),
  );
  const loss = g.node('ReduceSum', [g.node('Mul', [y, r])], { keepdims: 0 }, { output: 'loss' });
  g.addOutput(loss, type, []);
  const result = await checkGradients(ort as never, g, { loss, wrt, ...options });
  return { result, graph: g };
}
