/**
 * Gradient rules, by ONNX op type. A rule receives the node, the gradients of its outputs
 * (undefined = zero) and which inputs need a gradient, and returns one gradient per input
 * (undefined = none / zero). Rules only append ONNX nodes; nothing is computed here.
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { OnnxDataType } from '@diffmix/onnx';
import { attr, attrFloat, attrInt, attrInts, attrString, type Dim, type GraphNode, tensorOf } from '../graph/graph.js';
import { intValues } from '../graph/infer.js';
import { CAST_CODES, FLOAT_TYPES, type GradContext } from './context.js';
import { FUSED_BN_OP } from './lower.js';

export interface GradRuleArgs {
  ctx: GradContext;
  node: GraphNode;
  /** Gradient of each output (undefined when no gradient flows into it). */
  dy: (string | undefined)[];
  /** Whether each input needs a gradient. */
  needs: boolean[];
}
export type GradRule = (args: GradRuleArgs) => (string | undefined)[];

/** Rules by op type (default domain). Add your own with `gradientRules.set(opType, rule)`. */
export const gradientRules = new Map<string, GradRule>();

/** Ops whose outputs carry no gradient (shape and constant computations, comparisons, index ops). */
export const NON_DIFFERENTIABLE_OPS = new Set([
  'Shape',
  'Size',
  'Constant',
  'ConstantOfShape',
  'Range',
  'Equal',
  'Less',
  'LessOrEqual',
  'Greater',
  'GreaterOrEqual',
  'Not',
  'And',
  'Or',
  'Xor',
  'NonZero',
  'ArgMax',
  'ArgMin',
  'Floor',
  'Ceil',
  'Round',
  'Sign',
  'IsNaN',
  'IsInf',
  'RandomNormal',
  'RandomNormalLike',
  'RandomUniform',
  'RandomUniformLike',
  'EyeLike',
  'OneHot',
]);

const need0 = (dy: (string | undefined)[]): string => dy[0] as string;

function reg(ops: string[], rule: GradRule): void {
  for (const op of ops) gradientRules.set(op, rule);
}

function input(node: GraphNode, i: number): string {
  const v = node.inputs[i];
  if (!v) throw new InvalidArgumentError('graph', `${node.opType} node ${node.name} has no input ${i}`);
  return v;
}
function output(node: GraphNode, i = 0): string {
  return node.outputs[i] as string;
}

// ---------------------------------------------------------------- elementwise

reg(['Identity'], ({ dy }) => [need0(dy)]);
reg(['Dropout'], ({ ctx, node, dy }) => {
  // Inference-mode Dropout (no training_mode input or a false constant) is the identity.
  const tm = node.inputs[2];
  if (tm) {
    const c = ctx.consts.get(tm);
    if (!c || Number(c.data[0]) !== 0)
      throw new InvalidArgumentError('graph', `Dropout ${node.name} in training mode has no gradient rule`);
  }
  return [need0(dy)];
});

reg(['Add', 'Sub'], ({ ctx, node, dy, needs }) => {
  const g = need0(dy);
  const y = output(node);
  const ys = ctx.shape(y);
  const a = input(node, 0);
  const b = input(node, 1);
  const gb = needs[1] ? (node.opType === 'Sub' ? ctx.op('Neg', [g], {}, ctx.type(y), ys) : g) : undefined;
  return [needs[0] ? ctx.reduceTo(g, a, ys) : undefined, gb ? ctx.reduceTo(gb, b, ys) : undefined];
});

reg(['Mul'], ({ ctx, node, dy, needs }) => {
  const g = need0(dy);
  const ys = ctx.shape(output(node));
  const [a, b] = [input(node, 0), input(node, 1)];
  const t = ctx.type(a);
  return [
    needs[0] ? ctx.reduceTo(ctx.op('Mul', [g, b], {}, t, ys), a, ys) : undefined,
    needs[1] ? ctx.reduceTo(ctx.op('Mul', [g, a], {}, t, ys), b, ys) : undefined,
  ];
});

reg(['Div'], ({ ctx, node, dy, needs }) => {
  const g = need0(dy);
  const y = output(node);
  const ys = ctx.shape(y);
  const [, b] = [input(node, 0), input(node, 1)];
  const t = ctx.type(y);
  const ga = needs[0] || needs[1] ? ctx.op('Div', [g, b], {}, t, ys) : undefined;
  return [
    needs[0] ? ctx.reduceTo(ga as string, input(node, 0), ys) : undefined,
    needs[1] ? ctx.reduceTo(ctx.op('Neg', [ctx.op('Mul', [ga as string, y], {}, t, ys)], {}, t, ys), b, ys) : undefined,
  ];
});

reg(['Neg'], ({ ctx, node, dy }) => [ctx.op('Neg', [need0(dy)], {}, ctx.type(output(node)), ctx.shape(output(node)))]);

reg(['Pow'], ({ ctx, node, dy, needs }) => {
  const g = need0(dy);
  const y = output(node);
  const ys = ctx.shape(y);
  const [a, p0] = [input(node, 0), input(node, 1)];
  const t = ctx.type(a);
  const p = ctx.type(p0) === t ? p0 : ctx.op('Cast', [p0], { to: CAST_CODES[t] as number }, t, ctx.shape(p0));
  let ga: string | undefined;
  if (needs[0]) {
    const pm1 = ctx.op('Sub', [p, ctx.scalarLike(1, a)], {}, t, ctx.shape(p0));
    const d = ctx.op('Mul', [p, ctx.op('Pow', [a, pm1], {}, t, ys)], {}, t, ys);
    ga = ctx.reduceTo(ctx.op('Mul', [g, d], {}, t, ys), a, ys);
  }
  let gp: string | undefined;
  if (needs[1])
    gp = ctx.reduceTo(
      ctx.op('Mul', [g, ctx.op('Mul', [y, ctx.op('Log', [a], {}, t, ctx.shape(a))], {}, t, ys)], {}, t, ys),
      p0,
      ys,
    );
  return [ga, gp];
});

