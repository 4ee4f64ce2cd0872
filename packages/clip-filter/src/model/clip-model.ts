/**
 * CLIP on ONNX Runtime, in the two layouts exporters produce:
 *
 * - **separate graphs** `text_model.onnx` + `vision_model.onnx` (transformers.js / optimum's
 *   `CLIPTextModelWithProjection` + `CLIPVisionModelWithProjection`): `input_ids` (+ `attention_mask`,
 *   `position_ids` when the graph has them) → `text_embeds`; `pixel_values` → `image_embeds`, both
 *   projected and **not** normalised. Searched in the folder and its `onnx/` subfolder;
 * - **one graph** `model.onnx` (optimum's `CLIPModel` export): `input_ids`, `pixel_values`
 *   (+ `attention_mask`) → `logits_per_image` [images, texts], with the logit scale inside.
 *
 * Input names, element types (int64 / int32 ids, float32 / float16 pixels) and static shapes are
 * read from the sessions, never assumed. A graph exported without its projection (a `CLIPTextModel`
 * / `CLIPVisionModel` export: `pooler_output`, no `*_embeds`) gets the projection from a safetensors
 * file (`text_projection.weight` / `visual_projection.weight`; `projections` option, or
 * `model.safetensors` beside the graphs); without one it is refused with a message saying so. A graph
 * with only `last_hidden_state` is refused (pooling the vision side needs `post_layernorm`).
 */
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  float16ToFloat32,
  float32ToFloat16,
  InvalidArgumentError,
  type Logger,
  ModelFormatError,
  NotFoundError,
  readSafetensors,
  silentLogger,
} from '@diffmix/core';
import {
  type ClipTokenizer,
  type Device,
  describeSession,
  loadClipTokenizer,
  openSession,
  type SessionConfig,
  type TensorSpec,
} from '@diffmix/diffusion';
import * as ort from 'onnxruntime-node';
import { CLIP_DEFAULT_PREPROCESSOR, type ClipPreprocessorConfig, readPreprocessorConfig } from '../preprocess/config.js';
import { type ResolvedLogitScale, resolveLogitScale } from './logit-scale.js';

export type ClipModelFiles = { kind: 'dual'; text: string; vision: string } | { kind: 'single'; model: string };

/** Rows of vectors: `data[row * dim + j]`. */
export interface Embeddings {
  data: Float32Array;
  rows: number;
  dim: number;
}

export type TextPadding = 'longest' | 'max_length';

