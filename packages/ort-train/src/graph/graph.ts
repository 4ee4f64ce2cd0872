/**
 * A small, mutable ONNX graph IR for building graphs in code (model builders, training graphs) and for
 * graph transformations (autodiff). Nodes are plain records; initializers are typed arrays; shapes are
 * optional annotations (see `inferShapes`). Conversion to and from `@diffmix/onnx` models is in
 * `convert.ts`.
 */
import { InvalidArgumentError } from '@diffmix/core';
import { inferOnnxDataType, type OnnxDataType, type OnnxTensorData } from '@diffmix/onnx';

/** A dimension: a number, a symbolic name, or null (unknown). */
export type Dim = number | string | null;

/** Element type and (possibly partial) shape of a value; `shape` undefined = unknown rank. */
export interface ValueInfo {
  name: string;
  type?: OnnxDataType | undefined;
  shape?: Dim[] | undefined;
}

/** A constant tensor (initializer or Constant value). */
export interface Tensor {
  type: OnnxDataType;
  dims: number[];
  data: OnnxTensorData;
}

/** A typed attribute value. Use the `attr` helpers to build them. */
export type Attr =
  | { kind: 'i'; v: number }
  | { kind: 'f'; v: number }
  | { kind: 's'; v: string }
  | { kind: 'ints'; v: number[] }
  | { kind: 'floats'; v: number[] }
  | { kind: 'strings'; v: string[] }
  | { kind: 't'; v: Tensor }
  /** Anything else (subgraphs…), kept as the decoded AttributeProto object. */
  | { kind: 'raw'; v: unknown };

export const attr = {
  i: (v: number): Attr => ({ kind: 'i', v }),
  f: (v: number): Attr => ({ kind: 'f', v }),
  s: (v: string): Attr => ({ kind: 's', v }),
  ints: (v: readonly number[]): Attr => ({ kind: 'ints', v: [...v] }),
  floats: (v: readonly number[]): Attr => ({ kind: 'floats', v: [...v] }),
  t: (v: Tensor): Attr => ({ kind: 't', v }),
};

/** Attributes as given to the builder: typed `Attr`s, or plain values (integer numbers → INT, other numbers → FLOAT, number[] → INTS). */
export type AttrInput = Attr | number | string | number[];

export interface GraphNode {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
}

function toAttr(name: string, a: AttrInput): Attr {
  if (typeof a === 'number') return Number.isInteger(a) ? attr.i(a) : attr.f(a);
  if (typeof a === 'string') return attr.s(a);
  if (Array.isArray(a)) {
    if (!a.every((x) => Number.isInteger(x)))
      throw new InvalidArgumentError(name, 'plain number[] attributes must be integers: use attr.floats');
    return attr.ints(a);
  }
  return a;
}

/** Reads an integer attribute (INT), with a default. */
export function attrInt(node: GraphNode, name: string, dflt: number): number;
export function attrInt(node: GraphNode, name: string): number | undefined;
export function attrInt(node: GraphNode, name: string, dflt?: number): number | undefined {
  const a = node.attrs[name];
  if (!a) return dflt;
  if (a.kind === 'i' || a.kind === 'f') return a.v;
  throw new InvalidArgumentError(name, `attribute ${name} of ${node.opType} node ${node.name} is not a number`);
}
export function attrFloat(node: GraphNode, name: string, dflt: number): number {
  const a = node.attrs[name];
  if (!a) return dflt;
  if (a.kind === 'i' || a.kind === 'f') return a.v;
  throw new InvalidArgumentError(name, `attribute ${name} of ${node.opType} node ${node.name} is not a number`);
}
export function attrInts(node: GraphNode, name: string): number[] | undefined {
  const a = node.attrs[name];
  if (!a) return undefined;
  if (a.kind === 'ints') return a.v;
  if (a.kind === 'i') return [a.v];
  throw new InvalidArgumentError(name, `attribute ${name} of ${node.opType} node ${node.name} is not a list of ints`);
}
export function attrString(node: GraphNode, name: string, dflt: string): string {
  const a = node.attrs[name];
  if (!a) return dflt;
  if (a.kind === 's') return a.v;
  throw new InvalidArgumentError(name, `attribute ${name} of ${node.opType} node ${node.name} is not a string`);
}

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Typed-array constructor and value writer for a float / int tensor type. */
export function tensorOf(type: OnnxDataType, dims: readonly number[], values: ArrayLike<number> | number): Tensor {
  const n = numel(dims);
  const get = (i: number) => (typeof values === 'number' ? values : (values[i] as number));
  if (typeof values !== 'number' && values.length !== n) {
    throw new InvalidArgumentError('values', `${values.length} values for dims [${dims.join(', ')}] (${n} elements)`);
  }
  let data: OnnxTensorData;
  switch (type) {
    case 'float32':
      data = Float32Array.from({ length: n }, (_, i) => get(i));
      break;
    case 'float64':
      data = Float64Array.from({ length: n }, (_, i) => get(i));
      break;
    case 'int64':
      data = BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(get(i))));
      break;
    case 'int32':
      data = Int32Array.from({ length: n }, (_, i) => get(i));
      break;
    case 'bool':
      data = Uint8Array.from({ length: n }, (_, i) => (get(i) ? 1 : 0));
      break;
    default:
      throw new InvalidArgumentError('type', `tensorOf does not build ${type} tensors`);
  }
  return { type, dims: [...dims], data };
}

