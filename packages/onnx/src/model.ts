/**
 * An editable in-memory view of an ONNX model: graph queries (nodes, producers, consumers),
 * initializers as typed arrays (inline or external data, read lazily), initializer replacement and
 * growth, and serialisation back to bytes with the weights moved to in-memory external data.
 */
import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InvalidArgumentError, ModelFormatError, NotFoundError, bfloat16ToFloat32, float16ToFloat32 } from '@diffmix/core';
import {
  bytesToTyped,
  inferOnnxDataType,
  ONNX_DATA_TYPE_CODES,
  type OnnxDataType,
  type OnnxTensorData,
  onnxByteLength,
  onnxDataTypeFromCode,
  typedArrayFor,
  typedToBytes,
} from './dtypes.js';
import { checkExternalLocation, type ExternalDataFile, type ExternalDataRef, ExternalDataSource } from './external.js';
import { type Int64Like, int64ToNumber, onnx, type OnnxProto } from './proto.js';

/** Protobuf's hard limit on one message; a model above it must keep its weights outside. */
export const PROTOBUF_LIMIT_BYTES = 2 ** 31 - 1;

/** Initializers at least this large go to external data by default (as `onnx.save_model` does). */
export const DEFAULT_EXTERNAL_THRESHOLD = 1024;

const EXTERNAL = 1; // TensorProto.DataLocation.EXTERNAL

export interface LoadOnnxOptions {
  /** Folder external-data locations are relative to (default: the model file's folder). */
  baseDir?: string;
  /**
   * External data files held in memory, by location (e.g. `model.onnx_data`); used before the disk.
   * Needed when a model with external data is parsed from bytes without a folder.
   */
  externalData?: ReadonlyMap<string, Uint8Array> | Record<string, Uint8Array> | readonly ExternalDataFile[];
  /** Name used in error messages (default: the path, or `<onnx>`). */
  source?: string;
}

/** A graph input or output with its element type and (symbolic) shape. */
export interface OnnxValueInfo {
  name: string;
  /** Element type of a tensor value (undefined for non-tensors or when unknown). */
  type: OnnxDataType | undefined;
  /** Dimensions: numbers, symbolic names, or null when unknown; undefined when the rank is unknown. */
  shape: (number | string | null)[] | undefined;
}

/** Where an initializer's bytes currently are. */
export type InitializerLocation = 'inline' | 'external' | 'memory';

export interface InitializerInfo {
  name: string;
  type: OnnxDataType;
  dims: number[];
  /** Size of the data in bytes (0 for string tensors). */
  byteLength: number;
  /** `inline` in the protobuf, `external` in a file not read yet, `memory` replaced or loaded. */
  location: InitializerLocation;
  /** The external reference the data came from, if any. */
  external: ExternalDataRef | undefined;
}

/** An initializer's contents. */
export interface OnnxTensor<T extends OnnxTensorData = OnnxTensorData> {
  name: string;
  type: OnnxDataType;
  dims: number[];
  data: T;
}

/** New contents for an initializer. */
export interface TensorInput {
  data: OnnxTensorData;
  /** Default: the current dims when the element count is unchanged. */
  dims?: readonly number[];
  /** Default: inferred from the typed array, or the current type for Uint8Array / Uint16Array. */
  type?: OnnxDataType;
}

/** Attribute values as decoded from a node. */
export type OnnxAttributeValue = number | string | number[] | string[] | OnnxProto.IAttributeProto;

/** A node of the main graph (a thin view over its NodeProto). */
export class OnnxNode {
  constructor(readonly proto: OnnxProto.NodeProto) {}

  get name(): string {
    return this.proto.name;
  }
  get opType(): string {
    return this.proto.opType;
  }
  get domain(): string {
    return this.proto.domain;
  }
  get inputs(): readonly string[] {
    return this.proto.input;
  }
  get outputs(): readonly string[] {
    return this.proto.output;
  }

