/**
 * Reverse-mode automatic differentiation over ONNX graphs: from a forward graph, a scalar loss and
 * the tensors to differentiate, one graph that computes the loss and `grad_<name>` for each.
 */
import { InvalidArgumentError } from '@diffmix/core';
import { attr, type Graph, type GraphNode, type Graph as GraphT, tensorOf } from '../graph/graph.js';
import { constantValues, inferShapes } from '../graph/infer.js';
import { FLOAT_TYPES, GradContext, type GradSettings } from './context.js';
import {
  AUTODIFF_DOMAIN,
  FUSED_BN_OP,
  type FusedBatchNormRegion,
  type LowerOptions,
  lowerForTrainingDetailed,
  type RunningStatOutputs,
} from './lower.js';
import { gradientRules, NON_DIFFERENTIABLE_OPS } from './rules.js';

export interface GradientGraphOptions {
  /** The scalar (or one-element) loss value. Its gradient seed is 1. */
  loss: string;
  /** Initializers or graph inputs to differentiate. */
  wrt: readonly string[];
  /** Output name of each gradient (default `grad_<name>`). */
  gradName?: (name: string) => string;
  /** Keep the forward graph's outputs (default true; the loss is always an output). */
  keepOutputs?: boolean;
  /** Make the `wrt` initializers graph inputs (weights fed at every step). Default false. */
  wrtAsInputs?: boolean;
  /** Lowering of normalisation ops (see `lowerForTraining`); running statistics become outputs. */
  lower?: LowerOptions;
  /** Conv weight-gradient formulation (default `im2col` where shapes are static; see `GradSettings`). */
  convWeightGradient?: GradSettings['convWeightGradient'];
  /** MaxPool gradient formulation (default `windows`, which also runs on WebGPU; see `GradSettings`). */
  maxPoolGradient?: GradSettings['maxPoolGradient'];
}

export interface GradientGraph {
  graph: Graph;
  /** The loss output. */
  loss: string;
  /** wrt name → gradient output name. */
  gradients: Record<string, string>;
  /** BatchNormalization running statistics (training mode), also graph outputs. */
  runningStats: RunningStatOutputs[];
}

/** Error thrown when ops on the differentiated path have no gradient rule. */
export class UnsupportedOpsError extends InvalidArgumentError {
  constructor(readonly ops: Map<string, string[]>) {
    super(
      'graph',
      `no gradient rule for ${ops.size} op type(s) on the path from the trainable tensors to the loss: ${[...ops]
        .map(([op, nodes]) => `${op} (${nodes.length} node${nodes.length > 1 ? 's' : ''}, e.g. ${nodes[0]})`)
        .join(', ')}`,
    );
    this.name = 'UnsupportedOpsError';
  }
}

function activeNodes(graph: Graph, wrt: readonly string[], loss: string, isFloat: (v: string) => boolean) {
  const order = graph.topologicalOrder();
  const varied = new Set(wrt);
  for (const n of order) {
    if (NON_DIFFERENTIABLE_OPS.has(n.opType)) continue;
    if (n.inputs.some((v) => v && varied.has(v))) for (const o of n.outputs) if (o && isFloat(o)) varied.add(o);
  }
  const useful = new Set([loss]);
  for (const n of [...order].reverse()) if (n.outputs.some((o) => useful.has(o))) for (const v of n.inputs) if (v) useful.add(v);
  const active = order.filter(
    (n) => !NON_DIFFERENTIABLE_OPS.has(n.opType) && n.outputs.some((o) => varied.has(o) && useful.has(o)),
  );
  return { active, varied, useful };
}

/**
 * Builds the training graph. Throws `UnsupportedOpsError` naming every op type on the differentiated
 * path without a rule.
 */
