/**
 * Vision Transformer (torchvision `VisionTransformer`, e.g. `vit_b_16`) as a {@link Graph}, with
 * torchvision's state_dict key names as the ONNX names of its weights:
 *
 *   conv_proj.{weight,bias}, class_token, encoder.pos_embedding,
 *   encoder.layers.encoder_layer_{i}.{ln_1, self_attention.in_proj_weight / in_proj_bias / out_proj, ln_2, mlp.0, mlp.3},
 *   encoder.ln, heads.head
 *
 * Forward as torchvision (eval = train: ViT has no dropout at p = 0 and no batch statistics): patchify
 * with a stride-p convolution, prepend the class token, add the position embedding, pre-norm encoder
 * blocks (LayerNorm ε = 1e-6, multi-head self-attention with q scaled by 1/√d_head, MLP with exact
 * GELU = x·(1 + erf(x/√2))/2), final LayerNorm, head on the class token. Every op has a gradient rule
 * (LayerNormalization is lowered by the autodiff), so `buildGradientGraph` gives the training step.
 *
 * Other image sizes: `loadVitState` resizes the position embedding of the patch grid bicubically with
 * align_corners (torchvision's `interpolate_embeddings`), the class-token position kept.
 */
import { InvalidArgumentError, ModelFormatError, type Rng, type SafetensorsFile } from '@diffmix/core';
import { attr, type Dim, Graph } from '../graph/graph.js';
import { initState, loadState, type StateSource, type Tensor, type TensorMap, type TensorSpec } from './state.js';

export interface VitConfig {
  imageSize: number;
  patchSize: number;
  /** Width (embedding dimension). */
  hiddenDim: number;
  numLayers: number;
  numHeads: number;
  mlpDim: number;
  numClasses: number;
}

/** torchvision `vit_b_16` (ImageNet head; change `numClasses` / `imageSize` with a spread). */
export const VIT_B_16: Readonly<VitConfig> = Object.freeze({
  imageSize: 224,
  patchSize: 16,
  hiddenDim: 768,
  numLayers: 12,
  numHeads: 12,
  mlpDim: 3072,
  numClasses: 1000,
});

function checkConfig(c: VitConfig): void {
  const ints: (keyof VitConfig)[] = ['imageSize', 'patchSize', 'hiddenDim', 'numLayers', 'numHeads', 'mlpDim', 'numClasses'];
  for (const k of ints) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new InvalidArgumentError(k, `must be a positive integer, got ${c[k]}`);
  }
  if (c.imageSize % c.patchSize !== 0)
    throw new InvalidArgumentError('imageSize', `${c.imageSize} is not a multiple of the patch size ${c.patchSize}`);
  if (c.hiddenDim % c.numHeads !== 0)
    throw new InvalidArgumentError('numHeads', `hiddenDim ${c.hiddenDim} is not divisible by ${c.numHeads} heads`);
}

/** Tokens per image: patches + the class token. */
export function vitSeqLength(c: VitConfig): number {
  return (c.imageSize / c.patchSize) ** 2 + 1;
}

