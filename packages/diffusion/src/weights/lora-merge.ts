/**
 * Merging LoRA weights into an exported ONNX model.
 *
 * The torch exporter names every node after the module it came from
 * (`/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul`), and constant-folds the
 * transpose of each `nn.Linear` weight, so a projection is `MatMul(x, Wᵀ)` whose second input is an
 * initializer of shape [in, out]. For each LoRA module we find that node and its initializer and add
 * `scale · (alpha / rank) · downᵀ · upᵀ` (= the transpose of `scale · alpha/rank · up · down`).
 * Also handled: `MatMul(x, Transpose(W))` (unfolded exports), `Gemm` (transB), and `Conv` weights
 * [out, in, kh, kw] (kohya LoRA on 1×1 / 3×3 convolutions, up [out, rank, 1, 1]).
 * float16 / bfloat16 weights are merged in float32 and rounded back once.
 */
import {
  bfloat16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  InvalidArgumentError,
  ModelFormatError,
  float16ToFloat32,
} from '@diffmix/core';
import { loadOnnxModel, nodeModulePath, type OnnxModel, type OnnxNode, type SerializedOnnxModel } from '@diffmix/onnx';
import { type LoraComponent, type LoraModule, type LoraWeights, loadLora } from './lora.js';

/** How a weight initializer is laid out. */
export type WeightLayout = 'in_out' | 'out_in' | 'conv';

/** A module of the exported model whose weight LoRA can adapt. */
export interface ModuleTarget {
  /** Module path as the node names carry it (`mid_block.attentions.0.transformer_blocks.0.attn1.to_q`). */
  module: string;
  /** The weight initializer. */
  weight: string;
  /** `in_out`: Wᵀ [in, out] read by MatMul; `out_in`: W [out, in] (Gemm transB=1, or MatMul after a Transpose); `conv`: [out, in, kh, kw]. */
  layout: WeightLayout;
  dims: number[];
  inFeatures: number;
  outFeatures: number;
  /** Nodes that read the initializer on behalf of this module (MatMul / Gemm / Conv, or the Transpose). */
  readers: string[];
}

/** Module paths of a model and the weights behind them. */
export interface ModuleIndex {
  /** By normalised module path (a leading `text_model.` removed, so transformers 4.x and 5.x names agree). */
  modules: Map<string, ModuleTarget>;
  /** Module paths whose nodes read more than one weight initializer (cannot be targeted). */
  ambiguous: Map<string, string[]>;
  /** kohya name ('.' → '_') → normalised module path. */
  flat: Map<string, string>;
  /** kohya names that several module paths flatten to. */
  ambiguousFlat: Map<string, string[]>;
}

/** Removes the `text_model.` wrapper transformers 4.x puts around CLIPTextModel's children. */
export function normalizeModulePath(path: string): string {
  return path.startsWith('text_model.') ? path.slice('text_model.'.length) : path;
}

function normalizeFlat(flat: string): string {
  return flat.startsWith('text_model_') ? flat.slice('text_model_'.length) : flat;
}

function weightOf(model: OnnxModel, node: OnnxNode): { weight: string; layout: WeightLayout; reader: string } | undefined {
  const b = node.inputs[1];
  if (b === undefined || b === '') return undefined;
  if (node.opType === 'Conv') {
    return model.hasInitializer(b) && model.initializerInfo(b).dims.length === 4
      ? { weight: b, layout: 'conv', reader: node.name }
      : undefined;
  }
  if (node.opType === 'Gemm') {
    if (!model.hasInitializer(b) || model.initializerInfo(b).dims.length !== 2) return undefined;
    return { weight: b, layout: node.attribute('transB') === 1 ? 'out_in' : 'in_out', reader: node.name };
  }
  if (node.opType !== 'MatMul') return undefined;
  if (model.hasInitializer(b)) {
    return model.initializerInfo(b).dims.length === 2 ? { weight: b, layout: 'in_out', reader: node.name } : undefined;
  }
  const t = model.producer(b);
  const src = t?.inputs[0];
  if (
    t?.opType === 'Transpose' &&
    src !== undefined &&
    model.hasInitializer(src) &&
    model.initializerInfo(src).dims.length === 2
  ) {
    const perm = t.attribute('perm');
    if (perm === undefined || (Array.isArray(perm) && perm[0] === 1 && perm[1] === 0))
      return { weight: src, layout: 'out_in', reader: t.name };
  }
  return undefined;
}

