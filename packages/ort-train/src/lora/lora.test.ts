import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { checkGradients } from '../autodiff/fdcheck.js';
import { createGraphSession } from '../graph/convert.js';
import { Graph, tensorOf } from '../graph/graph.js';
import { findEmbeddingGather, insertLoraBranches, makeEmbeddingRowsTrainable } from './lora.js';
import { buildEmbeddingRowsStep, buildLoraUnetStep } from './step.js';

const seq = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));

/** x [2, 3] → to_q (W^T [3, 5]) → ff (W^T [5, 2]); both scoped as the torch exporter names them. */
function tinyGraph(): Graph {
  const g = new Graph('tiny');
  g.addInput('x', 'float32', [2, 3]);
  g.addInitializer(
    'wq',
    tensorOf(
      'float32',
      [3, 5],
      seq(15, (i) => ((i * 7) % 5) / 5 - 0.4),
    ),
  );
  g.addInitializer(
    'wf',
    tensorOf(
      'float32',
      [5, 2],
      seq(10, (i) => ((i * 3) % 4) / 4 - 0.3),
    ),
  );
  const q = g.node('MatMul', ['x', 'wq'], {}, { name: '/blk/attn1/to_q/MatMul' });
  const y = g.node('MatMul', [g.node('Tanh', [q]), 'wf'], {}, { name: '/blk/ff/net.2/MatMul', output: 'y' });
  g.addOutput(y, 'float32', [2, 2]);
  return g;
}

function matmul(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += (a[i * k + t] as number) * (b[t * n + j] as number);
      out.push(s);
    }
  return out;
}
const transpose = (a: ArrayLike<number>, r: number, c: number) =>
  Array.from({ length: r * c }, (_, i) => a[(i % r) * c + Math.floor(i / r)] as number);

describe('insertLoraBranches', () => {
  const down = seq(6, (i) => 0.1 * (i - 2)); // [2, 3]
  const up = seq(10, (i) => 0.05 * (i % 3) - 0.02); // [5, 2]
  const x = seq(6, (i) => (i - 2.5) / 3);

  it('adds s·(x·Dᵀ)·Uᵀ on the targeted MatMul only, with peft naming and scale alpha/r', async () => {
    const g = tinyGraph();
    const branches = insertLoraBranches(g, {
      rank: 2,
      alpha: 4,
      targets: ['attn1.to_q'],
      init: (_m, kind) => (kind === 'down' ? down : up),
    });
    expect(branches).toEqual([
      {
        module: 'blk.attn1.to_q',
        node: '/blk/attn1/to_q/MatMul',
        weight: 'wq',
        inFeatures: 3,
        outFeatures: 5,
        down: 'unet.blk.attn1.to_q.lora.down.weight',
        up: 'unet.blk.attn1.to_q.lora.up.weight',
      },
    ]);
    expect(g.initializers.get(branches[0]?.down as string)?.dims).toEqual([2, 3]);
    expect(g.initializers.get(branches[0]?.up as string)?.dims).toEqual([5, 2]);
    const tanh = g.nodes.find((n) => n.name === '/blk/ff/net.2/MatMul')?.inputs[0] as string;
    g.addOutput(tanh, 'float32', [2, 5]);
    const s = (await createGraphSession(ort, g)) as ort.InferenceSession;
    const out = await s.run({ x: new ort.Tensor('float32', x, [2, 3]) });
    const tanhOut = (out[tanh] as ort.Tensor).data as Float32Array;
    const base = matmul(x, g.initializers.get('wq')?.data as Float32Array, 2, 3, 5);
    const branch = matmul(matmul(x, transpose(down, 2, 3), 2, 3, 2), transpose(up, 5, 2), 2, 2, 5);
    const ref = base.map((v, i) => Math.tanh(v + 2 * (branch[i] as number)));
    for (let i = 0; i < 10; i++) expect(tanhOut[i]).toBeCloseTo(ref[i] as number, 6);
  });

  it('leaves the output unchanged with the default zero init, refuses a target list that matches nothing', async () => {
    const g = tinyGraph();
    const ref = (
      await ((await createGraphSession(ort, g)) as ort.InferenceSession).run({ x: new ort.Tensor('float32', x, [2, 3]) })
    ).y as ort.Tensor;
    insertLoraBranches(g, { rank: 2, targets: ['to_q', 'net.2'] });
    expect(g.initializers.size).toBe(6);
    const got = (
      await ((await createGraphSession(ort, g)) as ort.InferenceSession).run({ x: new ort.Tensor('float32', x, [2, 3]) })
    ).y as ort.Tensor;
    expect(Array.from(got.data as Float32Array)).toEqual(Array.from(ref.data as Float32Array));
    expect(() => insertLoraBranches(tinyGraph(), { rank: 2, targets: ['attn2.to_k', 'q'] })).toThrow(/no MatMul/);
    expect(() => insertLoraBranches(tinyGraph(), { rank: 0, targets: ['to_q'] })).toThrow(/rank/);
  });

  it('gradients of down and up match finite differences; the base weight gets none', async () => {
    const g = tinyGraph();
    const branches = insertLoraBranches(g, {
      rank: 2,
      alpha: 2,
      targets: ['to_q'],
      init: (_m, kind) => (kind === 'down' ? down : up),
    });
    const yy = g.node('Mul', ['y', 'y']);
    g.addOutput(g.node('ReduceSum', [yy], { keepdims: 0 }, { output: 'loss' }), 'float32', []);
    const b = branches[0] as NonNullable<(typeof branches)[0]>;
    const r = await checkGradients(ort as never, g, {
      loss: 'loss',
      wrt: [b.down, b.up],
      feeds: { x: tensorOf('float32', [2, 3], x) },
    });
    expect(r.worst).toBeLessThan(2e-2);
    const step = buildLoraUnetStep(tinyGraph(), {
      rank: 2,
      targets: ['to_q'],
      init: (_m, kind) => (kind === 'down' ? down : up),
    });
    expect(Object.keys(step.gradients)).toEqual([b.down, b.up]);
    expect(step.graph.inputs.map((i) => i.name)).toEqual(['x', 'noise']);
  });
});

