/**
 * Graph surgery on an exported UNet: find the Softmax of every cross-attention (attn2) block and
 * expose its probabilities as extra graph outputs. Nothing else in the graph changes, so the
 * existing output (`out_sample`) is computed exactly as before.
 *
 * A cross-attention Softmax is recognised by structure, not by name: its input is a query·key
 * product (MatMul / Einsum, possibly through a scale or mask), and the keys are a linear projection
 * (MatMul / Gemm against a weight) of the text context input (`encoder_hidden_states`). Self-attention
 * (attn1) projects its keys from the image hidden states, so it does not match. The torch exporter's
 * node names (`/down_blocks.0/attentions.0/transformer_blocks.0/attn2/Softmax`) give the layer's
 * module path for labels.
 */
import { InvalidArgumentError, ModelFormatError } from '@diffmix/core';
import { nodeModulePath, type OnnxModel, type OnnxNode } from '@diffmix/onnx';

/** One cross-attention layer whose probabilities are (or can be) read back. */
export interface CrossAttentionLayer {
  /** Module path from the node name (`down_blocks.0.attentions.0.transformer_blocks.0.attn2`), or `softmax_<i>`. */
  module: string;
  /** The Softmax node. */
  node: string;
  /** The value holding the probabilities (the Softmax output); also the graph output's name once exposed. */
  output: string;
  /** Rank of the probabilities when it follows from the graph (4: [B, heads, Q, K]; 3: [B·heads, Q, K]). */
  rank: number | undefined;
}

export interface FindCrossAttentionOptions {
  /** The text-context graph input (default `encoder_hidden_states`, else the only 3-D float input besides the sample). */
  contextInput?: string;
  /**
   * Element type declared for the exposed outputs (default: the context input's type, float32 when
   * unknown). An fp16 export that upcasts attention to float32 needs `float32` here.
   */
  elementType?: 'float32' | 'float16';
  /** Keep only the layers whose module path matches (e.g. `/^up_blocks/`). */
  match?: RegExp | ((layer: CrossAttentionLayer) => boolean);
}

/** Ops between the QK product and the Softmax (scale, mask, casts). */
const SCORE_PASS = new Set(['Mul', 'Div', 'Add', 'Cast', 'Identity', 'Where']);
/** Ops that end the key-side walk: a product of two activations or a projection. */
const PRODUCTS = new Set(['MatMul', 'Gemm', 'Einsum', 'FusedMatMul']);
/** Shape-only dependencies: not data flow. */
const SHAPE_OPS = new Set(['Shape', 'Size', 'ConstantOfShape', 'Constant']);

function contextInputName(model: OnnxModel, given: string | undefined): string {
  const names = model.inputs.map((i) => i.name);
  if (given !== undefined) {
    if (!names.includes(given))
      throw new InvalidArgumentError(
        'contextInput',
        `${model.source} has no input ${JSON.stringify(given)} (inputs: ${names.join(', ')})`,
      );
    return given;
  }
  if (names.includes('encoder_hidden_states')) return 'encoder_hidden_states';
  const rank3 = model.inputs.filter((i) => i.shape?.length === 3 && i.name !== 'sample');
  if (rank3.length === 1) return (rank3[0] as { name: string }).name;
  throw new ModelFormatError(
    model.source,
    `cannot tell which input is the text context among ${names.join(', ')}: pass contextInput`,
  );
}

/** The QK product feeding a Softmax (through scale / mask / cast ops), if any. */
function scoreProduct(model: OnnxModel, softmax: OnnxNode): OnnxNode | undefined {
  const queue: { value: string; depth: number }[] = [{ value: softmax.inputs[0] ?? '', depth: 0 }];
  while (queue.length > 0) {
    const { value, depth } = queue.shift() as { value: string; depth: number };
    const p = model.producer(value);
    if (!p || depth > 6) continue;
    if (p.opType === 'MatMul' || p.opType === 'Einsum' || p.opType === 'FusedMatMul') return p;
    if (SCORE_PASS.has(p.opType))
      for (const v of p.inputs) if (v && !model.hasInitializer(v)) queue.push({ value: v, depth: depth + 1 });
  }
  return undefined;
}

/**
 * Whether the keys of a QK product come from the context: walking up the key operand (through
 * reshapes, transposes, scales…, never through shape computations), the first product reached is a
 * projection whose data input is the context, or the context itself is reached.
 */
