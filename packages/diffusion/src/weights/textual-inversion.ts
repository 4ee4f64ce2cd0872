/**
 * Textual inversion: learned token embeddings added to (or overwriting rows of) the text encoder's
 * token-embedding table, as diffusers' `load_textual_inversion` does.
 *
 * Accepted files:
 * - diffusers / Diff-Mix: every key is a placeholder token (`<class_0>`) → float vector [hidden]
 *   (or [n, hidden]: a multi-vector embedding, tokens `t`, `t_1`, … `t_{n-1}`);
 * - AUTOMATIC1111: `emb_params` [n, hidden] (safetensors) or `string_to_param: {'*': tensor}` (torch
 *   pickle); the token comes from the options, else the pickle's `name`, else the file name;
 * - `clip_l` (SDXL-style files; the CLIP-L part is what an SD 1.x text encoder uses).
 * - the official Diff-Mix `learned_embeds*.bin`: a torch pickle of `{learned_embeds_dict: {placeholder:
 *   tensor}, name2placeholder, placeholder2name}` (class names are kept in `className`).
 * Safetensors are read directly; torch `.bin` / `.pt` pickles through the restricted reader in
 * `torch-pickle.ts` (tensors and plain containers only, nothing is ever executed).
 */
import { basename, extname } from 'node:path';
import { float32ToBfloat16, float32ToFloat16, ModelFormatError, readSafetensors, type SafetensorsFile } from '@diffmix/core';
import { findGatherForInput, loadOnnxModel, type OnnxModel, type SerializedOnnxModel } from '@diffmix/onnx';
import { readTorchCheckpoint, type TorchValue, isTorchTensor } from './torch-pickle.js';

/** One learned embedding (one or more vectors). */
export interface TextualInversionEmbedding {
  /** Placeholder token, e.g. `<class_0>`. */
  token: string;
  /** Vectors, row-major [count, width]. */
  vectors: Float32Array;
  count: number;
  width: number;
  /** File it came from. */
  source: string;
  /** Class name the placeholder stands for, when the file says (Diff-Mix's `placeholder2name`). */
  className?: string;
}

export interface ParseTextualInversionOptions {
  /**
   * Token(s) to use instead of the keys: one string for a single-embedding file (required for
   * A1111 `emb_params` files unless the file name should be used), or one per embedding, in order.
   */
  token?: string | readonly string[];
}

/** A named float tensor, whatever file it came from. */
export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

const A1111_KEYS = ['emb_params', 'clip_l'];

/**
 * Turns the tensors of an embeddings file into embeddings (see the module doc for the layouts).
 * `fallbackToken` names single A1111-style embeddings when no token is given.
 */
export function textualInversionFromTensors(
  tensors: ReadonlyMap<string, NamedTensor>,
  source: string,
  options: ParseTextualInversionOptions = {},
  fallbackToken?: string,
): TextualInversionEmbedding[] {
  const fail = (problem: string): never => {
    throw new ModelFormatError(source, problem);
  };
  const a1111 = A1111_KEYS.find((k) => tensors.has(k));
  let entries: [string, NamedTensor][];
  if (a1111 !== undefined) {
    const token = typeof options.token === 'string' ? options.token : (options.token?.[0] ?? fallbackToken);
    if (!token) return fail(`${a1111} embedding without a token name: pass the token`);
    entries = [[token, tensors.get(a1111) as NamedTensor]];
  } else {
    entries = [...tensors.entries()];
    if (entries.length === 0) fail('no embeddings in the file');
    const tokens = options.token;
    if (typeof tokens === 'string') {
      if (entries.length !== 1) fail(`one token given for ${entries.length} embeddings (${entries.map(([k]) => k).join(', ')})`);
      entries = [[tokens, (entries[0] as [string, NamedTensor])[1]]];
    } else if (tokens) {
      if (tokens.length !== entries.length) fail(`${tokens.length} tokens given for ${entries.length} embeddings`);
      entries = entries.map(([, t], i) => [tokens[i] as string, t]);
    }
  }
  return entries.map(([token, t]) => {
    if (t.shape.length !== 1 && t.shape.length !== 2) {
      fail(`embedding ${JSON.stringify(token)} has shape [${t.shape.join(', ')}], expected [hidden] or [vectors, hidden]`);
    }
    const width = t.shape[t.shape.length - 1] as number;
    const count = t.shape.length === 2 ? (t.shape[0] as number) : 1;
    if (count === 0 || width === 0) fail(`embedding ${JSON.stringify(token)} is empty`);
    return { token, vectors: t.data, count, width, source };
  });
}

