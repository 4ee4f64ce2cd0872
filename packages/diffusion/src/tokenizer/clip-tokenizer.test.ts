import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, type LogFields, type Logger, NotFoundError, ValidationError } from '@diffmix/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BpeModel, ClipTokenizer, loadClipTokenizer, normalizeClipText, parseMergesText, toByteLevel } from './index.js';

// The SD-1.5 CLIP vocabulary shipped with this package's fixtures (not DIFFMIX_GOLDEN_DIR: these tests
// state their own expectations).
const TOKENIZER_DIR = fileURLToPath(new URL('../../fixtures/golden/tiny-sd/tokenizer/', import.meta.url));
const BOS = 49406;
const EOS = 49407;

function spyLogger() {
  const warn = vi.fn<(message: string, fields?: LogFields) => void>();
  const logger: Logger = { debug: vi.fn(), info: vi.fn(), warn, error: vi.fn() };
  return Object.assign(logger, { warn });
}

/** A tiny CLIP-like vocabulary: byte-level letters a–e with and without `</w>`, a few merges, the two specials. */
function tinyTokenizer(extra: Partial<ConstructorParameters<typeof ClipTokenizer>[0]> = {}): ClipTokenizer {
  const symbols = ['a', 'b', 'c', 'd', 'e', '!', '<', '>', '|'];
  const vocab: Record<string, number> = {};
  for (const s of symbols) vocab[s] = Object.keys(vocab).length;
  for (const s of symbols) vocab[`${s}</w>`] = Object.keys(vocab).length;
  for (const t of ['ab', 'abc</w>', 'bc</w>', 'cd</w>', 'abcd</w>', '!!</w>']) vocab[t] = Object.keys(vocab).length;
  vocab['<|startoftext|>'] = Object.keys(vocab).length;
  vocab['<|endoftext|>'] = Object.keys(vocab).length;
  return new ClipTokenizer({ vocab, merges: ['a b', 'b c</w>', 'ab c</w>', 'c d</w>', '! !</w>'], ...extra });
}

