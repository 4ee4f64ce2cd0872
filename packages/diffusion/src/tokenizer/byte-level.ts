/**
 * GPT-2 / CLIP byte-level mapping: every UTF-8 byte is shown as one printable Unicode character, so that
 * BPE works on strings without whitespace or control characters (`bytes_to_unicode` in the reference code).
 */

function buildTables(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b); // '!'..'~'
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b); // '¡'..'¬'
  for (let b = 0xae; b <= 0xff; b++) printable.push(b); // '®'..'ÿ'
  const keep = new Set(printable);
  const byteToChar: string[] = new Array(256);
  for (const b of printable) byteToChar[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (keep.has(b)) continue;
    byteToChar[b] = String.fromCharCode(256 + n);
    n++;
  }
  const charToByte = new Map<string, number>();
  byteToChar.forEach((c, b) => {
    charToByte.set(c, b);
  });
  return { byteToChar, charToByte };
}

const { byteToChar: BYTE_TO_CHAR, charToByte: CHAR_TO_BYTE } = buildTables();
const encoder = new TextEncoder();

/** The 256 byte-level characters, indexed by byte value. */
export function byteLevelAlphabet(): readonly string[] {
  return BYTE_TO_CHAR;
}

/** UTF-8 encodes `text` and maps every byte to its byte-level character. */
export function toByteLevel(text: string): string {
  const bytes = encoder.encode(text);
  let out = '';
  for (const b of bytes) out += BYTE_TO_CHAR[b]!;
  return out;
}

/**
 * Bytes of one token for the ByteLevel decoder: each character mapped back to its byte; a token holding
 * a character outside the byte-level alphabet (an added token such as `<class_0>` is fine, it is ASCII)
 * contributes its raw UTF-8 bytes instead, as the reference decoder does.
 */
export function byteLevelTokenBytes(token: string): Uint8Array {
  const out = new Uint8Array(token.length);
  let i = 0;
  for (const ch of token) {
    const b = CHAR_TO_BYTE.get(ch);
    if (b === undefined) return encoder.encode(token);
    out[i++] = b;
  }
  return out.subarray(0, i);
}