export interface LoadClipModelOptions {
  /** Execution provider (default 'cpu'); see `@diffmix/diffusion`'s `openSession`. */
  device?: Device;
  /** ORT session settings (threads, graph optimisation, free-dimension overrides). */
  session?: Omit<SessionConfig, 'device' | 'logger'>;
  /** The logit-scale multiplier; overrides logit_scale.json / config.json (see `resolveLogitScale`). */
  logitScale?: number;
  /** Explicit graph files instead of searching `dir` (paths relative to `dir` or absolute). */
  files?: { text: string; vision: string } | { model: string };
  /**
   * Safetensors file with `text_projection.weight` / `visual_projection.weight` (transformers'
   * names, a prefix allowed), for graphs exported without their projection (`pooler_output` only).
   * Default: `model.safetensors` beside the graphs, when one of them needs it.
   */
  projections?: string;
  /** Tokenizer folder (default: `dir/tokenizer` when it exists, else `dir`). */
  tokenizerDir?: string;
  logger?: Logger;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** Finds the graphs of a CLIP folder (see module doc). */
export async function findClipModelFiles(dir: string, files?: LoadClipModelOptions['files']): Promise<ClipModelFiles> {
  const at = (f: string) => path.resolve(dir, f);
  if (files) {
    const list = 'model' in files ? [at(files.model)] : [at(files.text), at(files.vision)];
    for (const f of list) if (!(await exists(f))) throw new NotFoundError(f, 'ONNX model file');
    return 'model' in files
      ? { kind: 'single', model: at(files.model) }
      : { kind: 'dual', text: at(files.text), vision: at(files.vision) };
  }
  for (const sub of ['', 'onnx']) {
    const text = at(path.join(sub, 'text_model.onnx'));
    const vision = at(path.join(sub, 'vision_model.onnx'));
    const hasText = await exists(text);
    const hasVision = await exists(vision);
    if (hasText && hasVision) return { kind: 'dual', text, vision };
    if (hasText !== hasVision) {
      throw new NotFoundError(hasText ? vision : text, `${hasText ? 'vision' : 'text'} graph (the other CLIP graph is there)`);
    }
    const single = at(path.join(sub, 'model.onnx'));
    if (await exists(single)) return { kind: 'single', model: single };
  }
  throw new NotFoundError(
    dir,
    'CLIP ONNX model (text_model.onnx + vision_model.onnx, or model.onnx with logits_per_image, in the folder or its onnx/ subfolder)',
  );
}

function base(file: string): string {
  return path.basename(file);
}

/** A static dimension, or undefined when symbolic / unknown. */
function staticDim(spec: TensorSpec | undefined, i: number): number | undefined {
  const d = spec?.shape[i];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

function intTensor(type: string, rows: readonly (readonly number[])[], file: string, name: string): ort.Tensor {
  const n = rows.length;
  const len = rows[0]?.length ?? 0;
  const dims = [n, len];
  if (type === 'int64') {
    const data = new BigInt64Array(n * len);
    for (let i = 0; i < n; i++) {
      const r = rows[i] as readonly number[];
      for (let j = 0; j < len; j++) data[i * len + j] = BigInt(r[j] as number);
    }
    return new ort.Tensor('int64', data, dims);
  }
  if (type === 'int32') {
    const data = new Int32Array(n * len);
    for (let i = 0; i < n; i++) data.set(rows[i] as readonly number[], i * len);
    return new ort.Tensor('int32', data, dims);
  }
  throw new ModelFormatError(file, `input ${name} has element type ${type}; expected int64 or int32`);
}

function floatTensor(type: string, data: Float32Array, dims: number[], file: string, name: string): ort.Tensor {
  if (type === 'float32') return new ort.Tensor('float32', data, dims);
  if (type === 'float16') return new ort.Tensor('float16', float32ToFloat16(data), dims);
  throw new ModelFormatError(file, `input ${name} has element type ${type}; expected float32 or float16`);
}

function toFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return float16ToFloat32(t.data as Uint16Array);
  if (t.type === 'float64') return Float32Array.from(t.data as Float64Array);
  throw new Error(`unexpected output element type ${t.type}`);
}

const UNPROJECTED = ['last_hidden_state', 'pooler_output'];

/** A projection matrix `[out, in]` (torch `nn.Linear` layout), from a safetensors file. */
export interface Projection {
  weight: Float32Array;
  out: number;
  in: number;
  /** `file: key`, for messages. */
  source: string;
}

interface EmbedsOutput {
  spec: TensorSpec;
  /** The output is `pooler_output`: multiply by this projection. */
  projection?: Projection;
}

/**
 * The output holding projected embeddings: `preferred`, else the only 2-D output not named like an
 * unprojected one; `undefined` when the graph has `pooler_output` but no projected output (it then
 * needs projection weights).
 */
function pickEmbedsOutput(outputs: TensorSpec[], preferred: string, file: string): TensorSpec | undefined {
  const exact = outputs.find((o) => o.name === preferred);
  if (exact) return exact;
  const candidates = outputs.filter((o) => o.shape.length === 2 && !UNPROJECTED.includes(o.name));
  if (candidates.length === 1) return candidates[0] as TensorSpec;
  if (outputs.some((o) => o.name === 'pooler_output')) return undefined;
  const names = outputs.map((o) => `${o.name} [${o.shape.join(', ')}]`).join(', ');
  if (outputs.some((o) => UNPROJECTED.includes(o.name))) {
    throw new ModelFormatError(
      file,
      `outputs ${names} but neither ${preferred} nor pooler_output: cannot pool and project last_hidden_state here. ` +
        'Export the …WithProjection classes (optimum / transformers.js do), or the full CLIPModel as one model.onnx',
    );
  }
  throw new ModelFormatError(file, `cannot tell which output holds the embeddings (outputs: ${names}); expected ${preferred}`);
}

function unprojectedError(
  file: string,
  outputs: TensorSpec[],
  preferred: string,
  modelClass: string,
  key: string,
): ModelFormatError {
  const names = outputs.map((o) => `${o.name} [${o.shape.join(', ')}]`).join(', ');
  return new ModelFormatError(
    file,
    `outputs ${names} but no ${preferred}: this is an export without the projection layer, whose weights are not in the graph. ` +
      `Export ${modelClass} (optimum / transformers.js do), the full CLIPModel as one model.onnx, or give the weights: ` +
      `projections: 'model.safetensors' holding ${key} (also found automatically as model.safetensors beside the graphs)`,
  );
}

/** Reads one projection matrix; the key may carry a prefix (`clip.text_projection.weight`). */
async function loadProjection(file: string, key: string): Promise<Projection> {
  let st: Awaited<ReturnType<typeof readSafetensors>>;
  try {
    st = await readSafetensors(file);
  } catch (cause) {
    if (NotFoundError.isInstance(cause) || ModelFormatError.isInstance(cause)) throw cause;
    throw new ModelFormatError(file, `cannot read projection weights (${(cause as Error).message})`, { cause });
  }
  const name = st.has(key) ? key : st.keys().find((k) => k.endsWith(`.${key}`));
  if (!name) throw new ModelFormatError(file, `has no ${key} (the CLIP projection the graph lacks)`);
  const t = st.float32(name, { copy: true });
  if (t.shape.length !== 2)
    throw new ModelFormatError(file, `${name} has shape [${t.shape.join(', ')}]; expected [projection_dim, hidden]`);
  return { weight: t.data, out: t.shape[0] as number, in: t.shape[1] as number, source: `${path.basename(file)}: ${name}` };
}

/** `x · Wᵀ` for rows of `x` (float64 accumulation). */
function project(e: Embeddings, p: Projection, file: string): Embeddings {
  if (e.dim !== p.in) {
    throw new ModelFormatError(
      file,
      `pooler_output has ${e.dim} dims but ${p.source} expects ${p.in} (projection [${p.out}, ${p.in}])`,
    );
  }
  const out = new Float32Array(e.rows * p.out);
  for (let r = 0; r < e.rows; r++) {
    for (let o = 0; o < p.out; o++) {
      let s = 0;
      for (let i = 0; i < p.in; i++) s += (e.data[r * p.in + i] as number) * (p.weight[o * p.in + i] as number);
      out[r * p.out + o] = s;
    }
  }
  return { data: out, rows: e.rows, dim: p.out };
}

interface TextGraph {
  session: ort.InferenceSession;
  file: string;
  ids: TensorSpec;
  mask: TensorSpec | undefined;
  positions: TensorSpec | undefined;
}

function textInputs(io: ReturnType<typeof describeSession>, file: string): Omit<TextGraph, 'session' | 'file'> {
  const ids = io.inputs.find((i) => i.name === 'input_ids');
  if (!ids) throw new ModelFormatError(file, `has no input_ids input (inputs: ${io.inputs.map((i) => i.name).join(', ')})`);
  return {
    ids,
    mask: io.inputs.find((i) => i.name === 'attention_mask'),
    positions: io.inputs.find((i) => i.name === 'position_ids'),
  };
}

export class ClipModel {
  readonly kind: 'dual' | 'single';
  readonly dir: string;
  readonly files: ClipModelFiles;
  readonly tokenizer: ClipTokenizer;
  readonly preprocessorConfig: ClipPreprocessorConfig;
  /** Logit-scale multiplier for separate graphs; `source: 'graph'` for a single graph (inside it). */
  readonly logitScale: ResolvedLogitScale;
  readonly device: Exclude<Device, 'auto'>;
  private readonly log: Logger;
  private readonly text: TextGraph | undefined;
  private readonly vision: { session: ort.InferenceSession; file: string; pixels: TensorSpec; embeds: EmbedsOutput } | undefined;
  private readonly textEmbeds: EmbedsOutput | undefined;
  private readonly single: { session: ort.InferenceSession; file: string; pixels: TensorSpec } | undefined;
  private dims: { text?: number; image?: number } = {};

