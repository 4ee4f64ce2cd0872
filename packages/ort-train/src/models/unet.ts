/**
 * Stable Diffusion's denoiser, diffusers' `UNet2DConditionModel` (SD 1.x / 2.x layout), as a
 * {@link Graph} built from its diffusers `config.json` and a diffusers-keyed state dict
 * (`diffusion_pytorch_model.safetensors`) or fresh torch-default weights.
 *
 * The graph has the interface and the node scopes of the optimum / `torch.onnx.export` ONNX export
 * that the rest of diffmix reads: inputs `sample` [B, C, H, W], `timestep` float [B],
 * `encoder_hidden_states` [B, S, cross_attention_dim]; output `out_sample`; every Linear inside the
 * transformer blocks is `MatMul(x, Wᵀ)` on a node named `/<module path>/MatMul` (what LoRA insertion
 * and LoRA merging look for); Conv / Gemm / LayerNormalization nodes carry the diffusers weight names;
 * GroupNorm is the exporter's Reshape → InstanceNormalization → Reshape → Mul γ → Add β.
 *
 * Why build it rather than only load exports: a UNet of any size (SD 1.5's 860 M parameters, for the
 * GPU benchmark of LoRA fine-tuning) without Python, and diffusers weights used directly.
 *
 * Forward (as diffusers, `resnet_time_scale_shift: default`, no class / addition embeddings):
 *   t → sinusoidal(c₀) → linear_1 → SiLU → linear_2 = temb
 *   conv_in → down blocks [ResnetBlock2D (+ Transformer2DModel)] × L (+ stride-2 conv) → mid block
 *   (resnet, transformer, resnet) → up blocks [concat skip → ResnetBlock2D (+ Transformer2DModel)] × (L+1)
 *   (+ nearest ×2 and conv) → GroupNorm → SiLU → conv_out.
 * Latent height and width must be multiples of 2^(blocks − 1) (8 for SD: images in steps of 64 px);
 * diffusers handles other sizes with an explicit upsample size, which this graph does not.
 */
import { InvalidArgumentError, ModelFormatError, type Rng } from '@diffmix/core';
import { attr, type Dim, Graph } from '../graph/graph.js';
import { counterFill } from './counter.js';
import { initTensor, type Tensor, type TensorSpec } from './state.js';

export type UnetDownBlockType = 'CrossAttnDownBlock2D' | 'DownBlock2D';
export type UnetUpBlockType = 'CrossAttnUpBlock2D' | 'UpBlock2D';

/** The supported part of a diffusers `UNet2DConditionModel` config (camelCase). */
export interface UnetConfig {
  sampleSize: number;
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  downBlockTypes: UnetDownBlockType[];
  upBlockTypes: UnetUpBlockType[];
  crossAttentionDim: number;
  /**
   * Attention heads per down block (diffusers' `attention_head_dim`, which — a diffusers naming quirk —
   * is the number of heads for SD; or `num_attention_heads` when set).
   */
  attentionHeads: number[];
  normNumGroups: number;
  normEps: number;
  flipSinToCos: boolean;
  freqShift: number;
  downsamplePadding: number;
  midBlockScaleFactor: number;
  /** SD 2.x: proj_in / proj_out are Linear on the flattened tokens instead of 1×1 convolutions. */
  useLinearProjection: boolean;
}

/** `runwayml/stable-diffusion-v1-5`'s `unet/config.json` (the fields that matter), as diffusers writes it. */
export const SD15_UNET_DIFFUSERS_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  _class_name: 'UNet2DConditionModel',
  act_fn: 'silu',
  attention_head_dim: 8,
  block_out_channels: [320, 640, 1280, 1280],
  center_input_sample: false,
  cross_attention_dim: 768,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  out_channels: 4,
  sample_size: 64,
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
});

/**
 * Keys that must hold their default (absent, null or the value here) for the builder to be exact.
 * (`upcast_attention`, set by SD 2.1, is accepted: it computes attention in float32, which this float32
 * graph always does.)
 */
const REQUIRED_DEFAULTS: Record<string, unknown> = {
  act_fn: 'silu',
  center_input_sample: false,
  mid_block_type: 'UNetMidBlock2DCrossAttn',
  only_cross_attention: false,
  dual_cross_attention: false,
  resnet_time_scale_shift: 'default',
  resnet_skip_time_act: false,
  resnet_out_scale_factor: 1,
  time_embedding_type: 'positional',
  time_embedding_dim: null,
  time_embedding_act_fn: null,
  timestep_post_act: null,
  time_cond_proj_dim: null,
  class_embed_type: null,
  addition_embed_type: null,
  num_class_embeds: null,
  encoder_hid_dim: null,
  encoder_hid_dim_type: null,
  conv_in_kernel: 3,
  conv_out_kernel: 3,
  attention_type: 'default',
  cross_attention_norm: null,
  class_embeddings_concat: false,
  mid_block_only_cross_attention: null,
  reverse_transformer_layers_per_block: null,
};