/** The tensors (state_dict order) of a ViT, with torchvision's initialisation. */
export function vitSpecs(config: VitConfig): TensorSpec[] {
  checkConfig(config);
  const { hiddenDim: d, patchSize: p, mlpDim: m } = config;
  const xavier = (fanIn: number, fanOut: number) => ({ kind: 'uniform' as const, bound: Math.sqrt(6 / (fanIn + fanOut)) });
  const zeros = { kind: 'constant' as const, value: 0 };
  const ones = { kind: 'constant' as const, value: 1 };
  const specs: TensorSpec[] = [
    { name: 'class_token', shape: [1, 1, d], kind: 'param', init: zeros },
    // torchvision: trunc_normal_(std = √(1/fan_in)); the ±2 truncation is ≥ 25 std away here.
    { name: 'conv_proj.weight', shape: [d, 3, p, p], kind: 'param', init: { kind: 'normal', std: Math.sqrt(1 / (3 * p * p)) } },
    { name: 'conv_proj.bias', shape: [d], kind: 'param', init: zeros },
    { name: 'encoder.pos_embedding', shape: [1, vitSeqLength(config), d], kind: 'param', init: { kind: 'normal', std: 0.02 } },
  ];
  for (let i = 0; i < config.numLayers; i++) {
    const k = `encoder.layers.encoder_layer_${i}`;
    specs.push(
      { name: `${k}.ln_1.weight`, shape: [d], kind: 'param', init: ones },
      { name: `${k}.ln_1.bias`, shape: [d], kind: 'param', init: zeros },
      { name: `${k}.self_attention.in_proj_weight`, shape: [3 * d, d], kind: 'param', init: xavier(d, 3 * d) },
      { name: `${k}.self_attention.in_proj_bias`, shape: [3 * d], kind: 'param', init: zeros },
      {
        name: `${k}.self_attention.out_proj.weight`,
        shape: [d, d],
        kind: 'param',
        init: { kind: 'uniform', bound: 1 / Math.sqrt(d) },
      },
      { name: `${k}.self_attention.out_proj.bias`, shape: [d], kind: 'param', init: zeros },
      { name: `${k}.ln_2.weight`, shape: [d], kind: 'param', init: ones },
      { name: `${k}.ln_2.bias`, shape: [d], kind: 'param', init: zeros },
      { name: `${k}.mlp.0.weight`, shape: [m, d], kind: 'param', init: xavier(d, m) },
      { name: `${k}.mlp.0.bias`, shape: [m], kind: 'param', init: { kind: 'normal', std: 1e-6 } },
      { name: `${k}.mlp.3.weight`, shape: [d, m], kind: 'param', init: xavier(m, d) },
      { name: `${k}.mlp.3.bias`, shape: [d], kind: 'param', init: { kind: 'normal', std: 1e-6 } },
    );
  }
  specs.push(
    { name: 'encoder.ln.weight', shape: [d], kind: 'param', init: ones },
    { name: 'encoder.ln.bias', shape: [d], kind: 'param', init: zeros },
    // torchvision zero-initialises the classification head.
    { name: 'heads.head.weight', shape: [config.numClasses, d], kind: 'param', init: zeros },
    { name: 'heads.head.bias', shape: [config.numClasses], kind: 'param', init: zeros },
  );
  return specs;
}

/** Fresh torchvision-initialised ViT weights. */
export function initVitState(config: VitConfig, rng: Rng): TensorMap {
  return initState(vitSpecs(config), rng);
}

export interface BuildVitOptions {
  /** Weights as initializers (default; needs `state`) or as graph inputs named by their keys. */
  weights?: 'initializers' | 'inputs';
  state?: ReadonlyMap<string, { shape: number[]; data: Float32Array }>;
  /** Keys that become graph inputs even with `weights: 'initializers'`. */
  inputKeys?: readonly string[];
  /** Graph input name (default `input`), NCHW float32 of `imageSize`². */
  inputName?: string;
  /** Batch dimension: a number (static shapes: smaller training graph) or a symbolic name (default `N`). */
  batch?: Dim;
}

export interface BuiltVit {
  config: VitConfig;
  graph: Graph;
  input: string;
  /** Outputs: logits [N, classes] and the class-token features after the final LayerNorm [N, D]. */
  logits: string;
  features: string;
  specs: TensorSpec[];
  params: string[];
  weightInputs: string[];
}