  private constructor(init: {
    dir: string;
    files: ClipModelFiles;
    tokenizer: ClipTokenizer;
    preprocessorConfig: ClipPreprocessorConfig;
    logitScale: ResolvedLogitScale;
    device: Exclude<Device, 'auto'>;
    log: Logger;
    text?: TextGraph;
    textEmbeds?: EmbedsOutput;
    vision?: { session: ort.InferenceSession; file: string; pixels: TensorSpec; embeds: EmbedsOutput };
    single?: { session: ort.InferenceSession; file: string; pixels: TensorSpec };
  }) {
    this.kind = init.files.kind;
    this.dir = init.dir;
    this.files = init.files;
    this.tokenizer = init.tokenizer;
    this.preprocessorConfig = init.preprocessorConfig;
    this.logitScale = init.logitScale;
    this.device = init.device;
    this.log = init.log;
    this.text = init.text;
    this.textEmbeds = init.textEmbeds;
    this.vision = init.vision;
    this.single = init.single;
    const widthOf = (e: EmbedsOutput | undefined) => (e?.projection ? e.projection.out : staticDim(e?.spec, 1));
    const t = widthOf(init.textEmbeds);
    const v = widthOf(init.vision?.embeds);
    if (t !== undefined) this.dims.text = t;
    if (v !== undefined) this.dims.image = v;
  }

