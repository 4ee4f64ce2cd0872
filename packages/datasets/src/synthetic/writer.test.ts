import { appendFile, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import {
  DatasetFormatError,
  InvalidArgumentError,
  UnsafePathError,
  resolveInside,
  inShard,
  serializeManifestLine,
  sha256Hex,
} from '@diffmix/core';
import type { ManifestLine } from '@diffmix/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseMetaCsv } from './meta-csv.js';
import { readSyntheticSet } from './read.js';
import { mergeShardManifests } from './set.js';
import { listFiles, makeInput, recordingLogger, tempDir, tinyPng } from './test-support.js';
import { SyntheticSetWriter } from './writer.js';

const CLASSES = ['Black footed Albatross', 'Laysan Albatross', 'Sooty/Albatross'];
const STRENGTHS = [0.3, 0.5, 0.7, 0.9, 1];

function inputs(n: number, offset = 0) {
  return Array.from({ length: n }, (_, k) => {
    const i = k + offset;
    return makeInput(i, i % 3, (i * 7 + 1) % 3, STRENGTHS[i % STRENGTHS.length]);
  });
}

async function manifestLines(file: string): Promise<ManifestLine[]> {
  const text = await readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as ManifestLine);
}

async function pngFiles(root: string): Promise<string[]> {
  return (await listFiles(root)).filter((f) => f.startsWith('data/'));
}

let root: string;
let cleanup: () => Promise<void>;
let png: Buffer;
let png2: Buffer;
beforeEach(async () => {
  const t = await tempDir();
  root = path.join(t.dir, 'set');
  cleanup = t.cleanup;
  png = await tinyPng();
  png2 = await tinyPng('#ff0000');
});
afterEach(() => cleanup());

