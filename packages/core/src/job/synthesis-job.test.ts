import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors/index.js';
import { canonicalJson, sha256Hex } from '../hash/index.js';
import { createSynthesisJob, inShard, parseShard, shardOfId, synthesisJobId } from './synthesis-job.js';
import type { SynthesisJobSpec } from './synthesis-job.js';

const spec: SynthesisJobSpec = {
  strategy: 'diff-mix',
  sourceRecordId: 'train/cls_0/3.png',
  sourceClass: 0,
  targetClass: 2,
  strength: 0.7,
  prompt: 'a photo of a <class_2> bird',
  seed: 123,
  params: { steps: 25, guidance: 7.5, model: 'sha256:abc' },
};

describe('synthesis job ids', () => {
  it('is the first 24 hex chars of SHA-256 over the canonical JSON (v1)', () => {
    const expected = sha256Hex(
      '{"params":{"guidance":7.5,"model":"sha256:abc","steps":25},"prompt":"a photo of a <class_2> bird","seed":123,' +
        '"sourceClass":0,"sourceRecordId":"train/cls_0/3.png","strategy":"diff-mix","strength":0.7,"targetClass":2,"v":1}',
    ).slice(0, 24);
    expect(synthesisJobId(spec)).toBe(expected);
  });

  it('does not depend on key order and changes with every output-determining field', () => {
    const reordered = Object.fromEntries(Object.entries(spec).reverse()) as unknown as SynthesisJobSpec;
    expect(synthesisJobId(reordered)).toBe(synthesisJobId(spec));
    const variants: Partial<SynthesisJobSpec>[] = [
      { strategy: 'real-mix' },
      { sourceRecordId: 'train/cls_0/4.png' },
      { sourceClass: 1 },
      { targetClass: 1 },
      { strength: 0.5 },
      { prompt: 'a photo of a bird' },
      { seed: 124 },
      { params: { steps: 20, guidance: 7.5, model: 'sha256:abc' } },
    ];
    const ids = new Set([synthesisJobId(spec), ...variants.map((v) => synthesisJobId({ ...spec, ...v }))]);
    expect(ids.size).toBe(variants.length + 1);
  });

  it('createSynthesisJob keeps the spec and adds the id', () => {
    const job = createSynthesisJob(spec);
    expect(job).toMatchObject(spec);
    expect(job.id).toMatch(/^[0-9a-f]{24}$/);
  });

  it('rejects invalid specs', () => {
    expect(() => synthesisJobId({ ...spec, strength: 2 })).toThrow(InvalidArgumentError);
    expect(() => synthesisJobId({ ...spec, seed: -3 })).toThrow(InvalidArgumentError);
    expect(() => synthesisJobId({ ...spec, strategy: '' })).toThrow(InvalidArgumentError);
    expect(() => synthesisJobId({ ...spec, params: { bad: Number.NaN } })).toThrow(/non-finite/);
  });
});

describe('shards', () => {
  it('parses "i/n" and rejects bad specs', () => {
    expect(parseShard('1/4')).toEqual({ index: 1, count: 4 });
    expect(parseShard(' 0 / 1 ')).toEqual({ index: 0, count: 1 });
    for (const bad of ['4/4', '1/0', '-1/2', 'a/b', '1']) expect(() => parseShard(bad)).toThrow(InvalidArgumentError);
  });

  it('every job belongs to exactly one shard, and shards are balanced', () => {
    const n = 4;
    const ids = Array.from({ length: 4000 }, (_, i) => synthesisJobId({ ...spec, seed: i }));
    const counts = new Array(n).fill(0);
    for (const id of ids) {
      const owners = [0, 1, 2, 3].filter((index) => inShard(id, { index, count: n }));
      expect(owners).toHaveLength(1);
      expect(owners[0]).toBe(shardOfId(id, n));
      counts[owners[0]!]++;
    }
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(5 * Math.sqrt(1000 * 0.75));
  });
});

describe('canonicalJson', () => {
  it('sorts keys recursively, drops undefined, normalises -0', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 0, y: undefined }], c: -0 } })).toBe('{"a":{"c":0,"d":[1,{"z":0}]},"b":1}');
  });
});
