/**
 * diffusers-compatible scheduler configs: `Scheduler.from_config(other.config)` resolution, validation of
 * `scheduler_config.json` values, and JSON reading/writing with Python's non-finite float tokens.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError, ValidationError } from '@diffmix/core';

/** One `__init__` parameter of a diffusers scheduler: its JSON type and its default. */
export type ConfigField =
  | { kind: 'int'; default: number; min?: number; oneOf?: readonly number[] }
  | { kind: 'float'; default: number }
  | { kind: 'bool'; default: boolean }
  | { kind: 'enum'; values: readonly string[]; default: string; aliases?: Readonly<Record<string, string>> }
  | { kind: 'nullable-enum'; values: readonly string[]; default: null }
  | { kind: 'float-array-or-null'; default: null };

/** The `__init__` signature of a scheduler class, in signature order. */
export type ConfigSpec = Readonly<Record<string, ConfigField>>;

/** A plain JSON-like object (what `scheduler_config.json` holds). */
export type RawSchedulerConfig = Readonly<Record<string, unknown>>;

/** Result of resolving a raw config for one scheduler class (what `Cls.from_config(raw)` registers). */
export interface ResolvedConfig<C> {
  /** Every `__init__` parameter, the source's value or the class default. */
  config: C;
  /** Parameters that took the class default (diffusers' `_use_default_values`), in signature order. */
  useDefaultValues: string[];
  /** Keys of the source that are not parameters of this class (kept for compatible classes, like diffusers). */
  hidden: Record<string, unknown>;
}

const NON_FINITE: Readonly<Record<string, number>> = {
  Infinity: Number.POSITIVE_INFINITY,
  '-Infinity': Number.NEGATIVE_INFINITY,
  NaN: Number.NaN,
};

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : String(value);
}

/** Validates one value against its field; returns the normalised value or pushes an issue. */
function checkField(key: string, field: ConfigField, value: unknown, issues: string[]): unknown {
  switch (field.kind) {
    case 'int': {
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        issues.push(`${key}: expected an integer, got ${describe(value)}`);
        return field.default;
      }
      if (field.min !== undefined && value < field.min) issues.push(`${key}: must be ≥ ${field.min}, got ${value}`);
      if (field.oneOf !== undefined && !field.oneOf.includes(value)) {
        issues.push(`${key}: must be one of ${field.oneOf.join(', ')}, got ${value}`);
      }
      return value;
    }
    case 'float': {
      if (typeof value === 'string' && value in NON_FINITE) return NON_FINITE[value];
      if (typeof value !== 'number') {
        issues.push(`${key}: expected a number, got ${describe(value)}`);
        return field.default;
      }
      return value;
    }
    case 'bool': {
      if (typeof value !== 'boolean') {
        issues.push(`${key}: expected true or false, got ${describe(value)}`);
        return field.default;
      }
      return value;
    }
    case 'enum': {
      const v = typeof value === 'string' ? (field.aliases?.[value] ?? value) : value;
      if (typeof v !== 'string' || !field.values.includes(v)) {
        issues.push(`${key}: expected one of ${field.values.map((s) => JSON.stringify(s)).join(', ')}, got ${describe(value)}`);
        return field.default;
      }
      return v;
    }
    case 'nullable-enum': {
      if (value === null) return null;
      if (typeof value !== 'string' || !field.values.includes(value)) {
        issues.push(
          `${key}: expected null or one of ${field.values.map((s) => JSON.stringify(s)).join(', ')}, got ${describe(value)}`,
        );
        return null;
      }
      return value;
    }
    case 'float-array-or-null': {
      if (value === null) return null;
      if (!Array.isArray(value) || value.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
        issues.push(`${key}: expected null or an array of finite numbers, got ${describe(value)}`);
        return null;
      }
      return [...value] as number[];
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The class defaults of a spec, as a config object. */
export function specDefaults<C>(spec: ConfigSpec): C {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(spec)) out[key] = field.default;
  return out as C;
}

/**
 * What diffusers' `Cls.from_config(raw, **overrides)` does with a config dict:
 * 1. keys listed in `raw._use_default_values` are dropped (they were defaults of the SOURCE class, e.g. PNDM's
 *    `timestep_spacing='leading'`, and must not leak into the new class);
 * 2. each `__init__` parameter of the target class takes the override, else the source's value, else the class
 *    default (recorded in `useDefaultValues`);
 * 3. every other key of the source (parameters of other classes, `_class_name`, `_diffusers_version`) is kept
 *    as `hidden`, with `_class_name` renamed to the target class.
 * Values are validated against the spec (plain TypeScript checks); all problems are reported at once.
 */
export function resolveConfig<C>(
  className: string,
  spec: ConfigSpec,
  raw: RawSchedulerConfig,
  overrides: Readonly<Record<string, unknown>> = {},
  source = `${className} config`,
): ResolvedConfig<C> {
  if (!isPlainObject(raw)) throw new ValidationError({ source, issues: [`expected a JSON object, got ${describe(raw)}`] });
  const issues: string[] = [];
  const usedDefaultsRaw = raw._use_default_values ?? [];
  if (!Array.isArray(usedDefaultsRaw) || usedDefaultsRaw.some((k) => typeof k !== 'string')) {
    issues.push(`_use_default_values: expected an array of key names, got ${describe(usedDefaultsRaw)}`);
  }
  const usedDefaults = new Set(Array.isArray(usedDefaultsRaw) ? (usedDefaultsRaw as string[]) : []);
  const original: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (!usedDefaults.has(k) && k !== '_use_default_values') original[k] = v;

  // Overrides set to `undefined` count as absent (convenient when spreading optional options).
  const given: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(overrides)) {
    if (!(key in spec)) throw new InvalidArgumentError(key, `not a ${className} config parameter`);
    if (value !== undefined) given[key] = value;
  }
  const config: Record<string, unknown> = {};
  const useDefaultValues: string[] = [];
  const passed = new Set<string>();
  for (const [key, field] of Object.entries(spec)) {
    if (key in given) {
      config[key] = checkField(key, field, given[key], issues);
      passed.add(key);
    } else if (key in original) {
      config[key] = checkField(key, field, original[key], issues);
      passed.add(key);
    } else {
      config[key] = field.default;
      useDefaultValues.push(key);
    }
  }
  if (issues.length > 0) throw new ValidationError({ source, issues });
  const hidden: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(original)) if (!passed.has(k)) hidden[k] = k === '_class_name' ? className : v;
  return { config: config as C, useDefaultValues, hidden };
}

