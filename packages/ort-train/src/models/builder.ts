/**
 * A small ONNX graph builder over the raw protobuf schema (`onnx` from `@diffmix/onnx`): named
 * values, nodes with typed attributes, float32 / int64 initializers, graph inputs and outputs, and
 * serialisation to a ModelProto (opset 17, the opset of the golden exports).
 */
import { InvalidArgumentError } from '@diffmix/core';
import { onnx, type OnnxModel, type OnnxProto, parseOnnxModel } from '@diffmix/onnx';

/** A typed attribute value (ONNX distinguishes int and float attributes). */
export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'float'; value: number }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'string'; value: string };

export const attr = {
  int: (value: number): Attr => ({ kind: 'int', value }),
  ints: (value: readonly number[]): Attr => ({ kind: 'ints', value }),
  float: (value: number): Attr => ({ kind: 'float', value }),
  floats: (value: readonly number[]): Attr => ({ kind: 'floats', value }),
  string: (value: string): Attr => ({ kind: 'string', value }),
};

/** Element types used by the builders. */
export type ElemType = 'float32' | 'int64';
const ELEM_CODE: Record<ElemType, number> = { float32: 1, int64: 7 };

/** A dimension: a number, or a symbolic name (e.g. `N`). */
export type Dim = number | string;

function attributeProto(name: string, a: Attr): OnnxProto.IAttributeProto {
  switch (a.kind) {
    case 'int':
      return { name, type: onnx.AttributeProto.AttributeType.INT, i: a.value };
    case 'ints':
      return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: [...a.value] };
    case 'float':
      return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: a.value };
    case 'floats':
      return { name, type: onnx.AttributeProto.AttributeType.FLOATS, floats: [...a.value] };
    case 'string':
      return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(a.value) };
  }
}

function valueInfo(name: string, type: ElemType, shape: readonly Dim[] | undefined): OnnxProto.IValueInfoProto {
  const tensorType: OnnxProto.TypeProto.ITensor = { elemType: ELEM_CODE[type] };
  if (shape) {
    tensorType.shape = { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
  }
  return { name, type: { tensorType } };
}

function bytesOf(data: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
}

export interface ToModelOptions {
  /** Default opset 17. */
  opset?: number;
  /** Graph name (default `graph`). */
  name?: string;
}

/** Accumulates one ONNX graph. Value names are unique; {@link fresh} makes new ones. */
export class GraphBuilder {
  readonly nodes: OnnxProto.INodeProto[] = [];
  readonly initializers: OnnxProto.ITensorProto[] = [];
  readonly inputs: OnnxProto.IValueInfoProto[] = [];
  readonly outputs: OnnxProto.IValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  /** True when a value (input, initializer or node output) has this name. */
  has(name: string): boolean {
    return this.used.has(name);
  }

  /** A new unique value name starting with `base`. */
  fresh(base: string): string {
    let name = base;
    while (this.used.has(name)) name = `${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new InvalidArgumentError('name', `value ${JSON.stringify(name)} is defined twice`);
    this.used.add(name);
    return name;
  }

  /** Adds a node; returns its output names (`outputs` names them, or a count of fresh names from `base`). */
  node(
    opType: string,
    inputs: readonly string[],
    attrs: Record<string, Attr> = {},
    options: { outputs?: number | readonly string[]; base?: string; domain?: string } = {},
  ): string[] {
    const base = options.base ?? opType;
    const outs =
      typeof options.outputs === 'object'
        ? options.outputs.map((o) => this.claim(o))
        : Array.from({ length: options.outputs ?? 1 }, () => this.fresh(base));
    this.nodes.push({
      opType,
      domain: options.domain ?? '',
      name: this.fresh(`/${base}/${opType}`),
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attrs).map(([n, a]) => attributeProto(n, a)),
    });
    return outs;
  }

  /** A node with one output; returns its name. */
  op(opType: string, inputs: readonly string[], attrs: Record<string, Attr> = {}, base?: string): string {
    return this.node(opType, inputs, attrs, base === undefined ? {} : { base })[0] as string;
  }

  /** Adds a float32 initializer named exactly `name`. */
  initializer(name: string, data: Float32Array, dims: readonly number[]): string {
    const numel = dims.reduce((a, b) => a * b, 1);
    if (numel !== data.length) {
      throw new InvalidArgumentError(name, `shape [${dims.join(', ')}] holds ${numel} values, data has ${data.length}`);
    }
    this.claim(name);
    this.initializers.push({ name, dims: [...dims], dataType: ELEM_CODE.float32, rawData: bytesOf(data) });
    return name;
  }

  /** A float32 constant (fresh name from `base`). */
  constF32(base: string, values: readonly number[] | Float32Array, dims: readonly number[] = [values.length]): string {
    const name = this.fresh(base);
    this.used.delete(name);
    return this.initializer(name, Float32Array.from(values), dims);
  }

  /** An int64 constant (fresh name from `base`), e.g. a Reshape shape or ReduceSum axes. */
  constI64(base: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = this.fresh(base);
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: ELEM_CODE.int64,
      rawData: bytesOf(BigInt64Array.from(values.map((v) => BigInt(v)))),
    });
    return name;
  }

  /** Declares a graph input. */
  input(name: string, shape: readonly Dim[] | undefined, type: ElemType = 'float32'): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** Declares an existing value as a graph output. */
  output(name: string, shape?: readonly Dim[], type: ElemType = 'float32'): string {
    if (!this.used.has(name)) throw new InvalidArgumentError('output', `no value named ${JSON.stringify(name)}`);
    this.outputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** The ModelProto (IR 8, opset 17 by default). */
  toModelProto(options: ToModelOptions = {}): OnnxProto.ModelProto {
    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: '@diffmix/ort-train',
      opsetImport: [{ domain: '', version: options.opset ?? 17 }],
      graph: {
        name: options.name ?? 'graph',
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    });
  }

  /** Serialised model bytes (weights inline: fine below protobuf's 2 GiB). */
  toBytes(options: ToModelOptions = {}): Uint8Array {
    return onnx.ModelProto.encode(this.toModelProto(options)).finish();
  }

  /** The model as an {@link OnnxModel} (for graph surgery / autodiff). */
  toOnnxModel(options: ToModelOptions = {}): OnnxModel {
    return parseOnnxModel(this.toBytes(options), { source: options.name ?? '<built graph>' });
  }
}