  /**
   * Loads a CLIP folder: the graphs (see module doc), the tokenizer (`vocab.json` + `merges.txt` or
   * `tokenizer.json`), `preprocessor_config.json` (CLIP's defaults when absent, with a warning) and,
   * for separate graphs, the logit scale (`resolveLogitScale`).
   */
  static async load(dir: string, options: LoadClipModelOptions = {}): Promise<ClipModel> {
    const log = options.logger ?? silentLogger;
    let isDir = false;
    try {
      isDir = (await stat(dir)).isDirectory();
    } catch {
      throw new NotFoundError(dir, 'CLIP model folder');
    }
    if (!isDir) throw new InvalidArgumentError('dir', `${dir} is not a folder (give the folder holding the CLIP model)`);
    const files = await findClipModelFiles(dir, options.files);

    const tokDir =
      options.tokenizerDir ??
      ((await exists(path.join(dir, 'tokenizer', 'vocab.json'))) || (await exists(path.join(dir, 'tokenizer', 'tokenizer.json')))
        ? path.join(dir, 'tokenizer')
        : dir);
    const tokenizer = await loadClipTokenizer(tokDir, { logger: log });

    const ppFile = path.join(dir, 'preprocessor_config.json');
    let preprocessorConfig = CLIP_DEFAULT_PREPROCESSOR;
    if (await exists(ppFile)) preprocessorConfig = await readPreprocessorConfig(ppFile);
    else
      log.warn(
        `no preprocessor_config.json in ${dir}: using CLIP's defaults (shortest edge 224, bicubic, center crop 224, OpenAI mean/std)`,
      );

    const sessionConfig: SessionConfig = { ...options.session, device: options.device ?? 'cpu', logger: log };
    const open = async (file: string) => {
      try {
        return await openSession(file, sessionConfig);
      } catch (cause) {
        if (InvalidArgumentError.isInstance(cause)) throw cause;
        throw new ModelFormatError(file, `ONNX Runtime cannot load it (${(cause as Error).message.split('\n')[0]})`, { cause });
      }
    };

    if (files.kind === 'single') {
      const { session, device } = await open(files.model);
      const io = describeSession(session);
      const file = files.model;
      if (!io.outputs.some((o) => o.name === 'logits_per_image')) {
        await session.release();
        throw new ModelFormatError(
          file,
          `has no logits_per_image output (outputs: ${io.outputs.map((o) => o.name).join(', ')}); a single-graph CLIP needs it, ` +
            'or give text_model.onnx + vision_model.onnx',
        );
      }
      const pixels = io.inputs.find((i) => i.name === 'pixel_values');
      if (!pixels) {
        await session.release();
        throw new ModelFormatError(file, `has no pixel_values input (inputs: ${io.inputs.map((i) => i.name).join(', ')})`);
      }
      const text = { session, file, ...textInputs(io, file) };
      const model = new ClipModel({
        dir,
        files,
        tokenizer,
        preprocessorConfig,
        logitScale: { value: Number.NaN, source: 'graph', file },
        device,
        log,
        text,
        single: { session, file, pixels },
      });
      model.checkPixelShape(pixels, file);
      return model;
    }

    const logitScale = await resolveLogitScale(dir, {
      ...(options.logitScale !== undefined ? { logitScale: options.logitScale } : {}),
      logger: log,
    });
    const t = await open(files.text);
    let v: Awaited<ReturnType<typeof open>>;
    try {
      v = await open(files.vision);
    } catch (err) {
      await t.session.release();
      throw err;
    }
    try {
      const tio = describeSession(t.session);
      const vio = describeSession(v.session);
      const text: TextGraph = { session: t.session, file: files.text, ...textInputs(tio, files.text) };
      const textSpec = pickEmbedsOutput(tio.outputs, 'text_embeds', files.text);
      const visionSpec = pickEmbedsOutput(vio.outputs, 'image_embeds', files.vision);
      // Graphs exported without their projection: the weights from a safetensors file.
      let projectionFile: string | undefined;
      if (!textSpec || !visionSpec) {
        const candidate = options.projections ? path.resolve(dir, options.projections) : path.join(dir, 'model.safetensors');
        if (options.projections || (await exists(candidate))) projectionFile = candidate;
        else if (!textSpec)
          throw unprojectedError(files.text, tio.outputs, 'text_embeds', 'CLIPTextModelWithProjection', 'text_projection.weight');
        else
          throw unprojectedError(
            files.vision,
            vio.outputs,
            'image_embeds',
            'CLIPVisionModelWithProjection',
            'visual_projection.weight',
          );
      }
      const embedsOutput = async (
        spec: TensorSpec | undefined,
        outputs: TensorSpec[],
        key: string,
        file: string,
      ): Promise<EmbedsOutput> => {
        if (spec) return { spec };
        const pooler = outputs.find((o) => o.name === 'pooler_output') as TensorSpec;
        const projection = await loadProjection(projectionFile as string, key);
        const width = staticDim(pooler, 1);
        if (width !== undefined && width !== projection.in) {
          throw new ModelFormatError(
            file,
            `pooler_output has ${width} dims but ${projection.source} is [${projection.out}, ${projection.in}]`,
          );
        }
        log.info(`${path.basename(file)} has no projection: applying ${projection.source}`);
        return { spec: pooler, projection };
      };
      const textEmbeds = await embedsOutput(textSpec, tio.outputs, 'text_projection.weight', files.text);
      const pixels = vio.inputs.find((i) => i.name === 'pixel_values') ?? (vio.inputs.length === 1 ? vio.inputs[0] : undefined);
      if (!pixels) {
        throw new ModelFormatError(
          files.vision,
          `has no pixel_values input (inputs: ${vio.inputs.map((i) => i.name).join(', ')})`,
        );
      }
      const embeds = await embedsOutput(visionSpec, vio.outputs, 'visual_projection.weight', files.vision);
      const model = new ClipModel({
        dir,
        files,
        tokenizer,
        preprocessorConfig,
        logitScale,
        device: t.device,
        log,
        text,
        textEmbeds,
        vision: { session: v.session, file: files.vision, pixels, embeds },
      });
      model.checkWidths();
      model.checkPixelShape(pixels, files.vision);
      return model;
    } catch (err) {
      await t.session.release();
      await v.session.release();
      throw err;
    }
  }

