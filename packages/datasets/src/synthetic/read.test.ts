import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DatasetFormatError, InvalidArgumentError, NotFoundError, annotate, serializeManifestLine } from '@diffmix/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readSyntheticSet } from './read.js';
import { makeInput, recordingLogger, tempDir, tinyPng } from './test-support.js';
import { SyntheticSetWriter } from './writer.js';

let root: string;
let cleanup: () => Promise<void>;
beforeEach(async () => ({ dir: root, cleanup } = await tempDir()));
afterEach(() => cleanup());

// Class names as the official HF-backed datasets give them (`/` → space in class2label).
const CLASSES = [
  { id: 0, name: 'Black footed Albatross', rawName: '001.Black_footed_Albatross' },
  { id: 1, name: 'Laysan Albatross' },
  { id: 2, name: 'Boeing 737-200' },
];

const OFFICIAL_CSV = `First Directory,Second Directory,Number,Strength,Path
Black footed Albatross,Laysan Albatross,0,0.7,Black_footed_Albatross/Laysan_Albatross-000000-0.7.png
Laysan Albatross,Boeing 737-200,1,0.3,Laysan_Albatross/Boeing_737-200-000001-0.3.png
Boeing 737-200,Boeing 737-200,2,1.0,Boeing_737-200/Boeing_737-200-000002-1.png
`;

async function writeOfficialSet(csv = OFFICIAL_CSV, name = 'meta.csv'): Promise<void> {
  const png = await tinyPng();
  for (const p of ['Black_footed_Albatross/Laysan_Albatross-000000-0.7.png', 'Laysan_Albatross/Boeing_737-200-000001-0.3.png']) {
    await mkdir(path.join(root, 'data', path.dirname(p)), { recursive: true });
    await writeFile(path.join(root, 'data', p), png);
  }
  await writeFile(path.join(root, name), csv);
}