/** Builds the forward graph of a ViT (see the module comment). */
export function buildVit(config: VitConfig, options: BuildVitOptions = {}): BuiltVit {
  const specs = vitSpecs(config);
  const { hiddenDim: d, numHeads: heads, patchSize: p } = config;
  const dh = d / heads;
  const g = new Graph('vit');
  const batch = options.batch ?? 'N';
  const input = g.addInput(options.inputName ?? 'input', 'float32', [batch, 3, config.imageSize, config.imageSize]);
  const weightInputs: string[] = [];
  const byName = new Map(specs.map((s) => [s.name, s]));
  const w = (name: string): string => {
    const spec = byName.get(name) as TensorSpec;
    if (options.weights === 'inputs' || options.inputKeys?.includes(name)) {
      weightInputs.push(name);
      return g.addInput(name, 'float32', spec.shape);
    }
    const t = options.state?.get(name);
    if (!t)
      throw new InvalidArgumentError('state', `no tensor ${JSON.stringify(name)} (weights: 'initializers' needs every key)`);
    if (t.shape.length !== spec.shape.length || t.shape.some((x, i) => x !== spec.shape[i])) {
      throw new InvalidArgumentError(
        'state',
        `tensor ${JSON.stringify(name)} has shape [${t.shape.join(', ')}], expected [${spec.shape.join(', ')}]`,
      );
    }
    return g.addInitializer(name, { type: 'float32', data: t.data, dims: spec.shape });
  };
  const op = (type: string, ins: string[], attrs: Parameters<Graph['node']>[2] = {}, base = type) =>
    g.node(type, ins, attrs, { output: g.uniqueName(base), name: g.uniqueName(`/${base}/${type}`) });
  // x·Wᵀ + b for a [.., in] activation and a torch Linear weight [out, in].
  const linear = (x: string, key: string, base: string) =>
    op(
      'Add',
      [op('MatMul', [x, op('Transpose', [w(`${key}.weight`)], { perm: [1, 0] }, `${base}/wT`)], {}, base), w(`${key}.bias`)],
      {},
      base,
    );
  const layerNorm = (x: string, key: string) =>
    op('LayerNormalization', [x, w(`${key}.weight`), w(`${key}.bias`)], { axis: -1, epsilon: attr.f(1e-6) }, key);

  // Patchify: [N, 3, H, W] → [N, D, h, w] → [N, L, D].
  const patches = op(
    'Conv',
    [input, w('conv_proj.weight'), w('conv_proj.bias')],
    { kernel_shape: [p, p], strides: [p, p] },
    'conv_proj',
  );
  const tokens = op(
    'Transpose',
    [op('Reshape', [patches, g.int64s([0, d, -1])], {}, 'conv_proj/flat')],
    { perm: [0, 2, 1] },
    'tokens',
  );
  const clsShape =
    typeof batch === 'number'
      ? g.int64s([batch, 1, d])
      : op(
          'Concat',
          [op('Slice', [op('Shape', [input]), g.int64s([0]), g.int64s([1])]), g.int64s([1, d])],
          { axis: 0 },
          'cls_shape',
        );
  const cls = op('Expand', [w('class_token'), clsShape], {}, 'class_token/expanded');
  let h = op('Add', [op('Concat', [cls, tokens], { axis: 1 }, 'seq'), w('encoder.pos_embedding')], {}, 'encoder/input');
  const scale = g.scalar(1 / Math.sqrt(dh));
  const headShape = g.int64s([0, 0, heads, dh]);
  const mergeShape = g.int64s([0, 0, d]);
  const invSqrt2 = g.scalar(Math.SQRT1_2);
  const half = g.scalar(0.5);
  const one = g.scalar(1);
  for (let i = 0; i < config.numLayers; i++) {
    const k = `encoder.layers.encoder_layer_${i}`;
    const a = `${k}.self_attention`;
    const y = layerNorm(h, `${k}.ln_1`);
    const inT = op('Transpose', [w(`${a}.in_proj_weight`)], { perm: [1, 0] }, `${a}/wT`);
    const qkv = op('Add', [op('MatMul', [y, inT], {}, `${a}/qkv`), w(`${a}.in_proj_bias`)], {}, `${a}/qkv`);
    const [q, kk, v] = g.nodeN('Split', [qkv, g.int64s([d, d, d])], 3, { axis: 2 }, { name: g.uniqueName(`/${a}/Split`) }) as [
      string,
      string,
      string,
    ];
    // [N, S, D] → [N, H, S, dh] (k: [N, H, dh, S]); torch scales q by 1/√dh before q·kᵀ.
    const qh = op(
      'Mul',
      [op('Transpose', [op('Reshape', [q, headShape], {}, `${a}/q`)], { perm: [0, 2, 1, 3] }, `${a}/q`), scale],
      {},
      `${a}/q_scaled`,
    );
    const kh = op('Transpose', [op('Reshape', [kk, headShape], {}, `${a}/k`)], { perm: [0, 2, 3, 1] }, `${a}/k`);
    const vh = op('Transpose', [op('Reshape', [v, headShape], {}, `${a}/v`)], { perm: [0, 2, 1, 3] }, `${a}/v`);
    const attn = op('Softmax', [op('MatMul', [qh, kh], {}, `${a}/scores`)], { axis: -1 }, `${a}/attn`);
    const ctx = op(
      'Reshape',
      [op('Transpose', [op('MatMul', [attn, vh], {}, `${a}/ctx`)], { perm: [0, 2, 1, 3] }, `${a}/ctx`), mergeShape],
      {},
      `${a}/ctx`,
    );
    h = op('Add', [h, linear(ctx, `${a}.out_proj`, `${a}/out_proj`)], {}, `${k}/residual1`);
    const m0 = linear(layerNorm(h, `${k}.ln_2`), `${k}.mlp.0`, `${k}/mlp.0`);
    const gelu = op(
      'Mul',
      [
        op('Mul', [m0, half], {}, `${k}/gelu`),
        op('Add', [op('Erf', [op('Mul', [m0, invSqrt2], {}, `${k}/gelu`)], {}, `${k}/gelu`), one], {}, `${k}/gelu`),
      ],
      {},
      `${k}/gelu`,
    );
    h = op('Add', [h, linear(gelu, `${k}.mlp.3`, `${k}/mlp.3`)], {}, `${k}/residual2`);
  }
  const normed = layerNorm(h, 'encoder.ln');
  g.node('Gather', [normed, g.int64s([0])], { axis: 1 }, { output: 'features_1', name: '/class_token/Gather' });
  g.node('Reshape', ['features_1', g.int64s([0, d])], {}, { output: 'features', name: '/features/Reshape' });
  g.node(
    'Gemm',
    ['features', w('heads.head.weight'), w('heads.head.bias')],
    { transB: 1 },
    { output: 'logits', name: '/heads.head/Gemm' },
  );
  g.addOutput('logits', 'float32', [batch, config.numClasses]);
  g.addOutput('features', 'float32', [batch, d]);
  return {
    config: { ...config },
    graph: g,
    input,
    logits: 'logits',
    features: 'features',
    specs,
    params: specs.map((s) => s.name),
    weightInputs,
  };
}