  /** Decoded attribute (float, int, string, floats, ints, strings; the raw AttributeProto otherwise). */
  attribute(name: string): OnnxAttributeValue | undefined {
    const a = this.proto.attribute.find((x) => x.name === name);
    if (!a) return undefined;
    switch (a.type) {
      case 1:
        return a.f ?? 0;
      case 2:
        return int64ToNumber(a.i as Int64Like);
      case 3:
        return new TextDecoder().decode(a.s ?? new Uint8Array());
      case 6:
        return [...(a.floats ?? [])];
      case 7:
        return (a.ints ?? []).map((v) => int64ToNumber(v as Int64Like));
      case 8:
        return (a.strings ?? []).map((s) => new TextDecoder().decode(s));
      default:
        return a;
    }
  }
}

interface InitRecord {
  proto: OnnxProto.TensorProto;
  name: string;
  type: OnnxDataType;
  dims: number[];
  byteLength: number;
  /** Bytes when known (inline raw data, decoded typed fields, replaced or loaded data). */
  bytes: Uint8Array | undefined;
  external: ExternalDataRef | undefined;
  location: InitializerLocation;
}

/** A model as bytes plus in-memory external data, ready for ONNX Runtime or for writing. */
export interface SerializedOnnxModel {
  /** The ModelProto bytes (small when the weights are external). */
  model: Uint8Array;
  /** One entry per externalised initializer; must stay alive as long as a session made from them. */
  externalData: ExternalDataFile[];
}

export interface SerializeOptions {
  /**
   * `memory` (default): every initializer of at least `threshold` bytes becomes an in-memory external
   * data entry (no single protobuf ever holds the weights). `inline`: all weights inside the
   * protobuf; refused when that would pass protobuf's 2 GiB limit.
   */
  externalData?: 'memory' | 'inline';
  /** Size from which an initializer goes external (default 1024 bytes). */
  threshold?: number;
}

export interface SaveOptions {
  /**
   * Name of the external data file written beside the model (e.g. `model.onnx_data`), `false` to
   * inline everything, or `auto` (default): inline when the weights fit in one protobuf, else
   * `<model file name>_data`.
   */
  externalData?: string | false | 'auto';
  /** Size from which an initializer goes to the external file (default 1024 bytes). */
  threshold?: number;
}

function toBigInt(v: Int64Like): bigint {
  if (v === null || v === undefined) return 0n;
  return typeof v === 'number' ? BigInt(v) : BigInt(String(v));
}

