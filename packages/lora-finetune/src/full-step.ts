/**
 * The `full` fine-tuning graph: every float UNet initializer becomes a graph input (fed the current
 * weights at every step) and gets a gradient — for training a small model (the demo's tiny UNet on the
 * toy dataset) from scratch, where LoRA on a random base would learn little. Built on ort-train's
 * `buildEpsilonMseStep`; the result has the same shape as `buildLoraUnetStep`'s (no branches).
 */
import { InvalidArgumentError } from '@diffmix/core';
import { buildEpsilonMseStep, type Graph, type LoraUnetStep } from '@diffmix/ort-train';

export interface FullUnetStep extends LoraUnetStep {
  /** The trainable UNet weights (former initializers), in graph order, with their dims. */
  weights: { name: string; dims: number[] }[];
}

export interface FullUnetStepOptions {
  /** Static shapes of graph inputs (exported graphs have symbolic dims; lowering norms needs ranks). */
  inputShapes?: Record<string, readonly number[]>;
  /** Also output d loss / d these inputs (e.g. `encoder_hidden_states` to train placeholder rows). */
  inputGradients?: readonly string[];
  /** Name of the target input (default `noise`). */
  target?: string;
  /** Which initializers to train (default: every float32 one). */
  filter?: (name: string, dims: readonly number[]) => boolean;
}

/** UNet → the training graph of `mean((prediction − noise)²)` w.r.t. every (float32) weight. */
export function buildFullUnetStep(unet: Graph, options: FullUnetStepOptions = {}): FullUnetStep {
  const weights = [...unet.initializers]
    .filter(([name, t]) => t.type === 'float32' && (options.filter?.(name, t.dims) ?? true))
    .map(([name, t]) => ({ name, dims: [...t.dims] }));
  if (weights.length === 0) throw new InvalidArgumentError('unet', 'no float32 initializer to train');
  const step = buildEpsilonMseStep(unet, {
    ...(options.inputShapes ? { inputShapes: options.inputShapes } : {}),
    ...(options.inputGradients ? { inputGradients: options.inputGradients } : {}),
    ...(options.target ? { target: options.target } : {}),
    trained: weights.map((w) => w.name),
    trainedAsInputs: true,
  });
  return { ...step, branches: [], weights };
}