describe('makeEmbeddingRowsTrainable', () => {
  function embedGraph(): Graph {
    const g = new Graph('emb');
    g.addInput('input_ids', 'int32', [2, 3]);
    g.addInitializer(
      'tok.weight',
      tensorOf(
        'float32',
        [5, 4],
        seq(20, (i) => i / 10),
      ),
    );
    const ids = g.node('Cast', ['input_ids'], { to: 7 });
    const e = g.node('Gather', ['tok.weight', ids], { axis: 0 });
    g.addOutput(g.node('Mul', [e, e], {}, { output: 'h' }), 'float32', [2, 3, 4]);
    return g;
  }
  const ids = new ort.Tensor('int32', Int32Array.from([0, 5, 2, 6, 6, 4]), [2, 3]);

  it('appends trainable rows after the frozen table and backpropagates only into them', async () => {
    const g = embedGraph();
    expect(findEmbeddingGather(g, 'input_ids')?.table).toBe('tok.weight');
    const rows = seq(8, (i) => -1 - i / 10);
    const r = makeEmbeddingRowsTrainable(g, { append: rows, name: 'ti.rows' });
    expect(r).toMatchObject({ rows: 'ti.rows', firstId: 5, count: 2, dim: 4 });
    expect(g.initializers.has('tok.weight')).toBe(false);
    const out = (await ((await createGraphSession(ort, g)) as ort.InferenceSession).run({ input_ids: ids })).h as ort.Tensor;
    const h = out.data as Float32Array;
    expect(h[4]).toBeCloseTo(1, 6); // row 5 = rows[0] = -1 → 1
    expect(h[12]).toBeCloseTo((-1.4) ** 2, 6); // row 6 = rows[1]
    const step = buildEmbeddingRowsStep(embedGraph(), { append: rows, name: 'ti.rows' });
    const s = (await createGraphSession(ort, step.graph)) as ort.InferenceSession;
    const o = await s.run({
      input_ids: ids,
      [step.gradOutput]: new ort.Tensor('float32', new Float32Array(24).fill(1), [2, 3, 4]),
    });
    // d Σ e² / d row = 2 · row · (occurrences): row 5 once, row 6 twice.
    const grad = Array.from((o[step.gradient] as ort.Tensor).data as Float32Array);
    const ref = Array.from(rows, (v, i) => 2 * v * (i < 4 ? 1 : 2));
    for (const [i, v] of grad.entries()) expect(v).toBeCloseTo(ref[i] as number, 5);
  });

  it('splits off the last rows of an existing table (output unchanged)', async () => {
    const g = embedGraph();
    const before = (
      await ((await createGraphSession(ort, g)) as ort.InferenceSession).run({
        input_ids: new ort.Tensor('int32', Int32Array.from([0, 1, 2, 3, 4, 4]), [2, 3]),
      })
    ).h as ort.Tensor;
    const r = makeEmbeddingRowsTrainable(g, { trailing: 2 });
    expect(r).toMatchObject({ firstId: 3, count: 2 });
    expect(g.initializers.get(r.rows)?.dims).toEqual([2, 4]);
    const after = (
      await ((await createGraphSession(ort, g)) as ort.InferenceSession).run({
        input_ids: new ort.Tensor('int32', Int32Array.from([0, 1, 2, 3, 4, 4]), [2, 3]),
      })
    ).h as ort.Tensor;
    expect(Array.from(after.data as Float32Array)).toEqual(Array.from(before.data as Float32Array));
    expect(() => makeEmbeddingRowsTrainable(embedGraph(), { input: 'nope', trailing: 1 })).toThrow(/no token-embedding Gather/);
  });
});