function numelOf(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function ownCopy<T extends object>(message: T): T {
  // protobufjs messages keep decoded fields as own properties and defaults on the prototype;
  // a spread keeps exactly what was decoded, which is what `encode` writes.
  return { ...message };
}

/** An ONNX model (see the package README). Create with {@link loadOnnxModel} or {@link parseOnnxModel}. */
export class OnnxModel {
  /** The decoded ModelProto. Initializer data fields in it are stale once data is replaced: use the methods. */
  readonly proto: OnnxProto.ModelProto;
  /** File name (or label) used in errors. */
  readonly source: string;
  private readonly external: ExternalDataSource;
  private readonly records = new Map<string, InitRecord>();
  private nodeList: OnnxNode[];
  private consumerIndex: Map<string, { node: OnnxNode; index: number }[]> | undefined;
  private producerIndex: Map<string, OnnxNode> | undefined;

  constructor(proto: OnnxProto.ModelProto, source: string, external: ExternalDataSource) {
    this.proto = proto;
    this.source = source;
    this.external = external;
    if (!proto.graph) throw new ModelFormatError(source, 'model has no graph');
    const graph = proto.graph as OnnxProto.GraphProto;
    this.nodeList = graph.node.map((n) => new OnnxNode(n as OnnxProto.NodeProto));
    for (const t of graph.initializer as OnnxProto.TensorProto[]) {
      const rec = this.recordOf(t);
      if (this.records.has(rec.name))
        throw new ModelFormatError(source, `two initializers are named ${JSON.stringify(rec.name)}`);
      this.records.set(rec.name, rec);
    }
  }

  private fail(problem: string): never {
    throw new ModelFormatError(this.source, problem);
  }

  private recordOf(t: OnnxProto.TensorProto): InitRecord {
    const what = `initializer ${JSON.stringify(t.name)}`;
    const type = onnxDataTypeFromCode(t.dataType) ?? this.fail(`${what}: unknown element type code ${t.dataType}`);
    const dims = t.dims.map((d) => int64ToNumber(d as Int64Like));
    if (dims.some((d) => d < 0)) this.fail(`${what}: negative dimension in [${dims.join(', ')}]`);
    if (t.segment) this.fail(`${what}: segmented tensors are not supported`);
    const rec: InitRecord = {
      proto: t,
      name: t.name,
      type,
      dims,
      byteLength: 0,
      bytes: undefined,
      external: undefined,
      location: 'inline',
    };
    if (type === 'string') return rec;
    rec.byteLength = onnxByteLength(type, numelOf(dims));
    if (t.dataLocation === EXTERNAL) {
      const kv = new Map(t.externalData.map((e) => [e.key ?? '', e.value ?? '']));
      const location = checkExternalLocation(kv.get('location') ?? '', this.source, t.name);
      const offset = Number(kv.get('offset') ?? '0');
      const length = kv.has('length') ? Number(kv.get('length')) : rec.byteLength;
      if (!Number.isSafeInteger(offset) || offset < 0) this.fail(`${what}: bad external data offset ${kv.get('offset')}`);
      if (length !== rec.byteLength) {
        this.fail(
          `${what}: external data length ${length} does not match ${type} [${dims.join(', ')}] (${rec.byteLength} bytes)`,
        );
      }
      rec.external = { location, offset, length };
      rec.location = 'external';
      this.external.check(rec.external, t.name);
    } else if (t.rawData && t.rawData.byteLength > 0) {
      if (t.rawData.byteLength !== rec.byteLength) {
        this.fail(`${what}: raw_data has ${t.rawData.byteLength} bytes but ${type} [${dims.join(', ')}] needs ${rec.byteLength}`);
      }
      rec.bytes = t.rawData;
    } else if (rec.byteLength === 0) {
      rec.bytes = new Uint8Array(0);
    }
    // else: data in the typed fields (float_data, int32_data, …), decoded on first access.
    return rec;
  }

  /** Decodes the typed repeated fields of a TensorProto to little-endian bytes. */
  private typedFieldBytes(rec: InitRecord): Uint8Array {
    const t = rec.proto;
    const n = numelOf(rec.dims);
    const what = `initializer ${JSON.stringify(rec.name)}`;
    let data: OnnxTensorData;
    switch (rec.type) {
      case 'float32':
      case 'complex64':
        data = Float32Array.from(t.floatData);
        break;
      case 'float64':
      case 'complex128':
        data = Float64Array.from(t.doubleData);
        break;
      case 'int64':
        data = BigInt64Array.from(t.int64Data, (v) => toBigInt(v as Int64Like));
        break;
      case 'uint64':
        data = BigUint64Array.from(t.uint64Data, (v) => BigInt.asUintN(64, toBigInt(v as Int64Like)));
        break;
      case 'uint32':
        data = Uint32Array.from(t.uint64Data, (v) => int64ToNumber(v as Int64Like));
        break;
      case 'uint4':
      case 'int4':
      case 'float4e2m1':
        return this.fail(`${what}: 4-bit data in int32_data is not supported (only raw_data)`);
      default: {
        const ctor = typedArrayFor(rec.type) as unknown as { from(a: ArrayLike<number>): OnnxTensorData };
        data = ctor.from(t.int32Data);
      }
    }
    const expected = rec.type === 'complex64' || rec.type === 'complex128' ? 2 * n : n;
    if (data.length !== expected) this.fail(`${what}: has ${data.length} values but [${rec.dims.join(', ')}] needs ${expected}`);
    return typedToBytes(data);
  }

  private record(name: string): InitRecord {
    const r = this.records.get(name);
    if (!r) throw new InvalidArgumentError('initializer', `no initializer named ${JSON.stringify(name)} in ${this.source}`);
    return r;
  }

  private bytesOf(rec: InitRecord): Uint8Array {
    if (rec.bytes) return rec.bytes;
    if (rec.type === 'string') return this.fail(`initializer ${JSON.stringify(rec.name)} is a string tensor`);
    if (rec.external) {
      // Not cached: a multi-gigabyte model is streamed, not kept, unless loadExternalData() was called.
      return this.external.readSync(rec.external);
    }
    rec.bytes = this.typedFieldBytes(rec);
    return rec.bytes;
  }

  // ---------------------------------------------------------------- graph queries

  get irVersion(): number {
    return int64ToNumber(this.proto.irVersion as Int64Like);
  }

  /** Opset version of a domain ('' = the default ONNX domain); undefined when not imported. */
  opsetVersion(domain = ''): number | undefined {
    const o = this.proto.opsetImport.find((x) => (x.domain ?? '') === domain || (domain === '' && x.domain === 'ai.onnx'));
    return o ? int64ToNumber(o.version as Int64Like) : undefined;
  }

  private valueInfo(v: OnnxProto.IValueInfoProto): OnnxValueInfo {
    const tt = v.type?.tensorType;
    const type = tt?.elemType ? onnxDataTypeFromCode(tt.elemType) : undefined;
    const shape = tt?.shape
      ? (tt.shape.dim ?? []).map((d) =>
          d.dimValue !== undefined && d.dimValue !== null
            ? int64ToNumber(d.dimValue as Int64Like)
            : d.dimParam
              ? d.dimParam
              : null,
        )
      : undefined;
    return { name: v.name ?? '', type, shape };
  }

  /** Graph inputs the caller feeds (initializers listed as inputs by old exporters are left out). */
  get inputs(): OnnxValueInfo[] {
    return (this.proto.graph?.input ?? []).filter((i) => !this.records.has(i.name ?? '')).map((i) => this.valueInfo(i));
  }

  get outputs(): OnnxValueInfo[] {
    return (this.proto.graph?.output ?? []).map((o) => this.valueInfo(o));
  }

  /** Nodes of the main graph in order. */
  get nodes(): readonly OnnxNode[] {
    return this.nodeList;
  }

  /** The node with this name (names are unique in exported models; the first wins otherwise). */
  node(name: string): OnnxNode | undefined {
    return this.nodeList.find((n) => n.name === name);
  }

  /** Nodes matching an op type and/or a name (exact string or RegExp), or a predicate. */
  findNodes(filter: { opType?: string; name?: string | RegExp } | ((node: OnnxNode) => boolean)): OnnxNode[] {
    if (typeof filter === 'function') return this.nodeList.filter(filter);
    return this.nodeList.filter(
      (n) =>
        (filter.opType === undefined || n.opType === filter.opType) &&
        (filter.name === undefined || (typeof filter.name === 'string' ? n.name === filter.name : filter.name.test(n.name))),
    );
  }

  private buildIndex(): void {
    const consumers = new Map<string, { node: OnnxNode; index: number }[]>();
    const producers = new Map<string, OnnxNode>();
    for (const node of this.nodeList) {
      node.inputs.forEach((v, index) => {
        if (v === '') return;
        const list = consumers.get(v);
        if (list) list.push({ node, index });
        else consumers.set(v, [{ node, index }]);
      });
      for (const o of node.outputs) if (o !== '') producers.set(o, node);
    }
    this.consumerIndex = consumers;
    this.producerIndex = producers;
  }

  /** Nodes reading a value (graph input, initializer or node output), with the input slot. */
  consumers(value: string): { node: OnnxNode; index: number }[] {
    if (!this.consumerIndex) this.buildIndex();
    return [...(this.consumerIndex?.get(value) ?? [])];
  }

  /** The node writing a value (undefined for graph inputs and initializers). */
  producer(value: string): OnnxNode | undefined {
    if (!this.producerIndex) this.buildIndex();
    return this.producerIndex?.get(value);
  }

  /**
   * Exposes an existing value (a node output, graph input or initializer) as an extra graph output,
   * e.g. an intermediate activation to read back from ONNX Runtime. Nothing else in the graph
   * changes. The element type defaults to what the graph declares for the value (value_info,
   * input or initializer) and must be given otherwise; `shape` lists dimensions (numbers, symbolic
   * names, or null for unknown), or is left out for an unknown rank. Returns false (and changes
   * nothing) when the value is already a graph output.
   */
  addOutput(name: string, info: { type?: OnnxDataType; shape?: readonly (number | string | null)[] } = {}): boolean {
    const graph = this.proto.graph as OnnxProto.GraphProto;
    if (graph.output.some((o) => o.name === name)) return false;
    const declared = [...graph.valueInfo, ...graph.input].find((v) => v.name === name);
    const record = this.records.get(name);
    if (!record && !declared && !this.producer(name)) {
      throw new InvalidArgumentError(
        'name',
        `${JSON.stringify(name)} is not a value of ${this.source} (no node output, input or initializer)`,
      );
    }
    const declaredType = declared ? this.valueInfo(declared).type : undefined;
    const type = info.type ?? declaredType ?? record?.type;
    if (!type)
      throw new InvalidArgumentError('type', `the graph does not declare the element type of ${JSON.stringify(name)}: give it`);
    const tensorType: OnnxProto.TypeProto.ITensor = { elemType: ONNX_DATA_TYPE_CODES[type] };
    const shape = info.shape ?? (declared ? this.valueInfo(declared).shape : record?.dims);
    if (shape) {
      tensorType.shape = {
        dim: shape.map((d) => {
          if (typeof d === 'number') {
            if (!Number.isSafeInteger(d) || d < 0)
              throw new InvalidArgumentError('shape', `bad dimension ${d} for ${JSON.stringify(name)}`);
            return { dimValue: d };
          }
          return d === null ? {} : { dimParam: d };
        }),
      };
    }
    graph.output.push(onnx.ValueInfoProto.create({ name, type: { tensorType } }));
    return true;
  }

  /** Rewires one input of a node (e.g. to a new initializer). */
  setNodeInput(node: OnnxNode, index: number, value: string): void {
    if (index < 0 || index >= node.proto.input.length) {
      throw new InvalidArgumentError('index', `node ${node.name} has ${node.proto.input.length} inputs, not ${index + 1}`);
    }
    node.proto.input[index] = value;
    this.consumerIndex = undefined;
    this.producerIndex = undefined;
  }

  // ---------------------------------------------------------------- initializers

  initializerNames(): string[] {
    return [...this.records.keys()];
  }

  hasInitializer(name: string): boolean {
    return this.records.has(name);
  }

  initializerInfo(name: string): InitializerInfo {
    const r = this.record(name);
    return {
      name: r.name,
      type: r.type,
      dims: [...r.dims],
      byteLength: r.byteLength,
      location: r.location,
      external: r.external,
    };
  }

  /** Sum of the initializers' data sizes. */
  initializerBytesTotal(): number {
    let s = 0;
    for (const r of this.records.values()) s += r.byteLength;
    return s;
  }

  /** The raw little-endian bytes of an initializer (external data is read from disk, synchronously). */
  initializerBytes(name: string): Uint8Array {
    return this.bytesOf(this.record(name));
  }

  /**
   * An initializer as a typed array (see {@link OnnxTensorData}: float16 / bfloat16 as raw bits; use
   * {@link initializerFloat32} for numbers). The array may be a view into the model bytes: copy
   * before mutating, and hand changes back with {@link setInitializer}.
   */
  initializer(name: string): OnnxTensor {
    const r = this.record(name);
    return { name: r.name, type: r.type, dims: [...r.dims], data: bytesToTyped(r.type, this.bytesOf(r)) };
  }

  /** A floating-point initializer converted to float32 (float16, bfloat16 and float64 are converted). */
  initializerFloat32(name: string): OnnxTensor<Float32Array> {
    const t = this.initializer(name);
    let data: Float32Array;
    if (t.type === 'float32') data = t.data as Float32Array;
    else if (t.type === 'float16') data = float16ToFloat32(t.data as Uint16Array);
    else if (t.type === 'bfloat16') data = bfloat16ToFloat32(t.data as Uint16Array);
    else if (t.type === 'float64') data = Float32Array.from(t.data as Float64Array);
    else
      throw new InvalidArgumentError('initializer', `${JSON.stringify(name)} in ${this.source} is ${t.type}, not a float type`);
    return { ...t, data };
  }

  private resolveInput(current: { type: OnnxDataType; dims: number[] } | undefined, name: string, input: TensorInput) {
    const what = `initializer ${JSON.stringify(name)}`;
    let type = input.type ?? inferOnnxDataType(input.data);
    if (!type && current && input.data.BYTES_PER_ELEMENT === typedArrayFor(current.type)?.BYTES_PER_ELEMENT) type = current.type;
    if (!type) throw new InvalidArgumentError('type', `${what}: give the element type for ${input.data.constructor.name} data`);
    if (type === 'string') throw new InvalidArgumentError('type', `${what}: string tensors cannot be set`);
    const ctor = typedArrayFor(type) as unknown as (abstract new (...args: never[]) => OnnxTensorData) | undefined;
    if (!ctor || !(input.data instanceof ctor)) {
      throw new InvalidArgumentError('data', `${what}: ${input.data.constructor.name} cannot hold ${type} elements`);
    }
    let dims: number[];
    if (input.dims) dims = [...input.dims];
    else if (current && numelOf(current.dims) === numelFor(type, input.data)) dims = [...current.dims];
    else throw new InvalidArgumentError('dims', `${what}: the element count changes (${numelFor(type, input.data)}): give dims`);
    if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new InvalidArgumentError('dims', `${what}: bad dims [${dims.join(', ')}]`);
    const byteLength = onnxByteLength(type, numelOf(dims));
    if (byteLength !== input.data.byteLength) {
      throw new InvalidArgumentError(
        'data',
        `${what}: ${type} [${dims.join(', ')}] needs ${byteLength} bytes, the data has ${input.data.byteLength}`,
      );
    }
    return { type, dims, byteLength };
  }

  private updateDeclaredShape(name: string, type: OnnxDataType, dims: number[]): void {
    const graph = this.proto.graph as OnnxProto.GraphProto | null;
    if (!graph) return;
    for (const v of [...graph.input, ...graph.valueInfo]) {
      if (v.name !== name || !v.type?.tensorType) continue;
      v.type.tensorType.elemType = ONNX_DATA_TYPE_CODES[type];
      v.type.tensorType.shape = { dim: dims.map((d) => ({ dimValue: d })) };
    }
  }

  /**
   * Replaces an initializer's data, possibly with new dims (e.g. a token-embedding table grown by
   * textual-inversion rows) or a new element type. The typed array is kept, not copied: do not
   * mutate it afterwards. Declared shapes of the same name (old-style graph inputs, value_info) follow.
   */
  setInitializer(name: string, input: TensorInput): void {
    const r = this.record(name);
    const { type, dims, byteLength } = this.resolveInput(r, name, input);
    r.type = type;
    r.dims = dims;
    r.byteLength = byteLength;
    r.bytes = typedToBytes(input.data);
    r.external = undefined;
    r.location = 'memory';
    this.updateDeclaredShape(name, type, dims);
  }

  /** Adds a new initializer (the name must not be used by another initializer, input or node output). */
  addInitializer(name: string, input: TensorInput): void {
    if (
      this.records.has(name) ||
      this.producer(name) ||
      (this.proto.graph as OnnxProto.GraphProto).input.some((i) => i.name === name)
    ) {
      throw new InvalidArgumentError('name', `${JSON.stringify(name)} is already a value in ${this.source}`);
    }
    const { type, dims, byteLength } = this.resolveInput(undefined, name, input);
    const proto = onnx.TensorProto.create({ name, dataType: ONNX_DATA_TYPE_CODES[type], dims });
    this.records.set(name, {
      proto,
      name,
      type,
      dims,
      byteLength,
      bytes: typedToBytes(input.data),
      external: undefined,
      location: 'memory',
    });
    (this.proto.graph as OnnxProto.GraphProto).initializer.push(proto);
  }

  /**
   * Reads every external initializer into memory now (asynchronously). Without it, external data is
   * read on demand and not kept, which keeps a multi-gigabyte model's footprint to what is used.
   */
  async loadExternalData(): Promise<void> {
    const pending = [...this.records.values()].filter((r) => r.bytes === undefined && r.external);
    const data = await this.external.readAll(pending.map((r) => r.external as ExternalDataRef));
    pending.forEach((r, i) => {
      r.bytes = data[i];
      r.location = 'memory';
    });
  }

  // ---------------------------------------------------------------- serialisation

  private tensorProtoWith(r: InitRecord, data: { raw: Uint8Array } | { external: ExternalDataRef }): OnnxProto.ITensorProto {
    const base: OnnxProto.ITensorProto = { name: r.name, dataType: ONNX_DATA_TYPE_CODES[r.type], dims: r.dims };
    if (r.proto.docString) base.docString = r.proto.docString;
    if ('raw' in data) return { ...base, rawData: data.raw };
    return {
      ...base,
      dataLocation: EXTERNAL,
      externalData: [
        { key: 'location', value: data.external.location },
        { key: 'offset', value: String(data.external.offset) },
        { key: 'length', value: String(data.external.length) },
      ],
    };
  }

  private encodeWith(initializers: OnnxProto.ITensorProto[]): Uint8Array {
    const graph = ownCopy(this.proto.graph as OnnxProto.GraphProto) as OnnxProto.IGraphProto;
    graph.initializer = initializers;
    const model = ownCopy(this.proto) as OnnxProto.IModelProto;
    model.graph = graph;
    return onnx.ModelProto.encode(model).finish();
  }

  /**
   * The model as bytes. By default every initializer of at least 1 KiB is handed over as an in-memory
   * external data entry (zero-copy views of the data), so the protobuf stays small whatever the model
   * size; `externalData: 'inline'` puts everything in the protobuf (refused past 2 GiB).
   * External data not yet loaded is read from disk (synchronously).
   */
  serialize(options: SerializeOptions = {}): SerializedOnnxModel {
    const mode = options.externalData ?? 'memory';
    const threshold = options.threshold ?? DEFAULT_EXTERNAL_THRESHOLD;
    if (mode === 'inline' && this.initializerBytesTotal() >= PROTOBUF_LIMIT_BYTES) {
      throw new InvalidArgumentError(
        'externalData',
        `${this.source}: ${this.initializerBytesTotal()} bytes of weights do not fit in one protobuf (2 GiB limit): use external data`,
      );
    }
    const files: ExternalDataFile[] = [];
    const inits = [...this.records.values()].map((r, i) => {
      if (r.type === 'string') return r.proto;
      const bytes = this.bytesOf(r);
      if (mode === 'memory' && bytes.byteLength >= threshold) {
        const path = `__diffmix_external_${i}.bin`;
        files.push({ path, data: bytes });
        return this.tensorProtoWith(r, { external: { location: path, offset: 0, length: bytes.byteLength } });
      }
      return this.tensorProtoWith(r, { raw: bytes });
    });
    return { model: this.encodeWith(inits), externalData: files };
  }

  /**
   * Writes the model to `path`, with the large initializers in one external data file beside it
   * (see {@link SaveOptions}). Tensors are streamed one at a time; files are written under temporary
   * names and renamed at the end, so a model can be saved over the files it was loaded from.
   */
  async save(path: string, options: SaveOptions = {}): Promise<void> {
    const threshold = options.threshold ?? DEFAULT_EXTERNAL_THRESHOLD;
    let dataName = options.externalData ?? 'auto';
    if (dataName === 'auto')
      dataName = this.initializerBytesTotal() < PROTOBUF_LIMIT_BYTES - 64 * 2 ** 20 ? false : `${basename(path)}_data`;
    if (dataName === false) {
      const { model } = this.serialize({ externalData: 'inline' });
      const tmp = `${path}.tmp-${process.pid}`;
      await writeFile(tmp, model);
      await rename(tmp, path);
      return;
    }
    const location = checkExternalLocation(dataName, path, '<save>');
    const dataPath = join(dirname(path), location);
    const records = [...this.records.values()];
    // Layout: tensors of 1 MiB and more start on 64 KiB boundaries (mmap-friendly, as onnx does).
    let offset = 0;
    const placed: { rec: InitRecord; offset: number }[] = [];
    const inits = records.map((r) => {
      if (r.type === 'string' || r.byteLength < threshold)
        return r.type === 'string' ? r.proto : this.tensorProtoWith(r, { raw: this.bytesOf(r) });
      if (r.byteLength >= 2 ** 20) offset = Math.ceil(offset / 65536) * 65536;
      placed.push({ rec: r, offset });
      const t = this.tensorProtoWith(r, { external: { location, offset, length: r.byteLength } });
      offset += r.byteLength;
      return t;
    });
    const model = this.encodeWith(inits);
    const tmpData = `${dataPath}.tmp-${process.pid}`;
    const tmpModel = `${path}.tmp-${process.pid}`;
    try {
      const handle = await open(tmpData, 'w');
      try {
        for (const { rec, offset: at } of placed) {
          const bytes = rec.bytes ?? (rec.external ? (await this.external.readAll([rec.external]))[0] : this.bytesOf(rec));
          if (!bytes) throw new ModelFormatError(this.source, `initializer ${rec.name}: no data`);
          let done = 0;
          while (done < bytes.byteLength) {
            const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.byteLength - done, 1 << 30), at + done);
            done += bytesWritten;
          }
        }
        if (offset > 0) await handle.truncate(offset);
      } finally {
        await handle.close();
      }
      await writeFile(tmpModel, model);
      await rename(tmpData, dataPath);
      await rename(tmpModel, path);
    } catch (e) {
      await rm(tmpData, { force: true });
      await rm(tmpModel, { force: true });
      throw e;
    }
  }
}

