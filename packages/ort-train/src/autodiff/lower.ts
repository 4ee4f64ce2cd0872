/**
 * Lowering of normalisation ops into primitive ops (ReduceMean, Sub, Mul, Div, Sqrt, Add, Reshape)
 * whose gradient rules then give the exact gradient — including BatchNormalization in training
 * mode (batch statistics, running-statistic updates as extra outputs).
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { OnnxDataType } from '@diffmix/onnx';
import { attrFloat, attrInt, type Graph, type GraphNode, tensorOf } from '../graph/graph.js';
import { inferShapes } from '../graph/infer.js';

export interface RunningStatOutputs {
  /** The BatchNormalization node's name. */
  node: string;
  /** Initializers / inputs holding the running mean and variance the node read. */
  meanInput: string;
  varInput: string;
  /** Values holding the updated running statistics. */
  mean: string;
  var: string;
}

export interface LowerOptions {
  /**
   * Turn every BatchNormalization into training mode (batch statistics) — what `model.train()`
   * does in PyTorch. Default false: only nodes with `training_mode=1` are.
   */
  batchNormTraining?: boolean;
  /**
   * Running variance update with the unbiased batch variance (PyTorch) instead of the biased one
   * the ONNX spec uses. Default true.
   */
  unbiasedRunningVar?: boolean;
  /** Which ops to lower (default: BatchNormalization in training mode, LayerNormalization, InstanceNormalization, GroupNormalization). */
  ops?: Set<string>;
  /** Only nodes for which this returns true (default all). */
  filter?: (node: GraphNode) => boolean;
  /**
   * Training-mode BatchNormalization: also return, for each lowered node, a {@link FusedBatchNormRegion}
   * so `buildGradientGraph` differentiates the whole normalisation with the closed-form BatchNorm
   * backward (≈7 passes over the activation) instead of through each primitive op (≈20 passes). The
   * forward ops emitted are the same runnable primitives either way. Default false.
   */
  fuseBatchNormGradient?: boolean;
}

/**
 * The primitive ops one training-mode BatchNormalization was lowered to, seen from the autodiff as a
 * single op `x, scale, bias → y` (y = d·a + bias with d = x − mean, a = scale·invstd per channel).
 */
export interface FusedBatchNormRegion {
  x: string;
  scale: string;
  bias: string;
  y: string;
  /** Centred input x − mean, per-channel 1/√(var + ε) and scale·invstd (both [1, C, 1, …]). */
  centered: string;
  invstd: string;
  a: string;
  /** The lowered nodes between x and y (not the running-statistics updates). */
  nodes: GraphNode[];
}

/** Op type of the stand-in node the autodiff puts in place of a {@link FusedBatchNormRegion}. */
export const FUSED_BN_OP = 'FusedBatchNormTraining';
/** Domain of autodiff-internal stand-in nodes (never left in an output graph). */
export const AUTODIFF_DOMAIN = 'ai.diffmix.autodiff';

const DEFAULT_OPS = new Set(['BatchNormalization', 'LayerNormalization', 'InstanceNormalization', 'GroupNormalization']);

/**
 * Replaces normalisation nodes by primitive ops, in place. Returns the running-statistics values of
 * training-mode BatchNormalization nodes (add them as graph outputs to read them back).
 */
export function lowerForTraining(graph: Graph, options: LowerOptions = {}): RunningStatOutputs[] {
  return lowerForTrainingDetailed(graph, options).stats;
}

