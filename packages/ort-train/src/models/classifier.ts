/**
 * Classifier forward graphs as graph-building code: torchvision ResNet-18/34/50/101/152 and a small
 * CNN, with torchvision state_dict key names as the ONNX value names of their weights.
 *
 * - `eval` mode: BatchNormalization with the running statistics (as `model.eval()`).
 * - `train` mode: BatchNormalization with `training_mode=1` (batch mean and biased batch variance);
 *   the updated running statistics (`r' = (1 − m)·r + m·s`, s = batch mean / **unbiased** batch
 *   variance, m = 0.1, as torch) are extra graph outputs named `<key>__updated` (see
 *   {@link BuiltClassifier.bufferUpdates}). `buildGradientGraph` lowers these nodes (running variance
 *   with torch's unbiased estimate); ONNX Runtime runs them as they are too (biased, per the ONNX spec).
 * - Weights either baked in as initializers (`weights: 'initializers'`, needs `state`) or declared as
 *   graph inputs named by their keys (`weights: 'inputs'`) so a trainer can feed them each step.
 */
import { InvalidArgumentError, type Rng } from '@diffmix/core';
import { type AttrInput, attr, type Dim, Graph } from '../graph/graph.js';
import { GraphBuilder } from './builder.js';
import { initState, loadState, numel, type StateSource, type TensorMap, type TensorSpec } from './state.js';

export type ResNetArch = 'resnet18' | 'resnet34' | 'resnet50' | 'resnet101' | 'resnet152';
export type ClassifierArch = ResNetArch | 'smallcnn';

const RESNET: Record<ResNetArch, { block: 'basic' | 'bottleneck'; layers: [number, number, number, number] }> = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
  resnet152: { block: 'bottleneck', layers: [3, 8, 36, 3] },
};

export interface ClassifierOptions {
  /** Output classes (default 1000). */
  numClasses?: number;
  /** Small CNN channel widths (default [16, 32, 64]). */
  widths?: readonly number[];
}

export interface BuildClassifierOptions extends ClassifierOptions {
  /** `eval` (running statistics) or `train` (batch statistics + running-statistics outputs). Default eval. */
  mode?: 'eval' | 'train';
  /** Weights as initializers (default; needs `state`) or as graph inputs named by their keys. */
  weights?: 'initializers' | 'inputs';
  /** Tensor values for `weights: 'initializers'` (every key of {@link classifierSpecs}). */
  state?: ReadonlyMap<string, { shape: number[]; data: Float32Array }>;
  /** Keys that become graph inputs even with `weights: 'initializers'` (e.g. the trainable subset). */
  inputKeys?: readonly string[];
  /** Graph input name (default `input`), NCHW float32. */
  inputName?: string;
  /** Input dims (default ['N', 3, 'H', 'W']). */
  inputShape?: readonly [Dim, Dim, Dim, Dim];
  /** BatchNorm momentum for the running-statistics update (default 0.1) and epsilon (default 1e-5). */
  bnMomentum?: number;
  bnEps?: number;
}

export interface BuiltClassifier {
  arch: ClassifierArch;
  /** The forward graph. */
  graph: Graph;
  /** The same graph behind the older `GraphBuilder` API (`toBytes()` etc.). */
  builder: GraphBuilder;
  /** Graph input (NCHW image batch). */
  input: string;
  /** Graph outputs: logits [N, classes] and pooled features [N, F]. */
  logits: string;
  features: string;
  numClasses: number;
  /** Every tensor of the model (state_dict order, without num_batches_tracked). */
  specs: TensorSpec[];
  /** Keys of trained parameters / of running-statistics buffers. */
  params: string[];
  buffers: string[];
  /** Train mode: buffer key → graph output holding its updated value. */
  bufferUpdates: Map<string, string>;
  /** Keys declared as graph inputs (fed each run). */
  weightInputs: string[];
}

/** Emits nodes into a {@link Graph} and records the tensors it uses. */
class Net {
  readonly specs: TensorSpec[] = [];
  readonly bufferUpdates = new Map<string, string>();
  readonly weightInputs: string[] = [];

