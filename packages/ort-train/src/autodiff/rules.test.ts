import { afterAll, describe, expect, it } from 'vitest';
import { attr, type Graph, Graph as GraphCtor, tensorOf } from '../graph/graph.js';
import { buildGradientGraph, UnsupportedOpsError } from './autodiff.js';
import { fdCase, type ParamOptions } from './testing.js';

type P = (name: string, dims: number[], o?: ParamOptions) => string;
type Build = (g: Graph, p: P) => string;

/** Measured worst relative errors, printed at the end (recorded in the package README). */
const measured: string[] = [];

/** float64 cases: max |fd − grad| ≤ 1e-6 · max |grad| (central differences, ε = 1e-6). */
const F64_TOL = 1e-6;
/** float32 cases (ops ORT runs in float32 only): ε = 1e-2, ≤ 2e-2 relative. */
const F32_TOL = 2e-2;

function fd(name: string, type: 'float32' | 'float64', build: Build, tol = type === 'float64' ? F64_TOL : F32_TOL, eps?: number) {
  it(`${name} (${type})`, async () => {
    const { result } = await fdCase(type, build, eps ? { eps } : {});
    const dirWorst = Math.max(...result.tensors.map((t) => t.directional.relErr));
    measured.push(
      `${name.padEnd(48)} ${type}  elementwise ${result.worst.toExponential(2)}  directional ${dirWorst.toExponential(2)}`,
    );
    expect(result.worst).toBeLessThan(tol);
    expect(dirWorst).toBeLessThan(tol);
  });
}

afterAll(() => {
  console.log(`finite-difference errors (max |fd − grad| / max |grad|):\n${measured.join('\n')}`);
});

const POS: ParamOptions = { range: [0.5, 2] };

describe('elementwise with broadcasting', () => {
  fd('Add [2,3,4] + [3,1]', 'float64', (g, p) => g.node('Add', [p('a', [2, 3, 4]), p('b', [3, 1])]));
  fd('Add [4] + [2,3,4] (lhs broadcast)', 'float64', (g, p) => g.node('Add', [p('a', [4]), p('b', [2, 3, 4])]));
  fd('Sub [2,1,4] - [3,1]', 'float64', (g, p) => g.node('Sub', [p('a', [2, 1, 4]), p('b', [3, 1])]));
  fd('Mul [2,3] * [1,3]', 'float64', (g, p) => g.node('Mul', [p('a', [2, 3]), p('b', [1, 3])]));
  fd('Mul x * x (fan-out)', 'float64', (g, p) => {
    const a = p('a', [5]);
    return g.node('Mul', [a, a]);
  });
  fd('fan-out of three, with broadcasting: x·a + x + exp(x)', 'float64', (g, p) => {
    const x = p('x', [2, 3]);
    return g.node('Add', [g.node('Add', [g.node('Mul', [x, p('a', [3])]), x]), g.node('Exp', [x])]);
  });
  it('a broadcast MatMul gradient with static shapes reduces over known axes (no run-time Shape / NonZero)', () => {
    const g = new GraphCtor();
    g.addInitializer(
      'a',
      tensorOf(
        'float32',
        [3, 4],
        Array.from({ length: 12 }, (_, i) => i / 7),
      ),
    );
    g.addInitializer(
      'b',
      tensorOf(
        'float32',
        [2, 4, 5],
        Array.from({ length: 40 }, (_, i) => Math.sin(i)),
      ),
    );
    const l = g.node('ReduceSum', [g.node('MatMul', ['a', 'b'])], { keepdims: 0 });
    g.addOutput(l, 'float32', []);
    const ops = buildGradientGraph(g, { loss: l, wrt: ['a', 'b'] }).graph.nodes.map((n) => n.opType);
    expect(ops).not.toContain('NonZero');
    expect(ops).not.toContain('Shape');
  });
  fd('MatMul [3,4] · [2,4,5] (lhs broadcast over the batch)', 'float64', (g, p) =>
    g.node('MatMul', [p('a', [3, 4]), p('b', [2, 4, 5])]),
  );
  it('accumulates fan-out gradients with Add, not Sum (ORT WebGPU has no Sum kernel)', () => {
    const g = new GraphCtor();
    g.addInitializer('x', tensorOf('float32', [2, 3], [1, 2, 3, 4, 5, 6]));
    const y = g.node('Add', [g.node('Add', [g.node('Mul', ['x', 'x']), 'x']), g.node('Exp', ['x'])]);
    const l = g.node('ReduceSum', [y], { keepdims: 0 });
    g.addOutput(l, 'float32', []);
    const tg = buildGradientGraph(g, { loss: l, wrt: ['x'] });
    expect(tg.graph.nodes.filter((n) => n.opType === 'Sum')).toEqual([]);
  });
  fd('Div [2,3] / [3]', 'float64', (g, p) => g.node('Div', [p('a', [2, 3]), p('b', [3], POS)]));
  fd('Div scalar / [2,2]', 'float64', (g, p) => g.node('Div', [p('a', []), p('b', [2, 2], POS)]));
  fd('Neg', 'float64', (g, p) => g.node('Neg', [p('a', [3, 2])]));
  fd('Pow x^3 (constant exponent)', 'float64', (g, p) => g.node('Pow', [p('a', [3, 2]), g.scalar(3, 'float64')]));
  fd('Pow x^0.5 (float32 exponent on float64 base)', 'float64', (g, p) =>
    g.node('Pow', [p('a', [4], POS), g.scalar(0.5, 'float32')]),
  );
  fd('Pow x^y (both trainable)', 'float64', (g, p) => g.node('Pow', [p('a', [2, 3], POS), p('b', [3])]));
  fd('Sqrt', 'float64', (g, p) => g.node('Sqrt', [p('a', [6], POS)]));
  fd('Exp', 'float64', (g, p) => g.node('Exp', [p('a', [6])]));
  fd('Log', 'float64', (g, p) => g.node('Log', [p('a', [6], POS)]));
  fd('Erf', 'float32', (g, p) => g.node('Erf', [p('a', [6])]), 5e-3, 1e-3);
  fd('Tanh', 'float64', (g, p) => g.node('Tanh', [p('a', [6])]));
  fd('Sigmoid', 'float64', (g, p) => g.node('Sigmoid', [p('a', [6])]));
  fd('Relu', 'float64', (g, p) => g.node('Relu', [p('a', [8], { values: [-1, -0.5, 0.3, 0.7, -0.2, 1.5, 2, -3] })]));
  fd('Reciprocal', 'float64', (g, p) => g.node('Reciprocal', [p('a', [4], POS)]));
  fd('Where with broadcasting', 'float64', (g, p) => {
    const c = g.constant(tensorOf('bool', [2, 3], [1, 0, 1, 0, 0, 1]));
    return g.node('Where', [c, p('a', [3]), p('b', [2, 1])]);
  });
  fd(
    'Cast float64 → float32 → float64',
    'float64',
    (g, p) => g.node('Cast', [g.node('Cast', [p('a', [4])], { to: 1 })], { to: 11 }),
    1e-4,
    1e-3,
  );
  fd('Identity', 'float64', (g, p) => g.node('Identity', [p('a', [3])]));
});

