/**
 * CLIP text clean-up and pre-tokenization, as the reference `tokenizers` pipeline of CLIPTokenizer does it:
 *
 * - normalizer: NFC, then every run of whitespace (`\s+`) replaced by one space, then lower-case
 *   (per code point, no final-sigma rule). No strip: edge spaces vanish in the pre-tokenizer.
 * - pre-tokenizer: the CLIP regex, keeping the matches and dropping everything else (whitespace); then
 *   the ByteLevel step splits each piece again with the GPT-2 regex. That second split only changes the
 *   `<|startoftext|>` / `<|endoftext|>` alternatives of the CLIP regex (→ `<|`, `endoftext`, `|>`), which
 *   are reached when such text was not taken as an added token (e.g. `<|ENDOFTEXT|>`: EOS is matched raw).
 *
 * The reference regexes run on Oniguruma, whose `\s` is the Unicode White_Space set (TAB..CR, U+0085,
 * Zs, Zl, Zp) — unlike JavaScript's `\s`, which adds U+FEFF and lacks U+0085 — so `\s` is spelled out.
 */

/** Oniguruma's Unicode `\s`, as the body of a character class. */
export const WHITESPACE_CLASS = '\\t\\n\\v\\f\\r\\x85\\p{Zs}\\p{Zl}\\p{Zp}';

const WHITESPACE_RUN = new RegExp(`[${WHITESPACE_CLASS}]+`, 'gu');
const WHITESPACE_CHAR = new RegExp(`^[${WHITESPACE_CLASS}]$`, 'u');

/**
 * The CLIP pre-tokenizer pattern (`<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`)
 * with Oniguruma's `\s`.
 */
export const CLIP_SPLIT_PATTERN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|\\p{L}+|\\p{N}|[^${WHITESPACE_CLASS}\\p{L}\\p{N}]+`,
  'gu',
);

/** The GPT-2 pattern of the ByteLevel pre-tokenizer, with Oniguruma's `\s`. */
export const BYTE_LEVEL_SPLIT_PATTERN = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WHITESPACE_CLASS}\\p{L}\\p{N}]+|[${WHITESPACE_CLASS}]+(?![^${WHITESPACE_CLASS}])|[${WHITESPACE_CLASS}]+`,
  'gu',
);

// ASCII text lower-cases the same way with the fast built-in.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the ASCII range includes control characters
const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** Lower-cases code point by code point (Rust `char::to_lowercase`: unconditional mappings, no final sigma). */
export function lowercasePerCodePoint(text: string): string {
  if (ASCII_ONLY.test(text)) return text.toLowerCase();
  // Only the final-sigma rule of String#toLowerCase depends on context; everything else is per code point.
  if (!text.includes('\u03a3')) return text.toLowerCase();
  let out = '';
  for (const ch of text) out += ch.toLowerCase();
  return out;
}

/** The CLIP normalizer: NFC, whitespace runs → one space, lower-case. */
export function normalizeClipText(text: string): string {
  return lowercasePerCodePoint(text.normalize('NFC').replace(WHITESPACE_RUN, ' '));
}

/** Splits normalized text into words for BPE: CLIP pattern (whitespace dropped), then the GPT-2 pattern. */
export function preTokenizeClip(normalized: string): string[] {
  const words: string[] = [];
  for (const m of normalized.matchAll(CLIP_SPLIT_PATTERN)) {
    const piece = m[0];
    // "Isolated" split: matches and the text between them are all kept (the pattern matches everything).
    let last = 0;
    for (const sub of piece.matchAll(BYTE_LEVEL_SPLIT_PATTERN)) {
      if (sub.index > last) words.push(piece.slice(last, sub.index));
      words.push(sub[0]);
      last = sub.index + sub[0].length;
    }
    if (last < piece.length) words.push(piece.slice(last));
  }
  return words;
}

/** Whether one character (code point) is whitespace in the reference's sense (Rust `char::is_whitespace`). */
export function isWhitespaceChar(ch: string): boolean {
  return WHITESPACE_CHAR.test(ch);
}

/** Length (UTF-16 units) of the whitespace at the start of `text`. */
export function leadingWhitespaceLength(text: string): number {
  let n = 0;
  for (const ch of text) {
    if (!isWhitespaceChar(ch)) break;
    n += ch.length;
  }
  return n;
}

/** Length (UTF-16 units) of the whitespace at the end of `text`. */
export function trailingWhitespaceLength(text: string): number {
  let end = text.length;
  while (end > 0) {
    const code = text.charCodeAt(end - 1);
    // All whitespace is in the BMP; a low surrogate ends a non-whitespace pair.
    if (code >= 0xdc00 && code <= 0xdfff) break;
    if (!isWhitespaceChar(text[end - 1]!)) break;
    end--;
  }
  return text.length - end;
}
