/**
 * Graph ↔ ONNX: serialise a `Graph` to ModelProto bytes (large initializers as in-memory external
 * data, so no 2 GiB protobuf is ever built), read a `Graph` from an `@diffmix/onnx` model, and create
 * ONNX Runtime sessions from graphs.
 */
import { InvalidArgumentError } from '@diffmix/core';
import {
  bytesToTyped,
  type CreateSessionOptions,
  createOrtSession,
  ONNX_DATA_TYPE_CODES,
  type OnnxModel,
  type OnnxProto,
  type OrtModuleLike,
  onnx,
  onnxDataTypeFromCode,
  parseOnnxModel,
  type SerializedOnnxModel,
  typedToBytes,
} from '@diffmix/onnx';
import { type Attr, type Dim, Graph, type Tensor, type ValueInfo } from './graph.js';
import { inferShapes } from './infer.js';

const EXTERNAL = 1;

function tensorProto(name: string, t: Tensor, external?: { location: string; length: number }): OnnxProto.ITensorProto {
  const base: OnnxProto.ITensorProto = { name, dataType: ONNX_DATA_TYPE_CODES[t.type], dims: t.dims };
  if (external) {
    return {
      ...base,
      dataLocation: EXTERNAL,
      externalData: [
        { key: 'location', value: external.location },
        { key: 'offset', value: '0' },
        { key: 'length', value: String(external.length) },
      ],
    };
  }
  return { ...base, rawData: typedToBytes(t.data) };
}

function attrProto(name: string, a: Attr): OnnxProto.IAttributeProto {
  switch (a.kind) {
    case 'i':
      return { name, type: 2, i: a.v };
    case 'f':
      return { name, type: 1, f: a.v };
    case 's':
      return { name, type: 3, s: new TextEncoder().encode(a.v) };
    case 'ints':
      return { name, type: 7, ints: a.v };
    case 'floats':
      return { name, type: 6, floats: a.v };
    case 'strings':
      return { name, type: 8, strings: a.v.map((s) => new TextEncoder().encode(s)) };
    case 't':
      return { name, type: 4, t: tensorProto('', a.v) };
    case 'raw':
      return { ...(a.v as OnnxProto.IAttributeProto), name };
  }
}

function valueInfoProto(v: ValueInfo): OnnxProto.IValueInfoProto {
  const tensorType: OnnxProto.TypeProto.ITensor = {};
  if (v.type) tensorType.elemType = ONNX_DATA_TYPE_CODES[v.type];
  if (v.shape)
    tensorType.shape = { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : d === null ? {} : { dimParam: d })) };
  return { name: v.name, type: { tensorType } };
}

export interface SerializeGraphOptions {
  /** Initializers of at least this many bytes become in-memory external data (default 1024; Infinity = inline all). */
  externalThreshold?: number;
  /** Write inferred value_info for intermediate values (default false). */
  valueInfo?: boolean;
}

/**
 * The graph as a ModelProto (IR 8, the graph's opsets) plus in-memory external data — the form
 * `createOrtSession` and `ort.InferenceSession.create(model, { externalData })` take.
 */
export function serializeGraph(graph: Graph, options: SerializeGraphOptions = {}): SerializedOnnxModel {
  const threshold = options.externalThreshold ?? 1024;
  const needInfer = graph.outputs.some((o) => !o.type) || graph.inputs.some((i) => !i.type) || options.valueInfo === true;
  const info = needInfer ? inferShapes(graph) : undefined;
  const files: SerializedOnnxModel['externalData'] = [];
  const initializer: OnnxProto.ITensorProto[] = [];
  let k = 0;
  for (const [name, t] of graph.initializers) {
    if (t.data.byteLength >= threshold) {
      const location = `__graph_external_${k++}.bin`;
      files.push({ path: location, data: typedToBytes(t.data) });
      initializer.push(tensorProto(name, t, { location, length: t.data.byteLength }));
    } else initializer.push(tensorProto(name, t));
  }
  const fill = (v: ValueInfo): ValueInfo => {
    if (v.type) return v;
    const i = info?.get(v.name);
    if (!i?.type) throw new InvalidArgumentError('graph', `the element type of ${JSON.stringify(v.name)} is unknown: declare it`);
    return { name: v.name, type: i.type, shape: v.shape ?? i.shape };
  };
  const graphProto: OnnxProto.IGraphProto = {
    name: graph.name,
    node: graph.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      input: n.inputs,
      output: n.outputs,
      attribute: Object.entries(n.attrs).map(([k2, a]) => attrProto(k2, a)),
    })),
    initializer,
    input: graph.inputs.map((v) => valueInfoProto(fill(v))),
    output: graph.outputs.map((v) => valueInfoProto(fill(v))),
  };
  if (options.valueInfo && info) {
    const io = new Set([...graph.inputs, ...graph.outputs].map((v) => v.name));
    graphProto.valueInfo = [...info.values()]
      .filter((v) => !io.has(v.name) && !graph.initializers.has(v.name) && v.type)
      .map(valueInfoProto);
  }
  const model: OnnxProto.IModelProto = {
    irVersion: 8,
    producerName: '@diffmix/ort-train',
    opsetImport: [...graph.opsets].map(([domain, version]) => ({ domain, version })),
    graph: graphProto,
  };
  return { model: onnx.ModelProto.encode(model).finish(), externalData: files };
}

