/**
 * Parity with transformers' CLIPTokenizer on the golden set.
 *
 * `DIFFMIX_GOLDEN_DIR` (default: this package's fixtures/golden) holds `tokenizer_cases.json`:
 * `{ tokenizer, call, cases: [{ text, ids_unpadded_untruncated, ids_padded_77 }] }`, made with the tokenizer
 * in `tiny-sd/tokenizer/` (SD-1.5 CLIP BPE) plus the textual-inversion tokens named in `tokenizer`
 * (`<class_0>` → 49408, `<class_1>` → 49409), by `tokenizer(text)` and
 * `tokenizer(text, padding='max_length', max_length=77, truncation=True)`. The img2img cases also store
 * the pipeline's `prompt_input_ids.npy` / `negative_input_ids.npy` (int32 [1, 77]).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseNpy } from '@diffmix/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClipTokenizer, loadClipTokenizer } from './index.js';
import { CLIP_SPLIT_PATTERN } from './text.js';

const GOLDEN = process.env.DIFFMIX_GOLDEN_DIR ?? fileURLToPath(new URL('../../fixtures/golden/', import.meta.url));
const TOKENIZER_DIR = join(GOLDEN, 'tiny-sd', 'tokenizer');
const CASES_FILE = join(GOLDEN, 'tokenizer_cases.json');

interface GoldenCase {
  text: string;
  ids_unpadded_untruncated: number[];
  ids_padded_77: number[];
}
interface GoldenFile {
  tokenizer?: string;
  call?: string;
  cases: GoldenCase[];
}

const golden: GoldenFile | null = existsSync(CASES_FILE) ? (JSON.parse(readFileSync(CASES_FILE, 'utf8')) as GoldenFile) : null;
const haveTokenizer = existsSync(join(TOKENIZER_DIR, 'vocab.json'));

/** Added tokens and their expected ids, read from the `tokenizer` description ("... + added tokens {...}"). */
function addedTokensOf(file: GoldenFile): Array<[string, number]> {
  const json = /added tokens (\{.*\})/.exec(file.tokenizer ?? '')?.[1];
  if (!json) return [];
  return Object.entries(JSON.parse(json) as Record<string, number>).sort((a, b) => a[1] - b[1]);
}

/** `max_length=N` of the recorded call (77 when not stated). */
function maxLengthOf(file: GoldenFile): number {
  return Number(/max_length=(\d+)/.exec(file.call ?? '')?.[1] ?? 77);
}

const label = (text: string) => JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);