/**
 * Reads a diffusers `UNet2DConditionModel` config. Anything this builder does not implement (class or
 * addition embeddings, scale-shift time conditioning, several transformer layers per block, …) is a
 * {@link ModelFormatError} naming the key, never silently ignored.
 */
export function unetConfigFromDiffusers(json: Readonly<Record<string, unknown>>, source = '<unet config>'): UnetConfig {
  const bad = (key: string, why: string) => new ModelFormatError(source, `${key}: ${why}`);
  for (const [key, dflt] of Object.entries(REQUIRED_DEFAULTS)) {
    const v = json[key];
    if (v === undefined || v === null || v === dflt) continue;
    throw bad(key, `${JSON.stringify(v)} is not supported (only ${JSON.stringify(dflt)})`);
  }
  const tl = json.transformer_layers_per_block;
  if (tl !== undefined && tl !== null && !(tl === 1 || (Array.isArray(tl) && tl.every((x) => x === 1))))
    throw bad('transformer_layers_per_block', `${JSON.stringify(tl)} is not supported (only 1)`);
  const int = (key: string, dflt?: number): number => {
    const v = json[key] ?? dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
      throw bad(key, `expected a non-negative integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (key: string, dflt: number): number => {
    const v = json[key] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(key, `expected a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string, dflt: boolean): boolean => {
    const v = json[key] ?? dflt;
    if (typeof v !== 'boolean') throw bad(key, `expected true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const ints = (key: string): number[] => {
    const v = json[key];
    if (!Array.isArray(v) || v.length === 0 || !v.every((x) => Number.isInteger(x) && x > 0))
      throw bad(key, `expected a list of positive integers, got ${JSON.stringify(v)}`);
    return v as number[];
  };
  const blockOutChannels = ints('block_out_channels');
  const n = blockOutChannels.length;
  const types = <T extends string>(key: string, allowed: readonly T[]): T[] => {
    const v = json[key];
    if (!Array.isArray(v) || v.length !== n)
      throw bad(key, `expected ${n} block types (one per block_out_channels entry), got ${JSON.stringify(v)}`);
    for (const t of v)
      if (!allowed.includes(t as T)) throw bad(key, `block type ${JSON.stringify(t)} is not supported (${allowed.join(', ')})`);
    return v as T[];
  };
  const downBlockTypes = types<UnetDownBlockType>('down_block_types', ['CrossAttnDownBlock2D', 'DownBlock2D']);
  const upBlockTypes = types<UnetUpBlockType>('up_block_types', ['CrossAttnUpBlock2D', 'UpBlock2D']);
  // diffusers: num_attention_heads = num_attention_heads or attention_head_dim (the historical misnomer).
  const headsRaw = json.num_attention_heads ?? json.attention_head_dim ?? 8;
  const attentionHeads = Array.isArray(headsRaw) ? (headsRaw as number[]) : Array.from({ length: n }, () => headsRaw as number);
  if (attentionHeads.length !== n || !attentionHeads.every((h) => Number.isInteger(h) && h > 0))
    throw bad('attention_head_dim', `expected a positive integer or ${n} of them, got ${JSON.stringify(headsRaw)}`);
  const crossAttentionDim = json.cross_attention_dim;
  if (typeof crossAttentionDim !== 'number' || !Number.isInteger(crossAttentionDim) || crossAttentionDim < 1)
    throw bad(
      'cross_attention_dim',
      `expected a positive integer (per-block lists are not supported), got ${JSON.stringify(crossAttentionDim)}`,
    );
  const config: UnetConfig = {
    sampleSize: int('sample_size', 64),
    inChannels: int('in_channels', 4),
    outChannels: int('out_channels', 4),
    blockOutChannels,
    layersPerBlock: int('layers_per_block', 2),
    downBlockTypes,
    upBlockTypes,
    crossAttentionDim,
    attentionHeads,
    normNumGroups: int('norm_num_groups', 32),
    normEps: num('norm_eps', 1e-5),
    flipSinToCos: bool('flip_sin_to_cos', true),
    freqShift: num('freq_shift', 0),
    downsamplePadding: int('downsample_padding', 1),
    midBlockScaleFactor: num('mid_block_scale_factor', 1),
    useLinearProjection: bool('use_linear_projection', false),
  };
  checkUnetConfig(config, source);
  return config;
}

/** SD 1.5's UNet (859,520,964 parameters). */
export const SD15_UNET: Readonly<UnetConfig> = Object.freeze(unetConfigFromDiffusers(SD15_UNET_DIFFUSERS_CONFIG, 'SD 1.5'));

function checkUnetConfig(c: UnetConfig, source: string): void {
  const bad = (why: string) => new ModelFormatError(source, why);
  const n = c.blockOutChannels.length;
  if (c.layersPerBlock < 1) throw bad(`layers_per_block must be ≥ 1, got ${c.layersPerBlock}`);
  for (const ch of c.blockOutChannels)
    if (ch % c.normNumGroups !== 0) throw bad(`block_out_channels ${ch} is not divisible by norm_num_groups ${c.normNumGroups}`);
  if ((c.blockOutChannels[0] as number) % 2 !== 0) throw bad('block_out_channels[0] (the timestep embedding width) must be even');
  c.blockOutChannels.forEach((ch, i) => {
    const heads = c.attentionHeads[i] as number;
    const used =
      c.downBlockTypes[i] === 'CrossAttnDownBlock2D' || c.upBlockTypes[n - 1 - i] === 'CrossAttnUpBlock2D' || i === n - 1;
    if (used && ch % heads !== 0) throw bad(`block ${i}: ${ch} channels are not divisible by ${heads} attention heads`);
  });
}

// ---------------------------------------------------------------- the module tree

/** A Linear (`[out, in]` weight) / Conv / norm of the tree, by module path. */
type Leaf =
  | { kind: 'conv'; path: string; cin: number; cout: number; k: number; bias: boolean }
  | { kind: 'linear'; path: string; cin: number; cout: number; bias: boolean }
  | { kind: 'norm'; path: string; ch: number };

interface ResnetDesc {
  path: string;
  cin: number;
  cout: number;
}
interface TransformerDesc {
  path: string;
  ch: number;
  heads: number;
}
interface DownDesc {
  path: string;
  resnets: ResnetDesc[];
  attentions: TransformerDesc[];
  downsample: { path: string; ch: number } | undefined;
}
interface UpDesc {
  path: string;
  resnets: ResnetDesc[];
  attentions: TransformerDesc[];
  upsample: { path: string; ch: number } | undefined;
}
interface UnetTree {
  down: DownDesc[];
  mid: { resnets: [ResnetDesc, ResnetDesc]; attention: TransformerDesc };
  up: UpDesc[];
}

/** The block structure with diffusers' channel bookkeeping. */
function unetTree(c: UnetConfig): UnetTree {
  const ch = c.blockOutChannels;
  const n = ch.length;
  const down: DownDesc[] = [];
  let outCh = ch[0] as number;
  for (let i = 0; i < n; i++) {
    const inCh = outCh;
    outCh = ch[i] as number;
    const path = `down_blocks.${i}`;
    const cross = c.downBlockTypes[i] === 'CrossAttnDownBlock2D';
    down.push({
      path,
      resnets: Array.from({ length: c.layersPerBlock }, (_, j) => ({
        path: `${path}.resnets.${j}`,
        cin: j === 0 ? inCh : outCh,
        cout: outCh,
      })),
      attentions: cross
        ? Array.from({ length: c.layersPerBlock }, (_, j) => ({
            path: `${path}.attentions.${j}`,
            ch: outCh,
            heads: c.attentionHeads[i] as number,
          }))
        : [],
      downsample: i < n - 1 ? { path: `${path}.downsamplers.0`, ch: outCh } : undefined,
    });
  }
  const last = ch[n - 1] as number;
  const mid = {
    resnets: [
      { path: 'mid_block.resnets.0', cin: last, cout: last },
      { path: 'mid_block.resnets.1', cin: last, cout: last },
    ] as [ResnetDesc, ResnetDesc],
    attention: { path: 'mid_block.attentions.0', ch: last, heads: c.attentionHeads[n - 1] as number },
  };
  const rev = [...ch].reverse();
  const revHeads = [...c.attentionHeads].reverse();
  const up: UpDesc[] = [];
  outCh = rev[0] as number;
  for (let i = 0; i < n; i++) {
    const prevOut = outCh;
    outCh = rev[i] as number;
    const inCh = rev[Math.min(i + 1, n - 1)] as number;
    const path = `up_blocks.${i}`;
    const layers = c.layersPerBlock + 1;
    const cross = c.upBlockTypes[i] === 'CrossAttnUpBlock2D';
    up.push({
      path,
      resnets: Array.from({ length: layers }, (_, j) => {
        const skip = j === layers - 1 ? inCh : outCh;
        const resIn = j === 0 ? prevOut : outCh;
        return { path: `${path}.resnets.${j}`, cin: resIn + skip, cout: outCh };
      }),
      attentions: cross
        ? Array.from({ length: layers }, (_, j) => ({ path: `${path}.attentions.${j}`, ch: outCh, heads: revHeads[i] as number }))
        : [],
      upsample: i < n - 1 ? { path: `${path}.upsamplers.0`, ch: outCh } : undefined,
    });
  }
  return { down, mid, up };
}

function resnetLeaves(r: ResnetDesc, temb: number): Leaf[] {
  const leaves: Leaf[] = [
    { kind: 'norm', path: `${r.path}.norm1`, ch: r.cin },
    { kind: 'conv', path: `${r.path}.conv1`, cin: r.cin, cout: r.cout, k: 3, bias: true },
    { kind: 'linear', path: `${r.path}.time_emb_proj`, cin: temb, cout: r.cout, bias: true },
    { kind: 'norm', path: `${r.path}.norm2`, ch: r.cout },
    { kind: 'conv', path: `${r.path}.conv2`, cin: r.cout, cout: r.cout, k: 3, bias: true },
  ];
  if (r.cin !== r.cout)
    leaves.push({ kind: 'conv', path: `${r.path}.conv_shortcut`, cin: r.cin, cout: r.cout, k: 1, bias: true });
  return leaves;
}

function transformerLeaves(t: TransformerDesc, c: UnetConfig): Leaf[] {
  const d = t.ch;
  const b = `${t.path}.transformer_blocks.0`;
  const proj = (path: string): Leaf =>
    c.useLinearProjection
      ? { kind: 'linear', path, cin: d, cout: d, bias: true }
      : { kind: 'conv', path, cin: d, cout: d, k: 1, bias: true };
  const attn = (name: string, kvIn: number): Leaf[] => [
    { kind: 'linear', path: `${b}.${name}.to_q`, cin: d, cout: d, bias: false },
    { kind: 'linear', path: `${b}.${name}.to_k`, cin: kvIn, cout: d, bias: false },
    { kind: 'linear', path: `${b}.${name}.to_v`, cin: kvIn, cout: d, bias: false },
    { kind: 'linear', path: `${b}.${name}.to_out.0`, cin: d, cout: d, bias: true },
  ];
  return [
    { kind: 'norm', path: `${t.path}.norm`, ch: d },
    proj(`${t.path}.proj_in`),
    { kind: 'norm', path: `${b}.norm1`, ch: d },
    ...attn('attn1', d),
    { kind: 'norm', path: `${b}.norm2`, ch: d },
    ...attn('attn2', c.crossAttentionDim),
    { kind: 'norm', path: `${b}.norm3`, ch: d },
    { kind: 'linear', path: `${b}.ff.net.0.proj`, cin: d, cout: 8 * d, bias: true },
    { kind: 'linear', path: `${b}.ff.net.2`, cin: 4 * d, cout: d, bias: true },
    proj(`${t.path}.proj_out`),
  ];
}

/** Every leaf module in diffusers' state_dict order. */
function unetLeaves(c: UnetConfig): Leaf[] {
  const tree = unetTree(c);
  const c0 = c.blockOutChannels[0] as number;
  const temb = 4 * c0;
  const leaves: Leaf[] = [
    { kind: 'conv', path: 'conv_in', cin: c.inChannels, cout: c0, k: 3, bias: true },
    { kind: 'linear', path: 'time_embedding.linear_1', cin: c0, cout: temb, bias: true },
    { kind: 'linear', path: 'time_embedding.linear_2', cin: temb, cout: temb, bias: true },
  ];
  for (const blk of tree.down) {
    for (const a of blk.attentions) leaves.push(...transformerLeaves(a, c));
    for (const r of blk.resnets) leaves.push(...resnetLeaves(r, temb));
    if (blk.downsample)
      leaves.push({
        kind: 'conv',
        path: `${blk.downsample.path}.conv`,
        cin: blk.downsample.ch,
        cout: blk.downsample.ch,
        k: 3,
        bias: true,
      });
  }
  for (const blk of tree.up) {
    for (const a of blk.attentions) leaves.push(...transformerLeaves(a, c));
    for (const r of blk.resnets) leaves.push(...resnetLeaves(r, temb));
    if (blk.upsample)
      leaves.push({
        kind: 'conv',
        path: `${blk.upsample.path}.conv`,
        cin: blk.upsample.ch,
        cout: blk.upsample.ch,
        k: 3,
        bias: true,
      });
  }
  leaves.push(...transformerLeaves(tree.mid.attention, c));
  for (const r of tree.mid.resnets) leaves.push(...resnetLeaves(r, temb));
  leaves.push(
    { kind: 'norm', path: 'conv_norm_out', ch: c0 },
    { kind: 'conv', path: 'conv_out', cin: c0, cout: c.outChannels, k: 3, bias: true },
  );
  return leaves;
}

/**
 * The tensors of the UNet (diffusers state_dict names and shapes) with torch's default init:
 * Conv / Linear weight and bias U(±1/√fan_in) (kaiming_uniform with a = √5), norms γ = 1, β = 0.
 */
export function unetSpecs(config: UnetConfig): TensorSpec[] {
  const specs: TensorSpec[] = [];
  const u = (fanIn: number) => ({ kind: 'uniform' as const, bound: 1 / Math.sqrt(fanIn) });
  for (const l of unetLeaves(config)) {
    if (l.kind === 'norm') {
      specs.push(
        { name: `${l.path}.weight`, shape: [l.ch], kind: 'param', init: { kind: 'constant', value: 1 } },
        { name: `${l.path}.bias`, shape: [l.ch], kind: 'param', init: { kind: 'constant', value: 0 } },
      );
      continue;
    }
    const fanIn = l.kind === 'conv' ? l.cin * l.k * l.k : l.cin;
    const shape = l.kind === 'conv' ? [l.cout, l.cin, l.k, l.k] : [l.cout, l.cin];
    specs.push({ name: `${l.path}.weight`, shape, kind: 'param', init: u(fanIn) });
    if (l.bias) specs.push({ name: `${l.path}.bias`, shape: [l.cout], kind: 'param', init: u(fanIn) });
  }
  return specs;
}

/** Parameter count of the UNet. */
export function unetParameterCount(config: UnetConfig): number {
  return unetSpecs(config).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
}

/**
 * The scope torch's exporter gives a module's nodes: its path with `/` between module names, where a
 * list index stays with its list (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0` →
 * `/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_out.0`).
 */
export function exportScope(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('.')) {
    if (/^\d+$/.test(part) && parts.length > 0) parts[parts.length - 1] += `.${part}`;
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

// ---------------------------------------------------------------- the graph

export interface BuildUnetOptions {
  /**
   * Weights by diffusers key (e.g. `loadState(unetSpecs(c), safetensorsFile)`). Without it, `rng` draws
   * torch-default weights (a random-weight model: for timing and tests).
   */
  state?: ReadonlyMap<string, Tensor>;
  rng?: Rng;
  /** Static or symbolic dims of the inputs (defaults `batch`, `height`, `width`, `sequence`, as the export). */
  batch?: Dim;
  height?: Dim;
  width?: Dim;
  sequence?: Dim;
}

export interface BuiltUnet {
  config: UnetConfig;
  graph: Graph;
  /** `sample`, `timestep`, `encoder_hidden_states`. */
  inputs: [string, string, string];
  output: string;
  parameterCount: number;
}

/** Builds the UNet forward graph (see the module comment). */
export function buildUnet(config: UnetConfig, options: BuildUnetOptions = {}): BuiltUnet {
  checkUnetConfig(config, '<unet config>');
  if (!options.state && !options.rng)
    throw new InvalidArgumentError('state', 'pass the weights (state) or an rng to draw random ones');
  // Each up block doubles the size and concatenates the matching skip: sizes must halve exactly on the way
  // down (diffusers then passes an explicit upsample size; this graph does not).
  const factor = 2 ** (config.blockOutChannels.length - 1);
  for (const [k, v] of [
    ['height', options.height],
    ['width', options.width],
  ] as const)
    if (typeof v === 'number' && v % factor !== 0)
      throw new InvalidArgumentError(k, `latent ${k} ${v} is not a multiple of ${factor} (2^(blocks − 1))`);
  const specs = new Map(unetSpecs(config).map((s) => [s.name, s]));
  const g = new Graph('unet');
  const c = config;
  const sample = g.addInput('sample', 'float32', [
    options.batch ?? 'batch',
    c.inChannels,
    options.height ?? 'height',
    options.width ?? 'width',
  ]);
  const timestep = g.addInput('timestep', 'float32', [options.batch ?? 'batch']);
  const ehs = g.addInput('encoder_hidden_states', 'float32', [
    options.batch ?? 'batch',
    options.sequence ?? 'sequence',
    c.crossAttentionDim,
  ]);
  const parameterCount = [...specs.values()].reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);

  /** The tensor of a diffusers key: from `state` (shape-checked) or freshly drawn. */
  const tensor = (key: string): Tensor => {
    const spec = specs.get(key);
    if (!spec) throw new Error(`internal: no spec for ${key}`);
    if (options.state) {
      const t = options.state.get(key);
      if (!t) throw new ModelFormatError('<unet state>', `missing tensor ${JSON.stringify(key)}`);
      if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i]))
        throw new ModelFormatError(
          '<unet state>',
          `tensor ${JSON.stringify(key)} has shape [${t.shape.join(', ')}], the config expects [${spec.shape.join(', ')}]`,
        );
      return t;
    }
    // torch-default init, one counter-generator seed per tensor (drawn from the tensor's child Rng):
    // SD 1.5's 860 M values in seconds rather than the minute Rng's per-value path takes.
    const init = spec.init;
    if (init.kind !== 'uniform') return initTensor(spec, (options.rng as Rng).split(key));
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const seed = (options.rng as Rng).split(key).nextUint32();
    return { shape: [...spec.shape], data: counterFill(seed, n, -init.bound, init.bound) };
  };
  const weight = (key: string) => {
    const t = tensor(key);
    return g.addInitializer(key, { type: 'float32', data: t.data, dims: t.shape });
  };
  /** The exporter's layout of a MatMul Linear: Wᵀ [in, out]. */
  const weightT = (key: string) => {
    const t = tensor(key);
    const [out, inF] = t.shape as [number, number];
    const wt = new Float32Array(out * inF);
    for (let o = 0; o < out; o++) for (let i = 0; i < inF; i++) wt[i * out + o] = t.data[o * inF + i] as number;
    return g.addInitializer(`${key}_transposed`, { type: 'float32', data: wt, dims: [inF, out] });
  };

  // Nodes are named `/<module path with '/'>/<Op>` like torch's exporter, outputs after the node name.
  const op = (type: string, inputs: string[], scope: string, attrs: Parameters<Graph['node']>[2] = {}) => {
    const name = g.uniqueName(`${scope}/${type}`);
    return g.node(type, inputs, attrs, { name, output: g.uniqueName(`${name}_output_0`) });
  };
  const i64 = (v: number[]) => g.int64s(v);

  const silu = (x: string, scope: string) => op('Mul', [x, op('Sigmoid', [x], scope)], scope);
  const conv = (x: string, path: string, k: number, stride = 1, pads = Array(4).fill((k - 1) / 2) as number[]) =>
    op('Conv', [x, weight(`${path}.weight`), weight(`${path}.bias`)], exportScope(path), {
      kernel_shape: [k, k],
      strides: [stride, stride],
      pads,
      dilations: [1, 1],
      group: 1,
    });
  const gemm = (x: string, path: string) =>
    op('Gemm', [x, weight(`${path}.weight`), weight(`${path}.bias`)], exportScope(path), {
      transB: 1,
      alpha: attr.f(1),
      beta: attr.f(1),
    });
  const linear = (x: string, path: string, bias: boolean) => {
    const s = exportScope(path);
    const y = op('MatMul', [x, weightT(`${path}.weight`)], s);
    return bias ? op('Add', [weight(`${path}.bias`), y], s) : y;
  };
  const ones = new Map<number, [string, string]>();
  /** torch GroupNorm as exported: [B, C, …] → [B, G, −1] → InstanceNorm → back → ·γ + β (γ, β as [C, 1, 1]). */
  const groupNorm = (x: string, path: string, eps: number) => {
    const s = exportScope(path);
    const G = c.normNumGroups;
    if (!ones.has(G))
      ones.set(G, [
        g.constant({ type: 'float32', dims: [G], data: new Float32Array(G).fill(1) }, 'gn_ones'),
        g.constant({ type: 'float32', dims: [G], data: new Float32Array(G) }, 'gn_zeros'),
      ]);
    const [one, zero] = ones.get(G) as [string, string];
    const grouped = op('Reshape', [x, i64([0, G, -1])], s);
    const normed = op('InstanceNormalization', [grouped, one, zero], s, { epsilon: attr.f(eps) });
    const back = op('Reshape', [normed, op('Shape', [x], s)], s);
    const gamma = tensor(`${path}.weight`);
    const beta = tensor(`${path}.bias`);
    const ch = gamma.data.length;
    const ga = g.addInitializer(`${path}.weight`, { type: 'float32', data: gamma.data, dims: [ch, 1, 1] });
    const be = g.addInitializer(`${path}.bias`, { type: 'float32', data: beta.data, dims: [ch, 1, 1] });
    return op('Add', [op('Mul', [back, ga], s), be], s);
  };
  const layerNorm = (x: string, path: string) =>
    op('LayerNormalization', [x, weight(`${path}.weight`), weight(`${path}.bias`)], exportScope(path), {
      axis: -1,
      epsilon: attr.f(1e-5),
    });

  // Timestep embedding: sinusoidal features, then the two-layer MLP.
  const c0 = c.blockOutChannels[0] as number;
  const half = c0 / 2;
  const freqs = new Float32Array(half);
  for (let i = 0; i < half; i++) freqs[i] = Math.exp((-Math.log(10000) * i) / (half - c.freqShift));
  const tArg = op(
    'Mul',
    [
      op('Unsqueeze', [timestep, i64([1])], '/time_proj'),
      g.constant({ type: 'float32', dims: [1, half], data: freqs }, 'time_proj_freqs'),
    ],
    '/time_proj',
  );
  const sin = op('Sin', [tArg], '/time_proj');
  const cos = op('Cos', [tArg], '/time_proj');
  const tFeat = op('Concat', c.flipSinToCos ? [cos, sin] : [sin, cos], '/time_proj', { axis: -1 });
  const temb = gemm(silu(gemm(tFeat, 'time_embedding.linear_1'), '/time_embedding/act'), 'time_embedding.linear_2');

  const resnet = (x: string, r: ResnetDesc, outScale: number) => {
    const s = exportScope(r.path);
    let h = conv(silu(groupNorm(x, `${r.path}.norm1`, c.normEps), `${s}/nonlinearity`), `${r.path}.conv1`, 3);
    const t = gemm(silu(temb, `${s}/nonlinearity_1`), `${r.path}.time_emb_proj`);
    h = op('Add', [h, op('Unsqueeze', [t, i64([2, 3])], s)], s);
    h = conv(silu(groupNorm(h, `${r.path}.norm2`, c.normEps), `${s}/nonlinearity_2`), `${r.path}.conv2`, 3);
    const shortcut = r.cin !== r.cout ? conv(x, `${r.path}.conv_shortcut`, 1) : x;
    const sum = op('Add', [shortcut, h], s);
    return outScale === 1 ? sum : op('Div', [sum, g.scalar(outScale)], s);
  };

  const attention = (x: string, context: string, path: string, d: number, heads: number) => {
    const s = exportScope(path);
    const dh = d / heads;
    const q = linear(x, `${path}.to_q`, false);
    const k = linear(context, `${path}.to_k`, false);
    const v = linear(context, `${path}.to_v`, false);
    const split = (y: string, perm: number[]) => op('Transpose', [op('Reshape', [y, i64([0, -1, heads, dh])], s)], s, { perm });
    const qh = op('Mul', [split(q, [0, 2, 1, 3]), g.scalar(1 / Math.sqrt(dh))], s);
    const probs = op('Softmax', [op('MatMul', [qh, split(k, [0, 2, 3, 1])], s)], s, { axis: -1 });
    const ctx = op('MatMul', [probs, split(v, [0, 2, 1, 3])], s);
    const merged = op('Reshape', [op('Transpose', [ctx], s, { perm: [0, 2, 1, 3] }), i64([0, -1, d])], s);
    return linear(merged, `${path}.to_out.0`, true);
  };

  const transformer = (x: string, t: TransformerDesc) => {
    const s = exportScope(t.path);
    const d = t.ch;
    const b = `${t.path}.transformer_blocks.0`;
    const bs = exportScope(b);
    let h = groupNorm(x, `${t.path}.norm`, 1e-6);
    if (!c.useLinearProjection) h = conv(h, `${t.path}.proj_in`, 1);
    const nhwc = op('Transpose', [h], s, { perm: [0, 2, 3, 1] });
    h = op('Reshape', [nhwc, i64([0, -1, d])], s);
    if (c.useLinearProjection) h = linear(h, `${t.path}.proj_in`, true);
    const n1 = layerNorm(h, `${b}.norm1`);
    h = op('Add', [attention(n1, n1, `${b}.attn1`, d, t.heads), h], bs);
    h = op('Add', [attention(layerNorm(h, `${b}.norm2`), ehs, `${b}.attn2`, d, t.heads), h], bs);
    // GEGLU feed-forward: proj to 2·4d, hidden · gelu(gate) with the exact (erf) GELU.
    const ffs = `${bs}/ff/net.0`;
    const proj = linear(layerNorm(h, `${b}.norm3`), `${b}.ff.net.0.proj`, true);
    const [hidden, gate] = g.nodeN(
      'Split',
      [proj, i64([4 * d, 4 * d])],
      2,
      { axis: -1 },
      { name: g.uniqueName(`${ffs}/Split`) },
    ) as [string, string];
    const erf = op('Erf', [op('Mul', [gate, g.scalar(Math.SQRT1_2)], ffs)], ffs);
    const gelu = op('Mul', [op('Mul', [gate, g.scalar(0.5)], ffs), op('Add', [erf, g.scalar(1)], ffs)], ffs);
    h = op('Add', [linear(op('Mul', [hidden, gelu], ffs), `${b}.ff.net.2`, true), h], bs);
    if (c.useLinearProjection) h = linear(h, `${t.path}.proj_out`, true);
    // Back to NCHW with the input's spatial size.
    h = op('Transpose', [op('Reshape', [h, op('Shape', [nhwc], s)], s)], s, { perm: [0, 3, 1, 2] });
    if (!c.useLinearProjection) h = conv(h, `${t.path}.proj_out`, 1);
    return op('Add', [h, x], s);
  };

  const tree = unetTree(c);
  let h = conv(sample, 'conv_in', 3);
  const skips: string[] = [h];
  for (const blk of tree.down) {
    blk.resnets.forEach((r, j) => {
      h = resnet(h, r, 1);
      const a = blk.attentions[j];
      if (a) h = transformer(h, a);
      skips.push(h);
    });
    if (blk.downsample) {
      // diffusers' Downsample2D pads (0, 1, 0, 1) — bottom and right only — when downsample_padding is 0.
      const p = c.downsamplePadding;
      h = conv(h, `${blk.downsample.path}.conv`, 3, 2, p === 0 ? [0, 0, 1, 1] : [p, p, p, p]);
      skips.push(h);
    }
  }
  h = resnet(h, tree.mid.resnets[0], c.midBlockScaleFactor);
  h = transformer(h, tree.mid.attention);
  h = resnet(h, tree.mid.resnets[1], c.midBlockScaleFactor);
  for (const blk of tree.up) {
    blk.resnets.forEach((r, j) => {
      const skip = skips.pop();
      if (!skip) throw new Error('internal: skip connections exhausted');
      h = resnet(op('Concat', [h, skip], exportScope(blk.path), { axis: 1 }), r, 1);
      const a = blk.attentions[j];
      if (a) h = transformer(h, a);
    });
    if (blk.upsample) {
      const s = exportScope(blk.upsample.path);
      const scales = g.constant({ type: 'float32', dims: [4], data: Float32Array.of(1, 1, 2, 2) }, 'upsample_scales');
      h = op('Resize', [h, '', scales], s, {
        mode: 'nearest',
        coordinate_transformation_mode: 'asymmetric',
        nearest_mode: 'floor',
      });
      h = conv(h, `${blk.upsample.path}.conv`, 3);
    }
  }
  h = silu(groupNorm(h, 'conv_norm_out', c.normEps), '/conv_act');
  h = conv(h, 'conv_out', 3);
  g.node('Identity', [h], {}, { name: '/out_sample/Identity', output: 'out_sample' });
  g.addOutput('out_sample', 'float32', [
    options.batch ?? 'batch',
    c.outChannels,
    options.height ?? 'height',
    options.width ?? 'width',
  ]);
  return { config: { ...config }, graph: g, inputs: [sample, timestep, ehs], output: 'out_sample', parameterCount };
}