  /** Width of the joint embedding space, once known (static graph dims, or after the first run). */
  get embedDim(): number | undefined {
    return this.dims.text ?? this.dims.image;
  }

  private checkWidths(): void {
    const { text, image } = this.dims;
    if (text !== undefined && image !== undefined && text !== image && this.files.kind === 'dual') {
      throw new ModelFormatError(
        this.dir,
        `mismatched projection widths: ${base(this.files.text)} gives ${text}-dim text embeddings but ${base(this.files.vision)} gives ` +
          `${image}-dim image embeddings; both graphs must come from one CLIP model (same projection_dim)`,
      );
    }
  }

  private checkPixelShape(spec: TensorSpec, file: string): void {
    const c = staticDim(spec, 1);
    const h = staticDim(spec, 2);
    const w = staticDim(spec, 3);
    if (spec.shape.length !== 4 && spec.shape.length !== 0) {
      throw new ModelFormatError(
        file,
        `input ${spec.name} has shape [${spec.shape.join(', ')}]; expected [batch, 3, height, width]`,
      );
    }
    if (c !== undefined && c !== 3) throw new ModelFormatError(file, `input ${spec.name} has ${c} channels; expected 3`);
    const cfg = this.preprocessorConfig;
    const out = cfg.doCenterCrop ? cfg.cropSize : 'height' in cfg.size ? cfg.size : undefined;
    if (out && ((h !== undefined && h !== out.height) || (w !== undefined && w !== out.width))) {
      throw new ModelFormatError(
        file,
        `expects ${w}×${h} images but preprocessor_config.json produces ${out.width}×${out.height} (crop_size / size do not fit this model)`,
      );
    }
  }