function unary(op: string, f: (ctx: GradContext, x: string, y: string, g: string) => string): void {
  reg([op], ({ ctx, node, dy }) => [f(ctx, input(node, 0), output(node), need0(dy))]);
}
const m = (ctx: GradContext, a: string, b: string, like: string) => ctx.op('Mul', [a, b], {}, ctx.type(like), ctx.shape(like));
unary('Sqrt', (ctx, _x, y, g) => ctx.op('Div', [g, m(ctx, y, ctx.scalarLike(2, y), y)], {}, ctx.type(y), ctx.shape(y)));
unary('Exp', (ctx, _x, y, g) => m(ctx, g, y, y));
unary('Log', (ctx, x, _y, g) => ctx.op('Div', [g, x], {}, ctx.type(x), ctx.shape(x)));
unary('Reciprocal', (ctx, _x, y, g) => ctx.op('Neg', [m(ctx, g, m(ctx, y, y, y), y)], {}, ctx.type(y), ctx.shape(y)));
unary('Erf', (ctx, x, _y, g) => {
  const t = ctx.type(x);
  const s = ctx.shape(x);
  const e = ctx.op('Exp', [ctx.op('Neg', [m(ctx, x, x, x)], {}, t, s)], {}, t, s);
  return m(ctx, g, m(ctx, e, ctx.scalarLike(2 / Math.sqrt(Math.PI), x), x), x);
});
unary('Tanh', (ctx, _x, y, g) => {
  const t = ctx.type(y);
  return m(ctx, g, ctx.op('Sub', [ctx.scalarLike(1, y), m(ctx, y, y, y)], {}, t, ctx.shape(y)), y);
});
unary('Sigmoid', (ctx, _x, y, g) => {
  const t = ctx.type(y);
  return m(ctx, g, m(ctx, y, ctx.op('Sub', [ctx.scalarLike(1, y), y], {}, t, ctx.shape(y)), y), y);
});
unary('Relu', (ctx, x, _y, g) => {
  const pos = ctx.op('Greater', [x, ctx.scalarLike(0, x)], {}, 'bool', ctx.shape(x));
  return ctx.op('Where', [pos, g, ctx.scalarLike(0, x)], {}, ctx.type(x), ctx.shape(x));
});
reg(['LeakyRelu'], ({ ctx, node, dy }) => {
  const x = input(node, 0);
  const pos = ctx.op('Greater', [x, ctx.scalarLike(0, x)], {}, 'bool', ctx.shape(x));
  const g = need0(dy);
  return [
    ctx.op('Where', [pos, g, m(ctx, g, ctx.scalarLike(attrFloat(node, 'alpha', 0.01), x), x)], {}, ctx.type(x), ctx.shape(x)),
  ];
});

reg(['Softmax'], ({ ctx, node, dy }) => {
  const y = output(node);
  const t = ctx.type(y);
  const s = ctx.shape(y);
  const axis = attrInt(node, 'axis', -1);
  const gy = m(ctx, need0(dy), y, y);
  const sum = ctx.op('ReduceSum', [gy, ctx.int64s([axis])], { keepdims: 1 }, t, undefined);
  return [ctx.op('Sub', [gy, m(ctx, y, sum, y)], {}, t, s)];
});
reg(['LogSoftmax'], ({ ctx, node, dy }) => {
  const y = output(node);
  const t = ctx.type(y);
  const s = ctx.shape(y);
  const axis = attrInt(node, 'axis', -1);
  const g = need0(dy);
  const sum = ctx.op('ReduceSum', [g, ctx.int64s([axis])], { keepdims: 1 }, t, undefined);
  return [ctx.op('Sub', [g, m(ctx, ctx.op('Exp', [y], {}, t, s), sum, y)], {}, t, s)];
});

reg(['Where'], ({ ctx, node, dy, needs }) => {
  const g = need0(dy);
  const ys = ctx.shape(output(node));
  const c = input(node, 0);
  const t = ctx.type(output(node));
  const zero = ctx.scalarLike(0, output(node));
  return [
    undefined,
    needs[1] ? ctx.reduceTo(ctx.op('Where', [c, g, zero], {}, t, ys), input(node, 1), ys) : undefined,
    needs[2] ? ctx.reduceTo(ctx.op('Where', [c, zero, g], {}, t, ys), input(node, 2), ys) : undefined,
  ];
});

reg(['Cast'], ({ ctx, node, dy }) => {
  const x = input(node, 0);
  const t = ctx.type(x);
  if (!FLOAT_TYPES.has(t)) return [undefined];
  return [ctx.op('Cast', [need0(dy)], { to: CAST_CODES[t] as number }, t, ctx.shape(x))];
});

// ---------------------------------------------------------------- matrix products

/**
 * The static shape of `MatMul(x, y)` for operands of rank ≥ 2 with known shapes (numpy rules: the batch
 * dims broadcast), else undefined. Giving gradient MatMuls their shape keeps the later broadcast
 * reductions static (a ReduceSum over known axes instead of Shape / Equal / NonZero at run time).
 */
function matmulShape(ctx: GradContext, x: string, y: string): Dim[] | undefined {
  const sx = ctx.staticShape(x);
  const sy = ctx.staticShape(y);
  if (!sx || !sy || sx.length < 2 || sy.length < 2) return undefined;
  const bx = sx.slice(0, -2);
  const by = sy.slice(0, -2);
  const n = Math.max(bx.length, by.length);
  const batch: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = bx[bx.length - n + i] ?? 1;
    const b = by[by.length - n + i] ?? 1;
    if (a !== b && a !== 1 && b !== 1) return undefined;
    batch.push(a === 1 ? b : a);
  }
  return [...batch, sx[sx.length - 2] as number, sy[sy.length - 1] as number];
}

function transposeLast2(ctx: GradContext, v: string, node: GraphNode): string {
  const r = ctx.rank(v, node);
  const s = ctx.shape(v) as Dim[];
  const perm = [...Array(r).keys()];
  perm[r - 1] = r - 2;
  perm[r - 2] = r - 1;
  return ctx.op(
    'Transpose',
    [v],
    { perm },
    ctx.type(v),
    perm.map((p) => s[p] ?? null),
  );
}

reg(['MatMul'], ({ ctx, node, dy, needs }) => {
  const g = need0(dy);
  const [a, b] = [input(node, 0), input(node, 1)];
  const ra = ctx.rank(a, node);
  const rb = ctx.rank(b, node);
  const t = ctx.type(a);
  let ga: string | undefined;
  let gb: string | undefined;
  if (ra === 1 && rb === 1) {
    if (needs[0]) ga = ctx.op('Mul', [g, b], {}, t, ctx.shape(b));
    if (needs[1]) gb = ctx.op('Mul', [g, a], {}, t, ctx.shape(a));
    return [ga, gb];
  }
  // Promote 1-D operands and the output gradient to the 2-D forms numpy's matmul uses.
  const g2 =
    ra === 1
      ? ctx.op('Unsqueeze', [g, ctx.int64s([-2])], {}, t, undefined)
      : rb === 1
        ? ctx.op('Unsqueeze', [g, ctx.int64s([-1])], {}, t, undefined)
        : g;
  const a2 = ra === 1 ? ctx.op('Unsqueeze', [a, ctx.int64s([0])], {}, t, [1, ...(ctx.shape(a) as Dim[])]) : a;
  const b2 = rb === 1 ? ctx.op('Unsqueeze', [b, ctx.int64s([1])], {}, t, [...(ctx.shape(b) as Dim[]), 1]) : b;
  if (needs[0]) {
    const bT = transposeLast2(ctx, b2, node);
    let d = ctx.op('MatMul', [g2, bT], {}, t, matmulShape(ctx, g2, bT));
    if (ra === 1) d = ctx.op('Squeeze', [d, ctx.int64s([-2])], {}, t, undefined);
    ga = ctx.reduceTo(d, a);
  }
  const kDim = ctx.shape(a)?.[ra - 1];
  const mDim = ctx.shape(b)?.[1];
  if (needs[1] && rb === 2 && ra >= 3 && typeof kDim === 'number' && typeof mDim === 'number') {
    // A weight shared over batch dims (x·W, x [.., S, K]): one GEMM over the flattened rows instead of
    // a batched product [.., K, M] summed afterwards — N× less output and no ReduceSum.
    const a2d = ctx.op('Reshape', [a, ctx.int64s([-1, kDim])], {}, t, [null, kDim]);
    const g2d = ctx.op('Reshape', [g, ctx.int64s([-1, mDim])], {}, t, [null, mDim]);
    gb = ctx.op('Gemm', [a2d, g2d], { transA: 1 }, t, [kDim, mDim]);
  } else if (needs[1]) {
    const aT = transposeLast2(ctx, a2, node);
    let d = ctx.op('MatMul', [aT, g2], {}, t, matmulShape(ctx, aT, g2));
    if (rb === 1) d = ctx.op('Squeeze', [d, ctx.int64s([-1])], {}, t, undefined);
    gb = ctx.reduceTo(d, b);
  }
  return [ga, gb];
});