  constructor(
    readonly g: Graph,
    private readonly o: BuildClassifierOptions,
  ) {}

  /** A node with one output named from `base` (node names `/<base>/<op>`, as the old builder did). */
  op(
    opType: string,
    inputs: readonly string[],
    attrs: Record<string, AttrInput | undefined> = {},
    base: string = opType,
  ): string {
    return this.g.node(opType, inputs, attrs, { output: this.g.uniqueName(base), name: this.g.uniqueName(`/${base}/${opType}`) });
  }

  tensor(spec: TensorSpec): string {
    this.specs.push(spec);
    const asInput = this.o.weights === 'inputs' || (this.o.inputKeys?.includes(spec.name) ?? false);
    if (asInput) {
      this.weightInputs.push(spec.name);
      return this.g.addInput(spec.name, 'float32', spec.shape);
    }
    const t = this.o.state?.get(spec.name);
    if (!t)
      throw new InvalidArgumentError('state', `no tensor ${JSON.stringify(spec.name)} (weights: 'initializers' needs every key)`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new InvalidArgumentError(
        'state',
        `tensor ${JSON.stringify(spec.name)} has shape [${t.shape.join(', ')}], expected [${spec.shape.join(', ')}]`,
      );
    }
    if (this.g.initializers.has(spec.name))
      throw new InvalidArgumentError('state', `tensor ${JSON.stringify(spec.name)} is defined twice`);
    return this.g.addInitializer(spec.name, { type: 'float32', data: t.data, dims: spec.shape });
  }

  conv(x: string, key: string, cin: number, cout: number, k: number, stride: number, pad: number, group = 1): string {
    const w = this.tensor({
      name: `${key}.weight`,
      shape: [cout, cin / group, k, k],
      kind: 'param',
      init: { kind: 'kaiming_normal_fan_out' },
    });
    return this.op(
      'Conv',
      [x, w],
      { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad], group: group === 1 ? undefined : group },
      key,
    );
  }

  /**
   * BatchNorm. Train mode emits ONNX BatchNormalization with `training_mode=1` whose extra outputs are
   * the updated running statistics (`<key>.running_mean__updated`, `…running_var__updated`; momentum
   * 0.1 as torch): `buildGradientGraph` lowers it (unbiased running variance, as torch) and
   * differentiates it in closed form. ONNX Runtime also runs the node as is, with the biased batch
   * variance in the running-variance update (ONNX spec); `lowerForTraining` gives torch's.
   */
  bn(x: string, key: string, c: number): string {
    const w = this.tensor({ name: `${key}.weight`, shape: [c], kind: 'param', init: { kind: 'constant', value: 1 } });
    const b = this.tensor({ name: `${key}.bias`, shape: [c], kind: 'param', init: { kind: 'constant', value: 0 } });
    const rm = this.tensor({ name: `${key}.running_mean`, shape: [c], kind: 'buffer', init: { kind: 'constant', value: 0 } });
    const rv = this.tensor({ name: `${key}.running_var`, shape: [c], kind: 'buffer', init: { kind: 'constant', value: 1 } });
    const eps = this.o.bnEps ?? 1e-5;
    if (this.o.mode !== 'train') return this.op('BatchNormalization', [x, w, b, rm, rv], { epsilon: attr.f(eps) }, key);
    const m = this.o.bnMomentum ?? 0.1;
    const y = this.g.uniqueName(key);
    const newRm = `${key}.running_mean__updated`;
    const newRv = `${key}.running_var__updated`;
    // ONNX momentum weighs the old value: running' = momentum·running + (1 − momentum)·batch.
    this.g.nodeN(
      'BatchNormalization',
      [x, w, b, rm, rv],
      [y, newRm, newRv],
      { epsilon: attr.f(eps), momentum: attr.f(1 - m), training_mode: 1 },
      { name: this.g.uniqueName(`/${key}/BatchNormalization`) },
    );
    this.bufferUpdates.set(rm, newRm);
    this.bufferUpdates.set(rv, newRv);
    return y;
  }

  relu(x: string, base: string): string {
    return this.op('Relu', [x], {}, base);
  }

  maxPool(x: string, k: number, stride: number, pad: number, base: string): string {
    return this.op('MaxPool', [x], { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad] }, base);
  }

  head(x: string, inFeatures: number, numClasses: number): { features: string; logits: string } {
    const pooled = this.op('GlobalAveragePool', [x], {}, 'avgpool');
    this.g.node('Flatten', [pooled], { axis: 1 }, { output: 'features', name: this.g.uniqueName('/features/Flatten') });
    const bound = 1 / Math.sqrt(inFeatures);
    const w = this.tensor({
      name: 'fc.weight',
      shape: [numClasses, inFeatures],
      kind: 'param',
      init: { kind: 'uniform', bound },
    });
    const b = this.tensor({ name: 'fc.bias', shape: [numClasses], kind: 'param', init: { kind: 'uniform', bound } });
    this.g.node('Gemm', ['features', w, b], { transB: 1 }, { output: 'logits', name: this.g.uniqueName('/logits/Gemm') });
    return { features: 'features', logits: 'logits' };
  }
}