/** {@link lowerForTraining}, also returning the fused BatchNorm regions (`fuseBatchNormGradient`). */
export function lowerForTrainingDetailed(
  graph: Graph,
  options: LowerOptions = {},
): { stats: RunningStatOutputs[]; fused: FusedBatchNormRegion[] } {
  const fused: FusedBatchNormRegion[] = [];
  const ops = options.ops ?? DEFAULT_OPS;
  const info = inferShapes(graph);
  const stats: RunningStatOutputs[] = [];
  const nodes: GraphNode[] = [];
  graph.reserve(''); // collect the existing names before the node list is swapped
  const old = graph.nodes;
  graph.nodes = nodes;
  for (const n of old) {
    const training = options.batchNormTraining === true || attrInt(n, 'training_mode', 0) === 1;
    const lower = ops.has(n.opType) && (options.filter?.(n) ?? true) && (n.opType !== 'BatchNormalization' || training);
    if (!lower) {
      nodes.push(n);
      continue;
    }
    const x = n.inputs[0] as string;
    const xi = info.get(x);
    const rank = xi?.shape?.length;
    const type = xi?.type;
    if (rank === undefined || !type)
      throw new InvalidArgumentError('graph', `${n.opType} ${n.name}: the rank and type of its input must be known to lower it`);
    const c = (v: number) => graph.constant(tensorOf(type, [], [v]), 'c');
    const op = (o: string, ins: string[], attrs: Parameters<Graph['node']>[2] = {}, out?: string) =>
      graph.node(o, ins, attrs, { name: graph.uniqueName(`${n.name}/${o}`), ...(out ? { output: out } : {}) });
    const eps = attrFloat(n, 'epsilon', 1e-5);
    // ReduceMean takes its axes as an attribute up to opset 17 and as an input from opset 18.
    const axesAsInput = (graph.opsets.get('') ?? 17) >= 18;
    const rmean = (v: string, axes: number[]) =>
      axesAsInput ? op('ReduceMean', [v, graph.int64s(axes)], { keepdims: 1 }) : op('ReduceMean', [v], { axes, keepdims: 1 });
    const normalise = (v: string, axes: number[]) => {
      const mean = rmean(v, axes);
      const d = op('Sub', [v, mean]);
      const varc = rmean(op('Mul', [d, d]), axes);
      return { mean, varc, xhat: op('Div', [d, op('Sqrt', [op('Add', [varc, c(eps)])])]) };
    };
    const chan = graph.int64s([-1, ...Array(rank - 2).fill(1)]);
    const spatial = [...Array(rank - 2).keys()].map((i) => i + 2);
    const y = n.outputs[0] as string;
    switch (n.opType) {
      case 'BatchNormalization': {
        const [, scale, bias, rm, rv] = n.inputs as [string, string, string, string, string];
        const axes = [0, ...spatial];
        let mean: string;
        let varc: string;
        if (options.fuseBatchNormGradient) {
          // y = (x − mean)·(scale·invstd) + bias: the per-channel factor is computed once, so the
          // forward makes one pass fewer than normalising first; the nodes are recorded as a region.
          const first = nodes.length;
          mean = rmean(x, axes);
          const d = op('Sub', [x, mean]);
          varc = rmean(op('Mul', [d, d]), axes);
          const invstd = op('Reciprocal', [op('Sqrt', [op('Add', [varc, c(eps)])])]);
          const a = op('Mul', [op('Reshape', [scale, chan]), invstd]);
          op('Add', [op('Mul', [d, a]), op('Reshape', [bias, chan])], {}, y);
          fused.push({ x, scale, bias, y, centered: d, invstd, a, nodes: nodes.slice(first) });
        } else {
          const r = normalise(x, axes);
          mean = r.mean;
          varc = r.varc;
          op('Add', [op('Mul', [r.xhat, op('Reshape', [scale, chan])]), op('Reshape', [bias, chan])], {}, y);
        }
        const momentum = attrFloat(n, 'momentum', 0.9);
        const m1 = op('Reshape', [mean, graph.int64s([-1])]);
        let v1 = op('Reshape', [varc, graph.int64s([-1])]);
        if (options.unbiasedRunningVar !== false) {
          // var · m / (m − 1), m = elements per channel = Size(x) / C.
          const cnt = op('Cast', [op('Div', [op('Size', [x]), op('Size', [m1])])], { to: type === 'float64' ? 11 : 1 });
          v1 = op('Div', [op('Mul', [v1, cnt]), op('Sub', [cnt, c(1)])]);
        }
        const upd = (r: string, cur: string, out: string | undefined) =>
          op(
            'Add',
            [op('Mul', [r, c(momentum)]), op('Mul', [cur, c(1 - momentum)])],
            {},
            out || graph.uniqueName(`${r}_running`),
          );
        const meanOut = upd(rm, m1, n.outputs[1]);
        const varOut = upd(rv, v1, n.outputs[2]);
        stats.push({ node: n.name, meanInput: rm, varInput: rv, mean: meanOut, var: varOut });
        break;
      }
      case 'InstanceNormalization': {
        const [, scale, bias] = n.inputs as [string, string, string];
        const { xhat } = normalise(x, spatial);
        op('Add', [op('Mul', [xhat, op('Reshape', [scale, chan])]), op('Reshape', [bias, chan])], {}, y);
        break;
      }
      case 'LayerNormalization': {
        const axis0 = attrInt(n, 'axis', -1);
        const axis = axis0 < 0 ? axis0 + rank : axis0;
        const axes = [...Array(rank - axis).keys()].map((i) => i + axis);
        const { xhat } = normalise(x, axes);
        const scale = n.inputs[1] as string;
        const scaled = op('Mul', [xhat, scale]);
        const bias = n.inputs[2];
        op(bias ? 'Add' : 'Identity', bias ? [scaled, bias] : [scaled], {}, y);
        if (n.outputs.slice(1).some((o) => o))
          throw new InvalidArgumentError(
            'graph',
            `LayerNormalization ${n.name}: the Mean / InvStdDev outputs are not supported when lowering`,
          );
        break;
      }
      case 'GroupNormalization': {
        const groups = attrInt(n, 'num_groups');
        if (!groups) throw new InvalidArgumentError('graph', `GroupNormalization ${n.name} has no num_groups`);
        const [, scale, bias] = n.inputs as [string, string, string];
        const grouped = op('Reshape', [x, graph.int64s([0, groups, -1])]);
        const { xhat } = normalise(grouped, [2]);
        const back = op('Reshape', [xhat, op('Shape', [x])]);
        // Opset 18 gives scale / bias per group, opset 21 per channel.
        const perChannel = (info.get(scale)?.shape?.[0] ?? null) === (xi?.shape?.[1] ?? undefined) && groups !== xi?.shape?.[1];
        const expand = (p: string) =>
          perChannel
            ? op('Reshape', [p, chan])
            : op('Reshape', [
                op('Expand', [
                  op('Reshape', [p, graph.int64s([-1, 1])]),
                  op(
                    'Concat',
                    [
                      graph.int64s([groups]),
                      op('Div', [op('Slice', [op('Shape', [x]), graph.int64s([1]), graph.int64s([2])]), graph.int64s([groups])]),
                    ],
                    { axis: 0 },
                  ),
                ]),
                chan,
              ]);
        op('Add', [op('Mul', [back, expand(scale)]), expand(bias)], {}, y);
        break;
      }
      default:
        nodes.push(n);
    }
  }
  return { stats, fused };
}

/** Element type helper for callers building their own lowering. */
export function floatCastCode(type: OnnxDataType): number {
  return type === 'float64' ? 11 : type === 'float16' ? 10 : 1;
}
