/**
 * Graph surgery for LoRA and textual-inversion training on exported diffusers / transformers graphs:
 * LoRA branches on named MatMuls (the base weight stays frozen) and trainable rows of a token-embedding
 * table (the other rows stay constants).
 */
import { InvalidArgumentError } from '@diffmix/core';
import { nodeModulePath } from '@diffmix/onnx';
import { type Graph, type GraphNode, tensorOf } from '../graph/graph.js';

/** Attention projections of attn1 (self) and attn2 (cross) — the modules peft / diffusers target. */
export const DEFAULT_LORA_TARGETS: readonly string[] = [
  'attn1.to_q',
  'attn1.to_k',
  'attn1.to_v',
  'attn1.to_out.0',
  'attn2.to_q',
  'attn2.to_k',
  'attn2.to_v',
  'attn2.to_out.0',
];

export interface LoraInsertOptions {
  /** Rank r. */
  rank: number;
  /** LoRA alpha (default r): the branch is scaled by `scale · alpha / r`. */
  alpha?: number;
  /** Extra multiplier (diffusers' lora_scale, default 1). */
  scale?: number;
  /**
   * Module-path suffixes to target (matched at a `.` boundary), default `DEFAULT_LORA_TARGETS`. The
   * MatMul nodes are found by their exporter scope names (`/<module path with '/'>/MatMul`).
   */
  targets?: readonly string[];
  /** Prefix of the tensor names (default `unet.`): `<prefix><module>.lora.down.weight` / `.lora.up.weight`. */
  prefix?: string;
  /**
   * Initial values of down [r, in] and up [out, r] (row-major). Default: peft's init is random down and
   * zero up; here down defaults to zeros too unless given — pass values (e.g. from a LoRA file).
   */
  init?: (module: string, kind: 'down' | 'up', dims: readonly [number, number]) => Float32Array | undefined;
  /** Make the LoRA matrices graph inputs instead of initializers (default false; `init` is then unused: feed the values). */
  asInputs?: boolean;
}

export interface LoraBranch {
  /** PyTorch module path, e.g. `down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`. */
  module: string;
  /** The MatMul node carrying the branch. */
  node: string;
  /** The frozen base weight W^T [in, out]. */
  weight: string;
  inFeatures: number;
  outFeatures: number;
  /** Tensor names of down [r, in] and up [out, r]. */
  down: string;
  up: string;
}

function matchesTarget(module: string, targets: readonly string[]): boolean {
  return targets.some((t) => module === t || module.endsWith(`.${t}`));
}

/**
 * Inserts `y = x·Wt + s·(x·Dᵀ)·Uᵀ` on every targeted MatMul `y = x·Wt` (Wt = W^T [in, out], the
 * exporter's layout): D = lora down [r, in], U = lora up [out, r], new float32 tensors named
 * `<prefix><module>.lora.down.weight` / `.lora.up.weight`. Returns the branches in graph order;
 * throws when no MatMul matches.
 */
export function insertLoraBranches(graph: Graph, options: LoraInsertOptions): LoraBranch[] {
  const r = options.rank;
  if (!Number.isInteger(r) || r < 1) throw new InvalidArgumentError('rank', `must be a positive integer, got ${r}`);
  const s = (options.scale ?? 1) * ((options.alpha ?? r) / r);
  const targets = options.targets ?? DEFAULT_LORA_TARGETS;
  const prefix = options.prefix ?? 'unet.';
  const branches: LoraBranch[] = [];
  const seen = new Set<string>();
  for (const node of [...graph.nodes]) {
    if (node.opType !== 'MatMul') continue;
    const module = nodeModulePath(node.name);
    if (!module || !matchesTarget(module, targets)) continue;
    const [x, wt] = node.inputs as [string, string];
    const w = graph.initializers.get(wt);
    if (w?.dims.length !== 2) continue;
    if (seen.has(module)) throw new InvalidArgumentError('graph', `module ${module} has more than one weight MatMul`);
    seen.add(module);
    const [inF, outF] = w.dims as [number, number];
    const down = `${prefix}${module}.lora.down.weight`;
    const up = `${prefix}${module}.lora.up.weight`;
    const dInit = options.init?.(module, 'down', [r, inF]) ?? new Float32Array(r * inF);
    const uInit = options.init?.(module, 'up', [outF, r]) ?? new Float32Array(outF * r);
    if (dInit.length !== r * inF || uInit.length !== outF * r)
      throw new InvalidArgumentError('init', `${module}: expected down [${r}, ${inF}] and up [${outF}, ${r}]`);
    if (options.asInputs) {
      graph.addInput(down, 'float32', [r, inF]);
      graph.addInput(up, 'float32', [outF, r]);
    } else {
      graph.addInitializer(down, tensorOf('float32', [r, inF], dInit));
      graph.addInitializer(up, tensorOf('float32', [outF, r], uInit));
    }
    const y = node.outputs[0] as string;
    const base = graph.uniqueName(`${y}/lora_base`);
    node.outputs[0] = base;
    const path = node.name.slice(0, node.name.lastIndexOf('/'));
    const nm = (op: string) => graph.uniqueName(`${path}/lora/${op}`);
    const dT = graph.node('Transpose', [down], { perm: [1, 0] }, { name: nm('down_T') });
    const uT = graph.node('Transpose', [up], { perm: [1, 0] }, { name: nm('up_T') });
    const xd = graph.node('MatMul', [x, dT], {}, { name: nm('MatMul_down') });
    let xdu = graph.node('MatMul', [xd, uT], {}, { name: nm('MatMul_up') });
    if (s !== 1) xdu = graph.node('Mul', [xdu, graph.scalar(s, w.type)], {}, { name: nm('scale') });
    graph.node('Add', [base, xdu], {}, { name: nm('Add'), output: y });
    branches.push({ module, node: node.name, weight: wt, inFeatures: inF, outFeatures: outF, down, up });
  }
  if (branches.length === 0)
    throw new InvalidArgumentError('targets', `no MatMul with an initializer weight matches ${JSON.stringify(targets)}`);
  graph.nodes = graph.topologicalOrder();
  return branches;
}