function emitResNet(
  net: Net,
  x0: string,
  arch: ResNetArch,
  numClasses: number,
): { features: string; logits: string; width: number } {
  const { block, layers } = RESNET[arch];
  const expansion = block === 'basic' ? 1 : 4;
  let x = net.conv(x0, 'conv1', 3, 64, 7, 2, 3);
  x = net.relu(net.bn(x, 'bn1', 64), 'relu');
  x = net.maxPool(x, 3, 2, 1, 'maxpool');
  let inplanes = 64;
  layers.forEach((blocks, li) => {
    const planes = 64 * 2 ** li;
    for (let bi = 0; bi < blocks; bi++) {
      const stride = bi === 0 && li > 0 ? 2 : 1;
      const key = `layer${li + 1}.${bi}`;
      let identity = x;
      let y: string;
      if (block === 'basic') {
        y = net.relu(net.bn(net.conv(x, `${key}.conv1`, inplanes, planes, 3, stride, 1), `${key}.bn1`, planes), `${key}.relu`);
        y = net.bn(net.conv(y, `${key}.conv2`, planes, planes, 3, 1, 1), `${key}.bn2`, planes);
      } else {
        // torchvision Bottleneck (v1.5): the stride sits on the 3×3 conv.
        y = net.relu(net.bn(net.conv(x, `${key}.conv1`, inplanes, planes, 1, 1, 0), `${key}.bn1`, planes), `${key}.relu`);
        y = net.relu(net.bn(net.conv(y, `${key}.conv2`, planes, planes, 3, stride, 1), `${key}.bn2`, planes), `${key}.relu`);
        y = net.bn(net.conv(y, `${key}.conv3`, planes, planes * expansion, 1, 1, 0), `${key}.bn3`, planes * expansion);
      }
      if (stride !== 1 || inplanes !== planes * expansion) {
        identity = net.bn(
          net.conv(x, `${key}.downsample.0`, inplanes, planes * expansion, 1, stride, 0),
          `${key}.downsample.1`,
          planes * expansion,
        );
      }
      x = net.relu(net.op('Add', [y, identity], {}, `${key}/add`), `${key}.relu`);
      inplanes = planes * expansion;
    }
  });
  return { ...net.head(x, inplanes, numClasses), width: inplanes };
}

function emitSmallCnn(net: Net, x0: string, widths: readonly number[], numClasses: number): { features: string; logits: string } {
  let x = x0;
  let cin = 3;
  widths.forEach((w, i) => {
    const k = `conv${i + 1}`;
    x = net.relu(net.bn(net.conv(x, k, cin, w, 3, 1, 1), `bn${i + 1}`, w), `relu${i + 1}`);
    if (i < widths.length - 1) x = net.maxPool(x, 2, 2, 0, `pool${i + 1}`);
    cin = w;
  });
  return net.head(x, cin, numClasses);
}

