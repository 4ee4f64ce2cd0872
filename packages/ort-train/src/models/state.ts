/**
 * Named tensors (a PyTorch-style state dict) and loading one from safetensors against an
 * architecture's expected tensor list: missing / unexpected keys and shape mismatches are errors that
 * name the key; `num_batches_tracked` counters are accepted and ignored; the classifier head can be
 * replaced (fresh torchvision-style init from a seeded Rng).
 */
import { ModelFormatError, type Rng, type SafetensorsFile } from '@diffmix/core';

/** A float32 tensor with its shape. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Named float32 tensors, in state_dict order. */
export type TensorMap = Map<string, Tensor>;

/** `param`: trained; `buffer`: state updated by the forward pass (BatchNorm running statistics). */
export type TensorKind = 'param' | 'buffer';

/** One tensor an architecture expects. */
export interface TensorSpec {
  name: string;
  shape: number[];
  kind: TensorKind;
  /** How a fresh tensor is initialised (torchvision's `_init_weights` rules). */
  init:
    | { kind: 'kaiming_normal_fan_out' }
    | { kind: 'constant'; value: number }
    | { kind: 'uniform'; bound: number }
    | { kind: 'normal'; std: number };
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Fresh values for one spec, drawn from `rng`. */
export function initTensor(spec: TensorSpec, rng: Rng): Tensor {
  const n = numel(spec.shape);
  const data = new Float32Array(n);
  const init = spec.init;
  if (init.kind === 'constant') data.fill(init.value);
  else if (init.kind === 'uniform') for (let i = 0; i < n; i++) data[i] = rng.uniformRange(-init.bound, init.bound);
  else if (init.kind === 'normal') rng.fillNormal(data, 0, init.std);
  else {
    // kaiming_normal_(mode='fan_out', nonlinearity='relu'): std = sqrt(2 / (out_channels · kh · kw))
    const fanOut = (spec.shape[0] ?? 1) * numel(spec.shape.slice(2));
    rng.fillNormal(data, 0, Math.sqrt(2 / fanOut));
  }
  return { shape: [...spec.shape], data };
}

/** Fresh tensors for every spec (state_dict order). */
export function initState(specs: readonly TensorSpec[], rng: Rng): TensorMap {
  const out: TensorMap = new Map();
  for (const s of specs) out.set(s.name, initTensor(s, rng));
  return out;
}

export interface LoadStateOptions {
  /**
   * Keys whose tensors are replaced by fresh ones (the classifier head when the class count
   * changes): they may be absent from the file or have any shape there, and are initialised by
   * their spec from `rng`.
   */
  replace?: readonly string[];
  /** Required when `replace` is non-empty. */
  rng?: Rng;
}

/** A source of named tensors: a parsed safetensors file or an in-memory map. */
export type StateSource = SafetensorsFile | ReadonlyMap<string, Tensor>;

function isFile(source: StateSource): source is SafetensorsFile {
  return typeof (source as SafetensorsFile).float32 === 'function';
}

/**
 * Loads the tensors `specs` name from `source` (strict, like `load_state_dict(strict=True)`), as
 * float32 copies. Errors ({@link ModelFormatError}) list every missing and unexpected key, or name the
 * first key whose shape differs.
 */
export function loadState(specs: readonly TensorSpec[], source: StateSource, options: LoadStateOptions = {}): TensorMap {
  const label = isFile(source) ? source.source : '<state>';
  const replace = new Set(options.replace ?? []);
  const expected = new Map(specs.map((s) => [s.name, s]));
  const keys = isFile(source) ? source.keys() : [...source.keys()];
  const unexpected = keys.filter((k) => !expected.has(k) && !k.endsWith('num_batches_tracked'));
  const missing = specs.filter((s) => !replace.has(s.name) && !keys.includes(s.name)).map((s) => s.name);
  if (missing.length > 0 || unexpected.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`missing keys: ${missing.join(', ')}`);
    if (unexpected.length > 0) parts.push(`unexpected keys: ${unexpected.join(', ')}`);
    throw new ModelFormatError(label, `state dict does not match the model (${parts.join('; ')})`);
  }
  if (replace.size > 0 && !options.rng) throw new ModelFormatError(label, 'replacing tensors needs an rng');
  const out: TensorMap = new Map();
  for (const spec of specs) {
    if (replace.has(spec.name)) {
      out.set(spec.name, initTensor(spec, options.rng as Rng));
      continue;
    }
    let shape: number[];
    let data: Float32Array;
    if (isFile(source)) {
      const t = source.float32(spec.name, { copy: true });
      shape = t.shape;
      data = t.data;
    } else {
      const t = source.get(spec.name) as Tensor;
      shape = [...t.shape];
      data = Float32Array.from(t.data);
    }
    if (shape.length !== spec.shape.length || shape.some((d, i) => d !== spec.shape[i])) {
      throw new ModelFormatError(
        label,
        `tensor ${JSON.stringify(spec.name)} has shape [${shape.join(', ')}], the model expects [${spec.shape.join(', ')}]`,
      );
    }
    out.set(spec.name, { shape, data });
  }
  return out;
}