describe('SyntheticSetWriter', () => {
  it('writes the official layout, manifest and meta.csv; a reopen loses and duplicates nothing', async () => {
    const jobs = inputs(12);
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES });
    const lines = await Promise.all(jobs.map((j) => w.write(j, png))); // concurrent writes, serialised appends
    expect(w.size).toBe(12);
    const first = lines[0] as ManifestLine;
    const job0 = jobs[0] as (typeof jobs)[number];
    expect(first.path).toBe(w.pathFor(job0));
    expect(first.path).toMatch(/^data\/Black_footed_Albatross\/Laysan_Albatross-\d{6,}-0\.3\.png$/);
    expect(first).toMatchObject({
      v: 1,
      id: job0.id,
      sourceClassName: 'Black footed Albatross',
      targetClassName: 'Laysan Albatross',
      sha256: sha256Hex(png),
      label: job0.label,
    });
    await w.close();

    const files = await listFiles(root);
    expect(files.filter((f) => !f.startsWith('data/'))).toEqual(['manifest.jsonl', 'meta.csv']);
    expect(await pngFiles(root)).toEqual(lines.map((l) => l.path).sort());
    const onDisk = await manifestLines(path.join(root, 'manifest.jsonl'));
    expect(onDisk.map((l) => l.id).sort()).toEqual(jobs.map((j) => j.id).sort());

    const metaText = await readFile(path.join(root, 'meta.csv'), 'utf8');
    expect(metaText.split('\n')[0]).toBe('First Directory,Second Directory,Number,Strength,Path');
    const meta = parseMetaCsv(metaText);
    expect(meta).toHaveLength(12);
    const row = meta.find((r) => `data/${r.path}` === first.path);
    expect(row).toMatchObject({
      firstDirectory: 'Black footed Albatross',
      secondDirectory: 'Laysan Albatross',
      number: first.index,
      strength: 0.3,
    });
    expect(meta.some((r) => r.firstDirectory === 'Sooty Albatross' && r.path.startsWith('Sooty_Albatross/'))).toBe(true);
    expect(metaText).toMatch(/,1\.0,[^\n]+-1\.0\.png\n/);

    const again = await SyntheticSetWriter.open(root, { classes: CLASSES });
    expect(jobs.every((j) => again.has(j.id))).toBe(true);
    expect(again.size).toBe(12);
    expect(again.recovery).toMatchObject({
      tornTail: undefined,
      dropped: [],
      duplicates: [],
      orphansDeleted: [],
      tempsDeleted: [],
    });
    const extra = inputs(1, 12)[0] as (typeof jobs)[number];
    await again.write(extra, png);
    await again.close();
    expect(await manifestLines(path.join(root, 'manifest.jsonl'))).toHaveLength(13);
    expect(await pngFiles(root)).toHaveLength(13);
    const set = await readSyntheticSet(root);
    expect(set.records).toHaveLength(13);
    expect(set.classes.map((c) => c.name)).toEqual(CLASSES);
  });

  it('an image renamed into place without its manifest line (crash) is deleted and redone under the same name', async () => {
    const [a, b, c, x] = inputs(4);
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES });
    for (const j of [a, b, c]) await w.write(j!, png);
    const orphanPath = w.pathFor(x!);
    await w.close();
    // The crash: image renamed, line never appended; plus a temp file of a write that never finished.
    await mkdir(path.dirname(path.join(root, orphanPath)), { recursive: true });
    await writeFile(path.join(root, orphanPath), png2);
    const tmp = `${path.dirname(orphanPath)}/.diffmix-tmp.${b!.id}.s0of1.0badc0de`;
    await writeFile(path.join(root, tmp), png.subarray(0, 10));

    const logger = recordingLogger();
    const again = await SyntheticSetWriter.open(root, { classes: CLASSES, logger });
    expect(again.recovery.orphansDeleted).toEqual([orphanPath]);
    expect(again.recovery.tempsDeleted).toEqual([tmp]);
    expect(logger.records.some((r) => r.level === 'warn' && /without a manifest line/.test(r.message))).toBe(true);
    expect(again.has(x!.id)).toBe(false);
    expect(again.has(a!.id) && again.has(b!.id) && again.has(c!.id)).toBe(true);
    const line = await again.write(x!, png);
    expect(line.path).toBe(orphanPath);
    await again.close();
    const lines = await manifestLines(path.join(root, 'manifest.jsonl'));
    expect(lines.filter((l) => l.id === x!.id)).toHaveLength(1);
    expect(lines).toHaveLength(4);
    expect(await pngFiles(root)).toEqual(lines.map((l) => l.path).sort());
    expect(await readFile(path.join(root, orphanPath))).toEqual(png);
  });

  it('drops a torn final manifest line, truncates the file and redoes that job exactly once', async () => {
    const [a, b, c, y] = inputs(4);
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES });
    for (const j of [a, b, c]) await w.write(j!, png);
    const yPath = w.pathFor(y!);
    await w.close();
    const manifest = path.join(root, 'manifest.jsonl');
    const intact = await readFile(manifest);
    // The crash: image in place, only part of its line written.
    await writeFile(path.join(root, yPath), png);
    const partial = JSON.stringify({ v: 1, id: y!.id, strategy: 'diff-mix', path: yPath }).slice(0, 50);
    await appendFile(manifest, partial);

    const again = await SyntheticSetWriter.open(root, { classes: CLASSES });
    expect(again.recovery.tornTail).toMatchObject({ line: 4, bytes: Buffer.byteLength(partial) });
    expect(await readFile(manifest)).toEqual(intact);
    expect(again.has(y!.id)).toBe(false);
    expect(again.recovery.orphansDeleted).toEqual([yPath]);
    await again.write(y!, png);
    await again.close();
    const lines = await manifestLines(manifest);
    expect(lines.map((l) => l.id)).toEqual([a!.id, b!.id, c!.id, y!.id]);
    expect(await pngFiles(root)).toHaveLength(4);
  });

  it('also drops a final line that ends in a newline but does not parse', async () => {
    const [a, b] = inputs(2);
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES });
    await w.write(a!, png);
    await w.write(b!, png);
    await w.close();
    const manifest = path.join(root, 'manifest.jsonl');
    await appendFile(manifest, '{"v":1,"id":"\n\u0000\u0000\u0000');
    const again = await SyntheticSetWriter.open(root, { classes: CLASSES });
    expect(again.recovery.tornTail?.line).toBe(3);
    expect(again.size).toBe(2);
    await again.close();
    expect(await manifestLines(manifest)).toHaveLength(2);
  });

  it('keeps a complete final line that lacks only its newline (append cut just before it)', async () => {
    const [a, b, c] = inputs(3);
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES });
    await w.write(a!, png);
    await w.write(b!, png);
    await w.close();
    const manifest = path.join(root, 'manifest.jsonl');
    const text = await readFile(manifest, 'utf8');
    await writeFile(manifest, text.slice(0, -1));
    const again = await SyntheticSetWriter.open(root, { classes: CLASSES });
    expect(again.recovery.tornTail).toBeUndefined();
    expect(again.has(b!.id)).toBe(true);
    await again.write(c!, png);
    await again.close();
    expect((await manifestLines(manifest)).map((l) => l.id)).toEqual([a!.id, b!.id, c!.id]);
  });

  it('a corrupt line in the middle is an error naming file:line', async () => {
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES });
    for (const j of inputs(3)) await w.write(j, png);
    await w.close();
    const manifest = path.join(root, 'manifest.jsonl');
    const lines = (await readFile(manifest, 'utf8')).split('\n');
    lines[1] = '{"v":1,"id":"not a job"}';
    await writeFile(manifest, lines.join('\n'));
    const err = await SyntheticSetWriter.open(root, { classes: CLASSES }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatasetFormatError);
    expect((err as Error).message).toContain(`${manifest}:2:`);
    await expect(readSyntheticSet(root)).rejects.toThrow(`${manifest}:2:`);
    // The failed open released its lock.
    await expect(readdir(root)).resolves.not.toContain('manifest.jsonl.lock');
  });

  it('a line whose image changed (sha256) or vanished is dropped and the job redone', async () => {
    const [a, b, c] = inputs(3);
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES });
    for (const j of [a, b, c]) await w.write(j!, png);
    await w.close();
    await writeFile(path.join(root, w.pathFor(b!)), png2); // corrupted in place
    await rm(path.join(root, w.pathFor(c!))); // lost

    const logger = recordingLogger();
    const again = await SyntheticSetWriter.open(root, { classes: CLASSES, logger });
    expect(again.recovery.dropped.map((d) => [d.id, d.reason, d.line])).toEqual([
      [b!.id, 'sha256', 2],
      [c!.id, 'missing', 3],
    ]);
    expect(logger.records.filter((r) => r.level === 'warn').map((r) => r.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/sha256/), expect.stringMatching(/missing image/)]),
    );
    expect(again.recovery.rewroteManifest).toBe(true);
    expect(again.recovery.orphansDeleted).toEqual([w.pathFor(b!)]);
    expect([again.has(a!.id), again.has(b!.id), again.has(c!.id)]).toEqual([true, false, false]);
    await again.write(b!, png);
    await again.write(c!, png);
    await again.close();
    const lines = await manifestLines(path.join(root, 'manifest.jsonl'));
    expect(lines.map((l) => l.id).sort()).toEqual([a!.id, b!.id, c!.id].sort());
    expect(await readFile(path.join(root, w.pathFor(b!)))).toEqual(png);
    // verify: 'exists' skips hashing: a changed image is then accepted.
    await writeFile(path.join(root, w.pathFor(a!)), png2);
    const lax = await SyntheticSetWriter.open(root, { classes: CLASSES, verify: 'exists' });
    expect(lax.has(a!.id)).toBe(true);
    await lax.close();
  });

  it('keeps the newest of duplicate lines and rewrites the manifest with one', async () => {
    const [a] = inputs(1);
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES, now: () => new Date('2025-01-01T00:00:00Z') });
    const line = await w.write(a!, png);
    await w.close();
    const manifest = path.join(root, 'manifest.jsonl');
    await appendFile(manifest, serializeManifestLine({ ...line, createdAt: '2025-02-01T00:00:00.000Z' }));
    const again = await SyntheticSetWriter.open(root, { classes: CLASSES });
    expect(again.recovery.duplicates).toEqual([
      { id: a!.id, kept: { file: manifest, lineNo: 2 }, dropped: [{ file: manifest, lineNo: 1 }] },
    ]);
    expect(again.get(a!.id)?.createdAt).toBe('2025-02-01T00:00:00.000Z');
    await again.close();
    expect(await manifestLines(manifest)).toHaveLength(1);
  });

  it('refuses bad writes', async () => {
    const [a, b] = inputs(2);
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES });
    await w.write(a!, png);
    await expect(w.write(a!, png)).rejects.toThrow(/already in the set/);
    const p = w.write(b!, png);
    await expect(w.write(b!, png)).rejects.toThrow(/already being written/);
    await p;
    await expect(w.write({ ...b!, seed: 999 }, png)).rejects.toThrow(/does not match/);
    const far = makeInput(50, 0, 7);
    await expect(w.write(far, png)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(w.write({ ...makeInput(51, 0, 1), label: [[9, 1]] }, png)).rejects.toThrow(/class id 9/);
    await w.close();
    await expect(w.write(makeInput(52, 0, 1), png)).rejects.toThrow(/closed/);
    expect(await pngFiles(root)).toHaveLength(2);
  });

  it('holds one lock per manifest; a stale lock of a dead process is taken over', async () => {
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES });
    await expect(SyntheticSetWriter.open(root, { classes: CLASSES })).rejects.toThrow(/another writer/);
    await expect(SyntheticSetWriter.open(root, { classes: CLASSES, shard: { index: 0, count: 2 } })).rejects.toThrow(
      /same shard count/,
    );
    await w.close();
    await writeFile(path.join(root, 'manifest.jsonl.lock'), JSON.stringify({ pid: 2 ** 22 + 4321, hostname: hostname() }));
    const again = await SyntheticSetWriter.open(root, { classes: CLASSES });
    await again.close();
    await expect(readdir(root)).resolves.not.toContain('manifest.jsonl.lock');
  });

  it('refuses a folder with images but no manifest (an official set) instead of deleting them', async () => {
    await mkdir(path.join(root, 'data', 'Laysan_Albatross'), { recursive: true });
    await writeFile(path.join(root, 'data', 'Laysan_Albatross', 'Laysan_Albatross-000001-0.5.png'), png);
    await expect(SyntheticSetWriter.open(root, { classes: CLASSES })).rejects.toThrow(/no manifest/);
    expect(await pngFiles(root)).toHaveLength(1);
  });
});

