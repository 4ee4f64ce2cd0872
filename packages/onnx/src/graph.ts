/**
 * Graph helpers for exported PyTorch models: module paths from node names, and the embedding
 * lookup fed by a graph input.
 */
import type { OnnxModel, OnnxNode } from './model.js';

/**
 * The PyTorch module path a node belongs to, from the scope in its name as the torch exporter
 * writes it: `/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul` →
 * `down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`. Undefined for unscoped names.
 */
export function nodeModulePath(nodeName: string): string | undefined {
  if (!nodeName.startsWith('/')) return undefined;
  const parts = nodeName.slice(1).split('/');
  if (parts.length < 2) return undefined;
  return parts.slice(0, -1).join('.');
}

/** Ops that pass indices through unchanged in value (only shape or integer type changes). */
const PASS_THROUGH = new Set(['Cast', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity', 'Expand']);

export interface GatherLookup {
  /** The Gather node. */
  node: OnnxNode;
  /** The table it reads (an initializer name), e.g. `embeddings.token_embedding.weight`. */
  initializer: string;
}

/**
 * Finds the Gather whose indices come from a graph input (following Cast / Reshape / Squeeze…), and
 * whose table is an initializer: the token-embedding lookup reading `input_ids`.
 */
export function findGatherForInput(model: OnnxModel, input: string): GatherLookup | undefined {
  const seen = new Set<string>();
  const queue = [input];
  while (queue.length > 0) {
    const value = queue.shift() as string;
    if (seen.has(value)) continue;
    seen.add(value);
    for (const { node, index } of model.consumers(value)) {
      const table = node.inputs[0];
      if (node.opType === 'Gather' && index === 1 && table !== undefined && model.hasInitializer(table)) {
        return { node, initializer: table };
      }
      if (PASS_THROUGH.has(node.opType) && index === 0) for (const o of node.outputs) queue.push(o);
    }
  }
  return undefined;
}
