/**
 * Training graphs of a LoRA + textual-inversion step on exported SD graphs:
 * - the UNet with LoRA branches, ε-prediction MSE against a `noise` input, and the gradients of the
 *   LoRA matrices (and optionally of `encoder_hidden_states`, to chain into the text encoder);
 * - the text encoder with trainable embedding rows, backpropagating a given gradient at its output
 *   (a vector–Jacobian product: loss = Σ output · grad_output) into those rows.
 */
import { InvalidArgumentError } from '@diffmix/core';
import { buildGradientGraph } from '../autodiff/autodiff.js';
import type { Graph } from '../graph/graph.js';
import { inferShapes } from '../graph/infer.js';
import {
  insertLoraBranches,
  type LoraBranch,
  type LoraInsertOptions,
  makeEmbeddingRowsTrainable,
  type TrainableRows,
  type TrainableRowsOptions,
} from './lora.js';

/** Options of the ε-prediction MSE training graph (with or without LoRA). */
export interface EpsilonMseStepOptions {
  /** The ε-prediction output (default the graph's first output). */
  prediction?: string;
  /** Name of the new target input (default `noise`), same shape as the prediction. */
  target?: string;
  /** Also output d loss / d this input (e.g. `encoder_hidden_states`). */
  inputGradients?: readonly string[];
  /**
   * Static shapes of graph inputs (e.g. `{ sample: [2, 4, 8, 8] }`): exported graphs have symbolic
   * dims, and lowering norms for autodiff needs ranks that only follow from static shapes.
   */
  inputShapes?: Record<string, readonly number[]>;
}

export interface LoraUnetStepOptions extends LoraInsertOptions, EpsilonMseStepOptions {}

function fixInputShapes(g: Graph, shapes: Record<string, readonly number[]> | undefined): void {
  if (!shapes) return;
  for (const [name, dims] of Object.entries(shapes)) {
    const i = g.inputs.find((v) => v.name === name);
    if (!i) throw new InvalidArgumentError('inputShapes', `${JSON.stringify(name)} is not a graph input`);
    if (i.shape && i.shape.length !== dims.length)
      throw new InvalidArgumentError('inputShapes', `${name}: rank ${dims.length} ≠ ${i.shape.length}`);
    i.shape = [...dims];
  }
}

export interface EpsilonMseStep {
  /** Outputs: `loss` (scalar), the prediction, the gradients. */
  graph: Graph;
  loss: string;
  prediction: string;
  target: string;
  /** tensor name (trained tensor or input) → gradient output name. */
  gradients: Record<string, string>;
}

export interface LoraUnetStep extends EpsilonMseStep {
  branches: LoraBranch[];
}

/**
 * Adds `loss = mean((prediction − target)²)` to `g` (in place: pass a clone) and differentiates it with
 * respect to `wrt` (initializers; `wrtAsInputs` turns them into graph inputs) and `inputGradients`.
 */
function addMseAndGradients(
  g: Graph,
  options: EpsilonMseStepOptions,
  wrt: readonly string[],
  wrtAsInputs: boolean,
): EpsilonMseStep {
  const prediction = options.prediction ?? g.outputs[0]?.name;
  if (!prediction) throw new InvalidArgumentError('unet', 'the graph has no output');
  const info = inferShapes(g).get(prediction);
  const target = options.target ?? 'noise';
  g.addInput(target, info?.type ?? 'float32', info?.shape ?? g.outputs.find((o) => o.name === prediction)?.shape);
  const d = g.node('Sub', [prediction, target], {}, { name: 'loss/Sub' });
  const loss = g.node(
    'ReduceMean',
    [g.node('Mul', [d, d], {}, { name: 'loss/Mul' })],
    { keepdims: 0 },
    { name: 'loss/ReduceMean', output: 'loss' },
  );
  g.outputs = g.outputs.filter((o) => o.name === prediction);
  g.addOutput(loss, info?.type ?? 'float32', []);
  const all = [...wrt, ...(options.inputGradients ?? [])];
  if (all.length === 0)
    throw new InvalidArgumentError('wrt', 'nothing to differentiate: no trained tensor and no input gradient');
  const tg = buildGradientGraph(g, { loss, wrt: all, ...(wrtAsInputs ? { wrtAsInputs: true } : {}) });
  return { graph: tg.graph, loss, prediction, target, gradients: tg.gradients };
}

