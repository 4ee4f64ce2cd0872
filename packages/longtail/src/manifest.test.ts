import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DatasetFormatError, NotFoundError } from '@diffmix/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyLongTailManifest,
  parseLongTailManifest,
  readLongTailManifest,
  serializeLongTailManifest,
  writeLongTailManifest,
} from './manifest.js';
import { makeLongTail } from './subset.js';
import { fakeDataset } from './test-support.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'longtail-manifest-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const full = fakeDataset([30, 25, 20, 15, 10, 5], { name: 'toy' });
const lt = makeLongTail(full, { imbalanceFactor: 10, seed: 'm', formula: 'paper' });

describe('long-tail manifest', () => {
  it('round-trips through a file and rebuilds the same dataset', async () => {
    const file = path.join(dir, 'nested', 'toy-lt10.json');
    await writeLongTailManifest(file, lt.manifest);
    const back = await readLongTailManifest(file);
    expect(back).toEqual(lt.manifest);
    const rebuilt = applyLongTailManifest(full, back, { source: file });
    expect(rebuilt.train).toEqual(lt.dataset.train);
    expect(rebuilt.test).toBe(full.test);
    const text = await readFile(file, 'utf8');
    expect(text.split('\n').length).toBeGreaterThan(lt.manifest.records.length); // one record per line
    expect(JSON.parse(text).parameters).toEqual({
      imbalanceFactor: 10,
      formula: 'paper',
      seed: 'm',
      tieBreak: 'class-id',
      allowFewer: false,
      meanPerClass: 17.5,
    });
  });

  it('lists per-class counts and the ranking', () => {
    const m = lt.manifest;
    expect(m.total).toBe(lt.dataset.train.length);
    expect(m.classes.map((c) => c.count)).toEqual(lt.trainCounts);
    expect(m.classes.map((c) => c.rank)).toEqual([0, 1, 2, 3, 4, 5]);
    // paper formula, n̄ = 17.5, ρ = 10, N − 1 = 5: 17.5·0.1^{k/5} = 17.5, 11.04, 6.97, 4.40, 2.77, 1.75
    expect(m.classes.map((c) => c.target)).toEqual([17, 11, 6, 4, 2, 1]);
  });

  it('rejects malformed manifests with the file and the field named', () => {
    const good = JSON.parse(serializeLongTailManifest(lt.manifest));
    const bad = (mutate: (m: typeof good) => void) => {
      const m = structuredClone(good);
      mutate(m);
      return () => parseLongTailManifest(JSON.stringify(m), 'subset.json');
    };
    expect(() => parseLongTailManifest('{', 'subset.json')).toThrow(/subset.json: not valid JSON/);
    expect(bad((m) => (m.format = 'other'))).toThrow(DatasetFormatError);
    expect(bad((m) => (m.version = 2))).toThrow(/unsupported version 2/);
    expect(bad((m) => (m.records[0].label = 99))).toThrow(/records\[0\]\.label 99 is outside/);
    expect(bad((m) => m.records.push({ ...m.records[0] }))).toThrow(/listed twice/);
    expect(bad((m) => (m.total = 3))).toThrow(/total is 3/);
    expect(bad((m) => (m.classes[1].count += 1))).toThrow(/classes\[1\]\.count/);
    expect(bad((m) => (m.classes[1].rank = 0))).toThrow(/rank 0 is out of range or used twice/);
    expect(bad((m) => (m.parameters.formula = 'eq4'))).toThrow(/parameters\.formula/);
    expect(bad((m) => m.classes.pop())).toThrow(/classes has 5 entries/);
  });

  it('refuses to apply to a dataset that does not hold the records', async () => {
    const m = lt.manifest;
    const renamed = { ...full, train: full.train.map((r) => ({ ...r, id: `x/${r.id}` })) };
    expect(() => applyLongTailManifest(renamed, m, { source: 'toy.json' })).toThrow(
      /toy.json: record .* is not in the train split/,
    );
    const relabelled = { ...full, train: full.train.map((r) => ({ ...r, label: r.label === 0 ? 1 : r.label })) };
    expect(() => applyLongTailManifest(relabelled, m)).toThrow(/has label 0 in the manifest but 1/);
    const bigger = fakeDataset([31, 25, 20, 15, 10, 5]);
    expect(() => applyLongTailManifest(bigger, m)).toThrow(/train split of 105 images/);
    expect(applyLongTailManifest(bigger, m, { requireSameTrainSize: false }).train).toHaveLength(m.total);
    expect(() => applyLongTailManifest(fakeDataset([30, 25, 20, 15, 10]), m)).toThrow(/6 classes/);
    await expect(readLongTailManifest(path.join(dir, 'missing.json'))).rejects.toThrow(NotFoundError);
    await writeFile(path.join(dir, 'broken.json'), '[]');
    await expect(readLongTailManifest(path.join(dir, 'broken.json'))).rejects.toThrow(/broken.json: must be a JSON object/);
  });
});