/** Indexes the MatMul / Gemm / Conv weights of a model by the module path in their node names. */
export function indexModules(model: OnnxModel): ModuleIndex {
  const modules = new Map<string, ModuleTarget>();
  const ambiguous = new Map<string, string[]>();
  for (const node of model.nodes) {
    if (node.opType !== 'MatMul' && node.opType !== 'Gemm' && node.opType !== 'Conv') continue;
    const path = nodeModulePath(node.name);
    if (path === undefined) continue;
    const w = weightOf(model, node);
    if (!w) continue;
    const key = normalizeModulePath(path);
    const seen = modules.get(key);
    if (seen) {
      if (seen.weight === w.weight) {
        if (!seen.readers.includes(w.reader)) seen.readers.push(w.reader);
      } else {
        ambiguous.set(key, [...(ambiguous.get(key) ?? [seen.weight]), w.weight]);
      }
      continue;
    }
    const dims = model.initializerInfo(w.weight).dims;
    const [d0, d1, kh = 1, kw = 1] = dims as [number, number, number?, number?];
    const inFeatures = w.layout === 'in_out' ? d0 : w.layout === 'out_in' ? d1 : d1 * kh * kw;
    const outFeatures = w.layout === 'in_out' ? d1 : d0;
    modules.set(key, { module: path, weight: w.weight, layout: w.layout, dims, inFeatures, outFeatures, readers: [w.reader] });
  }
  for (const key of ambiguous.keys()) modules.delete(key);
  const flat = new Map<string, string>();
  const ambiguousFlat = new Map<string, string[]>();
  for (const key of [...modules.keys(), ...ambiguous.keys()]) {
    const f = key.replace(/\./g, '_');
    const other = flat.get(f);
    if (other !== undefined) ambiguousFlat.set(f, [...(ambiguousFlat.get(f) ?? [other]), key]);
    else flat.set(f, key);
  }
  for (const f of ambiguousFlat.keys()) flat.delete(f);
  return { modules, ambiguous, flat, ambiguousFlat };
}

/** A LoRA with the user's weight (`scale`, default 1). */
export interface WeightedLora {
  lora: LoraWeights;
  scale?: number;
}

export interface MergeLoraOptions {
  /** Which component's keys to apply (default `unet`); keys of other components are skipped and reported. */
  component?: LoraComponent;
  /** Merge what matches and report the rest instead of failing on keys that match no module. */
  allowUnmatched?: boolean;
}

export interface MergeLoraReport {
  /** One entry per adapted module per LoRA. */
  merged: { source: string; module: string; weight: string; keys: string[]; scale: number }[];
  /** Keys that matched nothing (only when `allowUnmatched`), as `file: key`. */
  unmatched: string[];
  /** Keys for another component (e.g. text-encoder LoRA when merging into the UNet), as `file: key`. */
  skipped: string[];
}