/** Reads embeddings from a parsed safetensors file. */
export function parseTextualInversion(
  file: SafetensorsFile,
  options: ParseTextualInversionOptions = {},
): TextualInversionEmbedding[] {
  const tensors = new Map<string, NamedTensor>();
  for (const key of file.keys()) {
    const e = file.entry(key);
    if (e.dtype !== 'F32' && e.dtype !== 'F16' && e.dtype !== 'BF16' && e.dtype !== 'F64') {
      if (key === 'step' || key === 'string_to_token') continue; // A1111 bookkeeping
      throw new ModelFormatError(file.source, `tensor ${JSON.stringify(key)} is ${e.dtype}, not a float embedding`);
    }
    const t = file.float32(key, { copy: true });
    tensors.set(key, { shape: t.shape, data: t.data });
  }
  return textualInversionFromTensors(tensors, file.source, options, tokenFromFileName(file.source));
}

function tokenFromFileName(path: string): string | undefined {
  const name = basename(path, extname(path));
  return name === '' ? undefined : name;
}

function tensorsFromPickle(
  value: TorchValue,
  source: string,
): { tensors: Map<string, NamedTensor>; name?: string; classNames?: Map<string, string> } {
  if (!(value instanceof Map)) throw new ModelFormatError(source, 'the checkpoint is not a dict of embeddings');
  const tensors = new Map<string, NamedTensor>();
  const s2p = value.get('string_to_param');
  if (s2p instanceof Map) {
    // AUTOMATIC1111: {'string_to_param': {'*': tensor}, 'name': 'token', 'step': …}
    const t = [...s2p.values()][0];
    if (!isTorchTensor(t)) throw new ModelFormatError(source, 'string_to_param holds no tensor');
    tensors.set('emb_params', { shape: [...t.shape], data: t.toFloat32() });
    const n = value.get('name');
    return { tensors, name: typeof n === 'string' ? n : undefined };
  }
  // Official Diff-Mix: {'learned_embeds_dict': {placeholder: tensor}, 'name2placeholder': {…}, 'placeholder2name': {…}}
  const nested = value.get('learned_embeds_dict');
  const dict = nested instanceof Map ? nested : value;
  let classNames: Map<string, string> | undefined;
  const p2n = value.get('placeholder2name');
  if (p2n instanceof Map) {
    classNames = new Map([...p2n].filter((e): e is [string, string] => typeof e[0] === 'string' && typeof e[1] === 'string'));
  }
  for (const [k, v] of dict) {
    if (typeof k !== 'string') continue;
    if (isTorchTensor(v)) tensors.set(k, { shape: [...v.shape], data: v.toFloat32() });
    else if (dict === value && (k === 'name2placeholder' || k === 'placeholder2name')) continue;
    else throw new ModelFormatError(source, `entry ${JSON.stringify(k)} is not a tensor`);
  }
  return { tensors, classNames };
}

/**
 * Loads embeddings from `.safetensors`, or from a torch `.bin` / `.pt` pickle (read by the restricted
 * reader: only tensors and plain containers are accepted, nothing is executed).
 */
export async function loadTextualInversion(
  path: string,
  options: ParseTextualInversionOptions = {},
): Promise<TextualInversionEmbedding[]> {
  const ext = extname(path).toLowerCase();
  if (ext === '.bin' || ext === '.pt' || ext === '.pth' || ext === '.ckpt') {
    const { tensors, name, classNames } = tensorsFromPickle(await readTorchCheckpoint(path), path);
    const list = textualInversionFromTensors(tensors, path, options, name ?? tokenFromFileName(path));
    if (classNames) for (const e of list) e.className = classNames.get(e.token);
    return list;
  }
  return parseTextualInversion(await readSafetensors(path), options);
}

export interface TokenEmbeddingTable {
  initializer: string;
  rows: number;
  width: number;
}

/**
 * Finds the text encoder's token-embedding initializer: the Gather fed by `input_ids` (names differ:
 * `text_model.embeddings.token_embedding.weight` with transformers 4.x, `embeddings.…` with 5.x),
 * else an initializer named `…token_embedding.weight`, else the only large 2-D table read by a Gather.
 */
export function findTokenEmbedding(model: OnnxModel, inputName = 'input_ids'): TokenEmbeddingTable {
  const table = (name: string): TokenEmbeddingTable => {
    const dims = model.initializerInfo(name).dims;
    return { initializer: name, rows: dims[0] as number, width: dims[1] as number };
  };
  const viaGather = findGatherForInput(model, inputName)?.initializer;
  if (viaGather !== undefined && model.initializerInfo(viaGather).dims.length === 2) return table(viaGather);
  const named = model
    .initializerNames()
    .filter((n) => /token_embedding\.weight$/.test(n) && model.initializerInfo(n).dims.length === 2);
  if (named.length === 1) return table(named[0] as string);
  const gathered = model.initializerNames().filter((n) => {
    const info = model.initializerInfo(n);
    return (
      info.dims.length === 2 &&
      (info.dims[0] as number) >= 1000 &&
      model.consumers(n).some((c) => c.node.opType === 'Gather' && c.index === 0)
    );
  });
  if (gathered.length === 1) return table(gathered[0] as string);
  throw new ModelFormatError(
    model.source,
    gathered.length === 0
      ? `no token-embedding table found (no Gather reads ${inputName} from a 2-D initializer)`
      : `several candidate token-embedding tables: ${gathered.join(', ')}`,
  );
}

