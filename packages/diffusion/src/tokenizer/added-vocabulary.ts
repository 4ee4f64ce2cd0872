import { leadingWhitespaceLength, trailingWhitespaceLength } from './text.js';

/** How an added token is matched (the `AddedToken` fields of transformers / tokenizers). */
export interface AddedTokenFlags {
  /** Special tokens (BOS, EOS, PAD, UNK) are dropped by `decode(ids, { skipSpecialTokens: true })`. */
  special: boolean;
  /** Matched in the normalized text (lower-cased etc.) rather than the raw input. */
  normalized: boolean;
  /** Also swallows the whitespace on its left. */
  lstrip: boolean;
  /** Also swallows the whitespace on its right. */
  rstrip: boolean;
  /** Only matched when not glued to a word character on either side. */
  singleWord: boolean;
}

/** A token matched as a whole before BPE, with its id. */
export interface AddedToken extends AddedTokenFlags {
  content: string;
  id: number;
}

/** A token to add: content plus optional flags (defaults: not special, normalized, no strip, not single-word). */
export interface AddedTokenInit extends Partial<AddedTokenFlags> {
  content: string;
  /** Wanted id (from a `tokenizer.json` or `added_tokens_decoder`); ignored when the content already has one. */
  id?: number;
}

/** A piece of the input: either plain (already normalized) text, or one added token. */
export type Segment = { kind: 'text'; text: string } | { kind: 'token'; token: AddedToken };

interface Pattern {
  pattern: string;
  token: AddedToken;
}

const WORD_CHAR = /[\p{Alphabetic}\p{N}_]/u;

/** The code point that ends just before UTF-16 index `i` ('' at the start). */
function charBefore(text: string, i: number): string {
  if (i <= 0) return '';
  const code = text.charCodeAt(i - 1);
  if (code >= 0xdc00 && code <= 0xdfff && i >= 2) return text.slice(i - 2, i);
  return text[i - 1]!;
}

function sameFlags(a: AddedTokenFlags, b: AddedTokenFlags): boolean {
  return (
    a.special === b.special &&
    a.normalized === b.normalized &&
    a.lstrip === b.lstrip &&
    a.rstrip === b.rstrip &&
    a.singleWord === b.singleWord
  );
}

/**
 * The added-token table: tokens matched atomically, leftmost-longest, before normalization (non-normalized
 * tokens, on the raw text) or right after it (normalized tokens, on each normalized piece), as the
 * reference `AddedVocabulary::extract_and_normalize` does.
 */
export class AddedVocabulary {
  private readonly byContent = new Map<string, AddedToken>();
  private readonly byId = new Map<number, AddedToken>();
  private rawIndex: Map<string, Pattern[]> | null = null;
  private normalizedIndex: Map<string, Pattern[]> | null = null;

  constructor(private readonly normalize: (text: string) => string) {}

  get size(): number {
    return this.byContent.size;
  }

  get(content: string): AddedToken | undefined {
    return this.byContent.get(content);
  }

  getById(id: number): AddedToken | undefined {
    return this.byId.get(id);
  }

  /** Every added token, by increasing id. */
  list(): AddedToken[] {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  /** Largest added id, or -1. */
  maxId(): number {
    let max = -1;
    for (const id of this.byId.keys()) if (id > max) max = id;
    return max;
  }

  /** Inserts a token with a known id, or replaces the flags of the token with that content. */
  set(content: string, id: number, flags: AddedTokenFlags): AddedToken {
    const old = this.byContent.get(content);
    if (old !== undefined && old.id === id && sameFlags(old, flags)) return old;
    if (old !== undefined) this.byId.delete(old.id);
    const token: AddedToken = { content, id, ...flags };
    this.byContent.set(content, token);
    this.byId.set(id, token);
    this.rawIndex = null;
    this.normalizedIndex = null;
    return token;
  }

  private index(normalized: boolean): Map<string, Pattern[]> {
    const cached = normalized ? this.normalizedIndex : this.rawIndex;
    if (cached) return cached;
    const byFirst = new Map<string, Pattern[]>();
    for (const token of this.list()) {
      if (token.normalized !== normalized) continue;
      const pattern = normalized ? this.normalize(token.content) : token.content;
      if (pattern.length === 0) continue;
      const first = pattern[0]!;
      let bucket = byFirst.get(first);
      if (!bucket) {
        bucket = [];
        byFirst.set(first, bucket);
      }
      bucket.push({ pattern, token });
    }
    // Longest first; among equal lengths the lower id (added earlier) wins.
    for (const bucket of byFirst.values()) bucket.sort((a, b) => b.pattern.length - a.pattern.length || a.token.id - b.token.id);
    if (normalized) this.normalizedIndex = byFirst;
    else this.rawIndex = byFirst;
    return byFirst;
  }

  /** Splits `text` around the matches of one pattern set (leftmost-longest, non-overlapping). */
  private findMatches(
    text: string,
    index: Map<string, Pattern[]>,
  ): Array<{ token: AddedToken | null; start: number; end: number }> {
    const out: Array<{ token: AddedToken | null; start: number; end: number }> = [];
    if (index.size === 0 || text.length === 0) {
      if (text.length > 0) out.push({ token: null, start: 0, end: text.length });
      return out;
    }
    let startOffset = 0;
    let i = 0;
    while (i < text.length) {
      const bucket = index.get(text[i]!);
      const hit = bucket?.find((p) => text.startsWith(p.pattern, i));
      if (!hit) {
        i++;
        continue;
      }
      let start = i;
      let stop = i + hit.pattern.length;
      i = stop;
      const token = hit.token;
      if (start < startOffset) continue; // inside whitespace already swallowed by an rstrip token
      if (token.singleWord) {
        const before = charBefore(text, start);
        const after = stop < text.length ? String.fromCodePoint(text.codePointAt(stop)!) : '';
        if ((before && WORD_CHAR.test(before)) || (after && WORD_CHAR.test(after))) continue;
      }
      if (token.lstrip) start = Math.max(start - trailingWhitespaceLength(text.slice(startOffset, start)), startOffset);
      if (token.rstrip) stop += leadingWhitespaceLength(text.slice(stop));
      if (start > startOffset) out.push({ token: null, start: startOffset, end: start });
      out.push({ token, start, end: stop });
      startOffset = stop;
    }
    if (startOffset < text.length) out.push({ token: null, start: startOffset, end: text.length });
    return out;
  }

  /**
   * Extracts added tokens and normalizes the rest: first non-normalized tokens are split out of the raw
   * text, then each remaining piece is normalized and normalized tokens are split out of it.
   * Empty text pieces are dropped.
   */
  split(text: string): Segment[] {
    const segments: Segment[] = [];
    const normalizedIndex = this.index(true);
    for (const raw of this.findMatches(text, this.index(false))) {
      if (raw.token) {
        segments.push({ kind: 'token', token: raw.token });
        continue;
      }
      const normalized = this.normalize(text.slice(raw.start, raw.end));
      for (const piece of this.findMatches(normalized, normalizedIndex)) {
        if (piece.token) segments.push({ kind: 'token', token: piece.token });
        else if (piece.end > piece.start) segments.push({ kind: 'text', text: normalized.slice(piece.start, piece.end) });
      }
    }
    return segments;
  }
}