describe('matrix products', () => {
  fd('MatMul [2,3]·[3,4]', 'float64', (g, p) => g.node('MatMul', [p('a', [2, 3]), p('b', [3, 4])]));
  fd('MatMul batched [2,2,3]·[3,4] (weight broadcast)', 'float64', (g, p) =>
    g.node('MatMul', [p('a', [2, 2, 3]), p('b', [3, 4])]),
  );
  fd('MatMul [2,1,2,3]·[3,3,2] (both broadcast)', 'float64', (g, p) =>
    g.node('MatMul', [p('a', [2, 1, 2, 3]), p('b', [3, 3, 2])]),
  );
  fd('MatMul [3]·[2,3,4] (1-D lhs)', 'float64', (g, p) => g.node('MatMul', [p('a', [3]), p('b', [2, 3, 4])]));
  fd('MatMul [2,3]·[3] (1-D rhs)', 'float64', (g, p) => g.node('MatMul', [p('a', [2, 3]), p('b', [3])]));
  fd('Gemm plain + bias [4]', 'float64', (g, p) => g.node('Gemm', [p('a', [2, 3]), p('b', [3, 4]), p('c', [4])]));
  fd('Gemm transA transB alpha beta, bias [2,1]', 'float64', (g, p) =>
    g.node('Gemm', [p('a', [3, 2]), p('b', [4, 3]), p('c', [2, 1])], {
      transA: 1,
      transB: 1,
      alpha: attr.f(0.7),
      beta: attr.f(1.3),
    }),
  );
  fd('Gemm transB only', 'float64', (g, p) => g.node('Gemm', [p('a', [2, 3]), p('b', [4, 3])], { transB: 1 }));
  fd('Gemm transA only', 'float64', (g, p) => g.node('Gemm', [p('a', [3, 2]), p('b', [3, 4])], { transA: 1 }));
});

