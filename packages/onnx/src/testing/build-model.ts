/**
 * Test helper: builds small ONNX models directly with the protobuf schema, so the tests do not
 * depend on this package's writer to create their inputs.
 */
import { onnx, type OnnxProto } from '../proto.js';

export interface TestTensor {
  name: string;
  dataType: number;
  dims: number[];
  raw?: Uint8Array;
  floatData?: number[];
  int64Data?: number[];
  int32Data?: number[];
  external?: { location: string; offset: number; length?: number };
}

function tensorProto(t: TestTensor): OnnxProto.ITensorProto {
  const p: OnnxProto.ITensorProto = { name: t.name, dataType: t.dataType, dims: t.dims };
  if (t.raw) p.rawData = t.raw;
  if (t.floatData) p.floatData = t.floatData;
  if (t.int64Data) p.int64Data = t.int64Data;
  if (t.int32Data) p.int32Data = t.int32Data;
  if (t.external) {
    p.dataLocation = 1;
    p.externalData = [
      { key: 'location', value: t.external.location },
      { key: 'offset', value: String(t.external.offset) },
      ...(t.external.length !== undefined ? [{ key: 'length', value: String(t.external.length) }] : []),
    ];
  }
  return p;
}

function valueInfo(name: string, elemType: number, dims: (number | string)[]): OnnxProto.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/**
 * A toy "text encoder": ids (int32 [batch, seq]) → Cast → Gather(table [vocab, 4]) → MatMul(W [4, 3])
 * → Add(bias) → out; plus a float16 weight path: Cast(W16) → MatMul → out16.
 */
export function toyModel(tensors: { table: TestTensor; weight: TestTensor; bias: TestTensor; weight16: TestTensor }): Uint8Array {
  const nodes: OnnxProto.INodeProto[] = [
    {
      name: '/embeddings/Cast',
      opType: 'Cast',
      input: ['input_ids'],
      output: ['ids64'],
      attribute: [{ name: 'to', type: 2, i: 7 }],
    },
    { name: '/embeddings/token_embedding/Gather', opType: 'Gather', input: [tensors.table.name, 'ids64'], output: ['emb'] },
    { name: '/proj/MatMul', opType: 'MatMul', input: ['emb', tensors.weight.name], output: ['mm'] },
    { name: '/proj/Add', opType: 'Add', input: [tensors.bias.name, 'mm'], output: ['out'] },
    {
      name: '/half/Cast',
      opType: 'Cast',
      input: [tensors.weight16.name],
      output: ['w16f'],
      attribute: [{ name: 'to', type: 2, i: 1 }],
    },
    { name: '/half/MatMul', opType: 'MatMul', input: ['emb', 'w16f'], output: ['out16'] },
  ];
  const model: OnnxProto.IModelProto = {
    irVersion: 8,
    producerName: 'diffmix-test',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'toy',
      node: nodes,
      initializer: [tensors.table, tensors.weight, tensors.bias, tensors.weight16].map(tensorProto),
      input: [valueInfo('input_ids', 6, ['batch', 'sequence'])],
      output: [valueInfo('out', 1, ['batch', 'sequence', 3]), valueInfo('out16', 1, ['batch', 'sequence', 3])],
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

export function f32bytes(values: number[]): Uint8Array {
  const a = Float32Array.from(values);
  return new Uint8Array(a.buffer);
}
