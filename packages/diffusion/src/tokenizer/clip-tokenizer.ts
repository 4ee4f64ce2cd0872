import { InvalidArgumentError, type Logger, silentLogger } from '@diffmix/core';
import { type AddedToken, type AddedTokenFlags, type AddedTokenInit, AddedVocabulary } from './added-vocabulary.js';
import { BpeModel } from './bpe.js';
import { byteLevelTokenBytes, toByteLevel } from './byte-level.js';
import { normalizeClipText, preTokenizeClip } from './text.js';

/** CLIP's end-of-word marker, appended to the last symbol of every word. */
export const CLIP_END_OF_WORD = '</w>';
/** Sequence length of the CLIP text encoder (position embeddings) and SD's `model_max_length`. */
export const CLIP_MAX_LENGTH = 77;

export type SpecialTokenName = 'bos' | 'eos' | 'unk' | 'pad';
/** A special token as written in `tokenizer_config.json` / `special_tokens_map.json`: a plain string or an AddedToken. */
export type SpecialTokenInit = string | AddedTokenInit;

export interface ClipTokenizerInit {
  /** token → id (`vocab.json`, or `model.vocab` of a `tokenizer.json`). */
  vocab: ReadonlyMap<string, number> | Readonly<Record<string, number>>;
  /** Merges by rank: `[left, right]` pairs or `"left right"` strings (without the `#version` header). */
  merges: ReadonlyArray<readonly [string, string] | string>;
  /** Tokens matched whole before BPE (from `tokenizer.json` `added_tokens` or `added_tokens_decoder`), applied in order. */
  addedTokens?: readonly AddedTokenInit[];
  /**
   * BOS / EOS / UNK / PAD. Defaults: `<|startoftext|>`, `<|endoftext|>`, `<|endoftext|>`, `<|endoftext|>` (SD 1.x);
   * `null` for pad means no padding token. A plain string becomes a special, non-normalized added token;
   * an object keeps its flags (the later of two entries with the same content wins, order bos, eos, unk, pad).
   */
  specialTokens?: Partial<Record<SpecialTokenName, SpecialTokenInit | null>>;
  /** `model_max_length`; default 77. */
  modelMaxLength?: number;
  /** Receives the truncation / over-length warnings. */
  logger?: Logger;
  /** Names for error messages (files the vocab and merges came from). */
  vocabSource?: string;
  mergesSource?: string;
  mergeLines?: readonly number[];
  /** Words kept in the BPE cache (default 10 000). */
  bpeCacheCapacity?: number;
}

export type PaddingMode = 'max_length' | 'longest' | 'none';

export interface EncodeOptions {
  /**
   * `'max_length'`: pad with the pad token up to `maxLength` (what SD pipelines use); `'none'` (default): no
   * padding; `'longest'`: in `encodeBatch`, pad to the longest row (same as `'none'` for `encode`).
   */
  padding?: PaddingMode;
  /** Cut the content so that the result (with BOS/EOS) holds at most `maxLength` ids, EOS kept last. Default false. */
  truncation?: boolean;
  /** Default: `modelMaxLength` (77). */
  maxLength?: number;
  /** Add BOS/EOS (default true). */
  addSpecialTokens?: boolean;
}

export interface Encoding {
  inputIds: number[];
  /** 1 for real tokens (BOS/EOS included), 0 for padding. */
  attentionMask: number[];
}

export interface BatchEncoding {
  inputIds: number[][];
  attentionMask: number[][];
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, PAD…). Default false. */
  skipSpecialTokens?: boolean;
}

const DEFAULT_SPECIALS: Record<SpecialTokenName, string> = {
  bos: '<|startoftext|>',
  eos: '<|endoftext|>',
  unk: '<|endoftext|>',
  pad: '<|endoftext|>',
};

// Python's str.isspace() code points, for the final strip() of CLIP's decode.
const PY_SPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005,
  0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

function pythonStrip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && PY_SPACE.has(text.charCodeAt(start))) start++;
  while (end > start && PY_SPACE.has(text.charCodeAt(end - 1))) end--;
  return text.slice(start, end);
}

function toFlags(init: AddedTokenInit, defaults: AddedTokenFlags): AddedTokenFlags {
  return {
    special: init.special ?? defaults.special,
    normalized: init.normalized ?? defaults.normalized,
    lstrip: init.lstrip ?? defaults.lstrip,
    rstrip: init.rstrip ?? defaults.rstrip,
    singleWord: init.singleWord ?? defaults.singleWord,
  };
}