// ---------------------------------------------------------------- reading an export back

/**
 * The diffusers-keyed weights of an exported UNet graph (optimum / `torch.onnx.export` of
 * `UNet2DConditionModel`, or {@link buildUnet}'s own), found through the exporter's node scopes:
 * Conv / Gemm / LayerNormalization inputs, `MatMul(x, Wᵀ)` (transposed back) and the `Add` of its bias,
 * and GroupNorm's γ / β as the `Mul` / `Add` after InstanceNormalization. For turning a fine-tuned or
 * exported graph back into `diffusion_pytorch_model.safetensors`, and for checking {@link buildUnet}
 * against an export. A tensor that cannot be found, or has the wrong size, is a {@link ModelFormatError}.
 */
export function unetStateFromGraph(graph: Graph, config: UnetConfig, source = '<unet graph>'): Map<string, Tensor> {
  const producers = graph.producers();
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const constant = (value: string): Float32Array | undefined => {
    let v = value;
    for (let guard = 0; guard < 8; guard++) {
      const t = graph.initializers.get(v);
      if (t) return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as ArrayLike<number>);
      const p = producers.get(v);
      if (p?.opType === 'Identity') v = p.inputs[0] as string;
      else if (p?.opType === 'Constant' && p.attrs.value?.kind === 't')
        return Float32Array.from(p.attrs.value.v.data as ArrayLike<number>);
      else return undefined;
    }
    return undefined;
  };
  const nodeAt = (path: string, type: string) => {
    const n = byName.get(`${exportScope(path)}/${type}`);
    if (!n) throw new ModelFormatError(source, `no ${type} node ${exportScope(path)}/${type} for ${path}`);
    return n;
  };
  const take = (key: string, value: string | undefined, shape: number[]): Tensor => {
    const data = value === undefined ? undefined : constant(value);
    const n = shape.reduce((a, b) => a * b, 1);
    if (!data) throw new ModelFormatError(source, `${key}: the graph has no constant for it (value ${JSON.stringify(value)})`);
    if (data.length !== n)
      throw new ModelFormatError(source, `${key}: ${data.length} values, the config expects [${shape.join(', ')}]`);
    return { shape, data: Float32Array.from(data) };
  };
  const constInput = (node: { inputs: string[] }) => node.inputs.find((i) => constant(i) !== undefined);
  const out = new Map<string, Tensor>();
  for (const leaf of unetLeaves(config)) {
    const { path } = leaf;
    if (leaf.kind === 'conv') {
      const conv = nodeAt(path, 'Conv');
      out.set(`${path}.weight`, take(`${path}.weight`, conv.inputs[1], [leaf.cout, leaf.cin, leaf.k, leaf.k]));
      out.set(`${path}.bias`, take(`${path}.bias`, conv.inputs[2], [leaf.cout]));
    } else if (leaf.kind === 'norm' && path.includes('.transformer_blocks.')) {
      const ln = nodeAt(path, 'LayerNormalization');
      out.set(`${path}.weight`, take(`${path}.weight`, ln.inputs[1], [leaf.ch]));
      out.set(`${path}.bias`, take(`${path}.bias`, ln.inputs[2], [leaf.ch]));
    } else if (leaf.kind === 'norm') {
      // GroupNorm: γ and β are the constant operands of the Mul / Add after the InstanceNormalization.
      out.set(`${path}.weight`, take(`${path}.weight`, constInput(nodeAt(path, 'Mul')), [leaf.ch]));
      out.set(`${path}.bias`, take(`${path}.bias`, constInput(nodeAt(path, 'Add')), [leaf.ch]));
    } else if (byName.has(`${exportScope(path)}/Gemm`)) {
      const gemm = nodeAt(path, 'Gemm');
      const transB = gemm.attrs.transB?.kind === 'i' && gemm.attrs.transB.v === 1;
      const w = take(`${path}.weight`, gemm.inputs[1], transB ? [leaf.cout, leaf.cin] : [leaf.cin, leaf.cout]);
      out.set(`${path}.weight`, transB ? w : transpose2d(w));
      if (leaf.bias) out.set(`${path}.bias`, take(`${path}.bias`, gemm.inputs[2], [leaf.cout]));
    } else {
      const mm = nodeAt(path, 'MatMul');
      out.set(`${path}.weight`, transpose2d(take(`${path}.weight`, mm.inputs[1], [leaf.cin, leaf.cout])));
      if (leaf.bias) {
        const add = nodeAt(path, 'Add');
        out.set(
          `${path}.bias`,
          take(
            `${path}.bias`,
            add.inputs.find((i) => i !== mm.outputs[0]),
            [leaf.cout],
          ),
        );
      }
    }
  }
  return out;
}

function transpose2d(t: Tensor): Tensor {
  const [r, c] = t.shape as [number, number];
  const data = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) data[j * r + i] = t.data[i * c + j] as number;
  return { shape: [c, r], data };
}