reg(['Gemm'], ({ ctx, node, dy, needs }) => {
  const g = need0(dy);
  const [a, b] = [input(node, 0), input(node, 1)];
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  const tA = attrInt(node, 'transA', 0);
  const tB = attrInt(node, 'transB', 0);
  const t = ctx.type(a);
  const gemm = (x: string, y: string, ta: number, tb: number, like: string) =>
    ctx.op('Gemm', [x, y], { alpha: attr.f(alpha), transA: ta, transB: tb }, t, ctx.shape(like));
  const ga = needs[0] ? (tA ? gemm(b, g, tB, 1, a) : gemm(g, b, 0, tB ? 0 : 1, a)) : undefined;
  const gb = needs[1] ? (tB ? gemm(g, a, 1, tA, b) : gemm(a, g, tA ? 0 : 1, 0, b)) : undefined;
  let gc: string | undefined;
  const c = node.inputs[2];
  if (needs[2] && c) {
    const ys = ctx.shape(output(node));
    const scaled = beta === 1 ? g : ctx.op('Mul', [g, ctx.scalarLike(beta, c)], {}, t, ys);
    gc = ctx.reduceTo(scaled, c, ys);
  }
  return [ga, gb, gc];
});

// ---------------------------------------------------------------- reductions

function reduceGrad(ctx: GradContext, node: GraphNode, g: string, axes: number[] | string | undefined, mean: boolean): string {
  const x = input(node, 0);
  const y = output(node);
  const t = ctx.type(x);
  const keep = attrInt(node, 'keepdims', 1) === 1;
  let gu = g;
  if (!keep && axes !== undefined && !(Array.isArray(axes) && axes.length === 0)) {
    const ax = typeof axes === 'string' ? axes : ctx.int64s(axes);
    gu = ctx.op('Unsqueeze', [g, ax], {}, t, undefined);
  }
  if (mean) {
    const count = ctx.op('Div', [ctx.sizeOf(x, t), ctx.sizeOf(y, t)], {}, t, []);
    gu = ctx.op('Div', [gu, count], {}, t, undefined);
  }
  return ctx.op('Expand', [gu, ctx.shapeOf(x)], {}, t, ctx.shape(x));
}

reg(['ReduceSum', 'ReduceMean'], ({ ctx, node, dy }) => {
  const mean = node.opType === 'ReduceMean';
  let axes: number[] | string | undefined = attrInts(node, 'axes');
  const axesInput = node.inputs[1];
  if (!axes && axesInput) {
    const c = ctx.consts.get(axesInput);
    axes = c ? intValues(c as Parameters<typeof intValues>[0]) : axesInput;
  }
  const empty = axes === undefined || (Array.isArray(axes) && axes.length === 0);
  if (empty && attrInt(node, 'noop_with_empty_axes', 0) === 1) return [need0(dy)];
  return [reduceGrad(ctx, node, need0(dy), axes, mean)];
});

reg(['GlobalAveragePool'], ({ ctx, node, dy }) => [reduceGrad(ctx, { ...node, attrs: {} }, need0(dy), undefined, true)]);

// ---------------------------------------------------------------- shape ops

reg(['Reshape', 'Flatten', 'Squeeze', 'Unsqueeze'], ({ ctx, node, dy }) => {
  const x = input(node, 0);
  return [ctx.op('Reshape', [need0(dy), ctx.shapeOf(x)], {}, ctx.type(x), ctx.shape(x))];
});

reg(['Expand'], ({ ctx, node, dy }) => [ctx.reduceTo(need0(dy), input(node, 0), ctx.shape(output(node)))]);

reg(['Transpose'], ({ ctx, node, dy }) => {
  const x = input(node, 0);
  const perm = attrInts(node, 'perm') ?? [...Array(ctx.rank(x, node)).keys()].reverse();
  const inv = perm.map((_, i) => perm.indexOf(i));
  return [ctx.op('Transpose', [need0(dy)], { perm: inv }, ctx.type(x), ctx.shape(x))];
});

reg(['Concat'], ({ ctx, node, dy, needs }) => {
  const axis = attrInt(node, 'axis', 0);
  const ins = node.inputs.map((_, i) => input(node, i));
  const t = ctx.type(output(node));
  const r = ctx.rank(ins[0] as string, node);
  const ax = axis < 0 ? axis + r : axis;
  const dims = ins.map((v) => ctx.shape(v)?.[ax]);
  const sizes = dims.every((d) => typeof d === 'number')
    ? ctx.int64s(dims as number[])
    : ctx.op(
        'Concat',
        ins.map((v) => ctx.op('Gather', [ctx.shapeOf(v), ctx.int64s([ax])], { axis: 0 }, 'int64', [1])),
        { axis: 0 },
        'int64',
        [ins.length],
      );
  const outs = ctx.g.nodeN('Split', [need0(dy), sizes], ins.length, { axis: ax }, { name: ctx.g.uniqueName('grad/Split') });
  return outs.map((o, i) => (needs[i] ? ctx.set(o, t, ctx.shape(ins[i] as string)) : undefined));
});

reg(['Split'], ({ ctx, node, dy }) => {
  const axis = attrInt(node, 'axis', 0);
  const parts = node.outputs.map((o, i) => dy[i] ?? ctx.zerosLike(o));
  const x = input(node, 0);
  return [ctx.op('Concat', parts, { axis }, ctx.type(x), ctx.shape(x))];
});

/** `Reshape(Range(0, Size(x)), Shape(x))`: flat element indices shaped like `x`. */
function flatIndices(ctx: GradContext, x: string): string {
  const n = ctx.op('Size', [x], {}, 'int64', []);
  const r = ctx.op(
    'Range',
    [
      ctx.set(ctx.g.constant(tensorOf('int64', [], [0])), 'int64', []),
      n,
      ctx.set(ctx.g.constant(tensorOf('int64', [], [1])), 'int64', []),
    ],
    {},
    'int64',
    [null],
  );
  return ctx.op('Reshape', [r, ctx.shapeOf(x)], {}, 'int64', ctx.shape(x));
}