describe('readSyntheticSet on an official Diff-Mix set (meta.csv only)', () => {
  it('maps directory names to class ids and derives soft labels from strength', async () => {
    await writeOfficialSet();
    const set = await readSyntheticSet(root, { classes: CLASSES, gamma: 0.5, scaler: 0.9 });
    expect(set.format).toBe('meta-csv');
    expect(set.classes).toEqual(CLASSES);
    expect(set.records).toEqual([
      {
        id: 'data/Black_footed_Albatross/Laysan_Albatross-000000-0.7.png',
        path: path.join(root, 'data', 'Black_footed_Albatross/Laysan_Albatross-000000-0.7.png'),
        label: annotate({ strength: 0.7, gamma: 0.5, scaler: 0.9, sourceClass: 0, targetClass: 1 }),
        sourceClass: 0,
        targetClass: 1,
        strength: 0.7,
      },
      {
        id: 'data/Boeing_737-200/Boeing_737-200-000002-1.png',
        path: path.join(root, 'data', 'Boeing_737-200/Boeing_737-200-000002-1.png'),
        label: [[2, 0.9]],
        sourceClass: 2,
        targetClass: 2,
        strength: 1,
      },
      {
        id: 'data/Laysan_Albatross/Boeing_737-200-000001-0.3.png',
        path: path.join(root, 'data', 'Laysan_Albatross/Boeing_737-200-000001-0.3.png'),
        label: annotate({ strength: 0.3, gamma: 0.5, scaler: 0.9, sourceClass: 1, targetClass: 2 }),
        sourceClass: 1,
        targetClass: 2,
        strength: 0.3,
      },
    ]);
    // Official formula, by hand: c(1 − s^γ) on the source, c·s^γ on the target.
    const first = set.records[0]?.label;
    expect(first?.[0]?.[1]).toBeCloseTo(0.9 * (1 - 0.7 ** 0.5), 12);
    expect(first?.[1]?.[1]).toBeCloseTo(0.9 * 0.7 ** 0.5, 12);
    // Defaults: γ 0.8, c 1.
    const dflt = await readSyntheticSet(root, { classes: CLASSES });
    expect(dflt.records[0]?.label).toEqual(annotate({ strength: 0.7, gamma: 0.8, sourceClass: 0, targetClass: 1 }));
  });

  it('matches names with underscores or "/" (as official labels spell them) and plain name lists', async () => {
    const csv = `First Directory,Second Directory,Number,Strength,Path
Sooty Albatross,Sooty Albatross,4,0.5,Sooty_Albatross/Sooty_Albatross-000004-0.5.png
`;
    await writeFile(path.join(root, 'meta.csv'), csv);
    const set = await readSyntheticSet(root, { classes: ['x', 'Sooty/Albatross'] });
    expect(set.records[0]).toMatchObject({ sourceClass: 1, targetClass: 1 });
    const set2 = await readSyntheticSet(root, { classes: ['x', 'Sooty_Albatross'] });
    expect(set2.records[0]).toMatchObject({ sourceClass: 1, targetClass: 1 });
    await expect(readSyntheticSet(root, { classes: ['Sooty/Albatross', 'Sooty_Albatross'] })).rejects.toThrow(
      /meta\.csv:2: First Directory "Sooty Albatross" matches more than one class/,
    );
  });

  it('needs classes, names unknown directories, keeps one row per duplicate Path, refuses escaping Paths', async () => {
    await writeOfficialSet();
    await expect(readSyntheticSet(root)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(readSyntheticSet(root, { classes: ['Laysan Albatross'] })).rejects.toThrow(
      /meta\.csv:2: First Directory "Black footed Albatross" is not one of the given classes/,
    );
    const lines = OFFICIAL_CSV.split('\n');
    await writeFile(path.join(root, 'meta.csv'), `${OFFICIAL_CSV}${lines[1]}\n`);
    const logger = recordingLogger();
    const set = await readSyntheticSet(root, { classes: CLASSES, logger });
    expect(set.records).toHaveLength(3);
    expect(set.duplicates).toEqual(['data/Black_footed_Albatross/Laysan_Albatross-000000-0.7.png']);
    expect(logger.records.some((r) => r.level === 'warn')).toBe(true);
    await writeFile(path.join(root, 'meta.csv'), `${OFFICIAL_CSV}Laysan Albatross,Laysan Albatross,9,0.5,../../../etc/passwd\n`);
    await expect(readSyntheticSet(root, { classes: CLASSES })).rejects.toThrow(
      /meta\.csv:5: Path "..\/..\/..\/etc\/passwd" leaves/,
    );
  });

  it('reads a CLIP-filtered csv by name, and reports a missing set', async () => {
    await expect(readSyntheticSet(root, { classes: CLASSES })).rejects.toBeInstanceOf(NotFoundError);
    await writeOfficialSet(OFFICIAL_CSV.split('\n').slice(0, 3).join('\n'), 'remained_meta.csv');
    const set = await readSyntheticSet(root, { classes: CLASSES, metaCsv: 'remained_meta.csv' });
    expect(set.records).toHaveLength(2);
  });
});

describe('readSyntheticSet on our sets', () => {
  it('returns manifest labels (or relabels), rebuilds classes, and agrees with its own meta.csv', async () => {
    const png = await tinyPng();
    const names = ['Black footed Albatross', 'Laysan Albatross', 'Boeing 737-200'];
    const w = await SyntheticSetWriter.open(root, { classes: names });
    const jobs = [makeInput(1, 0, 1, 0.7), makeInput(2, 1, 2, 0.3), makeInput(3, 2, 2, 1)];
    for (const j of jobs) await w.write(j, png);
    await w.write({ ...makeInput(4, 0, 2, 0.5), clipScore: 0.25 }, png);
    await w.close();

    const set = await readSyntheticSet(root);
    expect(set.format).toBe('manifest');
    expect(set.classes).toEqual(names.map((name, id) => ({ id, name })));
    expect(set.records).toHaveLength(4);
    const byId = new Map(set.records.map((r) => [r.id, r]));
    for (const j of jobs)
      expect(byId.get(j.id)).toMatchObject({ label: j.label, sourceClass: j.sourceClass, strength: j.strength });
    expect(set.records.filter((r) => r.clipScore !== undefined).map((r) => r.clipScore)).toEqual([0.25]);

    const relabelled = await readSyntheticSet(root, { relabel: true, gamma: 0.5 });
    expect(new Map(relabelled.records.map((r) => [r.id, r])).get(jobs[0]!.id)?.label).toEqual(
      annotate({ strength: 0.7, gamma: 0.5, sourceClass: 0, targetClass: 1 }),
    );

    // The official reading of our meta.csv gives the same images, classes and (γ 0.8) labels.
    const official = await readSyntheticSet(root, { source: 'meta-csv', classes: names, gamma: 0.8 });
    expect(official.records.map((r) => [r.path, r.sourceClass, r.targetClass, r.strength])).toEqual(
      set.records.map((r) => [r.path, r.sourceClass, r.targetClass, r.strength]),
    );
    for (const [i, r] of official.records.entries()) {
      const mine = set.records[i]!.label;
      expect(r.label.map(([c]) => c)).toEqual(mine.map(([c]) => c));
      for (const [k, [, wgt]] of r.label.entries()) expect(wgt).toBeCloseTo(mine[k]![1], 12);
    }
  });

  it('skips a torn final line with a warning and reports duplicate job ids', async () => {
    const png = await tinyPng();
    const w = await SyntheticSetWriter.open(root, { classes: ['a', 'b'] });
    const line = await w.write(makeInput(1, 0, 1), png);
    await w.write(makeInput(2, 1, 0), png);
    await w.close();
    const manifest = path.join(root, 'manifest.jsonl');
    await appendFile(manifest, serializeManifestLine({ ...line, createdAt: '2999-01-01T00:00:00.000Z' }));
    await appendFile(manifest, '{"v":1,"id":"abc');
    const logger = recordingLogger();
    const set = await readSyntheticSet(root, { logger });
    expect(set.records).toHaveLength(2);
    expect(set.duplicates).toEqual([line.id]);
    expect(logger.records.filter((r) => r.level === 'warn').map((r) => r.message)).toEqual([
      expect.stringMatching(/torn final manifest line/),
      expect.stringMatching(/duplicate/),
    ]);
    // Reading never modifies the set.
    expect((await readFile(manifest, 'utf8')).endsWith('"id":"abc')).toBe(true);
    await expect(readSyntheticSet(root, { classes: ['a'] })).rejects.toBeInstanceOf(DatasetFormatError);
  });
});
