import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError, type Logger, NotFoundError, ValidationError } from '@diffmix/core';
import type { AddedTokenInit } from './added-vocabulary.js';
import { ClipTokenizer, type SpecialTokenInit, type SpecialTokenName } from './clip-tokenizer.js';

export interface ParsedMerges {
  merges: Array<[string, string]>;
  /** 1-based line of each merge in the file. */
  lines: number[];
}

/**
 * Parses `merges.txt`: one `left right` pair per line, by rank; `#version…` header lines and blank lines
 * are skipped; any other line must hold exactly two space-separated symbols.
 */
export function parseMergesText(text: string, source = 'merges.txt'): ParsedMerges {
  const merges: Array<[string, string]> = [];
  const lines: number[] = [];
  const rows = text.split('\n');
  rows.forEach((row, i) => {
    const line = row.endsWith('\r') ? row.slice(0, -1) : row;
    if (line.length === 0 || line.startsWith('#version')) return;
    const parts = line.split(' ');
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new ValidationError({
        source,
        line: i + 1,
        issues: [
          `expected two space-separated symbols, got ${JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line)}`,
        ],
      });
    }
    merges.push([parts[0], parts[1]]);
    lines.push(i + 1);
  });
  return { merges, lines };
}

/** Checks a parsed `vocab.json`: an object mapping token strings to non-negative integer ids. */
export function parseVocabObject(value: unknown, source = 'vocab.json'): Map<string, number> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError({ source, issues: ['expected a JSON object mapping tokens to ids'] });
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(value as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
      throw new ValidationError({
        source,
        issues: [`${JSON.stringify(token)}: id must be a non-negative integer, got ${JSON.stringify(id)}`],
      });
    }
    vocab.set(token, id);
  }
  if (vocab.size === 0) throw new ValidationError({ source, issues: ['the vocabulary is empty'] });
  return vocab;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(path, what);
    throw new ValidationError({ source: path, issues: [`cannot read ${what}: ${(err as Error).message}`], cause: err });
  }
}