export interface ApplyTextualInversionOptions {
  /**
   * The tokenizer's vocabulary (token → id): a placeholder already in it gets its row overwritten
   * instead of a new row.
   */
  vocab?: ReadonlyMap<string, number> | Readonly<Record<string, number>>;
  /** Name of the text encoder's token-id input (default `input_ids`). */
  inputName?: string;
}

export interface TextualInversionResult {
  /** The token-embedding initializer that was changed. */
  initializer: string;
  /** Every placeholder token (multi-vector parts included) → its id, in the order given. */
  tokens: Map<string, number>;
  /** Tokens that got new rows, in id order: add them to the tokenizer in this order. */
  added: string[];
  /** Multi-vector embeddings: the token → the tokens a prompt must expand it to (`t`, `t_1`, …). */
  multiVector: Map<string, string[]>;
  /** Rows of the table after the change (the text encoder's new vocabulary size). */
  rows: number;
}

/**
 * Appends the embeddings as new rows of the token-embedding table (ids `rows`, `rows + 1`, … in the
 * given order) or overwrites the rows of tokens already in `options.vocab`. Throws a
 * {@link ModelFormatError} naming the embeddings file when a vector's width is not the encoder's.
 */
export function applyTextualInversion(
  model: OnnxModel,
  embeddings: readonly TextualInversionEmbedding[],
  options: ApplyTextualInversionOptions = {},
): TextualInversionResult {
  const tbl = findTokenEmbedding(model, options.inputName);
  const info = model.initializerInfo(tbl.initializer);
  if (info.type !== 'float32' && info.type !== 'float16' && info.type !== 'bfloat16') {
    throw new ModelFormatError(model.source, `token embedding ${tbl.initializer} is ${info.type}, expected a float table`);
  }
  const vocab = options.vocab instanceof Map ? options.vocab : new Map(Object.entries(options.vocab ?? {}));
  const rows: { token: string; vector: Float32Array; id: number }[] = [];
  const tokens = new Map<string, number>();
  const multiVector = new Map<string, string[]>();
  const added: string[] = [];
  let next = tbl.rows;
  for (const e of embeddings) {
    if (e.width !== tbl.width) {
      throw new ModelFormatError(
        e.source,
        `embedding ${JSON.stringify(e.token)} has width ${e.width} but the text encoder's token embedding ${tbl.initializer} ` +
          `in ${model.source} is [${tbl.rows}, ${tbl.width}]`,
      );
    }
    const names = Array.from({ length: e.count }, (_, i) => (i === 0 ? e.token : `${e.token}_${i}`));
    if (e.count > 1) multiVector.set(e.token, names);
    names.forEach((token, i) => {
      if (tokens.has(token)) throw new ModelFormatError(e.source, `token ${JSON.stringify(token)} is given twice`);
      const existing = vocab.get(token);
      let id: number;
      if (existing !== undefined && existing < tbl.rows) {
        id = existing;
      } else {
        id = next++;
        added.push(token);
      }
      tokens.set(token, id);
      rows.push({ token, vector: e.vectors.subarray(i * e.width, (i + 1) * e.width), id });
    });
  }
  const width = tbl.width;
  const old = model.initializer(tbl.initializer).data;
  const encode = (v: Float32Array) =>
    info.type === 'float32' ? v : info.type === 'float16' ? float32ToFloat16(v) : float32ToBfloat16(v);
  const grown = info.type === 'float32' ? new Float32Array(next * width) : new Uint16Array(next * width);
  grown.set(old as Float32Array & Uint16Array);
  for (const r of rows) grown.set(encode(r.vector) as Float32Array & Uint16Array, r.id * width);
  model.setInitializer(tbl.initializer, { data: grown, dims: [next, width], type: info.type });
  return { initializer: tbl.initializer, tokens, added, multiVector, rows: next };
}

/** Embeddings given as a path, or parsed already. */
export type TextualInversionSpec = string | TextualInversionEmbedding[];

/**
 * Loads the text encoder's `model.onnx`, applies the embeddings and returns the model bytes with
 * in-memory external data: the shape `StableDiffusion`'s `patch.textEncoder` hook takes.
 */
export async function applyTextualInversionToOnnx(
  modelFile: string,
  embeddings: readonly TextualInversionSpec[],
  options: ApplyTextualInversionOptions = {},
): Promise<SerializedOnnxModel & { result: TextualInversionResult }> {
  const model = await loadOnnxModel(modelFile);
  const list: TextualInversionEmbedding[] = [];
  for (const spec of embeddings) list.push(...(typeof spec === 'string' ? await loadTextualInversion(spec) : spec));
  const result = applyTextualInversion(model, list, options);
  return { ...model.serialize(), result };
}