describe('reductions and softmax', () => {
  fd('ReduceSum axes [1] keepdims 0', 'float64', (g, p) =>
    g.node('ReduceSum', [p('a', [2, 3, 4]), g.int64s([1])], { keepdims: 0 }),
  );
  fd('ReduceSum axes [-1, 0] keepdims 1', 'float64', (g, p) =>
    g.node('ReduceSum', [p('a', [2, 3, 4]), g.int64s([-1, 0])], { keepdims: 1 }),
  );
  fd('ReduceSum all', 'float64', (g, p) => g.node('ReduceSum', [p('a', [2, 3])], { keepdims: 0 }));
  fd('ReduceMean axes [2,3] keepdims 1', 'float64', (g, p) =>
    g.node('ReduceMean', [p('a', [2, 3, 2, 2])], { axes: [2, 3], keepdims: 1 }),
  );
  fd('ReduceMean axes [-1] keepdims 0', 'float64', (g, p) =>
    g.node('ReduceMean', [p('a', [2, 3, 4])], { axes: [-1], keepdims: 0 }),
  );
  fd('ReduceMean all keepdims 0', 'float64', (g, p) => g.node('ReduceMean', [p('a', [2, 3])], { keepdims: 0 }));
  fd('Softmax axis -1', 'float64', (g, p) => g.node('Softmax', [p('a', [2, 3, 4])], { axis: -1 }));
  fd('Softmax axis 1', 'float64', (g, p) => g.node('Softmax', [p('a', [2, 3, 4])], { axis: 1 }));
  fd('LogSoftmax axis -1', 'float64', (g, p) => g.node('LogSoftmax', [p('a', [3, 5])], { axis: -1 }));
});

describe('shape ops', () => {
  fd('Reshape [2,3,4] → [6,-1]', 'float64', (g, p) => g.node('Reshape', [p('a', [2, 3, 4]), g.int64s([6, -1])]));
  fd('Flatten axis 2', 'float64', (g, p) => g.node('Flatten', [p('a', [2, 3, 2, 2])], { axis: 2 }));
  fd('Transpose perm [2,0,1]', 'float64', (g, p) => g.node('Transpose', [p('a', [2, 3, 4])], { perm: [2, 0, 1] }));
  fd('Transpose default perm', 'float64', (g, p) => g.node('Transpose', [p('a', [2, 3, 4])]));
  fd('Concat axis 1 (three inputs)', 'float64', (g, p) =>
    g.node('Concat', [p('a', [2, 1, 3]), p('b', [2, 2, 3]), p('c', [2, 3, 3])], { axis: 1 }),
  );
  fd('Concat axis -1 with a frozen input', 'float64', (g, p) =>
    g.node('Concat', [p('a', [2, 2]), p('b', [2, 3], { frozen: true })], { axis: -1 }),
  );
  fd('Split [1,3] on axis 1, both used', 'float64', (g, p) => {
    const [a, b] = g.nodeN('Split', [p('x', [2, 4, 2]), g.int64s([1, 3])], 2, { axis: 1 });
    return g.node('Concat', [g.node('Mul', [a as string, g.scalar(2, 'float64')]), b as string], { axis: 1 });
  });
  fd('Split with an unused output', 'float64', (g, p) => {
    const [, b] = g.nodeN('Split', [p('x', [2, 4]), g.int64s([2, 2])], 2, { axis: 1 });
    return b as string;
  });
  fd('Slice step 1', 'float64', (g, p) =>
    g.node('Slice', [p('a', [4, 5]), g.int64s([1, 0]), g.int64s([3, 4]), g.int64s([0, 1])]),
  );
  fd('Slice negative step and negative starts', 'float64', (g, p) =>
    g.node('Slice', [p('a', [4, 6]), g.int64s([-1]), g.int64s([0]), g.int64s([1]), g.int64s([-2])]),
  );
  fd('Gather rows with repeats (embedding)', 'float64', (g, p) =>
    g.node('Gather', [p('table', [5, 3]), g.int64s([1, 3, 1, 0])], { axis: 0 }),
  );
  fd('Gather axis 1, 2-D indices, negative index', 'float64', (g, p) =>
    g.node('Gather', [p('table', [2, 4, 3]), g.constant(tensorOf('int64', [2, 2], [0, -1, 2, 0]))], { axis: 1 }),
  );
  fd('Unsqueeze axes [0,-1]', 'float64', (g, p) => g.node('Unsqueeze', [p('a', [2, 3]), g.int64s([0, -1])]));
  fd('Squeeze axes [1]', 'float64', (g, p) => g.node('Squeeze', [p('a', [2, 1, 3]), g.int64s([1])]));
  fd('Expand [3,1] → [2,3,4]', 'float64', (g, p) => g.node('Expand', [p('a', [3, 1]), g.int64s([2, 3, 4])]));
});