const PLAIN_TOKEN: AddedTokenFlags = { special: false, normalized: true, lstrip: false, rstrip: false, singleWord: false };
const SPECIAL_TOKEN: AddedTokenFlags = { special: true, normalized: false, lstrip: false, rstrip: false, singleWord: false };

/**
 * The CLIP BPE tokenizer as Stable Diffusion 1.x uses it, reproducing transformers' `CLIPTokenizer`
 * (the `tokenizers`-backed one of transformers 5, identical to v4's `CLIPTokenizerFast`):
 *
 * 1. added tokens (BOS/EOS/PAD/UNK, textual-inversion placeholders like `<class_0>`) are cut out whole;
 * 2. the rest is normalized (NFC, whitespace runs → one space, lower-case) and split with the CLIP regex;
 * 3. each word is mapped to byte-level characters and BPE-merged with `</w>` on its last symbol;
 * 4. `<|startoftext|>` … `<|endoftext|>` are added, then optional truncation (EOS kept last) and padding.
 */
export class ClipTokenizer {
  readonly modelMaxLength: number;
  private readonly bpe: BpeModel;
  private readonly added: AddedVocabulary;
  private readonly specials: Record<SpecialTokenName, AddedToken | null>;
  private readonly logger: Logger;

  constructor(init: ClipTokenizerInit) {
    const vocab = init.vocab instanceof Map ? init.vocab : new Map(Object.entries(init.vocab));
    const merges = init.merges.map((m, i): readonly [string, string] => {
      if (typeof m !== 'string') return m;
      const parts = m.split(' ');
      if (parts.length !== 2) {
        throw new InvalidArgumentError('merges', `merge ${i + 1} (${JSON.stringify(m)}) is not two space-separated symbols`);
      }
      return [parts[0]!, parts[1]!];
    });
    const specialInits: Record<SpecialTokenName, SpecialTokenInit | null> = { ...DEFAULT_SPECIALS, ...init.specialTokens };
    const unk = specialInits.unk;
    this.bpe = new BpeModel(vocab, merges, {
      endOfWordSuffix: CLIP_END_OF_WORD,
      continuingSubwordPrefix: '',
      unkToken: unk === null ? null : typeof unk === 'string' ? unk : unk.content,
      fuseUnk: false,
      vocabSource: init.vocabSource ?? 'vocab',
      mergesSource: init.mergesSource ?? 'merges',
      ...(init.mergeLines ? { mergeLines: init.mergeLines } : {}),
      ...(init.bpeCacheCapacity !== undefined ? { cacheCapacity: init.bpeCacheCapacity } : {}),
    });
    this.added = new AddedVocabulary(normalizeClipText);
    this.logger = init.logger ?? silentLogger;
    const maxLength = init.modelMaxLength ?? CLIP_MAX_LENGTH;
    if (!Number.isSafeInteger(maxLength) || maxLength < 2) {
      throw new InvalidArgumentError('modelMaxLength', `must be an integer ≥ 2, got ${maxLength}`);
    }
    this.modelMaxLength = maxLength;

    for (const token of init.addedTokens ?? []) this.register(token, token.special ? SPECIAL_TOKEN : PLAIN_TOKEN, true);
    // Special tokens last, each replacing the flags of an earlier entry with the same content (transformers'
    // `_post_init`): for SD 1.x the plain-string pad `<|endoftext|>` leaves EOS non-normalized.
    const specials = { bos: null, eos: null, unk: null, pad: null } as Record<SpecialTokenName, AddedToken | null>;
    for (const name of ['bos', 'eos', 'unk', 'pad'] as const) {
      const value = specialInits[name];
      if (value === null || value === undefined) continue;
      const tokenInit = typeof value === 'string' ? { content: value } : value;
      if (!tokenInit.content) throw new InvalidArgumentError(`${name}_token`, 'must not be empty');
      this.register({ ...tokenInit, special: true }, SPECIAL_TOKEN, true);
    }
    for (const name of ['bos', 'eos', 'unk', 'pad'] as const) {
      const value = specialInits[name];
      if (value === null || value === undefined) continue;
      specials[name] = this.added.get(typeof value === 'string' ? value : value.content)!;
    }
    this.specials = specials;
  }