describe('concurrent shards', () => {
  it('two shard writers fill one set; each resumes only its own jobs; manifests merge', async () => {
    const jobs = inputs(40);
    const shards = [0, 1].map((index) => ({ index, count: 2 }));
    const [w0, w1] = await Promise.all(shards.map((shard) => SyntheticSetWriter.open(root, { classes: CLASSES, shard })));
    await Promise.all([w0!, w1!].map((w) => Promise.all(jobs.filter((j) => inShard(j.id, w.shard)).map((j) => w.write(j, png)))));
    const mine = jobs.filter((j) => inShard(j.id, shards[0]!));
    expect(mine.length).toBeGreaterThan(5);
    expect(mine.length).toBeLessThan(35);
    await expect(w0!.write(jobs.find((j) => !inShard(j.id, shards[0]!))!, png)).rejects.toThrow(/another shard/);
    await Promise.all([w0!.close(), w1!.close()]);

    expect((await listFiles(root)).filter((f) => !f.startsWith('data/'))).toEqual([
      'manifest.shard-0-of-2.jsonl',
      'manifest.shard-1-of-2.jsonl',
      'meta.csv',
    ]);
    expect(await pngFiles(root)).toHaveLength(40);
    expect(parseMetaCsv(await readFile(path.join(root, 'meta.csv'), 'utf8'))).toHaveLength(40);
    expect((await readSyntheticSet(root)).records).toHaveLength(40);

    // An orphan of shard 1 is left alone by shard 0 (its writer might be mid-write) and removed by shard 1.
    const extra = inputs(60, 40).find((j) => inShard(j.id, shards[1]!))!;
    const r0 = await SyntheticSetWriter.open(root, { classes: CLASSES, shard: shards[0] });
    const orphan = path.join(root, (r0 as SyntheticSetWriter).pathFor(extra));
    await writeFile(orphan, png);
    await r0.close();
    const r0b = await SyntheticSetWriter.open(root, { classes: CLASSES, shard: shards[0] });
    expect(r0b.recovery.orphansDeleted).toEqual([]);
    expect(jobs.every((j) => r0b.has(j.id))).toBe(true); // sees the other shard's manifest too
    const r1 = await SyntheticSetWriter.open(root, { classes: CLASSES, shard: shards[1] });
    expect(r1.recovery.orphansDeleted).toEqual([path.relative(root, orphan)]);
    await Promise.all([r0b.close(), r1.close()]);

    const merged = await mergeShardManifests(root);
    expect(merged.lines).toBe(40);
    expect((await listFiles(root)).filter((f) => !f.startsWith('data/'))).toEqual(['manifest.jsonl', 'meta.csv']);
    const single = await SyntheticSetWriter.open(root, { classes: CLASSES });
    expect(single.size).toBe(40);
    expect(single.recovery.dropped).toEqual([]);
    await single.close();
  });
});