/** Builds a classifier's forward graph (see the module comment). */
export function buildClassifier(arch: ClassifierArch, options: BuildClassifierOptions = {}): BuiltClassifier {
  const numClasses = options.numClasses ?? 1000;
  if (!Number.isInteger(numClasses) || numClasses < 1)
    throw new InvalidArgumentError('numClasses', `must be a positive integer, got ${numClasses}`);
  if (arch !== 'smallcnn' && !(arch in RESNET))
    throw new InvalidArgumentError('arch', `unknown architecture ${JSON.stringify(arch)}`);
  const g = new Graph(arch);
  const net = new Net(g, options);
  const input = g.addInput(options.inputName ?? 'input', 'float32', options.inputShape ?? ['N', 3, 'H', 'W']);
  const out =
    arch === 'smallcnn'
      ? emitSmallCnn(net, input, options.widths ?? [16, 32, 64], numClasses)
      : emitResNet(net, input, arch, numClasses);
  g.addOutput(out.logits, 'float32', ['N', numClasses]);
  g.addOutput(out.features, 'float32', ['N', net.specs.find((s) => s.name === 'fc.weight')?.shape[1] ?? 0]);
  for (const [key, updated] of net.bufferUpdates)
    g.addOutput(updated, 'float32', net.specs.find((s) => s.name === key)?.shape ?? []);
  return {
    arch,
    graph: g,
    builder: new GraphBuilder(g),
    input,
    logits: out.logits,
    features: out.features,
    numClasses,
    specs: net.specs,
    params: net.specs.filter((s) => s.kind === 'param').map((s) => s.name),
    buffers: net.specs.filter((s) => s.kind === 'buffer').map((s) => s.name),
    bufferUpdates: net.bufferUpdates,
    weightInputs: net.weightInputs,
  };
}

/** The tensors (state_dict order, without num_batches_tracked) a classifier expects. */
export function classifierSpecs(arch: ClassifierArch, options: ClassifierOptions = {}): TensorSpec[] {
  return buildClassifier(arch, { ...options, weights: 'inputs' }).specs;
}

/** Fresh torchvision-style weights (kaiming-normal fan-out convs, BN 1/0, fc U(±1/√in)). */
export function initClassifierState(arch: ClassifierArch, rng: Rng, options: ClassifierOptions = {}): TensorMap {
  return initState(classifierSpecs(arch, options), rng);
}

export interface LoadClassifierOptions extends ClassifierOptions {
  /** Draws the new head when `numClasses` differs from the file's (required then). */
  rng?: Rng;
}

/**
 * Loads torchvision-keyed weights (e.g. `resnet18.safetensors`: `conv1.weight`, `bn1.running_mean`,
 * `layer1.0.conv1.weight`, …, `fc.weight`) strictly. When `numClasses` differs from the file's head,
 * `fc.weight` / `fc.bias` are replaced by fresh U(±1/√in) values from `rng` (torchvision's Linear init).
 */
export function loadClassifierState(arch: ClassifierArch, source: StateSource, options: LoadClassifierOptions = {}): TensorMap {
  const specs = classifierSpecs(arch, options);
  const fcSpec = specs.find((s) => s.name === 'fc.weight');
  const fileFc =
    'float32' in source
      ? source.has('fc.weight')
        ? source.entry('fc.weight').shape
        : undefined
      : source.get('fc.weight')?.shape;
  const replaceHead =
    fileFc !== undefined && fcSpec !== undefined && fileFc[0] !== fcSpec.shape[0] && fileFc[1] === fcSpec.shape[1];
  return loadState(
    specs,
    source,
    replaceHead ? { replace: ['fc.weight', 'fc.bias'], ...(options.rng ? { rng: options.rng } : {}) } : {},
  );
}

/** Total element count of the trained parameters. */
export function parameterCount(specs: readonly TensorSpec[]): number {
  return specs.filter((s) => s.kind === 'param').reduce((a, s) => a + numel(s.shape), 0);
}