function keysFromContext(model: OnnxModel, product: OnnxNode, context: string): boolean {
  const seen = new Set<string>();
  const queue = [product.inputs[1] ?? ''];
  let budget = 64;
  while (queue.length > 0 && budget-- > 0) {
    const value = queue.shift() as string;
    if (seen.has(value)) continue;
    seen.add(value);
    if (value === context) return true;
    const p = model.producer(value);
    if (!p || SHAPE_OPS.has(p.opType)) continue;
    if (PRODUCTS.has(p.opType)) {
      // A projection x·W: x is the operand that is not a weight.
      const data = p.inputs.filter((v) => v && !model.hasInitializer(v));
      if (data.length === 1 && data[0] === context) return true;
      if (data.length === 1) {
        // Casts between the context and the projection (fp16 exports).
        let v = data[0] as string;
        for (let i = 0; i < 3; i++) {
          const q = model.producer(v);
          if (!q || (q.opType !== 'Cast' && q.opType !== 'Identity')) break;
          v = q.inputs[0] ?? '';
        }
        if (v === context) return true;
      }
      continue; // a projection of something else (self-attention), or a product of activations
    }
    for (const v of p.inputs) if (v && !model.hasInitializer(v)) queue.push(v);
  }
  return false;
}

/** The rank of a value when it follows from the graph (declared inputs, Transpose perms, Reshape targets). */
function rankOf(model: OnnxModel, value: string, depth = 0): number | undefined {
  const declared = model.inputs.find((i) => i.name === value);
  if (declared) return declared.shape?.length;
  if (model.hasInitializer(value)) return model.initializerInfo(value).dims.length;
  const p = model.producer(value);
  if (!p || depth > 12) return undefined;
  switch (p.opType) {
    case 'Transpose': {
      const perm = p.attribute('perm');
      return Array.isArray(perm) ? perm.length : rankOf(model, p.inputs[0] ?? '', depth + 1);
    }
    case 'Reshape': {
      const target = p.inputs[1] ?? '';
      if (model.hasInitializer(target)) return model.initializerInfo(target).dims[0];
      const concat = model.producer(target);
      return concat?.opType === 'Concat' ? concat.inputs.length : undefined;
    }
    case 'MatMul':
    case 'FusedMatMul':
    case 'Mul':
    case 'Div':
    case 'Add':
    case 'Where': {
      const ranks = p.inputs
        .map((v) => (v ? rankOf(model, v, depth + 1) : undefined))
        .filter((r): r is number => r !== undefined);
      return ranks.length ? Math.max(...ranks) : undefined;
    }
    case 'Softmax':
    case 'Cast':
    case 'Identity':
    case 'Sqrt':
      return rankOf(model, p.inputs[0] ?? '', depth + 1);
    default:
      return undefined;
  }
}

/** The cross-attention Softmax nodes of a UNet, in graph order. */
export function findCrossAttention(model: OnnxModel, options: FindCrossAttentionOptions = {}): CrossAttentionLayer[] {
  const context = contextInputName(model, options.contextInput);
  const layers: CrossAttentionLayer[] = [];
  model.findNodes({ opType: 'Softmax' }).forEach((node, i) => {
    const product = scoreProduct(model, node);
    if (!product || !keysFromContext(model, product, context)) return;
    const output = node.outputs[0];
    if (!output) return;
    let module = nodeModulePath(node.name) ?? `softmax_${i}`;
    if (layers.some((l) => l.module === module)) module = `${module}#${i}`; // module names are keys: keep them unique
    layers.push({ module, node: node.name, output, rank: rankOf(model, output) });
  });
  const match = options.match;
  if (!match) return layers;
  return layers.filter((l) => (typeof match === 'function' ? match(l) : match.test(l.module)));
}

/**
 * Adds the probabilities of the cross-attention layers as graph outputs (in place) and returns the
 * layers. Dimensions are symbolic, except the last (the context length), which takes the context
 * input's own dimension: [B, heads, Q, K] as `<m>_batch, <m>_heads, <m>_queries, sequence`.
 * Throws when the model has no cross-attention.
 */
export function exposeCrossAttention(model: OnnxModel, options: FindCrossAttentionOptions = {}): CrossAttentionLayer[] {
  const layers = findCrossAttention(model, options);
  if (layers.length === 0) {
    throw new ModelFormatError(
      model.source,
      'no cross-attention Softmax found (a Softmax over a query·key product whose keys project the text context)',
    );
  }
  const context = model.inputs.find((i) => i.name === contextInputName(model, options.contextInput));
  const seq = context?.shape?.[1] ?? null;
  const type = options.elementType ?? (context?.type === 'float16' ? 'float16' : 'float32');
  layers.forEach((layer, i) => {
    const p = `attn2_${i}`;
    const shape =
      layer.rank === 4
        ? [`${p}_batch`, `${p}_heads`, `${p}_queries`, seq]
        : layer.rank === 3
          ? [`${p}_batch_heads`, `${p}_queries`, seq]
          : undefined;
    model.addOutput(layer.output, { type, ...(shape ? { shape } : {}) });
  });
  return layers;
}