function numelFor(type: OnnxDataType, data: OnnxTensorData): number {
  return type === 'complex64' || type === 'complex128' ? data.length / 2 : data.length;
}

function toMemoryMap(given: LoadOnnxOptions['externalData']): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  if (!given) return m;
  if (given instanceof Map) for (const [k, v] of given) m.set(k, v);
  else if (Array.isArray(given)) for (const f of given as readonly ExternalDataFile[]) m.set(f.path, f.data);
  else for (const [k, v] of Object.entries(given as Record<string, Uint8Array>)) m.set(k, v);
  return m;
}

/**
 * Parses ONNX model bytes. External data is looked up in `options.externalData` (in memory) and
 * then under `options.baseDir`.
 */
export function parseOnnxModel(bytes: Uint8Array, options: LoadOnnxOptions = {}): OnnxModel {
  const source = options.source ?? '<onnx>';
  let proto: OnnxProto.ModelProto;
  try {
    proto = onnx.ModelProto.decode(bytes);
  } catch (cause) {
    throw new ModelFormatError(source, `not a valid ONNX model (${(cause as Error).message})`, { cause });
  }
  if (!proto.graph) throw new ModelFormatError(source, 'not an ONNX model (no graph)');
  return new OnnxModel(proto, source, new ExternalDataSource(source, options.baseDir, toMemoryMap(options.externalData)));
}

/**
 * Reads `model.onnx` (or `<dir>/model.onnx` when given a folder). Inline initializers stay views of
 * the file bytes; external data (`model.onnx_data`, `weights.pb`, one file per tensor…) is located
 * and range-checked now but read only when used.
 */
export async function loadOnnxModel(path: string, options: LoadOnnxOptions = {}): Promise<OnnxModel> {
  let file = path;
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(file);
    if (info.isDirectory()) {
      file = join(path, 'model.onnx');
      info = await stat(file);
    }
  } catch {
    throw new NotFoundError(file, 'ONNX model');
  }
  if (info.size > PROTOBUF_LIMIT_BYTES)
    throw new ModelFormatError(file, `${info.size} bytes: larger than any valid ONNX protobuf (2 GiB)`);
  const bytes = await readFile(file);
  return parseOnnxModel(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
    ...options,
    baseDir: options.baseDir ?? dirname(file),
    source: options.source ?? file,
  });
}