interface PendingDelta {
  module: LoraModule;
  target: ModuleTarget;
  /** weight · alpha / rank */
  factor: number;
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

function listKeys(keys: string[], max = 20): string {
  return keys.length <= max ? keys.join(', ') : `${keys.slice(0, max).join(', ')}, … (${keys.length - max} more)`;
}

/** Adds one LoRA delta to a float32 copy of the weight, in its layout. */
function addDelta(w: Float32Array, target: ModuleTarget, m: LoraModule, factor: number): void {
  const down = m.down.data;
  const up = m.up.data;
  const r = m.down.shape[0] as number;
  const nIn = target.inFeatures;
  const nOut = target.outFeatures;
  if (target.layout === 'in_out') {
    // Wᵀ[i, o] += factor · Σ_k down[k, i] · up[o, k]
    const upT = new Float64Array(r * nOut);
    for (let o = 0; o < nOut; o++) for (let k = 0; k < r; k++) upT[k * nOut + o] = up[o * r + k] as number;
    const row = new Float64Array(nOut);
    for (let i = 0; i < nIn; i++) {
      row.fill(0);
      for (let k = 0; k < r; k++) {
        const d = down[k * nIn + i] as number;
        if (d === 0) continue;
        const base = k * nOut;
        for (let o = 0; o < nOut; o++) row[o] = (row[o] as number) + d * (upT[base + o] as number);
      }
      const wBase = i * nOut;
      for (let o = 0; o < nOut; o++) w[wBase + o] = (w[wBase + o] as number) + factor * (row[o] as number);
    }
  } else {
    // W[o, j] += factor · Σ_k up[o, k] · down[k, j]   (j runs over in · kh · kw for convolutions)
    const row = new Float64Array(nIn);
    for (let o = 0; o < nOut; o++) {
      row.fill(0);
      for (let k = 0; k < r; k++) {
        const u = up[o * r + k] as number;
        if (u === 0) continue;
        const base = k * nIn;
        for (let j = 0; j < nIn; j++) row[j] = (row[j] as number) + u * (down[base + j] as number);
      }
      const wBase = o * nIn;
      for (let j = 0; j < nIn; j++) w[wBase + j] = (w[wBase + j] as number) + factor * (row[j] as number);
    }
  }
}

function checkShapes(source: string, m: LoraModule, t: ModuleTarget): void {
  const r = m.down.shape[0] as number;
  const downInner = m.down.data.length / r;
  const upOut = m.up.shape[0] as number;
  const upTail = m.up.shape.slice(2).every((d) => d === 1);
  const convKernel = t.layout === 'conv' ? t.dims.slice(2) : [];
  const downOk =
    downInner === t.inFeatures && (t.layout !== 'conv' || m.down.shape.length === 2 || m.down.shape[1] === t.dims[1]);
  if (!downOk || upOut !== t.outFeatures || !upTail) {
    const kernel = convKernel.length > 0 && convKernel.some((k) => k !== 1) ? `, ${convKernel.join(', ')}` : '';
    const inDim = t.layout === 'conv' ? t.dims[1] : t.inFeatures;
    const layout = t.layout === 'in_out' ? 'Wᵀ [in, out]' : t.layout === 'out_in' ? 'W [out, in]' : 'W [out, in, kh, kw]';
    throw new ModelFormatError(
      source,
      `${m.down.key} / ${m.up.key}: shapes down ${shapeText(m.down.shape)}, up ${shapeText(m.up.shape)} do not fit module ${t.module} ` +
        `(ONNX initializer ${t.weight}, ${layout} = ${shapeText(t.dims)}): expected down [rank, ${inDim}${kernel}] and up [${t.outFeatures}, rank]`,
    );
  }
}

/**
 * Merges LoRAs into the model's weights in place (several LoRAs, each with its weight, add up).
 * Throws a {@link ModelFormatError} listing every key that matches no module (unless
 * `allowUnmatched`), or naming the key and both shapes when a matrix does not fit its weight.
 */
export function mergeLoras(
  model: OnnxModel,
  loras: readonly (LoraWeights | WeightedLora)[],
  options: MergeLoraOptions = {},
): MergeLoraReport {
  const component = options.component ?? 'unet';
  const index = indexModules(model);
  const report: MergeLoraReport = { merged: [], unmatched: [], skipped: [] };
  const pending = new Map<string, PendingDelta[]>();
  const unmatchedBySource = new Map<string, string[]>();
  const addUnmatched = (source: string, keys: string[]) => {
    if (keys.length === 0) return;
    unmatchedBySource.set(source, [...(unmatchedBySource.get(source) ?? []), ...keys]);
  };
  for (const entry of loras) {
    const { lora, scale = 1 } = 'lora' in entry ? entry : { lora: entry, scale: 1 };
    if (!Number.isFinite(scale))
      throw new InvalidArgumentError('scale', `LoRA weight for ${lora.source} must be a finite number, got ${scale}`);
    addUnmatched(lora.source, lora.unknownKeys);
    report.skipped.push(...lora.otherComponentKeys.map((k) => `${lora.source}: ${k}`));
    for (const m of lora.modules) {
      if (m.component !== component) {
        report.skipped.push(...m.keys.map((k) => `${lora.source}: ${k}`));
        continue;
      }
      let path: string | undefined;
      if (m.flat) {
        const f = normalizeFlat(m.module);
        const candidates = index.ambiguousFlat.get(f);
        if (candidates) {
          throw new ModelFormatError(
            lora.source,
            `kohya name ${m.module} (${m.down.key}) matches several modules: ${candidates.join(', ')}`,
          );
        }
        path = index.flat.get(f);
      } else {
        path = normalizeModulePath(m.module);
      }
      const weights = path !== undefined ? index.ambiguous.get(path) : undefined;
      if (weights)
        throw new ModelFormatError(
          lora.source,
          `module ${path} (${m.down.key}) reads several weights (${weights.join(', ')}): cannot merge`,
        );
      const target = path !== undefined ? index.modules.get(path) : undefined;
      if (!target) {
        addUnmatched(lora.source, m.keys);
        continue;
      }
      checkShapes(lora.source, m, target);
      const rank = m.down.shape[0] as number;
      const factor = (scale * (m.alpha ?? rank)) / rank;
      const list = pending.get(target.weight) ?? [];
      list.push({ module: m, target, factor });
      pending.set(target.weight, list);
      report.merged.push({ source: lora.source, module: target.module, weight: target.weight, keys: m.keys, scale: factor });
    }
  }
  if (unmatchedBySource.size > 0) {
    if (!options.allowUnmatched) {
      const [first] = unmatchedBySource.keys();
      const parts = [...unmatchedBySource].map(
        ([src, keys]) => `${unmatchedBySource.size > 1 ? `${src}: ` : ''}${listKeys(keys)}`,
      );
      const count = [...unmatchedBySource.values()].reduce((a, k) => a + k.length, 0);
      throw new ModelFormatError(
        first as string,
        `${count} LoRA key(s) match no ${component} module of ${model.source}: ${parts.join('; ')} (pass allowUnmatched to merge the rest)`,
      );
    }
    for (const [src, keys] of unmatchedBySource) report.unmatched.push(...keys.map((k) => `${src}: ${k}`));
  }
  for (const [weight, deltas] of pending) applyDeltas(model, weight, deltas);
  return report;
}

function applyDeltas(model: OnnxModel, weight: string, deltas: PendingDelta[]): void {
  const info = model.initializerInfo(weight);
  if (info.type !== 'float32' && info.type !== 'float16' && info.type !== 'bfloat16') {
    throw new ModelFormatError(model.source, `initializer ${weight} is ${info.type}; LoRA can only be merged into float weights`);
  }
  const raw = model.initializer(weight).data;
  // Always work on a copy: the data may be a view into the model file's bytes.
  const w =
    info.type === 'float32'
      ? Float32Array.from(raw as Float32Array)
      : info.type === 'float16'
        ? float16ToFloat32(raw as Uint16Array)
        : bfloat16ToFloat32(raw as Uint16Array);
  for (const d of deltas) addDelta(w, d.target, d.module, d.factor);
  const data = info.type === 'float32' ? w : info.type === 'float16' ? float32ToFloat16(w) : float32ToBfloat16(w);
  // Shared weight (read by nodes of other modules too, e.g. tied projections): give the adapted
  // module its own copy instead of changing the others.
  const readers = new Set(deltas.flatMap((d) => d.target.readers));
  const foreign = model.consumers(weight).filter((c) => !readers.has(c.node.name));
  if (foreign.length === 0) {
    model.setInitializer(weight, { data, dims: info.dims, type: info.type });
    return;
  }
  let name = `${weight}::lora`;
  for (let i = 1; model.hasInitializer(name); i++) name = `${weight}::lora${i}`;
  model.addInitializer(name, { data, dims: info.dims, type: info.type });
  for (const c of model.consumers(weight)) if (readers.has(c.node.name)) model.setNodeInput(c.node, c.index, name);
}

/** A LoRA given as a path, parsed weights, or either with a weight. */
export type LoraSpec = string | LoraWeights | { lora: string | LoraWeights; scale?: number };

async function resolveSpecs(loras: readonly LoraSpec[]): Promise<WeightedLora[]> {
  return Promise.all(
    loras.map(async (spec) => {
      if (typeof spec === 'string') return { lora: await loadLora(spec), scale: 1 };
      if ('modules' in spec) return { lora: spec, scale: 1 };
      const lora = typeof spec.lora === 'string' ? await loadLora(spec.lora) : spec.lora;
      return { lora, scale: spec.scale ?? 1 };
    }),
  );
}

/**
 * Loads `model.onnx` (any external-data layout), merges the LoRAs and returns the model bytes with
 * its weights as in-memory external data: the shape `StableDiffusion`'s `patch.unet` hook takes.
 */
export async function mergeLorasIntoOnnx(
  modelFile: string,
  loras: readonly LoraSpec[],
  options: MergeLoraOptions = {},
): Promise<SerializedOnnxModel & { report: MergeLoraReport }> {
  const model = await loadOnnxModel(modelFile);
  const report = mergeLoras(model, await resolveSpecs(loras), options);
  return { ...model.serialize(), report };
}