/** Scatters `g` (any shape) into zeros shaped like `x` at the flat positions `idx` (same shape as g). */
function scatterFlat(ctx: GradContext, x: string, idx: string, g: string, add: boolean): string {
  const t = ctx.type(x);
  const flatShape = ctx.int64s([-1]);
  const n = ctx.op('Reshape', [ctx.op('Size', [x], {}, 'int64', []), ctx.int64s([1])], {}, 'int64', [1]);
  const zeros = ctx.op('ConstantOfShape', [n], { value: attr.t(tensorOf(t, [1], [0])) }, t, [null]);
  const flat = ctx.op(
    'ScatterElements',
    [zeros, ctx.op('Reshape', [idx, flatShape], {}, 'int64', [null]), ctx.op('Reshape', [g, flatShape], {}, t, [null])],
    add ? { axis: 0, reduction: 'add' } : { axis: 0 },
    t,
    [null],
  );
  return ctx.op('Reshape', [flat, ctx.shapeOf(x)], {}, t, ctx.shape(x));
}

reg(['Slice'], ({ ctx, node, dy }) => {
  const x = input(node, 0);
  const idx = ctx.op('Slice', [flatIndices(ctx, x), ...node.inputs.slice(1)], {}, 'int64', undefined);
  return [scatterFlat(ctx, x, idx, need0(dy), false)];
});

reg(['Gather'], ({ ctx, node, dy }) => {
  const x = input(node, 0);
  const idx = ctx.op('Gather', [flatIndices(ctx, x), input(node, 1)], { axis: attrInt(node, 'axis', 0) }, 'int64', undefined);
  return [scatterFlat(ctx, x, idx, need0(dy), true), undefined];
});

reg(['Resize'], ({ ctx, node, dy }) => {
  if (attrString(node, 'mode', 'nearest') !== 'nearest')
    throw new InvalidArgumentError('graph', `Resize ${node.name}: only mode=nearest has a gradient rule`);
  const x = input(node, 0);
  const blocks = integerUpsampleFactors(ctx, node, x);
  if (blocks) {
    // Integer upsampling (UNet upsamplers: nearest ×2, asymmetric, floor) copies each input element
    // into an s₀×s₁×… block, so its gradient is the sum over that block: a Reshape and a ReduceSum,
    // which every execution provider runs (the general path needs ScatterElements: not on WebGPU).
    const xs = blocks.inputShape;
    const split = xs.flatMap((d, i) => [d, blocks.factors[i] as number]);
    const axes = xs.map((_, i) => 2 * i + 1);
    const r = ctx.op('Reshape', [need0(dy), ctx.int64s(split)], {}, ctx.type(x), split);
    return [ctx.op('ReduceSum', [r, ctx.int64s(axes)], { keepdims: 0 }, ctx.type(x), xs)];
  }
  // Resize the flat indices (as int32: exact, and supported by the CPU kernel) with the same
  // parameters: each output element then names the input element it copied.
  const idx32 = ctx.op('Cast', [flatIndices(ctx, x)], { to: 6 }, 'int32', ctx.shape(x));
  const r = ctx.op('Resize', [idx32, ...node.inputs.slice(1)], node.attrs, 'int32', undefined);
  return [scatterFlat(ctx, x, ctx.op('Cast', [r], { to: 7 }, 'int64', undefined), need0(dy), true)];
});

/**
 * The per-axis integer factors of a nearest Resize that replicates blocks — static input shape, constant
 * integer `scales` (no `sizes`), coordinate_transformation_mode `asymmetric`, nearest_mode `floor` (so
 * output i reads input ⌊i / s⌋) — or undefined when the node is anything else.
 */
function integerUpsampleFactors(
  ctx: GradContext,
  node: GraphNode,
  x: string,
): { inputShape: number[]; factors: number[] } | undefined {
  if (attrString(node, 'coordinate_transformation_mode', 'half_pixel') !== 'asymmetric') return undefined;
  if (attrString(node, 'nearest_mode', 'round_prefer_floor') !== 'floor') return undefined;
  if (node.inputs[3]) return undefined; // sizes
  const xs = ctx.staticShape(x);
  const scales = node.inputs[2] ? ctx.consts.get(node.inputs[2]) : undefined;
  if (!xs || !scales || scales.data.length !== xs.length) return undefined;
  const factors = Array.from(scales.data, Number);
  if (!factors.every((f) => Number.isInteger(f) && f >= 1)) return undefined;
  return { inputShape: xs, factors };
}

// ---------------------------------------------------------------- convolution and pooling