/**
 * The object diffusers would show as `scheduler.config` (and save with `save_config`): every parameter,
 * `_use_default_values`, the hidden keys and `_class_name`.
 */
export function diffusersConfigObject<C extends object>(className: string, resolved: ResolvedConfig<C>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(resolved.config as Record<string, unknown>) };
  if (resolved.useDefaultValues.length > 0) out._use_default_values = [...resolved.useDefaultValues];
  Object.assign(out, resolved.hidden);
  out._class_name = className;
  return out;
}

/**
 * Parses a scheduler config JSON text. Python's `json` writes non-finite floats as bare `Infinity`,
 * `-Infinity`, `NaN` (e.g. DPM-Solver's `lambda_min_clipped`); those tokens are accepted and become the
 * strings `"Infinity"` / `"-Infinity"` / `"NaN"`, which float parameters read back as numbers.
 */
export function parseSchedulerConfigJson(text: string, source = '<scheduler config>'): Record<string, unknown> {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const token = ['-Infinity', 'Infinity', 'NaN'].find((t) => text.startsWith(t, i));
    if (token !== undefined) {
      out += JSON.stringify(token);
      i += token.length;
      continue;
    }
    out += ch;
    i++;
  }
  let value: unknown;
  try {
    value = JSON.parse(out);
  } catch (cause) {
    throw new ValidationError({ source, issues: [`not valid JSON (${(cause as Error).message})`], cause });
  }
  if (!isPlainObject(value)) throw new ValidationError({ source, issues: [`expected a JSON object, got ${describe(value)}`] });
  return value;
}

/**
 * Writes a config object as JSON. `nonFinite: 'python'` (default) writes bare `-Infinity` like Python's
 * `json.dumps`, which diffusers reads back; `'string'` writes `"-Infinity"` (strict JSON, the golden-fixture
 * convention), which {@link parseSchedulerConfigJson} also reads.
 */
export function formatSchedulerConfigJson(
  config: Readonly<Record<string, unknown>>,
  options: { nonFinite?: 'python' | 'string' } = {},
): string {
  const marker = '\u0000nonfinite:';
  const text = JSON.stringify(
    config,
    (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? `${marker}${String(v)}` : v),
    2,
  );
  return text.replace(/"\\u0000nonfinite:(-?Infinity|NaN)"/g, (_m, t: string) => (options.nonFinite === 'string' ? `"${t}"` : t));
}

/**
 * Reads `scheduler_config.json` (or `<folder>/scheduler_config.json` when given a folder, e.g. the
 * `scheduler/` folder of a Stable Diffusion checkpoint).
 */
export async function readSchedulerConfig(path: string): Promise<Record<string, unknown>> {
  let file = path;
  try {
    if ((await stat(path)).isDirectory()) file = join(path, 'scheduler_config.json');
  } catch {
    throw new NotFoundError(path, 'scheduler config');
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new NotFoundError(file, 'scheduler config');
  }
  return parseSchedulerConfigJson(text, file);
}