describe('convolution, pooling, resize', () => {
  fd('Conv 3x3 stride 1 pad 1 + bias', 'float32', (g, p) =>
    g.node('Conv', [p('x', [2, 3, 5, 5]), p('w', [4, 3, 3, 3]), p('b', [4])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
  );
  fd('Conv 3x3 stride 2 pad 1 (odd size, last window cut)', 'float32', (g, p) =>
    g.node('Conv', [p('x', [1, 2, 6, 6]), p('w', [3, 2, 3, 3])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
  );
  fd('Conv 7x7 stride 2 pad 3 (ResNet stem)', 'float32', (g, p) =>
    g.node('Conv', [p('x', [1, 3, 9, 9]), p('w', [2, 3, 7, 7])], { kernel_shape: [7, 7], strides: [2, 2], pads: [3, 3, 3, 3] }),
  );
  fd('Conv 1x1 stride 2 (ResNet downsample)', 'float32', (g, p) =>
    g.node('Conv', [p('x', [2, 3, 5, 5]), p('w', [4, 3, 1, 1])], { strides: [2, 2] }),
  );
  fd('Conv dilation 2, asymmetric pads', 'float32', (g, p) =>
    g.node('Conv', [p('x', [1, 2, 7, 6]), p('w', [2, 2, 3, 2])], { dilations: [2, 1], pads: [1, 0, 2, 1] }),
  );
  fd('Conv group 2, 3x3 stride 2 pad 1 + bias (grouped weight gradient)', 'float32', (g, p) =>
    g.node('Conv', [p('x', [2, 4, 6, 6]), p('w', [6, 2, 3, 3]), p('b', [6])], {
      kernel_shape: [3, 3],
      strides: [2, 2],
      pads: [1, 1, 1, 1],
      group: 2,
    }),
  );
  fd('Conv depthwise (group = C = 3, channel multiplier 2), 3x3 pad 1', 'float32', (g, p) =>
    g.node('Conv', [p('x', [2, 3, 5, 5]), p('w', [6, 1, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 3 }),
  );
  fd('Conv group 3, dilation 2, asymmetric pads, last window cut', 'float32', (g, p) =>
    g.node('Conv', [p('x', [1, 6, 8, 7]), p('w', [3, 2, 3, 2])], {
      dilations: [2, 1],
      strides: [2, 2],
      pads: [1, 0, 2, 1],
      group: 3,
    }),
  );
  it('Conv weight gradient: im2col GEMMs (per-offset and explicit) and swapped convolution agree', async () => {
    const { Graph } = graphModule;
    const ort = await import('onnxruntime-node');
    const { createGraphSession } = await import('../graph/convert.js');
    const cases: [number[], number[], Record<string, number[]>][] = [
      [[2, 3, 9, 9], [4, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }],
      [[1, 3, 11, 11], [2, 3, 7, 7], { strides: [2, 2], pads: [3, 3, 3, 3] }],
      [[2, 4, 6, 6], [3, 4, 1, 1], { strides: [2, 2] }],
      [[1, 2, 8, 7], [2, 2, 3, 2], { dilations: [2, 1], pads: [1, 0, 2, 1] }],
      // ≥ 1024 output positions: the explicit-im2col form.
      [[1, 2, 34, 34], [3, 2, 3, 3], { pads: [1, 1, 1, 1] }],
      [[1, 2, 67, 66], [2, 2, 3, 3], { strides: [2, 2], pads: [0, 1, 1, 0] }],
    ];
    for (const [xs, ws, attrs] of cases) {
      const g = new Graph();
      const n = (d: number[]) => d.reduce((a, b) => a * b, 1);
      g.addInitializer(
        'x',
        tensorOf(
          'float32',
          xs,
          Array.from({ length: n(xs) }, (_, i) => Math.sin(i * 0.61)),
        ),
      );
      g.addInitializer(
        'w',
        tensorOf(
          'float32',
          ws,
          Array.from({ length: n(ws) }, (_, i) => Math.cos(i * 0.43)),
        ),
      );
      const y = g.node('Conv', ['x', 'w'], attrs);
      const l = g.node('ReduceSum', [g.node('Mul', [y, y])], { keepdims: 0 });
      g.addOutput(l, 'float32', []);
      const grads: Float32Array[] = [];
      for (const method of ['im2col', 'swapped'] as const) {
        const tg = buildGradientGraph(g, { loss: l, wrt: ['w'], convWeightGradient: method });
        expect(tg.graph.nodes.some((nd) => nd.opType === 'Gemm')).toBe(method === 'im2col');
        const s = (await createGraphSession(ort as never, tg.graph)) as unknown as {
          run(f: object): Promise<Record<string, { data: Float32Array }>>;
        };
        grads.push((await s.run({}))[tg.gradients.w as string]?.data as Float32Array);
      }
      const [a, b] = grads as [Float32Array, Float32Array];
      let err = 0;
      let mx = 0;
      for (let i = 0; i < b.length; i++) {
        err = Math.max(err, Math.abs((a[i] as number) - (b[i] as number)));
        mx = Math.max(mx, Math.abs(b[i] as number));
      }
      expect(a.length).toBe(n(ws));
      expect(err / mx).toBeLessThan(1e-5);
    }
  });
  it('Conv group 2 weight gradient with symbolic input dims (dynamic reshape path)', async () => {
    const { Graph } = graphModule;
    const { checkGradients } = await import('./fdcheck.js');
    const ort = await import('onnxruntime-node');
    const g = new Graph();
    g.addInput('x', 'float32', ['N', 4, 'H', 'W']);
    const wv = Array.from({ length: 4 * 2 * 3 * 3 }, (_, i) => Math.sin(i * 0.9));
    g.addInitializer('w', tensorOf('float32', [4, 2, 3, 3], wv));
    const y = g.node('Conv', ['x', 'w'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], group: 2 });
    // A non-uniform loss: Σ y² / 2.
    const l = g.node('ReduceSum', [g.node('Mul', [y, y])], { keepdims: 0 });
    g.addOutput(l, 'float32', []);
    const x = tensorOf(
      'float32',
      [2, 4, 5, 5],
      Array.from({ length: 200 }, (_, i) => Math.cos(i * 0.37)),
    );
    const r = await checkGradients(ort as never, g, { loss: l, wrt: ['w'], feeds: { x } });
    measured.push(`${'Conv group 2, symbolic dims'.padEnd(48)} float32  elementwise ${r.worst.toExponential(2)}`);
    expect(r.worst).toBeLessThan(F32_TOL);
  });
  it('MaxPool: the windows gradient (no Indices output, runs on WebGPU) equals the FD-checked indices one, ties included', async () => {
    const { Graph } = graphModule;
    const ort = await import('onnxruntime-node');
    const { createGraphSession } = await import('../graph/convert.js');
    // ReLU before the pool, as in ResNet's stem: many exact zeros, so windows with tied maxima and
    // windows whose maximum is 0 next to the padding. The first maximum must get the whole gradient.
    // The indices form is FD-checked in float64 above; float32 finite differences straddle near-ties.
    const configs: Record<string, number[]>[] = [
      { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
      { kernel_shape: [3, 3], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [2, 2] },
      { kernel_shape: [2, 3], strides: [2, 1], pads: [0, 1, 1, 0] },
    ];
    for (const attrs of configs) {
      const g = new Graph();
      g.addInitializer(
        'x',
        tensorOf(
          'float32',
          [2, 3, 9, 9],
          Array.from({ length: 486 }, (_, i) => Math.round(3 * Math.sin(i * 0.77)) / 2),
        ),
      );
      const y = g.node('MaxPool', [g.node('Relu', ['x'])], attrs);
      // dL/dy = tanh(y) + y·(1 − tanh²(y)): not uniform, so dY routed to the wrong element shows.
      const l = g.node('ReduceSum', [g.node('Mul', [y, g.node('Tanh', [y])])], { keepdims: 0 });
      g.addOutput(l, 'float32', []);
      const grads: Float32Array[] = [];
      for (const method of ['windows', 'indices'] as const) {
        const tg = buildGradientGraph(g, { loss: l, wrt: ['x'], maxPoolGradient: method });
        const pool = tg.graph.nodes.find((nd) => nd.opType === 'MaxPool');
        expect(pool?.outputs.length ?? 0, method).toBe(method === 'windows' ? 1 : 2);
        const s = (await createGraphSession(ort as never, tg.graph)) as unknown as {
          run(f: object): Promise<Record<string, { data: Float32Array }>>;
        };
        grads.push((await s.run({}))[tg.gradients.x as string]?.data as Float32Array);
      }
      const [a, b] = grads as [Float32Array, Float32Array];
      expect(a.length).toBe(486);
      // Equal up to float32 summation order where windows overlap.
      let err = 0;
      let mx = 0;
      for (let i = 0; i < b.length; i++) {
        err = Math.max(err, Math.abs((a[i] as number) - (b[i] as number)));
        mx = Math.max(mx, Math.abs(b[i] as number));
      }
      expect(mx).toBeGreaterThan(0);
      expect(err / mx, JSON.stringify(attrs)).toBeLessThan(1e-6);
    }
  });
  fd('MaxPool 3x3 stride 2 pad 1', 'float64', (g, p) =>
    g.node('MaxPool', [p('x', [2, 2, 5, 5])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
  );
  // float32 finite differences step by 1e-2: two values of a window closer than that swap the maximum
  // mid-difference and the check fails on a correct gradient. Values 0.05 apart (a fixed shuffle) keep
  // every window's maximum clear; random draws passed or failed with the order of the cases in this file.
  fd('MaxPool 2x2 stride 2 (no padding, odd size), windows form', 'float32', (g, p) =>
    g.node('MaxPool', [p('x', [1, 3, 5, 7], { values: Array.from({ length: 105 }, (_, i) => ((i * 37) % 105) * 0.05 - 2.6) })], {
      kernel_shape: [2, 2],
      strides: [2, 2],
    }),
  );
  fd('AveragePool 2x2 stride 2', 'float32', (g, p) =>
    g.node('AveragePool', [p('x', [1, 2, 4, 4])], { kernel_shape: [2, 2], strides: [2, 2] }),
  );
  fd('AveragePool 3x3 pad 1 count_include_pad 0', 'float32', (g, p) =>
    g.node('AveragePool', [p('x', [1, 1, 5, 5])], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
  );
  fd('GlobalAveragePool', 'float32', (g, p) => g.node('GlobalAveragePool', [p('x', [2, 3, 2, 3])]));
  fd('Resize nearest to sizes [1,2,5,4] (non-integer ratio)', 'float32', (g, p) =>
    g.node('Resize', [p('x', [1, 2, 3, 3]), '', '', g.int64s([1, 2, 5, 4])], { mode: 'nearest' }),
  );
  fd('Resize nearest ×2 (UNet upsample)', 'float32', (g, p) =>
    g.node('Resize', [p('x', [1, 2, 3, 3]), '', g.constant(tensorOf('float32', [4], [1, 1, 2, 2]))], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    }),
  );
  fd('Resize nearest ×(3, 2) asymmetric floor (block-sum gradient)', 'float32', (g, p) =>
    g.node('Resize', [p('x', [2, 1, 2, 3]), '', g.constant(tensorOf('float32', [4], [1, 1, 3, 2]))], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    }),
  );
  it('integer nearest upsampling backpropagates with Reshape + ReduceSum (no ScatterElements: not on WebGPU)', () => {
    const build = (ctm: string) => {
      const g = new GraphCtor();
      g.addInitializer(
        'x',
        tensorOf(
          'float32',
          [1, 2, 3, 3],
          Array.from({ length: 18 }, (_, i) => i),
        ),
      );
      const y = g.node('Resize', ['x', '', g.constant(tensorOf('float32', [4], [1, 1, 2, 2]))], {
        mode: 'nearest',
        coordinate_transformation_mode: ctm,
        nearest_mode: 'floor',
      });
      const l = g.node('ReduceSum', [g.node('Mul', [y, y])], { keepdims: 0 });
      g.addOutput(l, 'float32', []);
      return buildGradientGraph(g, { loss: l, wrt: ['x'] }).graph.nodes.map((n) => n.opType);
    };
    expect(build('asymmetric')).not.toContain('ScatterElements');
    // Other coordinate modes keep the general index-scatter rule.
    expect(build('half_pixel')).toContain('ScatterElements');
  });
});

describe('normalisation', () => {
  fd('BatchNormalization training mode (lowered)', 'float64', (g, p) =>
    g.node(
      'BatchNormalization',
      [
        p('x', [3, 2, 2, 2]),
        p('s', [2], POS),
        p('bb', [2]),
        p('m', [2], { frozen: true }),
        p('v', [2], { frozen: true, ...POS }),
      ],
      {
        training_mode: 1,
      },
    ),
  );
  fd('BatchNormalization training mode + Tanh, [4,3,3,2] (fused backward)', 'float64', (g, p) =>
    g.node('Tanh', [
      g.node(
        'BatchNormalization',
        [
          p('x', [4, 3, 3, 2]),
          p('s', [3], POS),
          p('bb', [3]),
          p('m', [3], { frozen: true }),
          p('v', [3], { frozen: true, ...POS }),
        ],
        {
          training_mode: 1,
        },
      ),
    ]),
  );
  it('training-mode BatchNormalization: the closed-form backward equals differentiating the primitives', async () => {
    const ort = await import('onnxruntime-node');
    const { Graph } = graphModule;
    const { createGraphSession } = await import('../graph/convert.js');
    const g = new Graph();
    const vals = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
    g.addInitializer(
      'x',
      tensorOf(
        'float64',
        [3, 2, 2, 3],
        vals(36, (i) => Math.sin(i * 1.3) * 2 + 0.5),
      ),
    );
    g.addInitializer('s', tensorOf('float64', [2], [0.7, 1.4]));
    g.addInitializer('b', tensorOf('float64', [2], [0.1, -0.2]));
    g.addInitializer('m', tensorOf('float64', [2], [0, 0]));
    g.addInitializer('v', tensorOf('float64', [2], [1, 1]));
    g.addInitializer(
      'R',
      tensorOf(
        'float64',
        [3, 2, 2, 3],
        vals(36, (i) => Math.cos(i * 0.7)),
      ),
    );
    const [y] = g.nodeN('BatchNormalization', ['x', 's', 'b', 'm', 'v'], 3, { training_mode: 1 });
    const l = g.node('ReduceSum', [g.node('Mul', [g.node('Sigmoid', [y as string]), 'R'])], { keepdims: 0 });
    g.addOutput(l, 'float64', []);
    const run = async (fuse: boolean) => {
      const tg = buildGradientGraph(g, { loss: l, wrt: ['x', 's', 'b'], lower: { fuseBatchNormGradient: fuse } });
      const ops = tg.graph.nodes.map((n) => n.opType);
      const s = (await createGraphSession(ort as never, tg.graph)) as unknown as {
        run(f: object): Promise<Record<string, { data: Float64Array }>>;
      };
      const r = await s.run({});
      return { ops, grads: ['x', 's', 'b'].map((w) => r[tg.gradients[w] as string]?.data as Float64Array) };
    };
    const fused = await run(true);
    const plain = await run(false);
    // The fused graph differentiates BatchNorm as one op: fewer nodes than through the primitives.
    expect(fused.ops.length).toBeLessThan(plain.ops.length);
    expect(fused.ops).not.toContain('FusedBatchNormTraining');
    fused.grads.forEach((gv, i) => {
      const ref = plain.grads[i] as Float64Array;
      expect(gv.length).toBe(ref.length);
      let err = 0;
      for (let k = 0; k < gv.length; k++) err = Math.max(err, Math.abs((gv[k] as number) - (ref[k] as number)));
      expect(err).toBeLessThan(1e-12);
    });
  });
  fd('BatchNormalization inference mode', 'float64', (g, p) =>
    g.node('BatchNormalization', [
      p('x', [2, 2, 2, 2]),
      p('s', [2], POS),
      p('bb', [2]),
      p('m', [2], { frozen: true }),
      p('v', [2], { frozen: true, ...POS }),
    ]),
  );
  fd('LayerNormalization axis -1', 'float64', (g, p) =>
    g.node('LayerNormalization', [p('x', [2, 3, 4]), p('s', [4]), p('bb', [4])], { axis: -1 }),
  );
  fd('GroupNormalization (opset 18, lowered)', 'float64', (g, p) => {
    g.opsets.set('', 18);
    return g.node('GroupNormalization', [p('x', [2, 4, 2, 2]), p('s', [2]), p('bb', [2])], { num_groups: 2 });
  });
  it('BatchNormalization running statistics (PyTorch semantics: unbiased variance, momentum 0.1)', async () => {
    const ort = await import('onnxruntime-node');
    const { Graph } = graphModule;
    const { createGraphSession } = await import('../graph/convert.js');
    const g = new Graph();
    const x = Array.from({ length: 2 * 2 * 3 }, (_, i) => Math.sin(i * 1.7) * 2);
    g.addInitializer('x', tensorOf('float64', [2, 2, 3], x));
    for (const [n, v] of [
      ['s', [1, 1]],
      ['b', [0, 0]],
      ['m', [0.5, -0.5]],
      ['v', [1, 2]],
    ] as const)
      g.addInitializer(n, tensorOf('float64', [2], v));
    const [y] = g.nodeN('BatchNormalization', ['x', 's', 'b', 'm', 'v'], 3, { training_mode: 1, momentum: attr.f(0.9) });
    const l = g.node('ReduceSum', [y as string], { keepdims: 0 });
    g.addOutput(l, 'float64', []);
    const tg = buildGradientGraph(g, { loss: l, wrt: ['s'] });
    expect(tg.runningStats).toHaveLength(1);
    const s = (await createGraphSession(ort as never, tg.graph)) as unknown as {
      run(f: object): Promise<Record<string, { data: Float64Array }>>;
    };
    const r = await s.run({});
    const st = tg.runningStats[0] as { mean: string; var: string };
    for (let c = 0; c < 2; c++) {
      const vals = [0, 1].flatMap((n) => [0, 1, 2].map((k) => x[n * 6 + c * 3 + k] as number));
      const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
      const unbiased = vals.reduce((a, b) => a + (b - mean) ** 2, 0) / (vals.length - 1);
      expect(r[st.mean]?.data[c]).toBeCloseTo(0.9 * [0.5, -0.5][c]! + 0.1 * mean, 12);
      expect(r[st.var]?.data[c]).toBeCloseTo(0.9 * [1, 2][c]! + 0.1 * unbiased, 12);
    }
  });
  fd('InstanceNormalization', 'float32', (g, p) =>
    g.node('InstanceNormalization', [p('x', [2, 3, 2, 2]), p('s', [3]), p('bb', [3])]),
  );
});

describe('lowered normalisation matches the ONNX Runtime kernels (forward)', () => {
  const cases: [string, number, Build][] = [
    [
      'LayerNormalization',
      17,
      (g, p) => g.node('LayerNormalization', [p('x', [2, 3, 8]), p('s', [8]), p('bb', [8])], { axis: -1, epsilon: attr.f(1e-5) }),
    ],
    [
      'LayerNormalization axis 1',
      17,
      (g, p) => g.node('LayerNormalization', [p('x', [2, 3, 4]), p('s', [3, 4]), p('bb', [3, 4])], { axis: 1 }),
    ],
    [
      'InstanceNormalization',
      17,
      (g, p) => g.node('InstanceNormalization', [p('x', [2, 3, 4, 5]), p('s', [3]), p('bb', [3])], { epsilon: attr.f(1e-5) }),
    ],
    [
      'BatchNormalization training_mode=1',
      17,
      (g, p) =>
        g.nodeN('BatchNormalization', [p('x', [4, 3, 4, 5]), p('s', [3]), p('bb', [3]), p('m', [3]), p('v', [3], POS)], 3, {
          training_mode: 1,
          momentum: attr.f(0.9),
        })[0] as string,
    ],
    [
      'GroupNormalization (opset 18, per-group scale)',
      18,
      (g, p) => g.node('GroupNormalization', [p('x', [2, 6, 3, 3]), p('s', [3]), p('bb', [3])], { num_groups: 3 }),
    ],
  ];
  for (const [name, opset, build] of cases) {
    it(name, async () => {
      const ort = await import('onnxruntime-node');
      const { Graph } = graphModule;
      const { createGraphSession } = await import('../graph/convert.js');
      const { lowerForTraining } = await import('./lower.js');
      const g = new Graph();
      g.opsets.set('', opset);
      let k = 0;
      const y = build(g, (n, dims, o) =>
        g.addInitializer(
          n,
          tensorOf(
            'float32',
            dims,
            Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => {
              const [lo, hi] = o?.range ?? [-1, 1];
              k++;
              return lo + ((((hi - lo) * (((Math.sin(k * 12.9898) * 43758.5453) % 1) + 1)) / 2) % (hi - lo));
            }),
          ),
        ),
      );
      g.addOutput(y, 'float32');
      const run = async (gg: graphModule.Graph) => {
        const s = await createGraphSession(ort as never, gg);
        const r = await (s as unknown as { run(f: object): Promise<Record<string, { data: Float32Array }>> }).run({});
        return (r[y] as { data: Float32Array }).data;
      };
      let native: Float32Array;
      try {
        native = await run(g);
      } catch (e) {
        if (/implementation|not supported/i.test(String(e))) return; // kernel absent in this build: nothing to compare
        throw e;
      }
      const low = g.clone();
      lowerForTraining(low);
      const lowered = await run(low);
      let err = 0;
      for (let i = 0; i < native.length; i++) err = Math.max(err, Math.abs((native[i] as number) - (lowered[i] as number)));
      measured.push(`${`lowered ${name} vs ORT kernel`.padEnd(48)} float32  max abs diff ${err.toExponential(2)}`);
      expect(err).toBeLessThan(1e-5);
    });
  }
});

describe('compositions and errors', () => {
  fd('MLP: Gemm → Relu → MatMul → LogSoftmax', 'float64', (g, p) => {
    const h = g.node('Relu', [g.node('Gemm', [p('x', [3, 4], { frozen: true }), p('w1', [5, 4]), p('b1', [5])], { transB: 1 })]);
    return g.node('LogSoftmax', [g.node('MatMul', [h, p('w2', [5, 3])])], { axis: -1 });
  });
  fd('attention: softmax(QKᵀ/√d)V with Transpose / Div / Reshape', 'float64', (g, p) => {
    const x = p('x', [2, 4, 6], { frozen: true });
    const q = g.node('MatMul', [x, p('wq', [6, 6])]);
    const k = g.node('MatMul', [x, p('wk', [6, 6])]);
    const v = g.node('MatMul', [x, p('wv', [6, 6])]);
    const heads = (t: string) => g.node('Transpose', [g.node('Reshape', [t, g.int64s([2, 4, 2, 3])])], { perm: [0, 2, 1, 3] });
    const s = g.node('Div', [
      g.node('MatMul', [heads(q), g.node('Transpose', [heads(k)], { perm: [0, 1, 3, 2] })]),
      g.scalar(Math.sqrt(3), 'float64'),
    ]);
    const a = g.node('MatMul', [g.node('Softmax', [s], { axis: -1 }), heads(v)]);
    return g.node('Reshape', [g.node('Transpose', [a], { perm: [0, 2, 1, 3] }), g.int64s([2, 4, 6])]);
  });
  fd('shape ops pass through: Reshape to Shape(x) computed at run time', 'float64', (g, p) => {
    const x = p('x', [2, 3]);
    const flat = g.node('Reshape', [x, g.int64s([-1])]);
    return g.node('Reshape', [g.node('Exp', [flat]), g.node('Shape', [x])]);
  });

  it('names every op type without a rule', () => {
    const { Graph } = require_graph();
    const g = new Graph();
    g.addInitializer('w', tensorOf('float32', [3], [1, 2, 3]));
    const y = g.node('Hardmax', [g.node('Celu', [g.node('Celu', ['w'])])]);
    const l = g.node('ReduceSum', [y], { keepdims: 0 });
    g.addOutput(l, 'float32', []);
    expect(() => buildGradientGraph(g, { loss: l, wrt: ['w'] })).toThrow(UnsupportedOpsError);
    expect(() => buildGradientGraph(g, { loss: l, wrt: ['w'] })).toThrow(/Celu \(2 nodes.*Hardmax \(1 node/);
  });
});

import * as graphModule from '../graph/graph.js';

function require_graph() {
  return graphModule;
}
