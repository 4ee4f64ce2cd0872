import { densify, smoothLabel } from '@diffmix/core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../models/builder.js';
import { readGoldenF32, readGoldenNpy } from '../models/golden-fixtures.js';
import { type CrossEntropyOptions, crossEntropy, crossEntropyGraph, mse, mseGraph, oneHotRows } from './losses.js';

async function runLoss(
  build: (g: GraphBuilder, a: string, b: string) => string,
  a: Float32Array,
  b: Float32Array,
  shape: number[],
): Promise<number> {
  const g = new GraphBuilder();
  const x = g.input('a', shape);
  const y = g.input('b', shape);
  g.output(build(g, x, y), []);
  const s = await ort.InferenceSession.create(g.toBytes());
  const out = await s.run({ a: new ort.Tensor('float32', a, shape), b: new ort.Tensor('float32', b, shape) });
  const loss = out[s.outputNames[0] as string];
  if (!loss) throw new Error('no loss output');
  expect(loss.dims).toEqual([]);
  return (loss.data as Float32Array)[0] as number;
}

describe('cross-entropy', () => {
  const logits = readGoldenF32('grads', 'resnet18_step', 'logits.npy');
  const labels = readGoldenNpy('grads', 'resnet18_step', 'labels.npy').data as BigInt64Array;
  const target = oneHotRows(labels, 1000);
  const golden = (readGoldenF32('grads', 'resnet18_step', 'loss.npy')[0] ?? 0) as number;

  it('torch mode reproduces F.cross_entropy(label_smoothing=0.1) of the golden ResNet-18 step', async () => {
    const opts: CrossEntropyOptions = { epsilon: 0.1, mode: 'torch' };
    const ref = crossEntropy(logits, target, 1000, opts).loss;
    const graph = await runLoss((g, a, b) => crossEntropyGraph(g, a, b, 1000, opts), logits, target, [4, 1000]);
    expect(Math.abs(ref - golden)).toBeLessThan(1e-6 * golden);
    expect(Math.abs(graph - golden)).toBeLessThan(2e-6 * golden);
  });

  it('official mode: target = ε/(C−1) + (1−ε)·y, the same as smoothLabel of @diffmix/core', async () => {
    const c = 7;
    const z = Float32Array.from({ length: 3 * c }, (_, i) => Math.sin(i * 1.3) * 2);
    const soft = new Float32Array(3 * c);
    soft.set(
      densify(
        [
          [2, 0.7],
          [5, 0.3],
        ],
        c,
      ),
      0,
    );
    soft.set(densify([[0, 1]], c), c);
    soft.set(
      densify(
        [
          [6, 0.45],
          [1, 0.45],
        ],
        c,
      ),
      2 * c,
    ); // Diff-Mix scaler 0.9
    const smoothed = new Float32Array(3 * c);
    for (let b = 0; b < 3; b++) smoothed.set(smoothLabel(soft.subarray(b * c, (b + 1) * c), 0.1, 'official'), b * c);
    const a = crossEntropy(z, soft, c, { epsilon: 0.1 });
    const b = crossEntropy(z, smoothed, c);
    expect(a.loss).toBeCloseTo(b.loss, 6);
    // hand value for one row: −Σ t log softmax
    const row = Array.from(z.subarray(0, c));
    const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
    const t0 = row.map((_, j) => 0.1 / 6 + 0.9 * (soft[j] as number));
    const l0 = -t0.reduce((s, t, j) => s + t * ((row[j] as number) - lse), 0);
    expect(crossEntropy(z.subarray(0, c), soft.subarray(0, c), c, { epsilon: 0.1 }).loss).toBeCloseTo(l0, 10);
    const graph = await runLoss((g, x, y) => crossEntropyGraph(g, x, y, c, { epsilon: 0.1 }), z, soft, [3, c]);
    expect(Math.abs(graph - a.loss)).toBeLessThan(1e-6 * a.loss);
  });

  it('gradient matches central differences', () => {
    const c = 5;
    const z = Float64Array.from({ length: 2 * c }, (_, i) => Math.cos(i) * 1.5);
    const t = Float64Array.from({ length: 2 * c }, (_, i) => (i % c === 1 ? 0.6 : i % c === 3 ? 0.4 : 0));
    const opts = { epsilon: 0.2 };
    const { grad } = crossEntropy(z, t, c, opts);
    for (let i = 0; i < z.length; i++) {
      const h = 1e-6;
      const zp = Float64Array.from(z);
      const zm = Float64Array.from(z);
      zp[i] = (zp[i] as number) + h;
      zm[i] = (zm[i] as number) - h;
      const fd = (crossEntropy(zp, t, c, opts).loss - crossEntropy(zm, t, c, opts).loss) / (2 * h);
      expect(Math.abs(fd - (grad[i] as number))).toBeLessThan(1e-6);
    }
  });

  it('rejects bad arguments', () => {
    expect(() => crossEntropy([1, 2], [1, 0], 2, { epsilon: 1 })).toThrow(/epsilon/);
    expect(() => crossEntropy([1, 2, 3], [1, 0], 2)).toThrow(/target/);
    expect(() => oneHotRows([3], 3)).toThrow(/label 3/);
  });
});

describe('mse', () => {
  it('graph and reference agree with a hand value', async () => {
    const p = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const t = Float32Array.from([1, 0, 3, 1, 5, 8]);
    const ref = mse(p, t);
    expect(ref.loss).toBeCloseTo((4 + 9 + 4) / 6, 12);
    expect(Array.from(ref.grad)).toEqual([0, 4 / 6, 0, 1, 0, -4 / 6].map(Math.fround));
    expect(await runLoss(mseGraph, p, t, [2, 3])).toBeCloseTo(17 / 6, 6);
  });
});