  /** Tokenizes `texts` the way `CLIPProcessor(text=…, padding=True)` does (or to the graph's fixed length). */
  tokenize(texts: readonly string[], padding: TextPadding = 'longest'): { inputIds: number[][]; attentionMask: number[][] } {
    if (texts.length === 0) throw new InvalidArgumentError('texts', 'need at least one text');
    const fixed = staticDim(this.text?.ids, 1);
    const maxLength = fixed ?? this.tokenizer.modelMaxLength;
    return this.tokenizer.encodeBatch(texts, {
      padding: fixed !== undefined || padding === 'max_length' ? 'max_length' : 'longest',
      truncation: true,
      maxLength,
    });
  }

  private textFeeds(
    inputIds: readonly (readonly number[])[],
    attentionMask: readonly (readonly number[])[],
  ): Record<string, ort.Tensor> {
    const g = this.text as TextGraph;
    const len = inputIds[0]?.length ?? 0;
    if (
      inputIds.some((r) => r.length !== len) ||
      attentionMask.length !== inputIds.length ||
      attentionMask.some((r) => r.length !== len)
    ) {
      throw new InvalidArgumentError('inputIds', 'every row of input_ids and attention_mask must have the same length');
    }
    const feeds: Record<string, ort.Tensor> = { [g.ids.name]: intTensor(g.ids.type, inputIds, g.file, g.ids.name) };
    if (g.mask) feeds[g.mask.name] = intTensor(g.mask.type, attentionMask, g.file, g.mask.name);
    if (g.positions) {
      const pos = inputIds.map(() => Array.from({ length: len }, (_, j) => j));
      feeds[g.positions.name] = intTensor(g.positions.type, pos, g.file, g.positions.name);
    }
    return feeds;
  }

  private pixelTensor(spec: TensorSpec, pixelValues: Float32Array, count: number, file: string): ort.Tensor {
    if (!Number.isInteger(count) || count < 1)
      throw new InvalidArgumentError('count', `must be a positive integer, got ${count}`);
    const per = pixelValues.length / count;
    let h = staticDim(spec, 2);
    let w = staticDim(spec, 3);
    if (h === undefined || w === undefined) {
      // Symbolic spatial dims: the processor's output size, else a square.
      const cfg = this.preprocessorConfig;
      const out = cfg.doCenterCrop ? cfg.cropSize : 'height' in cfg.size ? cfg.size : undefined;
      const side = Math.round(Math.sqrt(per / 3));
      h ??= out?.height ?? side;
      w ??= out?.width ?? side;
    }
    if (per !== 3 * h * w) {
      throw new InvalidArgumentError(
        'pixelValues',
        `expected ${count}×3×${h}×${w} = ${count * 3 * h * w} values for ${base(file)}, got ${pixelValues.length}`,
      );
    }
    return floatTensor(spec.type, pixelValues, [count, 3, h, w], file, spec.name);
  }

  private async run(
    session: ort.InferenceSession,
    feeds: Record<string, ort.Tensor>,
    file: string,
    output: string,
  ): Promise<ort.Tensor> {
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await session.run(feeds, [output]);
    } catch (cause) {
      throw new ModelFormatError(file, `inference failed (${(cause as Error).message.split('\n')[0]})`, { cause });
    }
    const t = result[output];
    if (!t) throw new ModelFormatError(file, `returned no ${output}`);
    return t as ort.Tensor;
  }

  private embeddings(t: ort.Tensor, rows: number, file: string, what: string): Embeddings {
    if (t.dims.length !== 2 || t.dims[0] !== rows) {
      throw new ModelFormatError(file, `${what} has shape [${t.dims.join(', ')}]; expected [${rows}, dim]`);
    }
    return { data: toFloat32(t), rows, dim: t.dims[1] as number };
  }

