/**
 * `GraphBuilder`: the protobuf-level builder API the model builders used before they moved onto
 * {@link Graph}, kept as a thin facade over a `Graph` so existing callers keep working. There is one
 * graph representation (`Graph`); new code should build on it directly.
 */
import { InvalidArgumentError } from '@diffmix/core';
import { type OnnxModel, type OnnxProto, onnx, parseOnnxModel } from '@diffmix/onnx';
import { serializeGraph } from '../graph/convert.js';
import { Graph, type Attr as GraphAttr, attr as gattr } from '../graph/graph.js';

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

/** A dimension: a number, or a symbolic name (e.g. `N`). */
export type Dim = number | string;

function toGraphAttr(a: Attr): GraphAttr {
  switch (a.kind) {
    case 'int':
      return gattr.i(a.value);
    case 'ints':
      return gattr.ints(a.value);
    case 'float':
      return gattr.f(a.value);
    case 'floats':
      return gattr.floats(a.value);
    case 'string':
      return gattr.s(a.value);
  }
}

export interface ToModelOptions {
  /** Default: the graph's opset (17). */
  opset?: number;
  /** Graph name (default: the graph's name). */
  name?: string;
}

/** Builds into {@link graph} (a `Graph`). Value names are unique; {@link fresh} makes new ones. */
export class GraphBuilder {
  readonly graph: Graph;
  private readonly defined = new Set<string>();

  constructor(graph?: Graph) {
    this.graph = graph ?? new Graph();
    for (const n of this.graph.nodes) for (const o of n.outputs) this.defined.add(o);
    for (const k of this.graph.initializers.keys()) this.defined.add(k);
    for (const i of this.graph.inputs) this.defined.add(i.name);
  }

  /** True when a value (input, initializer or node output) has this name. */
  has(name: string): boolean {
    return this.defined.has(name);
  }

  /** A new unique value name starting with `base`. */
  fresh(base: string): string {
    return this.graph.uniqueName(base);
  }

  private claim(name: string): string {
    if (this.defined.has(name)) throw new InvalidArgumentError('name', `value ${JSON.stringify(name)} is defined twice`);
    this.defined.add(name);
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
        : Array.from({ length: options.outputs ?? 1 }, () => this.claim(this.graph.uniqueName(base)));
    const a: Record<string, GraphAttr> = {};
    for (const [k, v] of Object.entries(attrs)) a[k] = toGraphAttr(v);
    return this.graph.nodeN(opType, inputs, outs, a, {
      name: this.graph.uniqueName(`/${base}/${opType}`),
      domain: options.domain ?? '',
    });
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
    return this.graph.addInitializer(name, { type: 'float32', data, dims });
  }

  /** A float32 constant (fresh name from `base`). */
  constF32(base: string, values: readonly number[] | Float32Array, dims: readonly number[] = [values.length]): string {
    const name = this.claim(this.graph.uniqueName(base));
    return this.graph.addInitializer(name, { type: 'float32', data: Float32Array.from(values), dims });
  }

  /** An int64 constant (fresh name from `base`), e.g. a Reshape shape or ReduceSum axes. */
  constI64(base: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    const name = this.claim(this.graph.uniqueName(base));
    return this.graph.addInitializer(name, { type: 'int64', data: BigInt64Array.from(values.map((v) => BigInt(v))), dims });
  }

  /** Declares a graph input. */
  input(name: string, shape: readonly Dim[] | undefined, type: ElemType = 'float32'): string {
    this.claim(name);
    return this.graph.addInput(name, type, shape);
  }

  /** Declares an existing value as a graph output. */
  output(name: string, shape?: readonly Dim[], type: ElemType = 'float32'): string {
    if (!this.defined.has(name)) throw new InvalidArgumentError('output', `no value named ${JSON.stringify(name)}`);
    return this.graph.addOutput(name, type, shape);
  }

  /** Serialised model bytes (IR 8, weights inline: fine below protobuf's 2 GiB). */
  toBytes(options: ToModelOptions = {}): Uint8Array {
    let g = this.graph;
    if (options.name !== undefined || options.opset !== undefined) {
      g = g.clone();
      if (options.name !== undefined) g.name = options.name;
      if (options.opset !== undefined) g.opsets.set('', options.opset);
    }
    return serializeGraph(g, { externalThreshold: Number.POSITIVE_INFINITY }).model;
  }

  /** The ModelProto. */
  toModelProto(options: ToModelOptions = {}): OnnxProto.ModelProto {
    return onnx.ModelProto.decode(this.toBytes(options));
  }

  /** The model as an {@link OnnxModel}. */
  toOnnxModel(options: ToModelOptions = {}): OnnxModel {
    return parseOnnxModel(this.toBytes(options), { source: options.name ?? '<built graph>' });
  }
}