reg(['Conv'], ({ ctx, node, dy, needs }) => {
  const g = need0(dy);
  const [x, w] = [input(node, 0), input(node, 1)];
  const t = ctx.type(x);
  const ws = ctx.shape(w);
  if (!ws) throw new InvalidArgumentError('graph', `Conv ${node.name}: the weight shape must be known`);
  const k = ws.length - 2;
  const group = attrInt(node, 'group', 1);
  const autoPad = attrString(node, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID')
    throw new InvalidArgumentError('graph', `Conv ${node.name}: auto_pad=${autoPad} has no gradient rule (use explicit pads)`);
  const strides = attrInts(node, 'strides') ?? Array(k).fill(1);
  const dil = attrInts(node, 'dilations') ?? Array(k).fill(1);
  const pads = attrInts(node, 'pads') ?? Array(2 * k).fill(0);
  const kernel = ws.slice(2);
  const out: (string | undefined)[] = [undefined, undefined, undefined];
  if (needs[0]) {
    // dX = ConvTranspose(dY, W). With static shapes the output_padding that gives exactly X's spatial
    // size is known (the rows the last forward window did not reach); otherwise pad by stride − 1
    // and cut, which costs an extra copy of dX.
    const xs0 = ctx.staticShape(x);
    const ys0 = ctx.staticShape(output(node));
    const exact =
      xs0 && ys0 && kernel.every((d) => typeof d === 'number')
        ? xs0
            .slice(2)
            .map(
              (d, i) =>
                d -
                (((ys0[i + 2] as number) - 1) * (strides[i] as number) -
                  (pads[i] as number) -
                  (pads[i + k] as number) +
                  (dil[i] as number) * ((kernel[i] as number) - 1) +
                  1),
            )
        : undefined;
    const opad = exact ?? strides.map((s) => s - 1);
    const ct = ctx.op(
      'ConvTranspose',
      [g, w],
      {
        strides,
        pads,
        dilations: dil,
        group,
        output_padding: opad,
        kernel_shape: kernel.every((d) => typeof d === 'number') ? (kernel as number[]) : undefined,
      },
      t,
      undefined,
    );
    const xs = ctx.staticShape(x);
    let gx = ct;
    if (!exact && opad.some((p) => p > 0)) {
      const axes = ctx.int64s([...Array(k).keys()].map((i) => i + 2));
      const ends = xs
        ? ctx.int64s(xs.slice(2))
        : ctx.op('Slice', [ctx.shapeOf(x), ctx.int64s([2]), ctx.int64s([2 + k])], {}, 'int64', [k]);
      gx = ctx.op('Slice', [ct, ctx.int64s(Array(k).fill(0)), ends, axes], {}, t, ctx.shape(x));
    } else ctx.set(gx, t, ctx.shape(x));
    out[0] = gx;
  }
  if (needs[1]) {
    // dW[o,i,·] = Σ_n X[n, g(o)·Cg + i, ·] ⋆ dY[n,o,·] (g(o) the group of output channel o, Cg input
    // channels per group): a convolution with batch and channel axes swapped, where the forward stride
    // becomes the dilation and the forward dilation the stride. For group G the swapped input is laid
    // out [Cg, G·N, …] (channel index g·N + n), so a group-G convolution pairs each output channel with
    // its own group's inputs only — depthwise (Cg = 1) included, without computing the C×O cross terms.
    const spatial = [...Array(k).keys()].map((i) => i + 2);
    const perm = [1, 0, ...spatial];
    const im2col =
      group === 1 && ctx.settings.convWeightGradient !== 'swapped'
        ? gemmWeightGrad(ctx, node, x, g, ws, strides, dil, pads)
        : undefined;
    if (im2col) {
      out[1] = im2col;
      if (needs[2] && node.inputs[2])
        out[2] = ctx.op('ReduceSum', [g, ctx.int64s([0, ...spatial])], { keepdims: 0 }, t, ctx.shape(input(node, 2)));
      return out;
    }
    let xt: string;
    if (group === 1) xt = ctx.op('Transpose', [x], { perm }, t, undefined);
    else {
      const cg = ws[1];
      if (typeof cg !== 'number')
        throw new InvalidArgumentError('graph', `Conv ${node.name}: the weight shape must be static for group=${group}`);
      const x4 = ctx.op('Reshape', [x, ctx.int64s([0, group, cg, -1])], {}, t, undefined);
      const x4t = ctx.op('Transpose', [x4], { perm: [2, 1, 0, 3] }, t, undefined);
      const xsNow = ctx.staticShape(x);
      const shape = xsNow
        ? ctx.int64s([cg, -1, ...xsNow.slice(2)])
        : ctx.op(
            'Concat',
            [ctx.int64s([cg, -1]), ctx.op('Slice', [ctx.shapeOf(x), ctx.int64s([2]), ctx.int64s([2 + k])], {}, 'int64', [k])],
            { axis: 0 },
            'int64',
            [2 + k],
          );
      xt = ctx.op('Reshape', [x4t, shape], {}, t, undefined);
    }
    const gt = ctx.op('Transpose', [g], { perm }, t, undefined);
    const c = ctx.op(
      'Conv',
      [xt, gt],
      { strides: dil, dilations: strides, pads, group: group === 1 ? undefined : group },
      t,
      undefined,
    );
    // The result can be larger than the kernel (when the last window did not fit): keep the kernel part.
    const xsS = ctx.staticShape(x);
    const ysS = ctx.staticShape(output(node));
    const fits =
      xsS && ysS && kernel.every((d) => typeof d === 'number')
        ? spatial.every(
            (a, i) =>
              Math.floor(
                ((xsS[a] as number) +
                  (pads[i] as number) +
                  (pads[i + k] as number) -
                  (strides[i] as number) * ((ysS[a] as number) - 1) -
                  1) /
                  (dil[i] as number),
              ) +
                1 ===
              kernel[i],
          )
        : false;
    let cut = c;
    if (!fits) {
      const ends = kernel.every((d) => typeof d === 'number')
        ? ctx.int64s(kernel as number[])
        : ctx.op('Slice', [ctx.shapeOf(w), ctx.int64s([2]), ctx.int64s([2 + k])], {}, 'int64', [k]);
      cut = ctx.op('Slice', [c, ctx.int64s(Array(k).fill(0)), ends, ctx.int64s(spatial)], {}, t, undefined);
    }
    out[1] = ctx.op('Transpose', [cut], { perm }, t, ws);
  }
  if (needs[2] && node.inputs[2]) {
    out[2] = ctx.op(
      'ReduceSum',
      [g, ctx.int64s([0, ...[...Array(k).keys()].map((i) => i + 2)])],
      { keepdims: 0 },
      t,
      ctx.shape(input(node, 2)),
    );
  }
  return out;
});

/**
 * Conv weight gradient as GEMMs (static shapes, group 1, 2-D). Two forms of the same im2col product,
 * chosen by size: per-offset GEMMs over strided windows of X for kernels of ≤ 9 taps and outputs below
 * 1024 positions; otherwise an explicit im2col (one-hot-kernel convolution) and a single GEMM — large
 * outputs make the strided Slice copies cost more than the im2col convolution (ResNet-18, batch 16, CPU
 * time: per-offset 1.2× faster than explicit im2col at 64², explicit 1.1× faster for 224²'s early
 * layers), and large kernels (7×7 stem, 16×16 ViT patches) would need one GEMM per tap.
 */
function gemmWeightGrad(
  ctx: GradContext,
  node: GraphNode,
  x: string,
  g: string,
  ws: Dim[],
  strides: number[],
  dil: number[],
  pads: number[],
): string | undefined {
  const geom = staticConv2d(ctx, node, x, ws);
  if (!geom) return undefined;
  const args: Conv2dGrad = { ...geom, x, g, ws, strides, dil, pads, t: ctx.type(x) };
  return geom.ho * geom.wo >= 1024 || geom.kh * geom.kw > 9 ? explicitIm2colWeightGrad(ctx, args) : offsetsWeightGrad(ctx, args);
}

/** The static sizes of a 2-D convolution X [N, C, H, W] ⋆ W [O, C, kh, kw] → [N, O, Ho, Wo]; undefined if any is unknown. */
function staticConv2d(
  ctx: GradContext,
  node: GraphNode,
  x: string,
  ws: Dim[],
): { n: number; c: number; h: number; w: number; o: number; kh: number; kw: number; ho: number; wo: number } | undefined {
  const xs = ctx.staticShape(x);
  const ys = ctx.staticShape(output(node));
  if (!xs || !ys || xs.length !== 4 || ys.length !== 4 || ws.length !== 4 || !ws.every((d) => typeof d === 'number'))
    return undefined;
  const [n, c, h, w] = xs as [number, number, number, number];
  const [o, , kh, kw] = ws as [number, number, number, number];
  return { n, c, h, w, o, kh, kw, ho: ys[2] as number, wo: ys[3] as number };
}

/** Everything the two GEMM forms of the Conv weight gradient need. */
interface Conv2dGrad extends NonNullable<ReturnType<typeof staticConv2d>> {
  x: string;
  g: string;
  ws: Dim[];
  strides: number[];
  dil: number[];
  pads: number[];
  t: OnnxDataType;
}

/**
 * Conv weight gradient as GEMMs (static shapes, group 1, 2-D): with Xt = X transposed to [C, N, H, W]
 * and zero-padded, each kernel offset (i, j) is a strided window Xt[:, :, i·dh + s·p, j·dw + s·q] of
 * shape [C, N·L], and dW[:, :, i, j] = dY[O, N·L] · windowᵀ — kh·kw GEMMs with M = O, N = C and K = N·L.
 * The swapped convolution instead runs C thin GEMMs with kh·kw columns each (one per input channel),
 * which ORT's CPU kernels execute far below peak, and the im2col matrix is never materialised here.
 */
function offsetsWeightGrad(ctx: GradContext, a: Conv2dGrad): string {
  const { x, g, ws, strides, dil, pads, t, n, c, h, w, o, kh, kw, ho, wo } = a;
  const [sh, sw] = strides as [number, number];
  const [dh, dw] = dil as [number, number];
  const [pt, pl, pb, pr] = pads as [number, number, number, number];
  const nl = n * ho * wo;
  let xt = ctx.op('Transpose', [x], { perm: [1, 0, 2, 3] }, t, [c, n, h, w]);
  const hp = h + pt + pb;
  const wp = w + pl + pr;
  if (pads.some((p) => p !== 0)) xt = ctx.op('Pad', [xt, ctx.int64s([0, 0, pt, pl, 0, 0, pb, pr])], {}, t, [c, n, hp, wp]);
  const gT = ctx.op(
    'Reshape',
    [
      ctx.op('Transpose', [ctx.op('Reshape', [g, ctx.int64s([n, o, ho * wo])], {}, t, [n, o, ho * wo])], { perm: [1, 0, 2] }, t, [
        o,
        n,
        ho * wo,
      ]),
      ctx.int64s([o, nl]),
    ],
    {},
    t,
    [o, nl],
  );
  const rowShape = ctx.int64s([c, nl]);
  const colShape = ctx.int64s([o, c, 1]);
  const axes = ctx.int64s([2, 3]);
  const steps = ctx.int64s([sh, sw]);
  const parts: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const [y0, x0] = [i * dh, j * dw];
      const whole = y0 === 0 && x0 === 0 && sh === 1 && sw === 1 && ho === hp && wo === wp;
      const win = whole
        ? xt
        : ctx.op(
            'Slice',
            [xt, ctx.int64s([y0, x0]), ctx.int64s([y0 + (ho - 1) * sh + 1, x0 + (wo - 1) * sw + 1]), axes, steps],
            {},
            t,
            [c, n, ho, wo],
          );
      const rows = ctx.op('Reshape', [win, rowShape], {}, t, [c, nl]);
      const d = ctx.op('Gemm', [gT, rows], { transB: 1 }, t, [o, c]);
      parts.push(kh * kw === 1 ? d : ctx.op('Reshape', [d, colShape], {}, t, [o, c, 1]));
    }
  }
  const all = parts.length === 1 ? (parts[0] as string) : ctx.op('Concat', parts, { axis: 2 }, t, [o, c, kh * kw]);
  return ctx.op('Reshape', [all, ctx.int64s([o, c, kh, kw])], {}, t, ws);
}

