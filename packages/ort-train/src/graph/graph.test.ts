import { parseOnnxModel } from '@diffmix/onnx';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { createGraphSession, graphFromOnnxModel, serializeGraph } from './convert.js';
import { attr, Graph, tensorOf } from './graph.js';
import { inferShapes } from './infer.js';

describe('Graph', () => {
  it('builds, infers shapes, runs in ONNX Runtime and round-trips through @diffmix/onnx', async () => {
    const g = new Graph('mlp');
    const x = g.addInput('x', 'float32', ['N', 3]);
    g.addInitializer(
      'w',
      tensorOf(
        'float32',
        [3, 400],
        Array.from({ length: 1200 }, (_, i) => (i % 7) / 7),
      ),
    );
    const y = g.node('Gemm', [x, 'w'], { alpha: attr.f(0.5) });
    const z = g.node('ReduceSum', [g.node('Relu', [y]), g.int64s([1])], { keepdims: 0 });
    g.addOutput(z);
    const info = inferShapes(g);
    expect(info.get(y)?.shape).toEqual(['N', 400]);
    expect(info.get(z)).toMatchObject({ type: 'float32', shape: ['N'] });
    const s = serializeGraph(g);
    expect(s.externalData).toHaveLength(1); // the 4.8 KB weight goes as in-memory external data
    const session = (await createGraphSession(ort, g)) as ort.InferenceSession;
    const out = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, -1, 0, 0]), [2, 3]) });
    const r = (out[z] as ort.Tensor).data as Float32Array;
    let ref0 = 0;
    for (let j = 0; j < 400; j++)
      ref0 += Math.max(0, 0.5 * ((j % 7) / 7 + (2 * ((400 + j) % 7)) / 7 + (3 * ((800 + j) % 7)) / 7));
    expect(r[0]).toBeCloseTo(ref0, 2);
    const back = await graphFromOnnxModel(parseOnnxModel(s.model, { externalData: s.externalData }));
    expect(back.nodes.map((n) => n.opType)).toEqual(['Gemm', 'Relu', 'Constant', 'ReduceSum']);
    expect(back.nodes[0]?.attrs.alpha).toEqual({ kind: 'f', v: 0.5 });
    expect(Array.from(back.initializers.get('w')?.data as Float32Array)).toEqual(
      Array.from(g.initializers.get('w')?.data as Float32Array),
    );
  });

  it('folds integer shape arithmetic so exported dynamic Reshape targets become static', () => {
    // The torch exporter's pattern: Shape → Gather → Unsqueeze → Concat (with Mul / Div) → Reshape,
    // and Expand's Where(Equal(shape, -1), ones, shape).
    const g = new Graph('fold');
    const x = g.addInput('x', 'float32', [2, 6, 4]);
    const shp = g.node('Shape', [x]);
    const b = g.node('Unsqueeze', [g.node('Gather', [shp, g.constant(tensorOf('int64', [], [0]))]), g.int64s([0])]);
    const c = g.node('Unsqueeze', [
      g.node('Div', [g.node('Gather', [shp, g.constant(tensorOf('int64', [], [1]))]), g.constant(tensorOf('int64', [], [2]))]),
      g.int64s([0]),
    ]);
    const tail = g.node('Slice', [shp, g.int64s([-1]), g.int64s([9])]);
    const target = g.node('Concat', [b, c, g.node('Mul', [tail, g.constant(tensorOf('int64', [], [2]))])], { axis: 0 });
    const r = g.node('Reshape', [x, target]);
    const want = g.node('Reshape', [g.int64s([-1]), g.int64s([-1])]);
    const ones = g.node('ConstantOfShape', [g.int64s([1])], { value: attr.t(tensorOf('int64', [1], [1])) });
    const eq = g.node('Equal', [want, g.node('Mul', [ones, g.constant(tensorOf('int64', [], [-1]))])]);
    const e = g.node('Expand', [g.addInput('t', 'float32', [2]), g.node('Where', [eq, ones, want])]);
    g.addOutput(r);
    g.addOutput(e);
    const info = inferShapes(g);
    expect(info.get(r)?.shape).toEqual([2, 3, 8]);
    expect(info.get(e)?.shape).toEqual([2]);
  });
});