describe('hostile class names', () => {
  it('never leave the output folder', async () => {
    const names = ['../../etc', 'a/b', 'x\u0000y', 'line\nbreak', 'C:\\dos', '.hidden', 'tab\tname', 'quote"comma,'];
    const parent = path.dirname(root);
    const w = await SyntheticSetWriter.open(root, { classes: names });
    const jobs = names.map((_, i) => makeInput(i, i, (i + 1) % names.length, 0.5));
    for (const j of jobs) await w.write(j, png);
    await w.close();
    expect(await readdir(parent)).toEqual(['set']);
    const folders = await readdir(path.join(root, 'data'));
    expect(folders.sort()).toEqual(
      ['.._.._etc', '.hidden', 'C__dos', 'a_b', 'line_break', 'quote_comma,', 'tab_name', 'x_y'].sort(),
    );
    for (const f of await pngFiles(root)) {
      expect(f.split('/')).toHaveLength(3);
      expect([...f].some((ch) => ch.charCodeAt(0) < 0x20 || ch === '\\')).toBe(false);
    }
    // The official meta.csv round-trips these names back to the right class ids.
    const viaCsv = await readSyntheticSet(root, { source: 'meta-csv', classes: names });
    const viaManifest = await readSyntheticSet(root);
    expect(viaCsv.records.map((r) => [r.path, r.sourceClass, r.targetClass])).toEqual(
      viaManifest.records.map((r) => [r.path, r.sourceClass, r.targetClass]),
    );
    for (const r of viaCsv.records) expect(r.path.startsWith(path.join(root, 'data') + path.sep)).toBe(true);
    // Resuming keeps them all (a folder named `.._.._etc` is inside the set, not an escape).
    const again = await SyntheticSetWriter.open(root, { classes: names });
    expect(again.recovery.dropped).toEqual([]);
    expect(again.recovery.orphansDeleted).toEqual([]);
    expect(again.size).toBe(names.length);
    await again.close();
  });

  it('resolveInside compares path components', () => {
    expect(resolveInside('/r', '.._.._etc/x.png')).toBe('/r/.._.._etc/x.png');
    expect(resolveInside('/r', '..foo')).toBe('/r/..foo');
    for (const bad of ['..', '../x', 'a/../../x', '/etc/passwd', '', '.'])
      expect(() => resolveInside('/r', bad)).toThrow(UnsafePathError);
  });

  it('names that cannot be a folder are refused before anything is written', async () => {
    for (const bad of ['..', '.', '']) {
      await expect(SyntheticSetWriter.open(root, { classes: ['ok', bad] })).rejects.toBeInstanceOf(UnsafePathError);
    }
    await expect(stat(root)).rejects.toThrow(/ENOENT/);
  });

  it('a manifest line pointing outside the set is rejected as corrupt', async () => {
    const w = await SyntheticSetWriter.open(root, { classes: CLASSES });
    const line = await w.write(makeInput(1, 0, 1), png);
    await w.write(makeInput(2, 0, 1), png);
    await w.close();
    const manifest = path.join(root, 'manifest.jsonl');
    const text = await readFile(manifest, 'utf8');
    await writeFile(manifest, text.replace(line.path, '../../outside.png'));
    await expect(SyntheticSetWriter.open(root, { classes: CLASSES })).rejects.toThrow(`${manifest}:1:`);
  });
});