  /** Adds (or updates the flags of) one added token; returns its id. */
  private register(init: AddedTokenInit, defaults: AddedTokenFlags, updateFlags: boolean): number {
    if (!init.content) throw new InvalidArgumentError('tokens', 'an added token must not be empty');
    const flags = toFlags(init, defaults);
    const existing = this.added.get(init.content);
    if (existing) {
      if (updateFlags) this.added.set(existing.content, existing.id, flags);
      return existing.id;
    }
    let id = this.bpe.tokenToId(init.content);
    if (id === undefined && init.id !== undefined && Number.isSafeInteger(init.id) && init.id >= 0 && !this.isIdTaken(init.id)) {
      id = init.id;
    }
    if (id === undefined) id = this.nextId();
    this.added.set(init.content, id, flags);
    return id;
  }

  private isIdTaken(id: number): boolean {
    return this.added.getById(id) !== undefined || this.bpe.idToTokenString(id) !== undefined;
  }

  /** The id `tokenizers` gives a new token: the model vocabulary size, or one past the largest added id. */
  private nextId(): number {
    const vocabSize = this.bpe.vocabSize;
    const max = this.added.maxId();
    let id = max >= vocabSize || vocabSize === 0 ? max + 1 : vocabSize;
    while (this.isIdTaken(id)) id++;
    return id;
  }

  /** Size of the BPE vocabulary, without added tokens (49408 for SD 1.x). */
  get vocabSize(): number {
    return this.bpe.vocabSize;
  }

  /** Number of distinct ids, added tokens included (transformers' `len(tokenizer)`). */
  get size(): number {
    let extra = 0;
    for (const t of this.added.list()) if (this.bpe.idToTokenString(t.id) === undefined) extra++;
    return this.bpe.vocabSize + extra;
  }

  get bosToken(): string | null {
    return this.specials.bos?.content ?? null;
  }
  get eosToken(): string | null {
    return this.specials.eos?.content ?? null;
  }
  get padToken(): string | null {
    return this.specials.pad?.content ?? null;
  }
  get unkToken(): string | null {
    return this.specials.unk?.content ?? null;
  }
  get bosTokenId(): number | null {
    return this.specials.bos?.id ?? null;
  }
  get eosTokenId(): number | null {
    return this.specials.eos?.id ?? null;
  }
  get padTokenId(): number | null {
    return this.specials.pad?.id ?? null;
  }
  get unkTokenId(): number | null {
    return this.specials.unk?.id ?? null;
  }

  /** Every added token (specials included), by id. */
  addedTokens(): AddedToken[] {
    return this.added.list().map((t) => ({ ...t }));
  }

  /**
   * Adds tokens matched whole before BPE (textual-inversion placeholders), as `tokenizer.add_tokens(...)`:
   * new ones get ids `vocabSize`, `vocabSize + 1`, … in order; a token that already exists (added or in the
   * BPE vocabulary) keeps its id. Non-special tokens are matched on the normalized (lower-cased) text, so
   * `<CLASS_0>` in a prompt matches `<class_0>`. Returns the ids.
   */
  addTokens(tokens: readonly string[], options: { special?: boolean } = {}): number[] {
    const defaults = options.special ? SPECIAL_TOKEN : PLAIN_TOKEN;
    return tokens.map((content) => {
      if (typeof content !== 'string' || content.length === 0) {
        throw new InvalidArgumentError('tokens', `an added token must be a non-empty string, got ${JSON.stringify(content)}`);
      }
      return this.register({ content }, defaults, false);
    });
  }

  tokenToId(token: string): number | undefined {
    return this.added.get(token)?.id ?? this.bpe.tokenToId(token);
  }

  idToToken(id: number): string | undefined {
    return this.added.getById(id)?.content ?? this.bpe.idToTokenString(id);
  }

  /** Content ids of `text` (no BOS/EOS, no truncation). */
  private encodeContent(text: string): number[] {
    const ids: number[] = [];
    for (const segment of this.added.split(text)) {
      if (segment.kind === 'token') {
        ids.push(segment.token.id);
        continue;
      }
      for (const word of preTokenizeClip(segment.text)) {
        for (const id of this.bpe.tokenize(toByteLevel(word))) ids.push(id);
      }
    }
    return ids;
  }

  /** Token strings of `text` (byte-level BPE pieces and added tokens, no BOS/EOS). */
  tokenize(text: string): string[] {
    return this.encodeContent(text).map((id) => this.idToToken(id) ?? '');
  }

  private checkText(text: unknown): asserts text is string {
    if (typeof text !== 'string') throw new InvalidArgumentError('text', `must be a string, got ${typeof text}`);
  }

  private resolveMaxLength(options: EncodeOptions): number {
    const maxLength = options.maxLength ?? this.modelMaxLength;
    if (!Number.isSafeInteger(maxLength) || maxLength < 0) {
      throw new InvalidArgumentError('maxLength', `must be a non-negative integer, got ${maxLength}`);
    }
    return maxLength;
  }

