/**
 * Gradient rules for the kernels the tfjs models use.
 *
 * Why this file exists: `@tensorflow/tfjs-core`'s Node entry (`dist/tf-core.node.js`) registers no
 * gradients — they live in `dist/register_all_gradients.js`, an ES module with extension-less
 * relative imports that Node cannot load, and the package that normally brings them in
 * (`@tensorflow/tfjs`) also pulls tfjs-layers, -converter, -data and -webgl. So the engine registers
 * its own rules for the ~20 kernels on the training path (the maths is the standard one, written
 * against tfjs's kernel signatures). A rule is only registered when none is (e.g. `@tensorflow/tfjs`
 * or tfjs-node loaded first keeps tfjs's own). Checked against PyTorch by the golden ResNet-18 step
 * test and against finite differences by `gradients.test.ts`.
 */
import * as tf from '@tensorflow/tfjs-core';

type Attrs = Record<string, unknown>;
type GradFn = (
  dy: tf.Tensor | tf.Tensor[],
  saved: tf.Tensor[],
  attrs: Attrs,
) => Record<string, () => tf.Tensor> | Array<() => tf.Tensor>;

interface Rule {
  kernelName: string;
  inputsToSave?: string[];
  outputsToSave?: boolean[];
  saveAllInputs?: boolean;
  gradFunc: GradFn;
}

const one = (dy: tf.Tensor | tf.Tensor[]): tf.Tensor => dy as tf.Tensor;

/** Sums a broadcast gradient back to the operand's shape. */
function unbroadcast(g: tf.Tensor, shape: number[], outShape: number[]): tf.Tensor {
  const axes = tf.backend_util.getReductionAxes(shape, outShape);
  return tf.reshape(axes.length > 0 ? tf.sum(g, axes) : g, shape);
}

function binary(
  kernelName: string,
  da: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  db: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
): Rule {
  return {
    kernelName,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b]) => {
      const x = a as tf.Tensor;
      const y = b as tf.Tensor;
      const out = tf.broadcast_util.assertAndGetBroadcastShape(x.shape, y.shape);
      return {
        a: () => unbroadcast(da(one(dy), x, y), x.shape, out),
        b: () => unbroadcast(db(one(dy), x, y), y.shape, out),
      };
    },
  };
}

/** dy of a reduction, reshaped with the reduced axes kept and broadcast to x's shape. */
function expandReduced(dy: tf.Tensor, x: tf.Tensor, axis: unknown): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis as number | number[], x.shape);
  const kept = x.shape.slice();
  for (const a of axes) kept[a] = 1;
  return tf.mul(tf.reshape(dy, kept), tf.ones(x.shape, 'float32'));
}

/**
 * Conv2D filter gradient computed in plain JavaScript, on the cpu backend only: tfjs-backend-cpu's
 * Conv2DBackpropFilter kernel goes through per-element TensorBuffer accessors and took 218 s of a
 * 224 s ResNet-18 step (64², batch 4), ~60× its own forward conv; slicing-based im2col was still
 * 13 s. On the cpu backend `dataSync` hands back the tensor's storage without a copy, so a direct
 * loop is cheap: dW[i, j, c, o] = Σ_{n, y, x} x[n, y·s + i − p, x·s + j − p, c] · dy[n, y, x, o],
 * accumulated in float64. Returns undefined (use the kernel) on other backends and for padding modes
 * the models do not use.
 */