// ---------------------------------------------------------------- loading

const A = -0.75; // torch's bicubic kernel (Keys' cubic convolution with a = −0.75)
const cubic1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
const cubic2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;

/** 1-D bicubic resampling matrix (out × in) with align_corners=True and clamped borders, as torch. */
function bicubicWeights(inSize: number, outSize: number): Float64Array {
  const m = new Float64Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    const src = outSize > 1 ? (o * (inSize - 1)) / (outSize - 1) : 0;
    const x0 = Math.floor(src);
    const t = src - x0;
    const ws = [cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)];
    ws.forEach((wt, j) => {
      const idx = Math.min(Math.max(x0 - 1 + j, 0), inSize - 1);
      m[o * inSize + idx] = (m[o * inSize + idx] as number) + wt;
    });
  }
  return m;
}

/**
 * torchvision's `interpolate_embeddings`: the position embedding [1, 1 + s², D] of an s×s patch grid
 * resized to `newGrid`² positions (bicubic, align_corners=True), the class-token row kept.
 */
export function interpolatePosEmbedding(pos: Tensor, newGrid: number, label = '<state>'): Tensor {
  const [one, seq, d] = pos.shape as [number, number, number];
  const s = Math.round(Math.sqrt(seq - 1));
  if (pos.shape.length !== 3 || one !== 1 || s * s !== seq - 1) {
    throw new ModelFormatError(
      label,
      `encoder.pos_embedding has shape [${pos.shape.join(', ')}]: expected [1, 1 + s², D] for a square patch grid`,
    );
  }
  if (s === newGrid) return { shape: [...pos.shape], data: Float32Array.from(pos.data) };
  const wm = bicubicWeights(s, newGrid);
  const out = new Float32Array((1 + newGrid * newGrid) * d);
  out.set(pos.data.subarray(0, d), 0);
  const tmp = new Float64Array(newGrid * s);
  for (let c = 0; c < d; c++) {
    // Rows first (y), then columns (x); grid value (y, x) of channel c sits at (1 + y·s + x)·D + c.
    for (let oy = 0; oy < newGrid; oy++) {
      for (let x = 0; x < s; x++) {
        let acc = 0;
        for (let y = 0; y < s; y++) acc += (wm[oy * s + y] as number) * (pos.data[(1 + y * s + x) * d + c] as number);
        tmp[oy * s + x] = acc;
      }
    }
    for (let oy = 0; oy < newGrid; oy++) {
      for (let ox = 0; ox < newGrid; ox++) {
        let acc = 0;
        for (let x = 0; x < s; x++) acc += (wm[ox * s + x] as number) * (tmp[oy * s + x] as number);
        out[(1 + oy * newGrid + ox) * d + c] = acc;
      }
    }
  }
  return { shape: [1, 1 + newGrid * newGrid, d], data: out };
}