  private requirePad(): number {
    const pad = this.padTokenId;
    if (pad === null) throw new InvalidArgumentError('padding', 'the tokenizer has no pad token');
    return pad;
  }

  /** Ids with BOS/EOS and truncation applied, before padding. */
  private encodeUnpadded(text: string, options: EncodeOptions, maxLength: number): number[] {
    this.checkText(text);
    const addSpecial = options.addSpecialTokens ?? true;
    let content = this.encodeContent(text);
    const specialCount = addSpecial ? 2 : 0;
    if (options.truncation) {
      if (maxLength < specialCount) {
        throw new InvalidArgumentError('maxLength', `${maxLength} leaves no room for BOS and EOS`);
      }
      const keep = maxLength - specialCount;
      if (content.length > keep) {
        const removed = content.slice(keep);
        content = content.slice(0, keep);
        this.logger.warn(
          `The following part of your input was truncated because CLIP can only handle sequences up to ${maxLength} tokens: ${this.decode(removed)}`,
          { maxLength, tokens: keep + removed.length + specialCount, removedTokens: removed.length },
        );
      }
    } else if (content.length + specialCount > this.modelMaxLength) {
      this.logger.warn(
        `Token indices sequence length is longer than the specified maximum sequence length for this model (${content.length + specialCount} > ${this.modelMaxLength}). Running this sequence through the model will result in indexing errors`,
        { tokens: content.length + specialCount, modelMaxLength: this.modelMaxLength },
      );
    }
    if (!addSpecial) return content;
    const bos = this.bosTokenId;
    const eos = this.eosTokenId;
    if (bos === null || eos === null) throw new InvalidArgumentError('addSpecialTokens', 'the tokenizer has no BOS/EOS token');
    return [bos, ...content, eos];
  }

  private pad(ids: number[], length: number, padId: number): Encoding {
    const attentionMask = ids.map(() => 1);
    const inputIds = ids.slice();
    while (inputIds.length < length) {
      inputIds.push(padId);
      attentionMask.push(0);
    }
    return { inputIds, attentionMask };
  }

  /**
   * Encodes one text. `encode(text, { padding: 'max_length', truncation: true, maxLength: 77 })` is
   * `tokenizer(text, padding='max_length', max_length=77, truncation=True)` — what SD pipelines feed the text encoder.
   */
  encode(text: string, options: EncodeOptions = {}): Encoding {
    const maxLength = this.resolveMaxLength(options);
    const ids = this.encodeUnpadded(text, options, maxLength);
    if (options.padding === 'max_length') return this.pad(ids, maxLength, this.requirePad());
    return { inputIds: ids, attentionMask: ids.map(() => 1) };
  }

  /** Encodes several texts; `padding: 'longest'` pads every row to the longest one. */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): BatchEncoding {
    const maxLength = this.resolveMaxLength(options);
    const rows = texts.map((text) => this.encodeUnpadded(text, options, maxLength));
    let target = 0;
    if (options.padding === 'max_length') target = maxLength;
    else if (options.padding === 'longest') target = rows.reduce((m, r) => Math.max(m, r.length), 0);
    const padId = target > 0 && rows.some((r) => r.length < target) ? this.requirePad() : 0;
    const encoded = rows.map((r) => this.pad(r, target, padId));
    return { inputIds: encoded.map((e) => e.inputIds), attentionMask: encoded.map((e) => e.attentionMask) };
  }

  /**
   * Text of `ids`, as CLIPTokenizer decodes: tokens joined, byte-level characters turned back into UTF-8
   * (invalid sequences → U+FFFD), `</w>` → space, stripped. Unknown ids are skipped.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (const id of ids) {
      const added = this.added.getById(id);
      if (added?.special && options.skipSpecialTokens) continue;
      const token = added?.content ?? this.bpe.idToTokenString(id);
      if (token === undefined) continue;
      const bytes = byteLevelTokenBytes(token);
      chunks.push(bytes);
      total += bytes.length;
    }
    const all = new Uint8Array(total);
    let offset = 0;
    for (const c of chunks) {
      all.set(c, offset);
      offset += c.length;
    }
    const text = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true }).decode(all);
    return pythonStrip(text.split(CLIP_END_OF_WORD).join(' '));
  }

  /** Empties the BPE word cache. */
  clearCache(): void {
    this.bpe.clearCache();
  }
}