  private noteDim(kind: 'text' | 'image', dim: number): void {
    if (this.dims[kind] === undefined) this.dims[kind] = dim;
    this.checkWidths();
  }

  /** Projected, unnormalised text embeddings of token rows (separate graphs only). */
  async encodeTokens(
    inputIds: readonly (readonly number[])[],
    attentionMask: readonly (readonly number[])[],
  ): Promise<Embeddings> {
    if (this.kind !== 'dual' || !this.textEmbeds) {
      throw new InvalidArgumentError('model', 'a single-graph CLIP has no separate text embeddings; use logitsPerImage');
    }
    const g = this.text as TextGraph;
    const out = this.textEmbeds;
    const t = await this.run(g.session, this.textFeeds(inputIds, attentionMask), g.file, out.spec.name);
    const raw = this.embeddings(t, inputIds.length, g.file, out.spec.name);
    const e = out.projection ? project(raw, out.projection, g.file) : raw;
    this.noteDim('text', e.dim);
    return e;
  }

  /** Projected, unnormalised text embeddings (separate graphs only). */
  async encodeText(texts: readonly string[], padding: TextPadding = 'longest'): Promise<Embeddings> {
    const { inputIds, attentionMask } = this.tokenize(texts, padding);
    return this.encodeTokens(inputIds, attentionMask);
  }

  /** Projected, unnormalised image embeddings of `count` preprocessed images (CHW each, concatenated). */
  async encodeImages(pixelValues: Float32Array, count: number): Promise<Embeddings> {
    if (this.kind !== 'dual' || !this.vision) {
      throw new InvalidArgumentError('model', 'a single-graph CLIP has no separate image embeddings; use logitsPerImage');
    }
    const v = this.vision;
    const t = await this.run(
      v.session,
      { [v.pixels.name]: this.pixelTensor(v.pixels, pixelValues, count, v.file) },
      v.file,
      v.embeds.spec.name,
    );
    const raw = this.embeddings(t, count, v.file, v.embeds.spec.name);
    const e = v.embeds.projection ? project(raw, v.embeds.projection, v.file) : raw;
    this.noteDim('image', e.dim);
    return e;
  }

  /**
   * `logits_per_image` [count, texts] of the single graph (logit scale applied inside it), for
   * preprocessed images and token rows.
   */
  async singleGraphLogits(
    pixelValues: Float32Array,
    count: number,
    tokens: { inputIds: readonly (readonly number[])[]; attentionMask: readonly (readonly number[])[] },
  ): Promise<Embeddings> {
    if (this.kind !== 'single' || !this.single) throw new InvalidArgumentError('model', 'not a single-graph CLIP');
    const s = this.single;
    const feeds = {
      ...this.textFeeds(tokens.inputIds, tokens.attentionMask),
      [s.pixels.name]: this.pixelTensor(s.pixels, pixelValues, count, s.file),
    };
    const t = await this.run(s.session, feeds, s.file, 'logits_per_image');
    const e = this.embeddings(t, count, s.file, 'logits_per_image');
    if (e.dim !== tokens.inputIds.length) {
      throw new ModelFormatError(s.file, `logits_per_image has ${e.dim} columns for ${tokens.inputIds.length} texts`);
    }
    return e;
  }

  /** A one-line description for logs and summaries. */
  describe(): Record<string, unknown> {
    return {
      dir: this.dir,
      kind: this.kind,
      files: this.files.kind === 'dual' ? [base(this.files.text), base(this.files.vision)] : [base(this.files.model)],
      device: this.device,
      logitScale: this.kind === 'dual' ? this.logitScale.value : 'in graph',
      logitScaleSource: this.logitScale.source,
      embedDim: this.embedDim ?? null,
      ...(this.textEmbeds?.projection || this.vision?.embeds.projection
        ? { projections: [this.textEmbeds?.projection?.source, this.vision?.embeds.projection?.source].filter(Boolean) }
        : {}),
    };
  }

  async release(): Promise<void> {
    const sessions = new Set([this.text?.session, this.vision?.session, this.single?.session].filter((s) => s !== undefined));
    for (const s of sessions) await s.release();
    this.log.debug('clip model released', { dir: this.dir });
  }
}
