/**
 * The context a gradient rule works in: the graph being extended, the node, the gradients of its
 * outputs, static type / shape information, and helpers (constants of the right element type,
 * cached `Shape` ops, broadcast reduction).
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { OnnxDataType } from '@diffmix/onnx';
import { type Dim, type Graph, type GraphNode, tensorOf, type ValueInfo } from '../graph/graph.js';

export const FLOAT_TYPES = new Set<OnnxDataType>(['float32', 'float64', 'float16', 'bfloat16']);

export const CAST_CODES: Partial<Record<OnnxDataType, number>> = {
  float32: 1,
  float64: 11,
  float16: 10,
  bfloat16: 16,
  int64: 7,
  int32: 6,
  bool: 9,
};

/** Choices between equivalent gradient formulations (see `GradientGraphOptions`). */
export interface GradSettings {
  /**
   * Conv weight gradient (group 1, 2-D, static shapes): `im2col` (default) — the im2col product as GEMMs
   * (per kernel offset over strided windows of X, or one GEMM over an explicit im2col for large outputs);
   * `swapped` — a convolution of the batch/channel-swapped X with dY (also used for groups and
   * dynamic shapes).
   */
  convWeightGradient?: 'im2col' | 'swapped';
  /**
   * MaxPool gradient: `windows` (default) — unfold the windows with a one-hot convolution, route dY to
   * the first maximum of each window, fold back with a ConvTranspose (ops every execution provider has);
   * `indices` — MaxPool's `Indices` output and a scatter (ONNX Runtime's WebGPU MaxPool has no
   * `Indices` output: "The Indices output is not supported yet", ORT 1.30).
   */
  maxPoolGradient?: 'windows' | 'indices';
}

export class GradContext {
  private readonly shapeCache = new Map<string, string>();
  private readonly sizeCache = new Map<string, string>();
  constructor(
    readonly g: Graph,
    readonly info: Map<string, ValueInfo>,
    readonly consts: Map<string, { type: OnnxDataType; dims: number[]; data: ArrayLike<number | bigint> }>,
    readonly settings: GradSettings = {},
  ) {}

  type(v: string): OnnxDataType {
    const t = this.info.get(v)?.type;
    if (!t) throw new InvalidArgumentError('graph', `autodiff: the element type of ${JSON.stringify(v)} is unknown`);
    return t;
  }
  shape(v: string): Dim[] | undefined {
    return this.info.get(v)?.shape;
  }
  staticShape(v: string): number[] | undefined {
    const s = this.shape(v);
    return s?.every((d) => typeof d === 'number') ? (s as number[]) : undefined;
  }
  rank(v: string, node: GraphNode): number {
    const s = this.shape(v);
    if (!s)
      throw new InvalidArgumentError(
        'graph',
        `autodiff: the rank of ${JSON.stringify(v)} (input of ${node.opType} node ${node.name}) is unknown; declare input shapes`,
      );
    return s.length;
  }
  /** Records type / shape of a new value. */
  set(v: string, type: OnnxDataType | undefined, shape: Dim[] | undefined): string {
    this.info.set(v, { name: v, type, shape });
    return v;
  }
  /** Appends a node whose output has the given type / shape. */
  op(opType: string, inputs: string[], attrs: Parameters<Graph['node']>[2] = {}, type?: OnnxDataType, shape?: Dim[]): string {
    const out = this.g.node(opType, inputs, attrs, {
      name: this.g.uniqueName(`grad/${opType}`),
      output: this.g.uniqueName(`grad_${opType}`),
    });
    return this.set(out, type, shape);
  }
  /** A scalar constant of the element type of `like`. */
  scalarLike(value: number, like: string): string {
    const type = this.type(like);
    return this.set(this.g.constant(tensorOf(type, [], [value]), 'c'), type, []);
  }
  int64s(values: readonly number[]): string {
    return this.set(this.g.int64s(values), 'int64', [values.length]);
  }
  /** `Shape(v)` (one per value). */
  shapeOf(v: string): string {
    const s = this.shapeCache.get(v);
    if (s) return s;
    const st = this.staticShape(v);
    const out = st ? this.int64s(st) : this.op('Shape', [v], {}, 'int64', [this.shape(v)?.length ?? null]);
    this.shapeCache.set(v, out);
    return out;
  }
  /** Number of elements of `v` as a scalar of `type`. */
  sizeOf(v: string, type: OnnxDataType): string {
    const key = `${v}\u0000${type}`;
    const c = this.sizeCache.get(key);
    if (c) return c;
    const st = this.staticShape(v);
    const out = st
      ? this.set(this.g.constant(tensorOf(type, [], [st.reduce((a, b) => a * b, 1)]), 'size'), type, [])
      : this.op('Cast', [this.op('Size', [v], {}, 'int64', [])], { to: CAST_CODES[type] as number }, type, []);
    this.sizeCache.set(key, out);
    return out;
  }
  mul(a: string, b: string): string {
    return this.op('Mul', [a, b], {}, this.info.get(a)?.type, undefined);
  }
  /** Zeros shaped like `v`. */
  zerosLike(v: string): string {
    const type = this.type(v);
    return this.op(
      'ConstantOfShape',
      [this.shapeOf(v)],
      { value: { kind: 't', v: tensorOf(type, [1], [0]) } },
      type,
      this.shape(v),
    );
  }