function filterGradCpu(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: number[], attrs: Attrs): tf.Tensor | undefined {
  if (tf.getBackend() !== 'cpu') return undefined;
  const strides = attrs.strides as number | [number, number];
  const [sh, sw] = typeof strides === 'number' ? [strides, strides] : strides;
  const pad = attrs.pad === 'valid' ? 0 : attrs.pad;
  if (typeof pad !== 'number' || (attrs.dataFormat ?? 'NHWC') !== 'NHWC') return undefined;
  const [kh, kw, ci, co] = filterShape as [number, number, number, number];
  const [n, h, w] = x.shape;
  const [, oh, ow] = dy.shape;
  const xv = x.dataSync() as Float32Array;
  const gv = dy.dataSync() as Float32Array;
  const acc = new Float64Array(kh * kw * ci * co);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        const gOff = ((b * oh + y) * ow + xo) * co;
        for (let i = 0; i < kh; i++) {
          const yi = y * sh + i - pad;
          if (yi < 0 || yi >= h) continue;
          for (let j = 0; j < kw; j++) {
            const xj = xo * sw + j - pad;
            if (xj < 0 || xj >= w) continue;
            const xOff = ((b * h + yi) * w + xj) * ci;
            const wOff = (i * kw + j) * ci * co;
            for (let c = 0; c < ci; c++) {
              const v = xv[xOff + c] as number;
              // ReLU outputs are often exactly zero: skip their row.
              if (v === 0) continue;
              const base = wOff + c * co;
              for (let o = 0; o < co; o++) acc[base + o] = (acc[base + o] as number) + v * (gv[gOff + o] as number);
            }
          }
        }
      }
    }
  }
  return tf.tensor4d(Float32Array.from(acc), [kh, kw, ci, co]);
}