/** The graph as an `@diffmix/onnx` model (weights shared, not copied). */
export function graphToOnnxModel(graph: Graph): OnnxModel {
  const s = serializeGraph(graph);
  return parseOnnxModel(s.model, { externalData: s.externalData, source: `<graph ${graph.name}>` });
}

/** Creates an ONNX Runtime session running the graph (weights handed over from memory). */
export async function createGraphSession<S extends object>(
  ort: OrtModuleLike<S>,
  graph: Graph,
  options: CreateSessionOptions = {},
): Promise<S> {
  return createOrtSession(ort, serializeGraph(graph), options);
}

function decodeTensor(t: OnnxProto.ITensorProto): Tensor {
  // Parse through a one-initializer model so every storage form (raw, typed fields) is decoded by @diffmix/onnx.
  const code = t.dataType ?? 0;
  const type = onnxDataTypeFromCode(code);
  if (!type) throw new InvalidArgumentError('tensor', `unknown tensor data type ${code}`);
  const dims = (t.dims ?? []).map((d) => Number(d));
  if (t.rawData && t.rawData.length > 0) return { type, dims, data: bytesToTyped(type, t.rawData) };
  const m = parseOnnxModel(
    onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: { name: 'c', initializer: [{ ...t, name: 'x' }] },
    }).finish(),
  );
  const r = m.initializer('x');
  return { type: r.type, dims: r.dims, data: r.data };
}

function attrFromProto(a: OnnxProto.IAttributeProto): Attr {
  const num = (v: unknown) => Number(v);
  switch (a.type) {
    case 1:
      return { kind: 'f', v: a.f ?? 0 };
    case 2:
      return { kind: 'i', v: num(a.i ?? 0) };
    case 3:
      return { kind: 's', v: new TextDecoder().decode(a.s ?? new Uint8Array()) };
    case 4:
      return { kind: 't', v: decodeTensor(a.t as OnnxProto.ITensorProto) };
    case 6:
      return { kind: 'floats', v: [...(a.floats ?? [])] };
    case 7:
      return { kind: 'ints', v: (a.ints ?? []).map(num) };
    case 8:
      return { kind: 'strings', v: (a.strings ?? []).map((s) => new TextDecoder().decode(s)) };
    default:
      return { kind: 'raw', v: a };
  }
}

/** A `Graph` of an `@diffmix/onnx` model's main graph (initializer data loaded and shared). */
export async function graphFromOnnxModel(model: OnnxModel): Promise<Graph> {
  await model.loadExternalData();
  const proto = model.proto as OnnxProto.ModelProto;
  const gp = proto.graph as OnnxProto.GraphProto;
  const g = new Graph(gp.name || 'graph');
  g.opsets.clear();
  for (const o of proto.opsetImport) g.opsets.set(o.domain ?? '', Number(o.version));
  for (const name of model.initializerNames()) {
    const t = model.initializer(name);
    g.initializers.set(name, { type: t.type, dims: t.dims, data: t.data });
  }
  const toInfo = (v: { name: string; type: ValueInfo['type']; shape: Dim[] | undefined }): ValueInfo => ({
    name: v.name,
    type: v.type,
    shape: v.shape,
  });
  g.inputs = model.inputs.filter((i) => !g.initializers.has(i.name)).map(toInfo);
  g.outputs = model.outputs.map(toInfo);
  g.nodes = gp.node.map((n, i) => ({
    name: n.name || `node_${i}`,
    opType: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attrs: Object.fromEntries((n.attribute ?? []).map((a) => [a.name ?? '', attrFromProto(a)])) as Record<string, Attr>,
  }));
  return g;
}