/** A mutable ONNX graph (main graph of an opset-17 model by default). */
export class Graph {
  nodes: GraphNode[] = [];
  readonly initializers = new Map<string, Tensor>();
  inputs: ValueInfo[] = [];
  outputs: ValueInfo[] = [];
  /** Declared types / shapes of intermediate values (value_info), filled by `inferShapes` or by hand. */
  readonly valueInfo = new Map<string, ValueInfo>();
  /** Opset imports (domain → version). */
  readonly opsets = new Map<string, number>([['', 17]]);
  name = 'graph';
  private counter = 0;
  private readonly used = new Set<string>();

  constructor(name?: string) {
    if (name) this.name = name;
  }

  /** A value name not used yet in this graph, based on `base`. */
  uniqueName(base: string): string {
    if (this.used.size === 0) this.collectNames();
    let name = base;
    while (this.used.has(name)) name = `${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  private collectNames(): void {
    for (const n of this.nodes) {
      for (const v of [...n.inputs, ...n.outputs]) if (v) this.used.add(v);
      this.used.add(n.name);
    }
    for (const k of this.initializers.keys()) this.used.add(k);
    for (const v of [...this.inputs, ...this.outputs]) this.used.add(v.name);
    this.used.add('');
  }

  /** Reserves a name (e.g. a value added by hand) so `uniqueName` never returns it. */
  reserve(name: string): void {
    if (this.used.size === 0) this.collectNames();
    this.used.add(name);
  }

  /** Adds a graph input. */
  addInput(name: string, type: OnnxDataType, shape?: readonly Dim[]): string {
    if (this.inputs.some((i) => i.name === name))
      throw new InvalidArgumentError('name', `input ${JSON.stringify(name)} already exists`);
    this.reserve(name);
    this.inputs.push({ name, type, shape: shape ? [...shape] : undefined });
    return name;
  }

  /** Declares a value as a graph output (type and shape optional: filled from value_info when serialising). */
  addOutput(name: string, type?: OnnxDataType, shape?: readonly Dim[]): string {
    if (!this.outputs.some((o) => o.name === name)) this.outputs.push({ name, type, shape: shape ? [...shape] : undefined });
    return name;
  }

  /** Adds (or replaces) an initializer. */
  addInitializer(name: string, tensor: Tensor | { data: OnnxTensorData; dims: readonly number[]; type?: OnnxDataType }): string {
    const type = tensor.type ?? inferOnnxDataType(tensor.data);
    if (!type)
      throw new InvalidArgumentError('type', `cannot infer the element type of initializer ${JSON.stringify(name)}: give it`);
    if (numel(tensor.dims) !== tensor.data.length && type !== 'float16' && type !== 'bfloat16') {
      throw new InvalidArgumentError(
        'dims',
        `initializer ${JSON.stringify(name)}: ${tensor.data.length} values for dims [${tensor.dims.join(', ')}]`,
      );
    }
    this.reserve(name);
    this.initializers.set(name, { type, dims: [...tensor.dims], data: tensor.data });
    return name;
  }

  /**
   * Appends a node; returns its output names (fresh names from the op type unless given).
   * `attrs` values may be typed `Attr`s or plain values (see `AttrInput`).
   */
  nodeN(
    opType: string,
    inputs: readonly string[],
    outputs: number | readonly string[],
    attrs: Record<string, AttrInput | undefined> = {},
    options: { name?: string; domain?: string } = {},
  ): string[] {
    const outs =
      typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.uniqueName(`${opType}_out`)) : [...outputs];
    for (const o of outs) this.reserve(o);
    const a: Record<string, Attr> = {};
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) a[k] = toAttr(k, v);
    const name = options.name ?? this.uniqueName(`${opType}_node`);
    this.reserve(name);
    this.nodes.push({ name, opType, domain: options.domain ?? '', inputs: [...inputs], outputs: outs, attrs: a });
    return outs;
  }

  /** Appends a single-output node and returns its output name. */
  node(
    opType: string,
    inputs: readonly string[],
    attrs: Record<string, AttrInput | undefined> = {},
    options: { name?: string; output?: string; domain?: string } = {},
  ): string {
    const outs = this.nodeN(opType, inputs, options.output !== undefined ? [options.output] : 1, attrs, options);
    return outs[0] as string;
  }

  /** A Constant node holding `tensor`. */
  constant(tensor: Tensor, base = 'const'): string {
    return this.node('Constant', [], { value: attr.t(tensor) }, { output: this.uniqueName(base) });
  }

  /** A rank-0 constant of a numeric type. */
  scalar(value: number, type: OnnxDataType = 'float32'): string {
    return this.constant(tensorOf(type, [], [value]), 'scalar');
  }

  /** A 1-D int64 constant (axes, shapes, starts…). */
  int64s(values: readonly number[]): string {
    return this.constant(tensorOf('int64', [values.length], values), 'ints');
  }

  /** Producer node of each value (node outputs only). */
  producers(): Map<string, GraphNode> {
    const m = new Map<string, GraphNode>();
    for (const n of this.nodes) for (const o of n.outputs) if (o) m.set(o, n);
    return m;
  }

  /** Consumers of each value. */
  consumers(): Map<string, { node: GraphNode; index: number }[]> {
    const m = new Map<string, { node: GraphNode; index: number }[]>();
    for (const n of this.nodes) {
      n.inputs.forEach((v, index) => {
        if (!v) return;
        const list = m.get(v) ?? [];
        list.push({ node: n, index });
        m.set(v, list);
      });
    }
    return m;
  }

  /** Nodes in a topological order (throws on cycles or values nobody produces). */
  topologicalOrder(): GraphNode[] {
    const available = new Set<string>(['', ...this.initializers.keys(), ...this.inputs.map((i) => i.name)]);
    const producers = this.producers();
    const done = new Set<GraphNode>();
    const order: GraphNode[] = [];
    const visiting = new Set<GraphNode>();
    const visit = (n: GraphNode) => {
      if (done.has(n)) return;
      if (visiting.has(n)) throw new InvalidArgumentError('graph', `cycle through node ${n.name}`);
      visiting.add(n);
      for (const v of n.inputs) {
        if (available.has(v)) continue;
        const p = producers.get(v);
        if (!p)
          throw new InvalidArgumentError(
            'graph',
            `value ${JSON.stringify(v)} (input of ${n.opType} node ${n.name}) is not produced by any node, input or initializer`,
          );
        visit(p);
      }
      visiting.delete(n);
      done.add(n);
      order.push(n);
    };
    for (const n of this.nodes) visit(n);
    return order;
  }

  /** Makes the named initializers graph inputs instead (e.g. trainable weights fed at every step). */
  initializersToInputs(names: readonly string[]): void {
    for (const name of names) {
      const t = this.initializers.get(name);
      if (!t) throw new InvalidArgumentError('names', `${JSON.stringify(name)} is not an initializer`);
      this.initializers.delete(name);
      this.inputs.push({ name, type: t.type, shape: [...t.dims] });
    }
  }

  /** A deep-enough copy: nodes and lists are copied, tensor data is shared. */
  clone(): Graph {
    const g = new Graph(this.name);
    g.nodes = this.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } }));
    for (const [k, v] of this.initializers) g.initializers.set(k, v);
    g.inputs = this.inputs.map((v) => ({ ...v, shape: v.shape ? [...v.shape] : undefined }));
    g.outputs = this.outputs.map((v) => ({ ...v, shape: v.shape ? [...v.shape] : undefined }));
    for (const [k, v] of this.valueInfo) g.valueInfo.set(k, { ...v, shape: v.shape ? [...v.shape] : undefined });
    for (const [k, v] of this.opsets) g.opsets.set(k, v);
    return g;
  }

  /** Removes nodes whose outputs no graph output needs. */
  pruneDeadNodes(): void {
    const needed = new Set(this.outputs.map((o) => o.name));
    const keep: GraphNode[] = [];
    for (const n of [...this.topologicalOrder()].reverse()) {
      if (n.outputs.some((o) => needed.has(o))) {
        keep.push(n);
        for (const i of n.inputs) needed.add(i);
      }
    }
    const kept = new Set(keep);
    this.nodes = this.nodes.filter((n) => kept.has(n));
    for (const k of [...this.initializers.keys()]) if (!needed.has(k)) this.initializers.delete(k);
  }
}