  /**
   * Sums a gradient that was broadcast from `target`'s shape back to that shape: ReduceSum over the
   * broadcast axes, then Reshape. Static when both shapes are known, else with Shape / NonZero ops.
   */
  reduceTo(grad: string, target: string, gradShape?: Dim[]): string {
    const ts = this.staticShape(target);
    const gsDims = gradShape ?? this.shape(grad);
    const gs = gsDims?.every((d) => typeof d === 'number') ? (gsDims as number[]) : undefined;
    const type = this.type(target);
    if (ts && gs) {
      if (ts.length === gs.length && ts.every((d, i) => d === gs[i])) return grad;
      const pad = gs.length - ts.length;
      const axes: number[] = [];
      for (let i = 0; i < gs.length; i++) {
        const t = i < pad ? 1 : (ts[i - pad] as number);
        if (i < pad || (t === 1 && gs[i] !== 1)) axes.push(i);
      }
      let r = grad;
      if (axes.length > 0)
        r = this.op(
          'ReduceSum',
          [grad, this.int64s(axes)],
          { keepdims: 1 },
          type,
          gs.map((d, i) => (axes.includes(i) ? 1 : d)),
        );
      if (pad !== 0 || axes.length === 0) r = this.op('Reshape', [r, this.int64s(ts)], {}, type, ts);
      else if (pad === 0) return r;
      return r;
    }
    // Dynamic: pad the target's shape with leading 1s, reduce where it differs from the gradient's.
    const sg = this.op('Shape', [grad], {}, 'int64', [gsDims?.length ?? null]);
    const st = this.shapeOf(target);
    const padLen = this.op(
      'Sub',
      [this.op('Shape', [sg], {}, 'int64', [1]), this.op('Shape', [st], {}, 'int64', [1])],
      {},
      'int64',
      [1],
    );
    const ones = this.op('ConstantOfShape', [padLen], { value: { kind: 't', v: tensorOf('int64', [1], [1]) } }, 'int64', [null]);
    const padded = this.op('Concat', [ones, st], { axis: 0 }, 'int64', [null]);
    const differ = this.op('Not', [this.op('Equal', [padded, sg], {}, 'bool', [null])], {}, 'bool', [null]);
    const axes = this.op('Reshape', [this.op('NonZero', [differ], {}, 'int64', [1, null]), this.int64s([-1])], {}, 'int64', [
      null,
    ]);
    const summed = this.op('ReduceSum', [grad, axes], { keepdims: 1, noop_with_empty_axes: 1 }, type, undefined);
    return this.op('Reshape', [summed, st], {}, type, this.shape(target));
  }
}