const RULES: Rule[] = [
  binary(
    'Add',
    (dy) => dy,
    (dy) => dy,
  ),
  binary(
    'Sub',
    (dy) => dy,
    (dy) => tf.neg(dy),
  ),
  binary(
    'Multiply',
    (dy, _a, b) => tf.mul(dy, b),
    (dy, a) => tf.mul(dy, a),
  ),
  binary(
    'RealDiv',
    (dy, _a, b) => tf.div(dy, b),
    (dy, a, b) => tf.neg(tf.div(tf.mul(dy, a), tf.square(b))),
  ),
  { kernelName: 'Neg', gradFunc: (dy) => ({ x: () => tf.neg(one(dy)) }) },
  { kernelName: 'Identity', gradFunc: (dy) => ({ x: () => one(dy) }) },
  {
    kernelName: 'Square',
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.mul(one(dy), tf.mul(x as tf.Tensor, 2)) }),
  },
  {
    kernelName: 'Sqrt',
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.div(one(dy), tf.mul(tf.sqrt(x as tf.Tensor), 2)) }),
  },
  {
    kernelName: 'Relu',
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.mul(one(dy), tf.step(x as tf.Tensor)) }),
  },
  {
    // d/dx erf(x) = 2/√π · exp(−x²)
    kernelName: 'Erf',
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({
      x: () => tf.mul(one(dy), tf.mul(tf.exp(tf.neg(tf.square(x as tf.Tensor))), 2 / Math.sqrt(Math.PI))),
    }),
  },
  {
    kernelName: 'Reshape',
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => tf.reshape(one(dy), (x as tf.Tensor).shape) }),
  },
  {
    kernelName: 'Transpose',
    gradFunc: (dy, _saved, attrs) => {
      const perm = attrs.perm as number[];
      const undo = new Array<number>(perm.length);
      perm.forEach((p, i) => {
        undo[p] = i;
      });
      return { x: () => tf.transpose(one(dy), undo) };
    },
  },
  {
    kernelName: 'Sum',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => ({ x: () => expandReduced(one(dy), x as tf.Tensor, attrs.axis) }),
  },
  {
    kernelName: 'Mean',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const t = x as tf.Tensor;
      const axes = tf.util.parseAxisParam(attrs.axis as number | number[], t.shape);
      const count = axes.reduce((n, a) => n * (t.shape[a] as number), 1);
      return { x: () => tf.div(expandReduced(one(dy), t, attrs.axis), count) };
    },
  },
  {
    kernelName: 'Softmax',
    outputsToSave: [true],
    gradFunc: (dy, [y], attrs) => {
      const yy = y as tf.Tensor;
      const dyy = tf.mul(one(dy), yy);
      return { logits: () => tf.sub(dyy, tf.mul(tf.sum(dyy, [attrs.dim as number], true), yy)) };
    },
  },
  {
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, [a, b], attrs) => {
      const g = one(dy);
      const x = a as tf.Tensor;
      const y = b as tf.Tensor;
      const ta = attrs.transposeA as boolean;
      const tb = attrs.transposeB as boolean;
      if (!ta && !tb) return { a: () => tf.matMul(g, y, false, true), b: () => tf.matMul(x, g, true, false) };
      if (!ta && tb) return { a: () => tf.matMul(g, y, false, false), b: () => tf.matMul(g, x, true, false) };
      if (ta && !tb) return { a: () => tf.matMul(y, g, false, true), b: () => tf.matMul(x, g, false, false) };
      return { a: () => tf.matMul(y, g, true, true), b: () => tf.matMul(g, x, true, true) };
    },
  },
  {
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, [x, filter], attrs) => {
      const dilations = (attrs.dilations ?? [1, 1]) as number | number[];
      if (![dilations].flat().every((d) => d === 1)) throw new Error('conv2d gradient: dilations > 1 are not supported');
      const common = {
        strides: attrs.strides,
        pad: attrs.pad,
        dataFormat: attrs.dataFormat,
        dimRoundingMode: attrs.dimRoundingMode,
      };
      const engine = tf.engine();
      return {
        x: () =>
          engine.runKernel('Conv2DBackpropInput', { dy: one(dy), filter: filter as tf.Tensor }, {
            ...common,
            inputShape: (x as tf.Tensor).shape,
          } as unknown as tf.NamedAttrMap) as tf.Tensor,
        filter: () =>
          filterGradCpu(x as tf.Tensor4D, one(dy) as tf.Tensor4D, (filter as tf.Tensor).shape, attrs) ??
          (engine.runKernel('Conv2DBackpropFilter', { x: x as tf.Tensor, dy: one(dy) }, {
            ...common,
            filterShape: (filter as tf.Tensor).shape,
          } as unknown as tf.NamedAttrMap) as tf.Tensor),
      };
    },
  },
  {
    kernelName: 'MaxPool',
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, [x, y], attrs) => ({
      x: () =>
        tf.engine().runKernel('MaxPoolGrad', { dy: one(dy), input: x as tf.Tensor, output: y as tf.Tensor }, {
          filterSize: attrs.filterSize,
          strides: attrs.strides,
          pad: attrs.pad,
          dimRoundingMode: attrs.dimRoundingMode,
        } as unknown as tf.NamedAttrMap) as tf.Tensor,
    }),
  },
  {
    kernelName: 'SplitV',
    gradFunc: (dy, _saved, attrs) => ({ x: () => tf.concat(dy as tf.Tensor[], attrs.axis as number) }),
  },
  {
    kernelName: 'Concat',
    saveAllInputs: true,
    gradFunc: (dy, saved, attrs) => {
      const axis = tf.util.parseAxisParam(attrs.axis as number, (saved[0] as tf.Tensor).shape)[0] as number;
      const parts = tf.split(
        one(dy),
        saved.map((t) => t.shape[axis] as number),
        axis,
      );
      return parts.map((p) => () => p);
    },
  },
  {
    kernelName: 'Slice',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const t = x as tf.Tensor;
      const [begin, size] = tf.slice_util.parseSliceParams(t, attrs.begin as number[], attrs.size as number[]) as [
        number[],
        number[],
      ];
      const paddings = t.shape.map(
        (d, i) => [begin[i] as number, d - (begin[i] as number) - (size[i] as number)] as [number, number],
      );
      return { x: () => tf.pad(one(dy), paddings) };
    },
  },
  {
    // Tile: the gradient of each input cell is the sum over its copies; reshape dy to
    // [r0, s0, r1, s1, …] and sum the repetition axes.
    kernelName: 'Tile',
    inputsToSave: ['x'],
    gradFunc: (dy, [x], attrs) => {
      const t = x as tf.Tensor;
      const reps = attrs.reps as number[];
      const split = t.shape.flatMap((s, i) => [reps[i] as number, s]);
      const repAxes = t.shape.map((_, i) => 2 * i);
      return { x: () => tf.reshape(tf.sum(tf.reshape(one(dy), split), repAxes), t.shape) };
    },
  },
];

let registered = false;

/** Registers the rules that tfjs does not already have (idempotent). */
export function registerGradients(): void {
  if (registered) return;
  registered = true;
  for (const rule of RULES) {
    if (tf.getGradient(rule.kernelName) != null) continue;
    tf.registerGradient(rule as unknown as tf.GradConfig);
  }
}

/** Kernels this file provides rules for. */
export const GRADIENT_KERNELS: readonly string[] = RULES.map((r) => r.kernelName);