describe.skipIf(!golden || !haveTokenizer)(`golden tokenizer cases (${GOLDEN})`, () => {
  const file = golden!;
  const added = golden ? addedTokensOf(golden) : [];
  const maxLength = golden ? maxLengthOf(golden) : 77;
  let tok: ClipTokenizer;
  let tokFromJson: ClipTokenizer;
  let tmp: string;

  beforeAll(async () => {
    tok = await loadClipTokenizer(TOKENIZER_DIR);
    expect(tok.addTokens(added.map(([t]) => t))).toEqual(added.map(([, id]) => id));

    // The same tokenizer from a single transformers tokenizer.json (pipeline + vocab + merges + added tokens).
    tmp = await mkdtemp(join(tmpdir(), 'diffmix-tok-'));
    const pipelineFile = join(TOKENIZER_DIR, 'tokenizer_pipeline.json');
    const pipeline = existsSync(pipelineFile)
      ? JSON.parse(readFileSync(pipelineFile, 'utf8'))
      : { added_tokens: [], model: { type: 'BPE' } };
    pipeline.model.vocab = JSON.parse(readFileSync(join(TOKENIZER_DIR, 'vocab.json'), 'utf8'));
    pipeline.model.merges = readFileSync(join(TOKENIZER_DIR, 'merges.txt'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#version'));
    for (const [content, id] of added) {
      pipeline.added_tokens.push({
        id,
        content,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: false,
      });
    }
    await writeFile(join(tmp, 'tokenizer.json'), JSON.stringify(pipeline));
    for (const name of ['tokenizer_config.json', 'special_tokens_map.json']) {
      if (existsSync(join(TOKENIZER_DIR, name))) await writeFile(join(tmp, name), readFileSync(join(TOKENIZER_DIR, name)));
    }
    tokFromJson = await loadClipTokenizer(tmp);
  });

  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('has cases', () => {
    expect(file.cases.length).toBeGreaterThan(0);
  });

  describe.each(file ? file.cases.map((c, i) => ({ ...c, name: `#${i} ${label(c.text)}` })) : [])('$name', (c) => {
    it('unpadded, untruncated ids', () => {
      expect(tok.encode(c.text).inputIds).toEqual(c.ids_unpadded_untruncated);
    });

    it(`padded to ${maxLength} with truncation`, () => {
      const enc = tok.encode(c.text, { padding: 'max_length', truncation: true, maxLength });
      expect(enc.inputIds).toEqual(c.ids_padded_77);
      const real = Math.min(c.ids_unpadded_untruncated.length, maxLength);
      expect(enc.attentionMask).toEqual(Array.from({ length: maxLength }, (_, i) => (i < real ? 1 : 0)));
    });

    it('same ids when loaded from tokenizer.json', () => {
      expect(tokFromJson.encode(c.text).inputIds).toEqual(c.ids_unpadded_untruncated);
      expect(tokFromJson.encode(c.text, { padding: 'max_length', truncation: true, maxLength }).inputIds).toEqual(
        c.ids_padded_77,
      );
    });
  });

  it('encodeBatch gives the per-text results', () => {
    const batch = tok.encodeBatch(
      file.cases.map((c) => c.text),
      { padding: 'max_length', truncation: true, maxLength },
    );
    expect(batch.inputIds).toEqual(file.cases.map((c) => c.ids_padded_77));
  });
});

const IMG2IMG = join(GOLDEN, 'img2img');
const img2imgCases = existsSync(IMG2IMG)
  ? readdirSync(IMG2IMG).filter(
      (d) => existsSync(join(IMG2IMG, d, 'case.json')) && existsSync(join(IMG2IMG, d, 'prompt_input_ids.npy')),
    )
  : [];

describe.skipIf(img2imgCases.length === 0 || !haveTokenizer || !golden)('img2img prompt ids (pipeline tokenization)', () => {
  let tok: ClipTokenizer;
  beforeAll(async () => {
    tok = await loadClipTokenizer(TOKENIZER_DIR);
    tok.addTokens(addedTokensOf(golden!).map(([t]) => t));
  });

  it.each(img2imgCases)('%s', (dir) => {
    const caseJson = JSON.parse(readFileSync(join(IMG2IMG, dir, 'case.json'), 'utf8')) as {
      prompt: string;
      negative_prompt?: string;
    };
    const check = (text: string, npy: string) => {
      const arr = parseNpy(readFileSync(join(IMG2IMG, dir, npy)), npy);
      const length = arr.shape[arr.shape.length - 1]!;
      const enc = tok.encode(text, { padding: 'max_length', truncation: true, maxLength: length });
      expect(enc.inputIds).toEqual(Array.from(arr.data as Int32Array, Number));
    };
    check(caseJson.prompt, 'prompt_input_ids.npy');
    if (caseJson.negative_prompt !== undefined && existsSync(join(IMG2IMG, dir, 'negative_input_ids.npy'))) {
      check(caseJson.negative_prompt, 'negative_input_ids.npy');
    }
  });
});

const PIPELINE_FILE = join(TOKENIZER_DIR, 'tokenizer_pipeline.json');

describe.skipIf(!existsSync(PIPELINE_FILE) || !haveTokenizer)('reference pipeline description (tokenizer_pipeline.json)', () => {
  const pipeline = existsSync(PIPELINE_FILE) ? JSON.parse(readFileSync(PIPELINE_FILE, 'utf8')) : {};

  it('uses the normalizer this implementation reproduces', () => {
    expect(pipeline.normalizer).toEqual({
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    });
  });

  it('uses the CLIP split regex, then ByteLevel, and a </w> BPE', () => {
    const [split, byteLevel] = pipeline.pre_tokenizer.pretokenizers;
    expect(split.type).toBe('Split');
    expect(split.behavior).toBe('Removed');
    expect(split.invert).toBe(true);
    // Ours is the same pattern with Oniguruma's \s spelled out.
    const ours = CLIP_SPLIT_PATTERN.source
      .replace(/\\t\\n\\v\\f\\r\\x85\\p\{Zs\}\\p\{Zl\}\\p\{Zp\}/, '\\s')
      .replace('\\p{L}+', '[\\p{L}]+')
      .replace('|\\p{N}|', '|[\\p{N}]|');
    expect(ours).toBe(split.pattern.Regex);
    expect(byteLevel).toMatchObject({ type: 'ByteLevel', add_prefix_space: false, use_regex: true });
    expect(pipeline.model).toMatchObject({
      type: 'BPE',
      end_of_word_suffix: '</w>',
      continuing_subword_prefix: '',
      fuse_unk: false,
    });
  });

  it('has the added-token flags that loading the config files gives', async () => {
    const tok = await loadClipTokenizer(TOKENIZER_DIR);
    const ours = tok.addedTokens();
    for (const ref of pipeline.added_tokens as Array<Record<string, unknown>>) {
      const mine = ours.find((t) => t.content === ref.content);
      expect(mine, String(ref.content)).toMatchObject({
        id: ref.id,
        special: ref.special,
        normalized: ref.normalized,
        lstrip: ref.lstrip,
        rstrip: ref.rstrip,
        singleWord: ref.single_word,
      });
    }
  });
});
