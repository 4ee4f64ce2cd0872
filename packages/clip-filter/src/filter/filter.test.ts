import { createHash } from 'node:crypto';
import { appendFile, copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AbortedError,
  createProgress,
  DatasetFormatError,
  ImageDecodeError,
  InvalidArgumentError,
  type ProgressReporter,
} from '@diffmix/core';
import { decodeImage, META_CSV_FILE, readMetaCsv, readSyntheticSet } from '@diffmix/datasets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClipModel } from '../model/clip-model.js';
import { percentileLinear } from '../score/math.js';
import { TINY_CLIP, tempDir } from '../test-support/golden.js';
import { TEST_CLASSES, writeTestSet } from '../test-support/synthetic.js';
import {
  FILTER_DIR,
  FILTER_FILES,
  type FilterResult,
  filterSyntheticSet,
  REMAINED_META_CSV,
  readRemainedManifest,
} from './filter.js';

let model: ClipModel;
let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  model = await ClipModel.load(TINY_CLIP);
  tmp = await tempDir();
});
afterAll(async () => {
  await model.release();
  await tmp.cleanup();
});

async function treeHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
      else
        out[r] = createHash('sha256')
          .update(await readFile(path.join(d, e.name)))
          .digest('hex');
    }
  };
  await walk(dir, '');
  return out;
}

const base = { metaclass: 'bird', progress: 'silent' as const, batchSize: 4 };