export function buildGradientGraph(forward: Graph, options: GradientGraphOptions): GradientGraph {
  const g = forward.clone();
  const { loss, wrt } = options;
  for (const w of wrt) {
    if (!g.initializers.has(w) && !g.inputs.some((i) => i.name === w))
      throw new InvalidArgumentError('wrt', `${JSON.stringify(w)} is neither an initializer nor an input of the graph`);
  }
  if (options.wrtAsInputs) g.initializersToInputs(wrt.filter((w) => g.initializers.has(w)));
  let info = inferShapes(g);
  const isFloat = (v: string) => {
    const t = info.get(v)?.type;
    return t === undefined || FLOAT_TYPES.has(t);
  };
  // Lower normalisation ops on the active path, then analyse again.
  const pre = activeNodes(g, wrt, loss, isFloat);
  const activeSet = new Set(pre.active);
  const { stats: runningStats, fused } = lowerForTrainingDetailed(g, {
    fuseBatchNormGradient: true,
    ...options.lower,
    filter: (n) => activeSet.has(n) || (n.opType === 'BatchNormalization' && options.lower?.batchNormTraining === true),
  });
  info = inferShapes(g);
  // Each fused BatchNorm region stands in the node list as one node while the gradient is built.
  const regions = swapInRegions(g, fused);
  const { active, varied } = activeNodes(g, wrt, loss, isFloat);

  const missing = new Map<string, string[]>();
  for (const n of active) {
    if (n.domain !== '' && n.domain !== 'ai.onnx' && n.domain !== AUTODIFF_DOMAIN)
      (missing.get(`${n.domain}.${n.opType}`) ?? missing.set(`${n.domain}.${n.opType}`, []).get(`${n.domain}.${n.opType}`))?.push(
        n.name,
      );
    else if (!gradientRules.has(n.opType)) (missing.get(n.opType) ?? missing.set(n.opType, []).get(n.opType))?.push(n.name);
  }
  if (missing.size > 0) throw new UnsupportedOpsError(missing);

  const ctx = new GradContext(g, info, constantValues(g), {
    ...(options.convWeightGradient ? { convWeightGradient: options.convWeightGradient } : {}),
    ...(options.maxPoolGradient ? { maxPoolGradient: options.maxPoolGradient } : {}),
  });
  const grads = new Map<string, string[]>();
  const add = (v: string, gv: string) => {
    const list = grads.get(v) ?? [];
    list.push(gv);
    grads.set(v, list);
  };
  const total = (v: string): string | undefined => {
    const list = grads.get(v);
    if (!list || list.length === 0) return undefined;
    if (list.length === 1) return list[0];
    // A left-to-right chain of Adds rather than one Sum: the same float result (ORT's Sum also adds its
    // inputs in order), and Add runs on every execution provider — ORT's WebGPU provider has no Sum kernel,
    // so each Sum (hundreds in a UNet's backward) fell back to the CPU with two copies across the bus.
    let s = list[0] as string;
    for (const next of list.slice(1)) s = ctx.op('Add', [s, next], {}, ctx.type(v), ctx.shape(v));
    grads.set(v, [s]);
    return s;
  };
  const lossType = ctx.type(loss);
  const ls = ctx.staticShape(loss);
  add(
    loss,
    ls
      ? ctx.set(g.constant(tensorOf(lossType, ls, 1), 'loss_seed'), lossType, ls)
      : ctx.op(
          'ConstantOfShape',
          [ctx.shapeOf(loss)],
          { value: { kind: 't', v: tensorOf(lossType, [1], [1]) } },
          lossType,
          ctx.shape(loss),
        ),
  );
  for (const n of [...active].reverse()) {
    const dy = n.outputs.map((o) => (o ? total(o) : undefined));
    if (dy.every((d) => d === undefined)) continue;
    const needs = n.inputs.map((v) => !!v && varied.has(v) && isFloat(v));
    const rule = gradientRules.get(n.opType) as NonNullable<ReturnType<typeof gradientRules.get>>;
    const res = rule({ ctx, node: n as GraphNode, dy, needs });
    res.forEach((gv, i) => {
      const v = n.inputs[i];
      if (gv && v && needs[i]) add(v, gv);
    });
  }

  const gradients: Record<string, string> = {};
  const keep = options.keepOutputs !== false;
  const outputs = keep ? g.outputs.filter((o) => o.name !== loss) : [];
  g.outputs = [{ name: loss, type: lossType, shape: ctx.shape(loss) }, ...outputs];
  for (const s of runningStats) {
    g.addOutput(s.mean, ctx.type(s.meanInput), ctx.shape(s.meanInput));
    g.addOutput(s.var, ctx.type(s.varInput), ctx.shape(s.varInput));
  }
  for (const w of wrt) {
    const name = options.gradName ? options.gradName(w) : `grad_${w}`;
    const gv = total(w) ?? ctx.zerosLike(w);
    g.node('Identity', [gv], {}, { output: name, name: g.uniqueName(`grad/output/${w}`) });
    g.addOutput(name, ctx.type(w), ctx.shape(w));
    gradients[w] = name;
  }
  swapOutRegions(g, regions);
  g.pruneDeadNodes();
  return { graph: g, loss, gradients, runningStats };
}

/** Replaces each region's nodes by one stand-in node (outputs: y first, then every other region value). */
function swapInRegions(g: GraphT, fused: FusedBatchNormRegion[]): Map<GraphNode, GraphNode[]> {
  const regions = new Map<GraphNode, GraphNode[]>();
  if (fused.length === 0) return regions;
  const inRegion = new Set<GraphNode>();
  for (const r of fused) {
    const outs = [r.y, ...r.nodes.flatMap((n) => n.outputs).filter((o) => o && o !== r.y)];
    const stand: GraphNode = {
      name: g.uniqueName(`${FUSED_BN_OP}/${r.y}`),
      opType: FUSED_BN_OP,
      domain: AUTODIFF_DOMAIN,
      inputs: [r.x, r.scale, r.bias],
      outputs: outs,
      attrs: { centered: attr.s(r.centered), invstd: attr.s(r.invstd), a: attr.s(r.a) },
    };
    regions.set(stand, r.nodes);
    for (const n of r.nodes) inRegion.add(n);
  }
  g.nodes = [...g.nodes.filter((n) => !inRegion.has(n)), ...regions.keys()];
  return regions;
}

/** Puts the regions' primitive nodes back (in topological order: stand-ins were appended at the end). */
function swapOutRegions(g: GraphT, regions: Map<GraphNode, GraphNode[]>): void {
  if (regions.size === 0) return;
  g.nodes = g.nodes.flatMap((n) => regions.get(n) ?? [n]);
  g.nodes = g.topologicalOrder();
}