/**
 * `[kh·kw, 1, kh, kw]` one-hot kernels: a convolution with them unfolds every window into kh·kw channels
 * (im2col), and the ConvTranspose with them folds such channels back (overlaps add up).
 */
function oneHotWindowKernel(ctx: GradContext, t: OnnxDataType, kh: number, kw: number, name: string): string {
  const kk = kh * kw;
  const eye = new Array<number>(kk * kk).fill(0);
  for (let i = 0; i < kk; i++) eye[i * kk + i] = 1;
  return ctx.set(ctx.g.constant(tensorOf(t, [kk, 1, kh, kw], eye), name), t, [kk, 1, kh, kw]);
}

/**
 * Conv weight gradient as one GEMM (static shapes, group 1): im2col of X by a convolution with one-hot
 * kernels ([N·C, 1, H, W] → [N·C, kh·kw, L]), then dW = dY[O, N·L] · colsᵀ[N·L, C·kh·kw]. The swapped
 * convolution instead runs C thin GEMMs with kh·kw columns each (one per input channel), which ORT's
 * CPU kernels execute far below peak.
 */
function explicitIm2colWeightGrad(ctx: GradContext, args: Conv2dGrad): string {
  const { x, g, ws, strides, dil, pads, t, n, c, h, w, o, kh, kw, ho, wo } = args;
  const l = ho * wo;
  const kk = kh * kw;
  let cols: string;
  const identity = kk === 1 && strides.every((s) => s === 1) && pads.every((p) => p === 0);
  if (identity) cols = x;
  else {
    const kernel = oneHotWindowKernel(ctx, t, kh, kw, 'im2col_eye');
    const x1 = ctx.op('Reshape', [x, ctx.int64s([n * c, 1, h, w])], {}, t, [n * c, 1, h, w]);
    cols = ctx.op('Conv', [x1, kernel], { strides, dilations: dil, pads, kernel_shape: [kh, kw] }, t, [n * c, kk, ho, wo]);
  }
  const colsT = ctx.op(
    'Transpose',
    [ctx.op('Reshape', [cols, ctx.int64s([n, c * kk, l])], {}, t, [n, c * kk, l])],
    { perm: [1, 0, 2] },
    t,
    [c * kk, n, l],
  );
  const gT = ctx.op('Transpose', [ctx.op('Reshape', [g, ctx.int64s([n, o, l])], {}, t, [n, o, l])], { perm: [1, 0, 2] }, t, [
    o,
    n,
    l,
  ]);
  const a = ctx.op('Reshape', [gT, ctx.int64s([o, n * l])], {}, t, [o, n * l]);
  const b = ctx.op('Reshape', [colsT, ctx.int64s([c * kk, n * l])], {}, t, [c * kk, n * l]);
  const dw = ctx.op('Gemm', [a, b], { transB: 1 }, t, [o, c * kk]);
  return ctx.op('Reshape', [dw, ctx.int64s([o, c, kh, kw])], {}, t, ws);
}

reg(['MaxPool'], ({ ctx, node, dy }) => {
  const x = input(node, 0);
  if (attrInt(node, 'storage_order', 0) !== 0)
    throw new InvalidArgumentError('graph', `MaxPool ${node.name}: storage_order=1 has no gradient rule`);
  const windows = maxPoolWindowsGradient(ctx, node, need0(dy));
  if (windows) return [windows];
  // The forward node gets its Indices output (flat positions of the maxima) if it has none.
  let indices = node.outputs[1];
  if (!indices) {
    indices = ctx.g.uniqueName(`${output(node)}_indices`);
    node.outputs[1] = indices;
    ctx.set(indices, 'int64', ctx.shape(output(node)));
  }
  return [scatterFlat(ctx, x, indices, need0(dy), true)];
});