describe('filterSyntheticSet on a manifest set', () => {
  let root: string;
  let result: FilterResult;
  let before: Record<string, string>;

  beforeAll(async () => {
    root = path.join(tmp.dir, 'set');
    await writeTestSet(root, 14);
    before = await treeHashes(root);
    result = await filterSyntheticSet(root, { ...base, model, dropPercent: 25 });
  });

  it('drops score < np.percentile(scores, q), keeps the rest', () => {
    const scores = result.images.map((im) => im.score);
    const t = percentileLinear(scores, 25);
    expect(result.threshold).toBe(t);
    expect(result.total).toBe(14);
    expect(result.dropped).toBe(scores.filter((s) => s < t).length);
    expect(result.kept + result.dropped).toBe(14);
    expect(result.dropped).toBeGreaterThan(0);
    // Lowest first, ranks 1…n.
    expect(scores).toEqual([...scores].sort((a, b) => a - b));
    expect(result.images.map((im) => im.rank)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    for (const im of result.images) expect(im.kept).toBe(im.score >= t);
  });

  it('never touches the set: every file that existed is unchanged', async () => {
    const after = await treeHashes(root);
    for (const [file, hash] of Object.entries(before)) expect(after[file], file).toBe(hash);
    const added = Object.keys(after).filter((f) => !(f in before));
    expect(added.sort()).toEqual([REMAINED_META_CSV, ...Object.values(FILTER_FILES).map((f) => `${FILTER_DIR}/${f}`)].sort());
  });

  it('remained_meta.csv is what the official reader and readSyntheticSet read', async () => {
    const rows = await readMetaCsv(path.join(root, REMAINED_META_CSV));
    expect(rows.length).toBe(result.kept);
    const all = await readMetaCsv(path.join(root, META_CSV_FILE));
    const keptPaths = new Set(result.images.filter((im) => im.kept).map((im) => im.path.replace(/^data\//, '')));
    expect(rows.map((r) => r.path).sort()).toEqual(
      all
        .filter((r) => keptPaths.has(r.path))
        .map((r) => r.path)
        .sort(),
    );
    const set = await readSyntheticSet(root, { source: 'meta-csv', metaCsv: REMAINED_META_CSV, classes: TEST_CLASSES });
    expect(set.records.length).toBe(result.kept);
  });

  it('the kept manifest carries clipScore; dropped lists agree', async () => {
    const kept = await readRemainedManifest(root);
    expect(kept.length).toBe(result.kept);
    const byId = new Map(result.images.map((im) => [im.id, im]));
    for (const line of kept) {
      expect(line.clipScore).toBeCloseTo(byId.get(line.id)?.score as number, 12);
      expect(byId.get(line.id)?.kept).toBe(true);
    }
    const dropped = (await readFile(path.join(root, FILTER_DIR, FILTER_FILES.droppedManifest), 'utf8')).trim().split('\n');
    expect(dropped.length).toBe(result.dropped);
    const droppedCsv = (await readFile(path.join(root, FILTER_DIR, FILTER_FILES.droppedCsv), 'utf8')).trim().split('\n');
    expect(droppedCsv[0]).toBe('rank,id,path,score,logit_positive,logit_negative,kept');
    expect(droppedCsv.length - 1).toBe(result.dropped);
    expect((await readMetaCsv(path.join(root, FILTER_DIR, FILTER_FILES.droppedMetaCsv))).length).toBe(result.dropped);
    const csv = (await readFile(path.join(root, FILTER_DIR, FILTER_FILES.scoresCsv), 'utf8')).trim().split('\n');
    expect(csv.length - 1).toBe(14);
  });

  it('writes a contact sheet of the lowest scores with a legend, and a summary', async () => {
    const legend = JSON.parse(await readFile(path.join(root, FILTER_DIR, FILTER_FILES.contactSheetJson), 'utf8'));
    const sheet = await decodeImage(path.join(root, FILTER_DIR, FILTER_FILES.contactSheet));
    expect([sheet.width, sheet.height]).toEqual([legend.width, legend.height]);
    expect(legend.cells.length).toBe(14);
    expect(legend.cells[0]).toMatchObject({ rank: 1, row: 0, column: 0, label: `#1 ${result.images[0]?.score.toFixed(4)}` });
    const summary = JSON.parse(await readFile(path.join(root, FILTER_DIR, FILTER_FILES.summary), 'utf8'));
    expect(summary).toMatchObject({
      total: 14,
      kept: result.kept,
      dropped: result.dropped,
      dropPercent: 25,
      captions: ['a photo with a bird on it', 'a photo without a bird on it'],
    });
    expect(summary.model.logitScaleSource).toBe('logit_scale.json');
  });

  it('a rerun reuses every score', async () => {
    const again = await filterSyntheticSet(root, { ...base, model, dropPercent: 25 });
    expect(again.resumed).toBe(14);
    expect(again.images).toEqual(result.images);
  });

  it('other captions need rescore: true', async () => {
    await expect(filterSyntheticSet(root, { ...base, model, captions: ['a bird', 'no bird'] })).rejects.toThrow(/rescore: true/);
    const fresh = await filterSyntheticSet(root, {
      ...base,
      model,
      captions: ['a bird', 'no bird'],
      rescore: true,
      contactSheetCount: 0,
    });
    expect(fresh.resumed).toBe(0);
    expect(fresh.dropped).toBe(fresh.images.filter((im) => im.score < fresh.threshold).length);
  });
});

describe('resumable scoring', () => {
  it('an interrupted run keeps finished batches; the rerun scores only the rest and matches a clean run', async () => {
    const root = path.join(tmp.dir, 'resume');
    await writeTestSet(root, 10);
    const controller = new AbortController();
    const inner = createProgress({ label: 'x', mode: 'silent' });
    const abortingProgress: ProgressReporter = {
      ...inner,
      tick: (n) => {
        inner.tick(n);
        controller.abort();
      },
    };
    const err = await filterSyntheticSet(root, { ...base, model, progress: abortingProgress, signal: controller.signal }).catch(
      (e) => e,
    );
    expect(AbortedError.isInstance(err)).toBe(true);
    const log = (await readFile(path.join(root, FILTER_DIR, FILTER_FILES.scoresLog), 'utf8')).trim().split('\n');
    expect(log.length).toBe(1 + 4); // header + one batch

    // A crash in the middle of an append leaves a torn line: dropped on resume.
    await appendFile(path.join(root, FILTER_DIR, FILTER_FILES.scoresLog), '{"id":"abc","pa');
    const resumed = await filterSyntheticSet(root, { ...base, model });
    expect(resumed.resumed).toBe(4);
    const clean = await filterSyntheticSet(root, { ...base, model, rescore: true, outDir: path.join(tmp.dir, 'resume-clean') });
    expect(resumed.images.map((im) => [im.id, im.kept])).toEqual(clean.images.map((im) => [im.id, im.kept]));
    for (const [i, im] of resumed.images.entries()) expect(im.score).toBeCloseTo(clean.images[i]?.score as number, 6);
  });
});

describe('official sets (meta.csv only)', () => {
  it('filters by meta.csv rows and writes remained_meta.csv with the original rows', async () => {
    const src = path.join(tmp.dir, 'src-official');
    await writeTestSet(src, 8);
    const root = path.join(tmp.dir, 'official');
    const rows = await readMetaCsv(path.join(src, META_CSV_FILE));
    for (const r of rows) {
      await mkdir(path.dirname(path.join(root, 'data', r.path)), { recursive: true });
      await copyFile(path.join(src, 'data', r.path), path.join(root, 'data', r.path));
    }
    await copyFile(path.join(src, META_CSV_FILE), path.join(root, META_CSV_FILE));
    const result = await filterSyntheticSet(root, { ...base, model });
    expect(result.format).toBe('meta-csv');
    expect(result.images[0]?.id).toMatch(/^data\//);
    const kept = await readMetaCsv(path.join(root, REMAINED_META_CSV));
    expect(kept.length).toBe(result.kept);
    expect(kept.map(({ line: _l, ...r }) => r)).toEqual(
      rows.filter((r) => result.images.find((im) => im.id === `data/${r.path}`)?.kept).map(({ line: _l, ...r }) => r),
    );
    await expect(readRemainedManifest(root)).rejects.toThrow(/not found/);
  });
});

describe('bad input', () => {
  it('an unknown metaclass without captions fails before anything is written', async () => {
    const root = path.join(tmp.dir, 'bad-meta');
    await writeTestSet(root, 2);
    const err = await filterSyntheticSet(root, { ...base, model, metaclass: 'submarine' }).catch((e) => e);
    expect(InvalidArgumentError.isInstance(err)).toBe(true);
    expect(err.message).toMatch(/no captions known for metaclass "submarine"/);
    expect((await readdir(root)).includes(FILTER_DIR)).toBe(false);
  });

  it('an empty set is refused', async () => {
    const root = path.join(tmp.dir, 'empty');
    await mkdir(root, { recursive: true });
    await writeFile(path.join(root, 'manifest.jsonl'), '');
    const err = await filterSyntheticSet(root, { ...base, model }).catch((e) => e);
    expect(DatasetFormatError.isInstance(err)).toBe(true);
    expect(err.message).toMatch(/no images to filter/);
    await expect(filterSyntheticSet(path.join(tmp.dir, 'nothing-here'), { ...base, model })).rejects.toThrow(
      /synthetic set .* not found/,
    );
  });

  it('a corrupt image is named, and the scores before it are kept', async () => {
    const root = path.join(tmp.dir, 'corrupt');
    const lines = await writeTestSet(root, 9);
    const sorted = [...lines].sort((a, b) => (a.path < b.path ? -1 : 1));
    const victim = sorted[6]?.path as string; // in the second batch of 4
    await writeFile(path.join(root, victim), 'not a png at all');
    const err = await filterSyntheticSet(root, { ...base, model }).catch((e) => e);
    expect(ImageDecodeError.isInstance(err)).toBe(true);
    expect(err.message).toContain(path.join(root, victim));
    const log = (await readFile(path.join(root, FILTER_DIR, FILTER_FILES.scoresLog), 'utf8')).trim().split('\n');
    expect(log.length).toBe(1 + 4);
  });

  it('dropPercent and contactSheetCount are checked', async () => {
    await expect(filterSyntheticSet(tmp.dir, { ...base, model, dropPercent: 120 })).rejects.toThrow(/dropPercent/);
    await expect(filterSyntheticSet(tmp.dir, { ...base, model, contactSheetCount: -1 })).rejects.toThrow(/contactSheetCount/);
  });
});