describe('ClipTokenizer on the SD-1.5 vocabulary', () => {
  let tok: ClipTokenizer;
  beforeAll(async () => {
    tok = await loadClipTokenizer(TOKENIZER_DIR);
  });

  it('reads the special tokens and lengths from the config files', () => {
    expect(tok.vocabSize).toBe(49408);
    expect(tok.modelMaxLength).toBe(77);
    expect([tok.bosToken, tok.eosToken, tok.padToken, tok.unkToken]).toEqual([
      '<|startoftext|>',
      '<|endoftext|>',
      '<|endoftext|>',
      '<|endoftext|>',
    ]);
    expect([tok.bosTokenId, tok.eosTokenId, tok.padTokenId, tok.unkTokenId]).toEqual([BOS, EOS, EOS, EOS]);
  });

  it('encodes with BOS/EOS, pads with the pad token and masks the padding', () => {
    const enc = tok.encode('a photo of a cat', { padding: 'max_length', maxLength: 10 });
    expect(enc.inputIds).toEqual([BOS, 320, 1125, 539, 320, 2368, EOS, EOS, EOS, EOS]);
    expect(enc.attentionMask).toEqual([1, 1, 1, 1, 1, 1, 1, 0, 0, 0]);
    expect(tok.encode('a photo of a cat').inputIds).toHaveLength(7);
    expect(tok.encode('', { addSpecialTokens: false }).inputIds).toEqual([]);
    expect(tok.tokenize('a photo')).toEqual(['a</w>', 'photo</w>']);
  });

  it('truncates to maxLength keeping EOS last, and warns with the cut text', async () => {
    const logger = spyLogger();
    const words = Array.from({ length: 100 }, (_, i) => `w${i}`).join(' ');
    const long = tok.encode(words).inputIds;
    expect(long.length).toBeGreaterThan(77);

    const quiet = tok.encode(words, { truncation: true, padding: 'max_length' });
    expect(quiet.inputIds).toHaveLength(77);
    expect(quiet.inputIds.at(-1)).toBe(EOS);
    expect(quiet.inputIds.slice(0, 76)).toEqual(long.slice(0, 76));
    expect(quiet.attentionMask.every((m) => m === 1)).toBe(true);

    const withLog = await loadClipTokenizer(TOKENIZER_DIR, { logger });
    withLog.encode(words, { truncation: true, maxLength: 77 });
    expect(logger.warn).toHaveBeenCalledTimes(1);
    const [message, fields] = logger.warn.mock.calls[0]!;
    expect(message).toMatch(/truncated because CLIP can only handle sequences up to 77 tokens: .*w 9 9$/);
    expect(fields).toMatchObject({ maxLength: 77, removedTokens: long.length - 77 });

    logger.warn.mockClear();
    withLog.encode('a photo of a cat', { truncation: true, padding: 'max_length' });
    expect(logger.warn).not.toHaveBeenCalled();

    // Without truncation the sequence is kept whole, with transformers' over-length warning.
    expect(withLog.encode(words).inputIds).toEqual(long);
    expect(logger.warn.mock.calls[0]![0]).toMatch(
      /longer than the specified maximum sequence length for this model \(\d+ > 77\)/,
    );
  });

  it('honours a custom maxLength and rejects one without room for BOS/EOS', () => {
    expect(tok.encode('a b c d e f g', { truncation: true, maxLength: 4 }).inputIds).toEqual([BOS, 320, 321, EOS]);
    expect(() => tok.encode('a', { truncation: true, maxLength: 1 })).toThrow(InvalidArgumentError);
    expect(() => tok.encode('a', { maxLength: -1 })).toThrow(InvalidArgumentError);
  });

  it('cleans up text as the reference normalizer: whitespace runs, case, NFC', () => {
    const ids = tok.encode('a photo').inputIds;
    expect(tok.encode('  A\t\n PHOTO \u00a0 ').inputIds).toEqual(ids);
    expect(tok.encode('a\u0085photo').inputIds).toEqual(ids); // NEL is whitespace for Oniguruma
    expect(tok.encode('a\u2003photo').inputIds).toEqual(ids);
    expect(tok.encode('cafe\u0301').inputIds).toEqual(tok.encode('café').inputIds); // NFD → NFC
    expect(tok.encode('CAFÉ').inputIds).toEqual(tok.encode('café').inputIds);
    expect(normalizeClipText('Ab\u00a0\u00a0C')).toBe('ab c');
  });

  it('lower-cases per code point (Σ → σ, never the final ς), like the Rust normalizer', () => {
    expect(normalizeClipText('ΟΔΟΣ')).toBe('οδοσ');
    expect(normalizeClipText('İ')).toBe('i\u0307');
  });

  it('keeps U+FEFF (not whitespace for Oniguruma) as a symbol', () => {
    const withBom = tok.encode('a\ufeffb', { addSpecialTokens: false }).inputIds;
    expect(withBom.length).toBeGreaterThan(2);
    expect(tok.decode(withBom)).toBe('a \ufeff b'); // its own word: neither letter, digit nor space
  });

  it('encodes emoji and accents byte-level and decodes them back', () => {
    for (const text of ['café naïve résumé', 'a 🐦 on a 🌳', 'thumbs 👍🏽', '中文 日本語 한국어', 'ǅ Ⅻ ²']) {
      const ids = tok.encode(text).inputIds;
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(normalizeClipText(text));
    }
  });

  it('decodes as CLIPTokenizer: </w> → space, stripped, specials kept unless skipped, invalid UTF-8 → U+FFFD', () => {
    const ids = tok.encode('a photo of a cat').inputIds;
    expect(tok.decode(ids)).toBe('<|startoftext|>a photo of a cat <|endoftext|>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('a photo of a cat');
    expect(tok.decode(tok.encode('hello-world').inputIds, { skipSpecialTokens: true })).toBe('hello - world');
    // 'ð' is the byte-level character of byte 0xF0, the lead byte of a 4-byte sequence.
    expect(tok.decode([tok.tokenToId('ð')!])).toBe('\ufffd');
    expect(tok.decode([999_999])).toBe('');
  });

  it('matches <|endoftext|> in the text as the EOS token, but not its upper-case spelling', () => {
    expect(tok.encode('a<|endoftext|>b', { addSpecialTokens: false }).inputIds).toEqual([320, EOS, 321]);
    expect(tok.encode('<|startoftext|>', { addSpecialTokens: false }).inputIds).toEqual([BOS]);
    // BOS is a normalized token (matched after lower-casing); EOS is not (the plain-string pad token of
    // the config wins), so <|ENDOFTEXT|> is ordinary text: '<|', 'endoftext', '|>'.
    expect(tok.encode('<|STARTOFTEXT|>', { addSpecialTokens: false }).inputIds).toEqual([BOS]);
    expect(tok.tokenize('<|ENDOFTEXT|>')).toEqual(['<', '|</w>', 'endof', 'text</w>', '|', '></w>']);
  });

  it('caches BPE results without changing them', () => {
    const first = tok.encode('supercalifragilistic').inputIds;
    expect(tok.encode('supercalifragilistic').inputIds).toEqual(first);
    tok.clearCache();
    expect(tok.encode('supercalifragilistic').inputIds).toEqual(first);
  });

  it('rejects non-string text', () => {
    expect(() => tok.encode(42 as unknown as string)).toThrow(InvalidArgumentError);
  });
});

describe('added tokens', () => {
  let tok: ClipTokenizer;
  beforeAll(async () => {
    tok = await loadClipTokenizer(TOKENIZER_DIR);
  });

  it('get ids vocabSize, vocabSize + 1, … in order; re-adding returns the same id', () => {
    expect(tok.addTokens(['<class_0>', '<class_1>'])).toEqual([49408, 49409]);
    expect(tok.addTokens(['<class_1>', '<class_2>', '<class_0>'])).toEqual([49409, 49410, 49408]);
    expect(tok.size).toBe(49411);
    expect(tok.tokenToId('<class_2>')).toBe(49410);
    expect(tok.idToToken(49410)).toBe('<class_2>');
    // A token of the BPE vocabulary keeps its id.
    expect(tok.addTokens(['<|endoftext|>'])).toEqual([EOS]);
    expect(() => tok.addTokens([''])).toThrow(InvalidArgumentError);
  });

  it('are matched whole, with or without surrounding spaces, in any case', () => {
    const spaced = tok.encode('a photo of a <class_0> bird').inputIds;
    expect(spaced).toEqual([BOS, 320, 1125, 539, 320, 49408, 3329, EOS]);
    expect(tok.encode('a photo of a<class_0>bird').inputIds).toEqual(spaced);
    expect(tok.encode('A PHOTO OF A <CLASS_0> BIRD').inputIds).toEqual(spaced);
    expect(tok.encode('<class_0><class_1>').inputIds).toEqual([BOS, 49408, 49409, EOS]);
    expect(tok.encode('<class_0>s').inputIds).toEqual([
      BOS,
      49408,
      ...tok.encode('s', { addSpecialTokens: false }).inputIds,
      EOS,
    ]);
    expect(tok.decode(spaced, { skipSpecialTokens: true })).toBe('a photo of a <class_0>bird');
  });

  it('prefer the longest match at the leftmost position', () => {
    const t = tinyTokenizer();
    const [short, long] = t.addTokens(['<x>', '<x>a']);
    expect(t.encode('<x>ab', { addSpecialTokens: false }).inputIds).toEqual([long, t.tokenToId('b</w>')]);
    expect(t.encode('<x>b', { addSpecialTokens: false }).inputIds).toEqual([short, t.tokenToId('b</w>')]);
  });

  it('from a file honour lstrip / rstrip / single_word', () => {
    const t = tinyTokenizer({
      addedTokens: [
        { content: '<l>', lstrip: true, rstrip: true },
        { content: 'dd', singleWord: true },
      ],
    });
    const l = t.tokenToId('<l>')!;
    const dd = t.tokenToId('dd')!;
    expect(t.encode('a <l> b', { addSpecialTokens: false }).inputIds).toEqual([t.tokenToId('a</w>'), l, t.tokenToId('b</w>')]);
    expect(t.encode('a dd b', { addSpecialTokens: false }).inputIds).toEqual([t.tokenToId('a</w>'), dd, t.tokenToId('b</w>')]);
    expect(t.encode('add', { addSpecialTokens: false }).inputIds).not.toContain(dd);
  });
});

describe('special tokens from the config', () => {
  it('pad with the configured pad token (SD 2 uses "!", id 0)', () => {
    const t = tinyTokenizer({ specialTokens: { pad: '!' } });
    expect(t.padTokenId).toBe(t.tokenToId('!'));
    const enc = t.encode('abc', { padding: 'max_length', maxLength: 6 });
    expect(enc.inputIds.slice(3)).toEqual([t.padTokenId, t.padTokenId, t.padTokenId]);
    expect(enc.attentionMask).toEqual([1, 1, 1, 0, 0, 0]);
    // As in transformers, a plain-string special token is matched whole: "!!" is two pad tokens, not the "!!</w>" merge.
    expect(t.encode('!!', { addSpecialTokens: false }).inputIds).toEqual([t.padTokenId, t.padTokenId]);
    expect(tinyTokenizer().encode('!!', { addSpecialTokens: false }).inputIds).toEqual([t.tokenToId('!!</w>')]);
  });

  it('refuse max_length padding without a pad token', () => {
    const t = tinyTokenizer({ specialTokens: { pad: null } });
    expect(t.padTokenId).toBeNull();
    expect(t.encode('abc').inputIds).toHaveLength(3);
    expect(() => t.encode('abc', { padding: 'max_length' })).toThrow(InvalidArgumentError);
  });

  it('encodeBatch pads to the longest row or to maxLength', () => {
    const t = tinyTokenizer();
    const eos = t.eosTokenId!;
    const longest = t.encodeBatch(['abc', 'abc abc abc'], { padding: 'longest' });
    expect(longest.inputIds.map((r) => r.length)).toEqual([5, 5]);
    expect(longest.inputIds[0]!.slice(3)).toEqual([eos, eos]);
    expect(longest.attentionMask[0]).toEqual([1, 1, 1, 0, 0]);
    expect(t.encodeBatch(['abc'], { padding: 'max_length', maxLength: 8 }).inputIds[0]).toHaveLength(8);
    expect(t.encodeBatch(['abc', 'a b'], {}).inputIds.map((r) => r.length)).toEqual([3, 4]);
  });
});

describe('BPE model', () => {
  it('merges by rank, lowest first, with </w> on the last symbol', () => {
    const vocab = new Map(['a', 'b', 'c', 'c</w>', 'ab', 'bc</w>', 'abc</w>'].map((t, i) => [t, i] as const));
    const bpe = new BpeModel(
      vocab,
      [
        ['b', 'c</w>'],
        ['a', 'b'],
        ['a', 'bc</w>'],
      ],
      { endOfWordSuffix: '</w>' },
    );
    // "b c</w>" (rank 0) before "a b" (rank 1), then "a bc</w>".
    expect(bpe.tokenize('abc')).toEqual([vocab.get('abc</w>')]);
    // "ab" ends in "b</w>", missing from this vocabulary: dropped (no unk token).
    expect(bpe.tokenize('ab')).toEqual([vocab.get('a')]);
  });

  it('maps unknown symbols to unk (not fused)', () => {
    const vocab = new Map([
      ['a', 0],
      ['a</w>', 1],
      ['<unk>', 2],
    ]);
    const bpe = new BpeModel(vocab, [], { endOfWordSuffix: '</w>', unkToken: '<unk>' });
    expect(bpe.tokenize('axya')).toEqual([0, 2, 2, 1]);
    expect(new BpeModel(vocab, [], { endOfWordSuffix: '</w>', unkToken: '<unk>', fuseUnk: true }).tokenize('axya')).toEqual([
      0, 2, 1,
    ]);
  });

  it('maps every UTF-8 byte to one printable character', () => {
    expect(toByteLevel(' ')).toBe('Ġ');
    expect(toByteLevel('é')).toBe('Ã©');
    expect([...toByteLevel('🐦')]).toHaveLength(4);
  });
});

describe('loading errors name the file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'diffmix-tok-err-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function folder(name: string, files: Record<string, string>): Promise<string> {
    const d = join(dir, name);
    await mkdir(d, { recursive: true });
    for (const [f, text] of Object.entries(files)) await writeFile(join(d, f), text);
    return d;
  }
  const vocab = JSON.stringify({ a: 0, b: 1, 'a</w>': 2, 'b</w>': 3, 'ab</w>': 4, '<|startoftext|>': 5, '<|endoftext|>': 6 });

  it('missing folder, vocab.json or merges.txt → NotFoundError', async () => {
    await expect(loadClipTokenizer(join(dir, 'nope'))).rejects.toThrow(NotFoundError);
    const noVocab = await folder('no-vocab', { 'merges.txt': '#version: 0.2\na b</w>\n' });
    const err = await loadClipTokenizer(noVocab).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).file).toBe(join(noVocab, 'vocab.json'));
    expect((err as Error).message).toMatch(/vocab\.json: vocab file not found/);
    const noMerges = await folder('no-merges', { 'vocab.json': vocab });
    await expect(loadClipTokenizer(noMerges)).rejects.toThrow(/merges\.txt: merges file not found/);
  });

  it('malformed merges.txt → ValidationError with file and line', async () => {
    const bad = await folder('bad-merges', { 'vocab.json': vocab, 'merges.txt': '#version: 0.2\na b</w>\na b c\n' });
    const err = await loadClipTokenizer(bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).source).toBe(join(bad, 'merges.txt'));
    expect((err as ValidationError).line).toBe(3);
    const oov = await folder('oov-merges', { 'vocab.json': vocab, 'merges.txt': '#version: 0.2\na b</w>\nb zz\n' });
    await expect(loadClipTokenizer(oov)).rejects.toThrow(/merges\.txt:3: .*"zz" is not in the vocabulary/);
    const noResult = await folder('no-result', { 'vocab.json': vocab, 'merges.txt': 'a b\n' });
    await expect(loadClipTokenizer(noResult)).rejects.toThrow(/merged token "ab" is not in the vocabulary/);
  });

  it('bad vocab.json / config → ValidationError naming the file', async () => {
    const notJson = await folder('not-json', { 'vocab.json': '{"a": 0,', 'merges.txt': '' });
    await expect(loadClipTokenizer(notJson)).rejects.toThrow(/vocab\.json.*not valid JSON/);
    const badId = await folder('bad-id', { 'vocab.json': '{"a": -1}', 'merges.txt': '' });
    await expect(loadClipTokenizer(badId)).rejects.toThrow(ValidationError);
    const array = await folder('array', { 'vocab.json': '["a"]', 'merges.txt': '' });
    await expect(loadClipTokenizer(array)).rejects.toThrow(/expected a JSON object/);
    const badConfig = await folder('bad-config', {
      'vocab.json': vocab,
      'merges.txt': 'a b</w>\n',
      'tokenizer_config.json': '{"model_max_length": "long"}',
    });
    await expect(loadClipTokenizer(badConfig)).rejects.toThrow(/tokenizer_config\.json.*model_max_length/);
    const badJson = await folder('bad-tokenizer-json', {
      'tokenizer.json': JSON.stringify({ model: { type: 'WordPiece', vocab: {} } }),
    });
    await expect(loadClipTokenizer(badJson)).rejects.toThrow(/tokenizer\.json.*model\.type/);
  });

  it('a minimal folder loads with the SD 1.x defaults', async () => {
    const ok = await folder('ok', { 'vocab.json': vocab, 'merges.txt': '#version: 0.2\r\na b</w>\r\n' });
    const t = await loadClipTokenizer(ok);
    expect(t.modelMaxLength).toBe(77);
    expect(t.encode('ab A').inputIds).toEqual([5, 4, 2, 6]);
    expect(parseMergesText('#version: 0.2\n\na b\n').merges).toEqual([['a', 'b']]);
  });
});