/** The Gather whose indices come from a graph input (through Cast / Reshape / …) and whose table is an initializer. */
export function findEmbeddingGather(graph: Graph, input: string): { node: GraphNode; table: string } | undefined {
  const pass = new Set(['Cast', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Expand']);
  const consumers = graph.consumers();
  const seen = new Set<string>();
  const queue = [input];
  while (queue.length > 0) {
    const v = queue.shift() as string;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const { node, index } of consumers.get(v) ?? []) {
      const table = node.inputs[0];
      if (node.opType === 'Gather' && index === 1 && table !== undefined && graph.initializers.has(table)) return { node, table };
      if (pass.has(node.opType) && index === 0) for (const o of node.outputs) queue.push(o);
    }
  }
  return undefined;
}

export interface TrainableRowsOptions {
  /** Graph input holding the token ids (default `input_ids`). */
  input?: string;
  /** New rows appended to the table ([n, dim] row-major), e.g. textual-inversion embeddings. */
  append?: Float32Array;
  /** Or: make the last `trailing` existing rows trainable (split off the table). */
  trailing?: number;
  /** Name of the trainable rows tensor (default `ti.rows`). */
  name?: string;
  /** Make the trainable rows a graph input instead of an initializer. */
  asInput?: boolean;
}

export interface TrainableRows {
  /** The trainable [n, dim] tensor. */
  rows: string;
  /** The frozen part of the table (an initializer). */
  frozen: string;
  /** Token id of the first trainable row (= rows in the frozen part). */
  firstId: number;
  count: number;
  dim: number;
}

/**
 * Splits the token-embedding lookup into frozen rows + trainable rows: the Gather reads
 * `Concat(frozen, rows)` instead of the table, so gradients flow only into `rows`.
 */
export function makeEmbeddingRowsTrainable(graph: Graph, options: TrainableRowsOptions): TrainableRows {
  const found = findEmbeddingGather(graph, options.input ?? 'input_ids');
  if (!found) throw new InvalidArgumentError('input', `no token-embedding Gather reads ${options.input ?? 'input_ids'}`);
  const t = graph.initializers.get(found.table);
  if (t?.dims.length !== 2 || !(t.data instanceof Float32Array))
    throw new InvalidArgumentError('graph', `embedding table ${found.table} is not a float32 matrix`);
  const [vocab, dim] = t.dims as [number, number];
  const name = options.name ?? 'ti.rows';
  let frozenData: Float32Array;
  let rowsData: Float32Array;
  if (options.append) {
    if (options.append.length % dim !== 0 || options.append.length === 0)
      throw new InvalidArgumentError('append', `expected a multiple of ${dim} values`);
    frozenData = t.data;
    rowsData = options.append;
  } else {
    const n = options.trailing ?? 0;
    if (!Number.isInteger(n) || n < 1 || n >= vocab)
      throw new InvalidArgumentError('trailing', `must be in 1..${vocab - 1}, got ${n}`);
    frozenData = t.data.subarray(0, (vocab - n) * dim);
    rowsData = t.data.slice((vocab - n) * dim);
  }
  const count = rowsData.length / dim;
  const firstId = frozenData.length / dim;
  const frozen = graph.addInitializer(graph.uniqueName(`${found.table}/frozen`), tensorOf('float32', [firstId, dim], frozenData));
  if (options.asInput) graph.addInput(name, 'float32', [count, dim]);
  else graph.addInitializer(name, tensorOf('float32', [count, dim], rowsData));
  const table = graph.node(
    'Concat',
    [frozen, name],
    { axis: 0 },
    { name: graph.uniqueName(`${found.node.name}/trainable_rows/Concat`) },
  );
  found.node.inputs[0] = table;
  graph.nodes = graph.topologicalOrder();
  if (![...graph.nodes].some((n) => n.inputs.includes(found.table))) graph.initializers.delete(found.table);
  return { rows: name, frozen, firstId, count, dim };
}