async function readJson(path: string, what: string): Promise<unknown> {
  const text = await readText(path, what);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ValidationError({ source: path, issues: [`${what} is not valid JSON: ${(err as Error).message}`], cause: err });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An AddedToken as serialized by transformers / tokenizers (`content`, `lstrip`, `rstrip`, `normalized`, `single_word`, `special`). */
function toAddedTokenInit(value: unknown, source: string, where: string, id?: number): AddedTokenInit {
  if (!isRecord(value) || typeof value.content !== 'string' || value.content.length === 0) {
    throw new ValidationError({ source, issues: [`${where}: expected an AddedToken object with a non-empty "content"`] });
  }
  const init: AddedTokenInit = { content: value.content };
  const flag = (key: string): boolean | undefined => {
    const v = value[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw new ValidationError({ source, issues: [`${where}.${key}: expected a boolean`] });
    return v;
  };
  const special = flag('special');
  const normalized = flag('normalized');
  const lstrip = flag('lstrip');
  const rstrip = flag('rstrip');
  const singleWord = flag('single_word');
  if (special !== undefined) init.special = special;
  if (normalized !== undefined) init.normalized = normalized;
  if (lstrip !== undefined) init.lstrip = lstrip;
  if (rstrip !== undefined) init.rstrip = rstrip;
  if (singleWord !== undefined) init.singleWord = singleWord;
  const rawId = id ?? value.id;
  if (rawId !== undefined) {
    if (typeof rawId !== 'number' || !Number.isSafeInteger(rawId) || rawId < 0) {
      throw new ValidationError({ source, issues: [`${where}.id: expected a non-negative integer`] });
    }
    init.id = rawId;
  }
  return init;
}

function toSpecialTokenInit(value: unknown, source: string, key: string): SpecialTokenInit | null | undefined {
  if (value === undefined) return undefined;
  if (value === null) return null;
  if (typeof value === 'string') return value;
  const init = toAddedTokenInit(value, source, key);
  return { ...init, special: true };
}

export interface TokenizerSettings {
  specialTokens: Partial<Record<SpecialTokenName, SpecialTokenInit | null>>;
  addedTokens: AddedTokenInit[];
  modelMaxLength?: number;
}

const SPECIAL_KEYS: ReadonlyArray<readonly [SpecialTokenName, string]> = [
  ['bos', 'bos_token'],
  ['eos', 'eos_token'],
  ['unk', 'unk_token'],
  ['pad', 'pad_token'],
];

/**
 * Reads the settings of `tokenizer_config.json` and `special_tokens_map.json` (either may be absent):
 * special tokens (the map's entries override the config's, as in transformers), `model_max_length`,
 * and `added_tokens_decoder`.
 */
export function parseTokenizerSettings(
  config: unknown,
  specialTokensMap: unknown,
  sources: { config?: string; specialTokensMap?: string } = {},
): TokenizerSettings {
  const configSource = sources.config ?? 'tokenizer_config.json';
  const mapSource = sources.specialTokensMap ?? 'special_tokens_map.json';
  const settings: TokenizerSettings = { specialTokens: {}, addedTokens: [] };
  if (config !== undefined && !isRecord(config))
    throw new ValidationError({ source: configSource, issues: ['expected a JSON object'] });
  if (specialTokensMap !== undefined && !isRecord(specialTokensMap)) {
    throw new ValidationError({ source: mapSource, issues: ['expected a JSON object'] });
  }
  for (const [name, key] of SPECIAL_KEYS) {
    const fromConfig = config ? toSpecialTokenInit(config[key], configSource, key) : undefined;
    const fromMap = specialTokensMap ? toSpecialTokenInit(specialTokensMap[key], mapSource, key) : undefined;
    const value = fromMap !== undefined && fromMap !== null ? fromMap : fromConfig !== undefined ? fromConfig : fromMap;
    if (value !== undefined) settings.specialTokens[name] = value;
  }
  if (config) {
    const maxLength = config.model_max_length;
    if (maxLength !== undefined && maxLength !== null) {
      if (typeof maxLength !== 'number' || !Number.isFinite(maxLength) || maxLength < 2) {
        throw new ValidationError({
          source: configSource,
          issues: [`model_max_length: expected a number ≥ 2, got ${JSON.stringify(maxLength)}`],
        });
      }
      // transformers writes 1e30 ("no limit") when unknown; CLIP's text encoder has 77 positions.
      if (maxLength < 1e9) settings.modelMaxLength = Math.floor(maxLength);
    }
    const decoder = config.added_tokens_decoder;
    if (decoder !== undefined && decoder !== null) {
      if (!isRecord(decoder))
        throw new ValidationError({ source: configSource, issues: ['added_tokens_decoder: expected an object'] });
      const entries = Object.entries(decoder).map(([id, token]) => {
        const numeric = Number(id);
        if (!Number.isSafeInteger(numeric) || numeric < 0) {
          throw new ValidationError({ source: configSource, issues: [`added_tokens_decoder: bad id ${JSON.stringify(id)}`] });
        }
        return toAddedTokenInit(token, configSource, `added_tokens_decoder.${id}`, numeric);
      });
      entries.sort((a, b) => a.id! - b.id!);
      settings.addedTokens.push(...entries);
    }
  }
  return settings;
}

export interface TokenizerJsonContents {
  vocab: Map<string, number>;
  merges: Array<[string, string]>;
  addedTokens: AddedTokenInit[];
}

/** Reads `model.vocab`, `model.merges` and `added_tokens` of a transformers `tokenizer.json` (BPE model). */
export function parseTokenizerJson(value: unknown, source = 'tokenizer.json'): TokenizerJsonContents {
  if (!isRecord(value) || !isRecord(value.model))
    throw new ValidationError({ source, issues: ['expected an object with a "model" object'] });
  const model = value.model;
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new ValidationError({ source, issues: [`model.type: expected "BPE", got ${JSON.stringify(model.type)}`] });
  }
  if (model.end_of_word_suffix !== undefined && model.end_of_word_suffix !== null && model.end_of_word_suffix !== '</w>') {
    throw new ValidationError({
      source,
      issues: [`model.end_of_word_suffix: expected "</w>" (CLIP), got ${JSON.stringify(model.end_of_word_suffix)}`],
    });
  }
  const vocab = parseVocabObject(model.vocab, `${source} (model.vocab)`);
  if (!Array.isArray(model.merges)) throw new ValidationError({ source, issues: ['model.merges: expected an array'] });
  const merges = model.merges.map((m: unknown, i: number): [string, string] => {
    if (typeof m === 'string') {
      const parts = m.split(' ');
      if (parts.length === 2 && parts[0] && parts[1]) return [parts[0], parts[1]];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string' && m[0] && m[1]) {
      return [m[0], m[1]];
    }
    throw new ValidationError({
      source,
      issues: [`model.merges[${i}]: expected "left right" or [left, right], got ${JSON.stringify(m)}`],
    });
  });
  const addedTokens: AddedTokenInit[] = [];
  if (value.added_tokens !== undefined && value.added_tokens !== null) {
    if (!Array.isArray(value.added_tokens)) throw new ValidationError({ source, issues: ['added_tokens: expected an array'] });
    value.added_tokens.forEach((t: unknown, i: number) => {
      addedTokens.push(toAddedTokenInit(t, source, `added_tokens[${i}]`));
    });
    addedTokens.sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
  }
  return { vocab, merges, addedTokens };
}

export interface LoadClipTokenizerOptions {
  logger?: Logger;
  /** Overrides `model_max_length` of the config. */
  modelMaxLength?: number;
  /** Overrides the special tokens of the config files. */
  specialTokens?: Partial<Record<SpecialTokenName, SpecialTokenInit | null>>;
}

export interface ClipTokenizerFiles {
  /** `vocab.json` (with `merges`), unless `tokenizerJson` is given. */
  vocab?: string;
  merges?: string;
  /** A full transformers `tokenizer.json` (model.vocab, model.merges, added_tokens). */
  tokenizerJson?: string;
  tokenizerConfig?: string;
  specialTokensMap?: string;
}

/** Builds a CLIP tokenizer from explicit files; optional config files may be left out. */
export async function loadClipTokenizerFromFiles(
  files: ClipTokenizerFiles,
  options: LoadClipTokenizerOptions = {},
): Promise<ClipTokenizer> {
  const config = files.tokenizerConfig ? await readJson(files.tokenizerConfig, 'tokenizer config') : undefined;
  const map = files.specialTokensMap ? await readJson(files.specialTokensMap, 'special tokens map') : undefined;
  const settings = parseTokenizerSettings(config, map, {
    ...(files.tokenizerConfig ? { config: files.tokenizerConfig } : {}),
    ...(files.specialTokensMap ? { specialTokensMap: files.specialTokensMap } : {}),
  });

  let vocab: Map<string, number>;
  let merges: Array<[string, string]>;
  let mergeLines: number[] | undefined;
  let fileAddedTokens: AddedTokenInit[] = [];
  let vocabSource: string;
  let mergesSource: string;
  if (files.tokenizerJson) {
    const parsed = parseTokenizerJson(await readJson(files.tokenizerJson, 'tokenizer.json'), files.tokenizerJson);
    ({ vocab, merges } = parsed);
    fileAddedTokens = parsed.addedTokens;
    vocabSource = `${files.tokenizerJson} (model.vocab)`;
    mergesSource = `${files.tokenizerJson} (model.merges)`;
  } else {
    if (!files.vocab || !files.merges) {
      throw new InvalidArgumentError('files', 'give either tokenizerJson or both vocab and merges');
    }
    vocab = parseVocabObject(await readJson(files.vocab, 'vocab file'), files.vocab);
    const parsed = parseMergesText(await readText(files.merges, 'merges file'), files.merges);
    merges = parsed.merges;
    mergeLines = parsed.lines;
    vocabSource = files.vocab;
    mergesSource = files.merges;
  }

  const modelMaxLength = options.modelMaxLength ?? settings.modelMaxLength;
  return new ClipTokenizer({
    vocab,
    merges,
    addedTokens: [...fileAddedTokens, ...settings.addedTokens],
    specialTokens: { ...settings.specialTokens, ...options.specialTokens },
    ...(modelMaxLength !== undefined ? { modelMaxLength } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    vocabSource,
    mergesSource,
    ...(mergeLines ? { mergeLines } : {}),
  });
}

/**
 * Loads a CLIP tokenizer folder (a diffusers pipeline's `tokenizer/`): `tokenizer.json` when present,
 * otherwise `vocab.json` + `merges.txt`; `tokenizer_config.json` and `special_tokens_map.json` when present.
 */
export async function loadClipTokenizer(dir: string, options: LoadClipTokenizerOptions = {}): Promise<ClipTokenizer> {
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch {
    throw new NotFoundError(dir, 'tokenizer folder');
  }
  if (!isDir) throw new InvalidArgumentError('dir', `${dir} is not a folder`);
  const at = (name: string) => join(dir, name);
  const files: ClipTokenizerFiles = {};
  if (await exists(at('tokenizer.json'))) {
    files.tokenizerJson = at('tokenizer.json');
  } else {
    files.vocab = at('vocab.json');
    files.merges = at('merges.txt');
  }
  if (await exists(at('tokenizer_config.json'))) files.tokenizerConfig = at('tokenizer_config.json');
  if (await exists(at('special_tokens_map.json'))) files.specialTokensMap = at('special_tokens_map.json');
  return loadClipTokenizerFromFiles(files, options);
}