/**
 * MaxPool gradient without MaxPool's `Indices` output (2-D, static shapes, no auto_pad / ceil_mode;
 * otherwise undefined and the indices form is used):
 *   cols  = Conv(x, one-hot kernels)                     [NC, kk, Ho, Wo]  every window's values
 *   valid = Conv(1, one-hot kernels) > 0                  padding positions never win (they are −∞
 *                                                         for MaxPool, 0 for the convolution)
 *   hit   = valid ∧ (cols = y)                            y = the forward MaxPool output
 *   first = hit ∧ (Σ_{j ≤ i} hit_j = 1)                   the first maximum in row-major window order,
 *                                                         the one PyTorch's and ORT's kernels pick
 *   dx    = ConvTranspose(first · dy, one-hot kernels)    overlapping windows add up
 */
function maxPoolWindowsGradient(ctx: GradContext, node: GraphNode, g: string): string | undefined {
  if (ctx.settings.maxPoolGradient === 'indices') return undefined;
  const x = input(node, 0);
  // ORT has float32 (and float16 on GPUs) convolutions only; float64 graphs (FD checks) use indices.
  if (ctx.type(x) !== 'float32' && ctx.type(x) !== 'float16') return undefined;
  const xs = ctx.staticShape(x);
  const ys = ctx.staticShape(output(node));
  const kernel = attrInts(node, 'kernel_shape') as number[];
  if (!xs || !ys || xs.length !== 4 || kernel.length !== 2) return undefined;
  if (attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET' || attrInt(node, 'ceil_mode', 0) === 1) return undefined;
  const strides = attrInts(node, 'strides') ?? [1, 1];
  const pads = attrInts(node, 'pads') ?? [0, 0, 0, 0];
  const dil = attrInts(node, 'dilations') ?? [1, 1];
  const t = ctx.type(x);
  const [n, c, h, w] = xs as [number, number, number, number];
  const [ho, wo] = [ys[2] as number, ys[3] as number];
  const [kh, kw] = kernel as [number, number];
  const kk = kh * kw;
  const nc = n * c;
  const onehot = oneHotWindowKernel(ctx, t, kh, kw, 'maxpool_onehot');
  const convAttrs = { strides, dilations: dil, pads, kernel_shape: [kh, kw] };
  const x1 = ctx.op('Reshape', [x, ctx.int64s([nc, 1, h, w])], {}, t, [nc, 1, h, w]);
  const cols = ctx.op('Conv', [x1, onehot], convAttrs, t, [nc, kk, ho, wo]);
  const ones = ctx.set(ctx.g.constant(tensorOf(t, [1, 1, h, w], 1), 'maxpool_ones'), t, [1, 1, h, w]);
  const inside = ctx.op('Conv', [ones, onehot], convAttrs, t, [1, kk, ho, wo]);
  const valid = ctx.op('Greater', [inside, ctx.scalarLike(0.5, x)], {}, 'bool', [1, kk, ho, wo]);
  const y1 = ctx.op('Reshape', [output(node), ctx.int64s([nc, 1, ho, wo])], {}, t, [nc, 1, ho, wo]);
  const eq = ctx.op('Equal', [cols, y1], {}, 'bool', [nc, kk, ho, wo]);
  const hit = ctx.op('Cast', [ctx.op('And', [eq, valid], {}, 'bool', [nc, kk, ho, wo])], { to: CAST_CODES[t] as number }, t, [
    nc,
    kk,
    ho,
    wo,
  ]);
  // Running count of hits along the window axis: a 1×1 convolution with a lower-triangular matrix.
  const tri = new Array<number>(kk * kk).fill(0);
  for (let i = 0; i < kk; i++) for (let j = 0; j <= i; j++) tri[i * kk + j] = 1;
  const lower = ctx.set(ctx.g.constant(tensorOf(t, [kk, kk, 1, 1], tri), 'maxpool_cumsum'), t, [kk, kk, 1, 1]);
  const count = ctx.op('Conv', [hit, lower], { kernel_shape: [1, 1] }, t, [nc, kk, ho, wo]);
  const isFirst = ctx.op(
    'Cast',
    [ctx.op('Equal', [count, ctx.scalarLike(1, x)], {}, 'bool', [nc, kk, ho, wo])],
    { to: CAST_CODES[t] as number },
    t,
    [nc, kk, ho, wo],
  );
  const g1 = ctx.op('Reshape', [g, ctx.int64s([nc, 1, ho, wo])], {}, t, [nc, 1, ho, wo]);
  const routed = ctx.op('Mul', [ctx.op('Mul', [hit, isFirst], {}, t, [nc, kk, ho, wo]), g1], {}, t, [nc, kk, ho, wo]);
  const opad = [h, w].map(
    (d, i) =>
      d +
      (pads[i] as number) +
      (pads[i + 2] as number) -
      ((ys[i + 2] as number) - 1) * (strides[i] as number) -
      ((kernel[i] as number) - 1) * (dil[i] as number) -
      1,
  );
  const dx = ctx.op(
    'ConvTranspose',
    [routed, onehot],
    { strides, dilations: dil, pads, kernel_shape: [kh, kw], output_padding: opad },
    t,
    [nc, 1, h, w],
  );
  return ctx.op('Reshape', [dx, ctx.int64s(xs)], {}, t, xs);
}

reg(['AveragePool'], ({ ctx, node, dy }) => {
  const x = input(node, 0);
  const g = need0(dy);
  const t = ctx.type(x);
  const xs = ctx.staticShape(x);
  if (!xs) throw new InvalidArgumentError('graph', `AveragePool ${node.name}: the input shape must be static`);
  const kernel = attrInts(node, 'kernel_shape') as number[];
  const k = kernel.length;
  const strides = attrInts(node, 'strides') ?? Array(k).fill(1);
  const pads = attrInts(node, 'pads') ?? Array(2 * k).fill(0);
  if (attrString(node, 'auto_pad', 'NOTSET') !== 'NOTSET' || attrInt(node, 'ceil_mode', 0) === 1) {
    throw new InvalidArgumentError('graph', `AveragePool ${node.name}: auto_pad / ceil_mode have no gradient rule`);
  }
  const ys = ctx.staticShape(output(node)) as number[];
  const nc = (xs[0] as number) * (xs[1] as number);
  // Divisor of each output window: the window size, or (count_include_pad=0) its non-pad part.
  let scaled: string;
  const volume = kernel.reduce((a, b) => a * b, 1);
  if (attrInt(node, 'count_include_pad', 0) === 1 || pads.every((p) => p === 0)) {
    scaled = ctx.op('Div', [g, ctx.scalarLike(volume, x)], {}, t, ys);
  } else {
    const ones = ctx.set(ctx.g.constant(tensorOf(t, [1, 1, ...xs.slice(2)], 1)), t, [1, 1, ...xs.slice(2)]);
    const frac = ctx.op('AveragePool', [ones], { ...node.attrs, count_include_pad: 1 }, t, [1, 1, ...ys.slice(2)]);
    const count = ctx.op('Mul', [frac, ctx.scalarLike(volume, x)], {}, t, undefined);
    scaled = ctx.op('Div', [g, count], {}, t, ys);
  }
  const r = ctx.op('Reshape', [scaled, ctx.int64s([nc, 1, ...ys.slice(2)])], {}, t, undefined);
  const ones = ctx.set(ctx.g.constant(tensorOf(t, [1, 1, ...kernel], 1)), t, [1, 1, ...kernel]);
  const opad = xs
    .slice(2)
    .map(
      (d, i) =>
        d +
        (pads[i] as number) +
        (pads[i + k] as number) -
        ((ys[i + 2] as number) - 1) * (strides[i] as number) -
        (kernel[i] as number),
    );
  const ct = ctx.op('ConvTranspose', [r, ones], { strides, pads, output_padding: opad }, t, undefined);
  return [ctx.op('Reshape', [ct, ctx.int64s(xs)], {}, t, xs)];
});

// ---------------------------------------------------------------- normalisation (inference form)

reg(['BatchNormalization'], ({ ctx, node, dy, needs }) => {
  if (attrInt(node, 'training_mode', 0) === 1)
    throw new InvalidArgumentError(
      'graph',
      `BatchNormalization ${node.name} in training mode must be lowered first (lowerForTraining)`,
    );
  const [x, scale, , mean, v] = [0, 1, 2, 3, 4].map((i) => input(node, i)) as [string, string, string, string, string];
  const t = ctx.type(x);
  const r = ctx.rank(x, node);
  const g = need0(dy);
  const cShape = ctx.int64s([-1, ...Array(r - 2).fill(1)]);
  const eps = attrFloat(node, 'epsilon', 1e-5);
  const inv = ctx.op(
    'Div',
    [
      ctx.scalarLike(1, x),
      ctx.op('Sqrt', [ctx.op('Add', [v, ctx.scalarLike(eps, x)], {}, t, ctx.shape(v))], {}, t, ctx.shape(v)),
    ],
    {},
    t,
    ctx.shape(v),
  );
  const axes = ctx.int64s([0, ...[...Array(r - 2).keys()].map((i) => i + 2)]);
  const res: (string | undefined)[] = [undefined, undefined, undefined, undefined, undefined];
  if (needs[0])
    res[0] = ctx.op(
      'Mul',
      [g, ctx.op('Reshape', [ctx.op('Mul', [scale, inv], {}, t, ctx.shape(v)), cShape], {}, t, undefined)],
      {},
      t,
      ctx.shape(x),
    );
  if (needs[1]) {
    const xhat = ctx.op(
      'Mul',
      [
        ctx.op('Sub', [x, ctx.op('Reshape', [mean, cShape], {}, t, undefined)], {}, t, ctx.shape(x)),
        ctx.op('Reshape', [inv, cShape], {}, t, undefined),
      ],
      {},
      t,
      ctx.shape(x),
    );
    res[1] = ctx.op('ReduceSum', [ctx.op('Mul', [g, xhat], {}, t, ctx.shape(x)), axes], { keepdims: 0 }, t, ctx.shape(scale));
  }
  if (needs[2]) res[2] = ctx.op('ReduceSum', [g, axes], { keepdims: 0 }, t, ctx.shape(scale));
  return res;
});

// ---------------------------------------------------------------- fused training-mode BatchNorm

/**
 * Stand-in for a lowered training-mode BatchNormalization (see `FusedBatchNormRegion`): with
 * d = x − mean, invstd = 1/√(var + ε), a = scale·invstd, M elements per channel and Σ over N and the
 * spatial axes,
 *   d bias = Σ g,  d scale = invstd·Σ g·d,
 *   d x = a·(g − Σg/M − d·invstd²·Σ(g·d)/M) = g·a + d·k2 + k3   (k2, k3 per channel),
 * the closed form PyTorch's native batch_norm_backward uses, instead of differentiating each primitive.
 */
reg([FUSED_BN_OP], ({ ctx, node, dy, needs }) => {
  if (dy.slice(1).some((d) => d !== undefined)) {
    throw new InvalidArgumentError(
      'graph',
      `${node.name}: the BatchNorm statistics are used on the loss path; lower it without fuseBatchNormGradient`,
    );
  }
  const g = need0(dy);
  const [x, scale] = [input(node, 0), input(node, 1)];
  const str = (k: string) => {
    const a = node.attrs[k];
    if (a?.kind !== 's') throw new InvalidArgumentError('graph', `${node.name} has no ${k} attribute`);
    return a.v;
  };
  const [d, invstd, a] = [str('centered'), str('invstd'), str('a')];
  const t = ctx.type(x);
  const xs = ctx.shape(x);
  const r = ctx.rank(x, node);
  const axes = ctx.int64s([0, ...[...Array(r - 2).keys()].map((i) => i + 2)]);
  const cs = [1, xs?.[1] ?? null, ...Array(r - 2).fill(1)] as Dim[];
  const flat = ctx.int64s([-1]);
  const sumG = ctx.op('ReduceSum', [g, axes], { keepdims: 1 }, t, cs);
  const sumGD =
    needs[0] || needs[1] ? ctx.op('ReduceSum', [ctx.op('Mul', [g, d], {}, t, xs), axes], { keepdims: 1 }, t, cs) : undefined;
  const res: (string | undefined)[] = [undefined, undefined, undefined];
  if (needs[0]) {
    // M = Size(x) / C as a scalar of x's type.
    const m = ctx.op('Div', [ctx.sizeOf(x, t), ctx.sizeOf(scale, t)], {}, t, []);
    const inv2 = ctx.op('Mul', [invstd, invstd], {}, t, cs);
    const k2 = ctx.op(
      'Neg',
      [ctx.op('Div', [ctx.op('Mul', [ctx.op('Mul', [a, inv2], {}, t, cs), sumGD as string], {}, t, cs), m], {}, t, cs)],
      {},
      t,
      cs,
    );
    const k3 = ctx.op('Neg', [ctx.op('Div', [ctx.op('Mul', [a, sumG], {}, t, cs), m], {}, t, cs)], {}, t, cs);
    const ga = ctx.op('Mul', [g, a], {}, t, xs);
    res[0] = ctx.op('Add', [ctx.op('Add', [ga, ctx.op('Mul', [d, k2], {}, t, xs)], {}, t, xs), k3], {}, t, xs);
  }
  if (needs[1]) res[1] = ctx.op('Reshape', [ctx.op('Mul', [sumGD as string, invstd], {}, t, cs), flat], {}, t, ctx.shape(scale));
  if (needs[2]) res[2] = ctx.op('Reshape', [sumG, flat], {}, t, ctx.shape(input(node, 2)));
  return res;
});