export interface LoadVitOptions {
  /** Draws a new head when `config.numClasses` differs from the file's (required then). */
  rng?: Rng;
}

function isFile(source: StateSource): source is SafetensorsFile {
  return typeof (source as SafetensorsFile).float32 === 'function';
}

/**
 * Loads torchvision-keyed ViT weights strictly. A position embedding for another image size is
 * resized (torchvision's bicubic `interpolate_embeddings`); a head with another class count is
 * replaced by torchvision's zero init when `rng` is given.
 */
export function loadVitState(config: VitConfig, source: StateSource, options: LoadVitOptions = {}): TensorMap {
  const specs = vitSpecs(config);
  const label = isFile(source) ? source.source : '<state>';
  const read = (k: string): Tensor | undefined => {
    if (isFile(source)) return source.has(k) ? source.float32(k, { copy: true }) : undefined;
    const t = source.get(k);
    return t ? { shape: [...t.shape], data: Float32Array.from(t.data) } : undefined;
  };
  const head = read('heads.head.weight');
  const replace = head && head.shape[0] !== config.numClasses ? ['heads.head.weight', 'heads.head.bias'] : [];
  if (replace.length > 0 && !options.rng) {
    throw new ModelFormatError(
      label,
      `the file's head has ${head?.shape[0]} classes, the config ${config.numClasses}: pass an rng to replace it`,
    );
  }
  const pos = read('encoder.pos_embedding');
  const map = new Map<string, Tensor>();
  const keys = isFile(source) ? source.keys() : [...source.keys()];
  for (const k of keys) {
    if (k === 'encoder.pos_embedding' || replace.includes(k)) continue;
    const t = read(k);
    if (t) map.set(k, t);
  }
  if (pos) map.set('encoder.pos_embedding', interpolatePosEmbedding(pos, config.imageSize / config.patchSize, label));
  try {
    return loadState(specs, map, replace.length > 0 ? { replace, ...(options.rng ? { rng: options.rng } : {}) } : {});
  } catch (e) {
    // loadState names '<state>' for in-memory maps: put the file name back.
    if (e instanceof ModelFormatError && label !== '<state>') throw new ModelFormatError(label, e.message.replace(/^.*?: /, ''));
    throw e;
  }
}