/**
 * UNet (or any ε-predictor) → the training graph of `mean((prediction − target)²)` with respect to
 * `trained` initializers (default none; `trainedAsInputs` feeds them per step, for full fine-tuning) and
 * `inputGradients` — e.g. only d loss / d encoder_hidden_states for textual inversion, which trains
 * nothing inside the UNet.
 */
export function buildEpsilonMseStep(
  unet: Graph,
  options: EpsilonMseStepOptions & { trained?: readonly string[]; trainedAsInputs?: boolean } = {},
): EpsilonMseStep {
  const g = unet.clone();
  fixInputShapes(g, options.inputShapes);
  for (const t of options.trained ?? [])
    if (!g.initializers.has(t))
      throw new InvalidArgumentError('trained', `${JSON.stringify(t)} is not an initializer of the graph`);
  return addMseAndGradients(g, options, options.trained ?? [], options.trainedAsInputs ?? false);
}

/** UNet (or any ε-predictor) + LoRA → the training graph of `mean((prediction − target)²)`. */
export function buildLoraUnetStep(unet: Graph, options: LoraUnetStepOptions): LoraUnetStep {
  const g = unet.clone();
  fixInputShapes(g, options.inputShapes);
  const branches = insertLoraBranches(g, options);
  const step = addMseAndGradients(
    g,
    options,
    branches.flatMap((b) => [b.down, b.up]),
    false,
  );
  return { ...step, branches };
}

export interface EmbeddingRowsStepOptions extends TrainableRowsOptions {
  /** The output the incoming gradient belongs to (default the graph's first output). */
  output?: string;
  /** Name of the new input holding d loss / d output (default `grad_output`). */
  gradOutput?: string;
  /** Static shapes of graph inputs, e.g. `{ input_ids: [2, 77] }` (see `LoraUnetStepOptions`). */
  inputShapes?: Record<string, readonly number[]>;
}

export interface EmbeddingRowsStep {
  /** Inputs: the token ids and `gradOutput`; outputs: the forward output, `vjp` and `grad_<rows>`. */
  graph: Graph;
  rows: TrainableRows;
  output: string;
  gradOutput: string;
  /** Gradient output name of the trainable rows. */
  gradient: string;
}

/** Text encoder with trainable embedding rows → graph giving d loss / d rows from d loss / d output. */
export function buildEmbeddingRowsStep(encoder: Graph, options: EmbeddingRowsStepOptions): EmbeddingRowsStep {
  const g = encoder.clone();
  fixInputShapes(g, options.inputShapes);
  const output = options.output ?? g.outputs[0]?.name;
  if (!output) throw new InvalidArgumentError('encoder', 'the graph has no output');
  const rows = makeEmbeddingRowsTrainable(g, options);
  const info = inferShapes(g).get(output);
  const gradOutput = options.gradOutput ?? 'grad_output';
  g.addInput(gradOutput, info?.type ?? 'float32', info?.shape ?? g.outputs.find((o) => o.name === output)?.shape);
  const prod = g.node('Mul', [output, gradOutput], {}, { name: 'vjp/Mul' });
  const vjp = g.node('ReduceSum', [prod], { keepdims: 0 }, { name: 'vjp/ReduceSum', output: 'vjp' });
  g.outputs = g.outputs.filter((o) => o.name === output);
  g.addOutput(vjp, info?.type ?? 'float32', []);
  const tg = buildGradientGraph(g, { loss: vjp, wrt: [rows.rows] });
  return { graph: tg.graph, rows, output, gradOutput, gradient: tg.gradients[rows.rows] as string };
}
