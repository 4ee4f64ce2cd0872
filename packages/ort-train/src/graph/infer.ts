/**
 * Best-effort type and shape inference for the ops that model builders and autodiff use. Element
 * types are propagated for every op (the type of the first input unless the op says otherwise);
 * shapes where they follow from static information (input shapes, initializers, Constant nodes).
 * Unknown shapes stay `undefined` (unknown rank) or hold `null` dims: users must fall back to
 * `Shape` ops at run time.
 */
import type { OnnxDataType } from '@diffmix/onnx';
import { attrInt, attrInts, type Dim, type Graph, type GraphNode, type Tensor, type ValueInfo } from './graph.js';

const INT_OUT: Record<string, OnnxDataType> = {
  Shape: 'int64',
  Size: 'int64',
  NonZero: 'int64',
  ArgMax: 'int64',
  ArgMin: 'int64',
  Equal: 'bool',
  Less: 'bool',
  LessOrEqual: 'bool',
  Greater: 'bool',
  GreaterOrEqual: 'bool',
  Not: 'bool',
  And: 'bool',
  Or: 'bool',
  Xor: 'bool',
  IsNaN: 'bool',
  IsInf: 'bool',
};

const ELEMENTWISE_UNARY = new Set([
  'Identity',
  'Neg',
  'Abs',
  'Sqrt',
  'Exp',
  'Log',
  'Erf',
  'Tanh',
  'Sigmoid',
  'Relu',
  'LeakyRelu',
  'Softmax',
  'LogSoftmax',
  'Reciprocal',
  'Floor',
  'Ceil',
  'Round',
  'Sin',
  'Cos',
  'Elu',
  'Selu',
  'Softplus',
  'HardSigmoid',
  'Dropout',
  'Not',
  'IsNaN',
  'Sign',
  'Gelu',
  'Mish',
  'Clip',
  'LayerNormalization',
  'InstanceNormalization',
  'GroupNormalization',
  'BatchNormalization',
  'CumSum',
]);
const ELEMENTWISE_BINARY = new Set([
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Pow',
  'Max',
  'Min',
  'Equal',
  'Less',
  'LessOrEqual',
  'Greater',
  'GreaterOrEqual',
  'And',
  'Or',
  'Xor',
  'Sum',
  'Mean',
  'Where',
  'PRelu',
  'Mod',
]);

/** Broadcasts shapes numpy-style (unknown dims stay null). */
export function broadcastShapes(shapes: (Dim[] | undefined)[]): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const ss = shapes as Dim[][];
  const rank = Math.max(...ss.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of ss) {
      const x = s[s.length - rank + i];
      if (x === undefined || x === 1) continue;
      if (d === 1) d = x;
      else if (d !== x) d = typeof d === 'number' && typeof x === 'number' ? Math.max(d, x) : null;
    }
    out.push(d);
  }
  return out;
}

/** Integer values of a constant tensor (int32/int64), when small. */
export function intValues(t: Tensor): number[] | undefined {
  if (t.data.length > 64) return undefined;
  if (t.type === 'int64' || t.type === 'int32') return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
  return undefined;
}

