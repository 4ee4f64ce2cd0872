/**
 * The `full` fine-tuning graph: every float UNet initializer becomes a graph input (fed the current
 * weights at every step) and gets a gradient — for training a small model (the demo's tiny UNet on the
 * toy dataset) from scratch, where LoRA on a random base would learn little. Built on ort-train's
 * generic `buildGradientGraph`; the result has the same shape as `buildLoraUnetStep`'s (no branches).
 */
import { InvalidArgumentError } from '@diffmix/core';
import { buildGradientGraph, type Graph, inferShapes, type LoraUnetStep } from '@diffmix/ort-train';

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
  const g = unet.clone();
  for (const [name, dims] of Object.entries(options.inputShapes ?? {})) {
    const i = g.inputs.find((v) => v.name === name);
    if (!i) throw new InvalidArgumentError('inputShapes', `${JSON.stringify(name)} is not a UNet input`);
    if (i.shape && i.shape.length !== dims.length)
      throw new InvalidArgumentError('inputShapes', `${name}: rank ${dims.length} ≠ ${i.shape.length}`);
    i.shape = [...dims];
  }
  const prediction = g.outputs[0]?.name;
  if (!prediction) throw new InvalidArgumentError('unet', 'the graph has no output');
  const weights = [...g.initializers]
    .filter(([name, t]) => t.type === 'float32' && (options.filter?.(name, t.dims) ?? true))
    .map(([name, t]) => ({ name, dims: [...t.dims] }));
  if (weights.length === 0) throw new InvalidArgumentError('unet', 'no float32 initializer to train');
  const info = inferShapes(g).get(prediction);
  const target = options.target ?? 'noise';
  g.addInput(target, info?.type ?? 'float32', info?.shape ?? g.outputs[0]?.shape);
  const d = g.node('Sub', [prediction, target], {}, { name: 'loss/Sub' });
  const loss = g.node(
    'ReduceMean',
    [g.node('Mul', [d, d], {}, { name: 'loss/Mul' })],
    { keepdims: 0 },
    { name: 'loss/ReduceMean', output: 'loss' },
  );
  g.outputs = g.outputs.filter((o) => o.name === prediction);
  g.addOutput(loss, info?.type ?? 'float32', []);
  const tg = buildGradientGraph(g, {
    loss,
    wrt: [...weights.map((w) => w.name), ...(options.inputGradients ?? [])],
    wrtAsInputs: true,
  });
  return { graph: tg.graph, loss, prediction, target, branches: [], gradients: tg.gradients, weights };
}