/** Constant tensors of the graph: initializers and Constant node values. */
export function constantValues(graph: Graph): Map<string, Tensor> {
  const m = new Map(graph.initializers);
  for (const n of graph.nodes) {
    const v = n.attrs.value;
    if (n.opType === 'Constant' && v?.kind === 't' && n.outputs[0]) m.set(n.outputs[0], v.v);
  }
  return m;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Infers types and shapes of all values (inputs, initializers, node outputs). */
export function inferShapes(graph: Graph): Map<string, ValueInfo> {
  const info = new Map<string, ValueInfo>();
  const consts = constantValues(graph);
  for (const [name, t] of graph.initializers) info.set(name, { name, type: t.type, shape: [...t.dims] });
  for (const i of graph.inputs) info.set(i.name, { ...i });
  for (const [name, v] of graph.valueInfo) if (!info.has(name)) info.set(name, { ...v });
  const ints = (name: string | undefined) => {
    if (!name) return undefined;
    const t = consts.get(name);
    return t ? intValues(t) : undefined;
  };
  for (const n of graph.topologicalOrder()) {
    const ins = n.inputs.map((v) => (v ? info.get(v) : undefined));
    let shapes: (Dim[] | undefined)[] = [];
    let types: (OnnxDataType | undefined)[] = [];
    try {
      ({ shapes, types } = inferNode(n, ins, ints, (v) => (v ? consts.get(v) : undefined)));
    } catch {
      shapes = [];
    }
    n.outputs.forEach((o, k) => {
      if (!o) return;
      const declared = graph.valueInfo.get(o);
      const type = types[k] ?? declared?.type;
      info.set(o, { name: o, type, shape: shapes[k] ?? declared?.shape });
    });
    // Constant-fold a few shape computations on static shapes so Reshape targets stay known.
    if (n.opType === 'Shape' && n.outputs[0]) {
      const s = ins[0]?.shape;
      if (s?.every((d) => typeof d === 'number')) {
        const r = s.length;
        const start = Math.max(0, normAxis(attrInt(n, 'start', 0), r));
        const end = Math.min(r, normAxis(attrInt(n, 'end', r), r));
        const part = (s as number[]).slice(start, Math.max(start, end));
        consts.set(n.outputs[0], { type: 'int64', dims: [part.length], data: BigInt64Array.from(part, (d) => BigInt(d)) });
      }
    } else if (n.outputs[0] && FOLDABLE.has(n.opType)) {
      const folded = foldIntNode(n, (v) => (v ? consts.get(v) : undefined));
      if (folded) {
        consts.set(n.outputs[0], folded);
        const o = info.get(n.outputs[0]);
        info.set(n.outputs[0], { name: n.outputs[0], type: folded.type, shape: o?.shape ?? [...folded.dims] });
      }
    }
  }
  return info;
}

const FOLDABLE = new Set([
  'Where',
  'Equal',
  'ConstantOfShape',
  'Gather',
  'Unsqueeze',
  'Squeeze',
  'Concat',
  'Slice',
  'Cast',
  'Identity',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Reshape',
]);

/**
 * Folds small integer shape arithmetic (Shape → Gather → Unsqueeze → Concat → Reshape target, …) when
 * every input is a known constant. Undefined when it cannot.
 */
function foldIntNode(n: GraphNode, constOf: (name: string | undefined) => Tensor | undefined): Tensor | undefined {
  const vals: { v: number[]; dims: number[]; type: OnnxDataType }[] = [];
  for (const name of n.inputs) {
    if (!name) continue;
    const t = constOf(name);
    const v = t
      ? t.type === 'bool' && t.data.length <= 64
        ? Array.from(t.data as ArrayLike<number>, Number)
        : intValues(t)
      : undefined;
    if (!t || !v) return undefined;
    vals.push({ v, dims: [...t.dims], type: t.type });
  }
  const a = vals[0];
  if (!a) return undefined;
  const make = (v: number[], dims: number[], type: OnnxDataType = a.type): Tensor | undefined => {
    if (type === 'int64') return { type, dims, data: BigInt64Array.from(v, (x) => BigInt(x)) };
    if (type === 'int32') return { type, dims, data: Int32Array.from(v) };
    return undefined;
  };
  const bcast = (xs: { v: number[]; dims: number[] }[]): number => {
    const len = Math.max(...xs.map((x) => x.v.length));
    return xs.every((x) => x.v.length === len || x.v.length === 1) && xs.every((x) => x.dims.length <= 1) ? len : -1;
  };
  const at = (x: { v: number[] }, i: number) => x.v[x.v.length === 1 ? 0 : i] as number;
  switch (n.opType) {
    case 'Identity':
      return make(a.v, a.dims);
    case 'ConstantOfShape': {
      const val = n.attrs.value;
      const vt = val?.kind === 't' ? val.v : undefined;
      const fill = vt ? intValues(vt)?.[0] : 0;
      const type = vt?.type ?? 'float32';
      const count = a.v.reduce((p, q) => p * q, 1);
      if (fill === undefined || count > 64 || a.dims.length !== 1) return undefined;
      return make(new Array<number>(count).fill(fill), a.v, type);
    }
    case 'Equal': {
      const b = vals[1];
      if (!b) return undefined;
      const len = bcast([a, b]);
      if (len < 0) return undefined;
      const out = Uint8Array.from({ length: len }, (_, i) => (at(a, i) === at(b, i) ? 1 : 0));
      return { type: 'bool', dims: a.dims.length >= b.dims.length ? a.dims : b.dims, data: out as unknown as Tensor['data'] };
    }
    case 'Where': {
      const [c, x, y] = vals as [typeof a, typeof a | undefined, typeof a | undefined];
      if (!x || !y || x.type !== y.type) return undefined;
      const len = bcast([c, x, y]);
      if (len < 0) return undefined;
      const dims = [c, x, y].reduce((p, q) => (q.dims.length > p.dims.length ? q : p)).dims;
      return make(
        Array.from({ length: len }, (_, i) => (at(c, i) ? at(x, i) : at(y, i))),
        dims,
        x.type,
      );
    }
    case 'Cast': {
      const to = attrInt(n, 'to');
      return to === 7 ? make(a.v, a.dims, 'int64') : to === 6 ? make(a.v, a.dims, 'int32') : undefined;
    }
    case 'Gather': {
      const idx = vals[1];
      if (!idx || a.dims.length !== 1 || normAxis(attrInt(n, 'axis', 0), 1) !== 0) return undefined;
      const out: number[] = [];
      for (const i of idx.v) {
        const x = a.v[i < 0 ? i + a.v.length : i];
        if (x === undefined) return undefined;
        out.push(x);
      }
      return make(out, idx.dims);
    }
    case 'Unsqueeze': {
      const axes = vals[1]?.v ?? attrInts(n, 'axes');
      if (!axes) return undefined;
      const r = a.dims.length + axes.length;
      const norm = new Set(axes.map((x) => normAxis(x, r)));
      const dims: number[] = [];
      let k = 0;
      for (let i = 0; i < r; i++) dims.push(norm.has(i) ? 1 : (a.dims[k++] as number));
      return make(a.v, dims);
    }
    case 'Squeeze': {
      const axes = vals[1]?.v ?? attrInts(n, 'axes');
      const norm = axes ? new Set(axes.map((x) => normAxis(x, a.dims.length))) : undefined;
      return make(
        a.v,
        a.dims.filter((d, i) => (norm ? !norm.has(i) : d !== 1)),
      );
    }
    case 'Reshape': {
      const target = vals[1]?.v;
      if (!target || target.some((d) => d === 0 || d < -1) || target.filter((d) => d === -1).length > 1) return undefined;
      const known = target.reduce((p, d) => (d === -1 ? p : p * d), 1);
      return make(
        a.v,
        target.map((d) => (d === -1 ? a.v.length / known : d)),
      );
    }
    case 'Concat': {
      if (vals.some((x) => x.dims.length !== 1)) return undefined;
      const out = vals.flatMap((x) => x.v);
      return make(out, [out.length]);
    }
    case 'Slice': {
      if (a.dims.length !== 1) return undefined;
      const st = vals[1]?.v[0];
      const en = vals[2]?.v[0];
      const step = vals[4]?.v[0] ?? 1;
      if (st === undefined || en === undefined || step !== 1 || (vals[3] && normAxis(vals[3].v[0] ?? 0, 1) !== 0))
        return undefined;
      const len = a.v.length;
      const clamp = (x: number) => Math.min(Math.max(x < 0 ? x + len : x, 0), len);
      const out = a.v.slice(clamp(st), Math.max(clamp(st), clamp(en)));
      return make(out, [out.length]);
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div': {
      const b = vals[1];
      if (!b || a.type !== b.type) return undefined;
      const n2 = Math.max(a.v.length, b.v.length);
      if (a.v.length !== n2 && a.v.length !== 1) return undefined;
      if (b.v.length !== n2 && b.v.length !== 1) return undefined;
      const f = {
        Add: (x: number, y: number) => x + y,
        Sub: (x: number, y: number) => x - y,
        Mul: (x: number, y: number) => x * y,
        Div: (x: number, y: number) => Math.trunc(x / y),
      }[n.opType] as (x: number, y: number) => number;
      const out = Array.from({ length: n2 }, (_, i) =>
        f(a.v[a.v.length === 1 ? 0 : i] as number, b.v[b.v.length === 1 ? 0 : i] as number),
      );
      if (a.dims.length > 1 || b.dims.length > 1) return undefined;
      const dims =
        a.dims.length > b.dims.length || (a.dims.length === b.dims.length && a.v.length >= b.v.length) ? a.dims : b.dims;
      return make(out, dims);
    }
    default:
      return undefined;
  }
}

function inferNode(
  n: GraphNode,
  ins: (ValueInfo | undefined)[],
  ints: (name: string | undefined) => number[] | undefined,
  constOf: (name: string | undefined) => Tensor | undefined,
): { shapes: (Dim[] | undefined)[]; types: (OnnxDataType | undefined)[] } {
  const t0 = ins.find((i) => i?.type)?.type;
  const s0 = ins[0]?.shape;
  const type = INT_OUT[n.opType] ?? t0;
  const one = (shape: Dim[] | undefined, ty: OnnxDataType | undefined = type) => ({ shapes: [shape], types: [ty] });
  const op = n.opType;
  if (op === 'Where') return one(broadcastShapes(ins.map((i) => i?.shape)), ins[1]?.type ?? ins[2]?.type);
  if (ELEMENTWISE_UNARY.has(op)) {
    if (op === 'BatchNormalization') return { shapes: [s0, ins[3]?.shape, ins[4]?.shape], types: [type, type, type] };
    if (op === 'Dropout') return { shapes: [s0, s0], types: [type, 'bool'] };
    return one(s0);
  }
  if (ELEMENTWISE_BINARY.has(op)) return one(broadcastShapes(ins.map((i) => i?.shape)));
  switch (op) {
    case 'Constant': {
      const v = n.attrs.value;
      if (v?.kind === 't') return one([...v.v.dims], v.v.type);
      if (n.attrs.value_float) return one([], 'float32');
      if (n.attrs.value_int) return one([], 'int64');
      if (n.attrs.value_ints?.kind === 'ints') return one([n.attrs.value_ints.v.length], 'int64');
      return one(undefined, undefined);
    }
    case 'Cast':
    case 'CastLike': {
      const to = op === 'Cast' ? attrInt(n, 'to') : undefined;
      const codes: Record<number, OnnxDataType> = {
        1: 'float32',
        6: 'int32',
        7: 'int64',
        9: 'bool',
        10: 'float16',
        11: 'float64',
        2: 'uint8',
        3: 'int8',
        16: 'bfloat16',
      };
      return one(s0, op === 'Cast' ? (to !== undefined ? codes[to] : undefined) : ins[1]?.type);
    }
    case 'Shape': {
      if (!s0) return one([null]);
      const r = s0.length;
      const start = normAxis(attrInt(n, 'start', 0), r);
      const end = normAxis(attrInt(n, 'end', r), r);
      return one([Math.max(0, Math.min(end, r) - Math.max(start, 0))]);
    }
    case 'Size':
      return one([]);
    case 'ConstantOfShape': {
      const shape = ints(n.inputs[0]);
      const v = n.attrs.value;
      return one(shape, v?.kind === 't' ? v.v.type : 'float32');
    }
    case 'MatMul': {
      const a = ins[0]?.shape;
      const b = ins[1]?.shape;
      if (!a || !b) return one(undefined);
      const a2 = a.length === 1 ? [1, ...a] : a;
      const b2 = b.length === 1 ? [...b, 1] : b;
      const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]) ?? [];
      const out: Dim[] = [...batch];
      if (a.length > 1) out.push(a2[a2.length - 2] ?? null);
      if (b.length > 1) out.push(b2[b2.length - 1] ?? null);
      return one(out);
    }
    case 'Gemm': {
      const a = ins[0]?.shape;
      const b = ins[1]?.shape;
      if (!a || !b) return one(undefined);
      const m = attrInt(n, 'transA', 0) ? a[1] : a[0];
      const nn = attrInt(n, 'transB', 0) ? b[0] : b[1];
      return one([m ?? null, nn ?? null]);
    }
    case 'Transpose': {
      if (!s0) return one(undefined);
      const perm = attrInts(n, 'perm') ?? s0.map((_, i) => s0.length - 1 - i);
      return one(perm.map((p) => s0[p] ?? null));
    }
    case 'Reshape': {
      const target = ints(n.inputs[1]);
      if (!target) return one(undefined);
      const allowZero = attrInt(n, 'allowzero', 0) === 1;
      const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? (s0?.[i] ?? null) : d === -1 ? null : d));
      const neg = target.indexOf(-1);
      if (neg >= 0 && s0?.every((d) => typeof d === 'number')) {
        const total = (s0 as number[]).reduce((a, b) => a * b, 1);
        const known = out.reduce<number>((a, d, i) => (i === neg ? a : a * (d as number)), 1);
        if (out.every((d, i) => i === neg || typeof d === 'number')) out[neg] = total / known;
      }
      return one(out);
    }
    case 'Flatten': {
      if (!s0) return one(undefined);
      const axis = normAxis(attrInt(n, 'axis', 1), s0.length);
      const prod = (d: Dim[]) => (d.every((x) => typeof x === 'number') ? (d as number[]).reduce((a, b) => a * b, 1) : null);
      return one([prod(s0.slice(0, axis)), prod(s0.slice(axis))]);
    }
    case 'Unsqueeze': {
      const axes = ints(n.inputs[1]) ?? attrInts(n, 'axes');
      if (!s0 || !axes) return one(undefined);
      const r = s0.length + axes.length;
      const norm = new Set(axes.map((a) => normAxis(a, r)));
      const out: Dim[] = [];
      let k = 0;
      for (let i = 0; i < r; i++) out.push(norm.has(i) ? 1 : (s0[k++] ?? null));
      return one(out);
    }
    case 'Squeeze': {
      if (!s0) return one(undefined);
      const axes = ints(n.inputs[1]) ?? attrInts(n, 'axes');
      if (!axes) return one(s0.some((d) => typeof d !== 'number') ? undefined : s0.filter((d) => d !== 1));
      const norm = new Set(axes.map((a) => normAxis(a, s0.length)));
      return one(s0.filter((_, i) => !norm.has(i)));
    }
    case 'Expand': {
      const shape = ints(n.inputs[1]);
      if (!shape) return one(undefined);
      return one(broadcastShapes([s0, shape]));
    }
    case 'Concat': {
      const shapes = ins.map((i) => i?.shape);
      if (shapes.some((s) => !s)) return one(undefined);
      const ss = shapes as Dim[][];
      const first = ss[0] as Dim[];
      const axis = normAxis(attrInt(n, 'axis', 0), first.length);
      const out = [...first];
      let sum: Dim = 0;
      for (const s of ss) {
        const d = s[axis] ?? null;
        sum = typeof sum === 'number' && typeof d === 'number' ? sum + d : null;
      }
      out[axis] = sum;
      return one(out);
    }
    case 'Split': {
      const outsN = n.outputs.length;
      if (!s0) return { shapes: [], types: n.outputs.map(() => type) };
      const axis = normAxis(attrInt(n, 'axis', 0), s0.length);
      const split = ints(n.inputs[1]) ?? attrInts(n, 'split');
      const d = s0[axis];
      const sizes = split ?? (typeof d === 'number' ? n.outputs.map(() => d / outsN) : undefined);
      return {
        shapes: n.outputs.map((_, k) => {
          const out = [...s0];
          out[axis] = sizes?.[k] ?? null;
          return out;
        }),
        types: n.outputs.map(() => type),
      };
    }
    case 'Slice': {
      if (!s0) return one(undefined);
      const starts = ints(n.inputs[1]);
      const ends = ints(n.inputs[2]);
      const axesIn = n.inputs[3] ? ints(n.inputs[3]) : s0.map((_, i) => i);
      const steps = n.inputs[4] ? ints(n.inputs[4]) : starts?.map(() => 1);
      const out = [...s0];
      if (!starts || !ends || !axesIn || !steps) {
        if (axesIn) for (const a of axesIn) out[normAxis(a, s0.length)] = null;
        else return one(s0.map(() => null));
        return one(out);
      }
      axesIn.forEach((a0, k) => {
        const a = normAxis(a0, s0.length);
        const dim = s0[a];
        const step = steps[k] as number;
        if (typeof dim !== 'number') {
          out[a] = null;
          return;
        }
        const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
        let s = starts[k] as number;
        let e = ends[k] as number;
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (step > 0) {
          s = clamp(s, 0, dim);
          e = clamp(e, 0, dim);
          out[a] = Math.max(0, Math.ceil((e - s) / step));
        } else {
          s = clamp(s, 0, dim - 1);
          e = clamp(e, -1, dim - 1);
          out[a] = Math.max(0, Math.ceil((s - e) / -step));
        }
      });
      return one(out);
    }
    case 'Gather': {
      const idx = ins[1]?.shape;
      if (!s0 || !idx) return one(undefined);
      const axis = normAxis(attrInt(n, 'axis', 0), s0.length);
      return one([...s0.slice(0, axis), ...idx, ...s0.slice(axis + 1)]);
    }
    case 'ReduceSum':
    case 'ReduceMean':
    case 'ReduceMax':
    case 'ReduceMin':
    case 'ReduceProd':
    case 'ReduceSumSquare':
    case 'ReduceL2':
    case 'ArgMax':
    case 'ArgMin': {
      if (!s0) return one(undefined);
      const keep = attrInt(n, 'keepdims', 1) === 1;
      let axes: number[] | undefined;
      if (op === 'ArgMax' || op === 'ArgMin') axes = [attrInt(n, 'axis', 0)];
      else axes = attrInts(n, 'axes') ?? ints(n.inputs[1]);
      if (axes === undefined && n.inputs[1]) return one(undefined);
      if (!axes || axes.length === 0) {
        if (attrInt(n, 'noop_with_empty_axes', 0) === 1) return one(s0);
        axes = s0.map((_, i) => i);
      }
      const norm = new Set(axes.map((a) => normAxis(a, s0.length)));
      return one(keep ? s0.map((d, i) => (norm.has(i) ? 1 : d)) : s0.filter((_, i) => !norm.has(i)));
    }
    case 'Conv':
    case 'MaxPool':
    case 'AveragePool': {
      const w = ins[1]?.shape;
      if (!s0) return { shapes: [undefined, undefined], types: [type, 'int64'] };
      const spatial = s0.length - 2;
      const kernel = attrInts(n, 'kernel_shape') ?? (w ? (w.slice(2) as Dim[]) : undefined);
      const strides = attrInts(n, 'strides') ?? Array(spatial).fill(1);
      const dil = attrInts(n, 'dilations') ?? Array(spatial).fill(1);
      const pads = attrInts(n, 'pads') ?? Array(spatial * 2).fill(0);
      const ceil = attrInt(n, 'ceil_mode', 0) === 1;
      const autoPad = n.attrs.auto_pad?.kind === 's' ? n.attrs.auto_pad.v : 'NOTSET';
      const out: Dim[] = [s0[0] ?? null, op === 'Conv' ? (w?.[0] ?? null) : (s0[1] ?? null)];
      for (let i = 0; i < spatial; i++) {
        const x = s0[i + 2];
        const k = kernel?.[i];
        if (typeof x !== 'number' || typeof k !== 'number' || (autoPad !== 'NOTSET' && autoPad !== 'VALID')) {
          out.push(autoPad.startsWith('SAME') && typeof x === 'number' ? Math.ceil(x / (strides[i] as number)) : null);
          continue;
        }
        const eff = (dil[i] as number) * (k - 1) + 1;
        const span = x + (pads[i] as number) + (pads[i + spatial] as number) - eff;
        const v = (ceil ? Math.ceil(span / (strides[i] as number)) : Math.floor(span / (strides[i] as number))) + 1;
        out.push(v);
      }
      return { shapes: [out, out], types: [type, 'int64'] };
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
      return one(s0 ? [s0[0] ?? null, s0[1] ?? null, ...s0.slice(2).map(() => 1)] : undefined);
    case 'Range':
      return one([null]);
    case 'NonZero':
      return one(s0 ? [s0.length, null] : undefined);
    case 'Resize': {
      const sizes = ints(n.inputs[3]);
      if (sizes) return one(sizes);
      const sc = constOf(n.inputs[2]);
      if (s0 && sc && sc.data.length === s0.length && (sc.type === 'float32' || sc.type === 'float64')) {
        return one(s0.map((d, i) => (typeof d === 'number' ? Math.floor(d * Number(sc.data[i])) : null)));
      }
      return one(s0 ? s0.map(() => null) : undefined);
    }
    case 'Pad':
    case 'ConvTranspose':
    case 'ScatterElements':
    case 'ScatterND':
      return one(op === 'ScatterElements' || op === 'ScatterND' ? s0 : s0 ? s0.map(() => null) : undefined);
    default:
      return { shapes: [], types: n.outputs.map(() => type) };
  }
}
