import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeToyDataset } from '@diffmix/datasets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffmix, tinySd } from './test-support/run-cli.js';

let tmp: string;
let toy: string;

async function countImages(dir: string): Promise<number> {
  if (!existsSync(path.join(dir, 'data'))) return 0;
  let n = 0;
  for (const cls of await readdir(path.join(dir, 'data')))
    n += (await readdir(path.join(dir, 'data', cls))).filter((f) => f.endsWith('.png')).length;
  return n;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diffmix-sample-'));
  toy = path.join(tmp, 'toy');
  await writeToyDataset(toy, { numClasses: 3, imagesPerClass: 4, testPerClass: 1, size: 48, seed: 0 });
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

const common = [
  '--format',
  'imagefolder',
  '--model',
  tinySd,
  '--strategy',
  'real-mix',
  '--steps',
  '4',
  '--size',
  '64',
  '--strengths',
  '0.5,1.0',
];

describe('diffmix sample', () => {
  it('writes the set with the official layout and prints a JSON summary', async () => {
    const out = path.join(tmp, 'set');
    const r = await diffmix(['sample', '--data', toy, '--out', out, '--count', '5', '--batch-size', '2', '--json', ...common]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ status: 'completed', planned: 5, generated: 5, failed: 0 });
    expect(await countImages(out)).toBe(5);
    const meta = await readFile(path.join(out, 'meta.csv'), 'utf8');
    expect(meta.split('\n')[0]).toBe('First Directory,Second Directory,Number,Strength,Path');
    const again = await diffmix(['sample', '--data', toy, '--out', out, '--count', '5', '--json', ...common]);
    expect(JSON.parse(again.stdout)).toMatchObject({ alreadyDone: 5, generated: 0 });
  });

  it('Ctrl-C stops with exit 130 and a re-run finishes the set with every job once', async () => {
    const out = path.join(tmp, 'interrupted');
    const args = ['sample', '--data', toy, '--out', out, '--count', '8', ...common];
    let sent = false;
    const first = await diffmix(args, (text, child) => {
      // the first progress line after an image: interrupt
      if (!sent && /"done":[1-9]/.test(text)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(sent).toBe(true);
    expect(first.code, first.stderr).toBe(130);
    const partial = await countImages(out);
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(8);
    const second = await diffmix([...args, '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ alreadyDone: partial, generated: 8 - partial });
    expect(await countImages(out)).toBe(8);
    const manifest = (await readFile(path.join(out, 'manifest.jsonl'), 'utf8')).trim().split('\n');
    expect(new Set(manifest.map((l) => JSON.parse(l).id)).size).toBe(8);
  });

  it('an unknown strategy or format is a usage error (exit 2)', async () => {
    const r = await diffmix([
      'sample',
      '--data',
      toy,
      '--out',
      path.join(tmp, 'x'),
      '--format',
      'imagefolder',
      '--model',
      tinySd,
      '--strategy',
      'nope',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nope/);
    const f = await diffmix(['sample', '--data', toy, '--out', path.join(tmp, 'x'), '--format', 'coco', '--model', tinySd]);
    expect(f.code).toBe(2);
    expect(f.stderr).toMatch(/--format/);
  });
});

describe('diffmix filter', () => {
  const tinyClip = path.resolve(import.meta.dirname, '../../clip-filter/fixtures/golden/tiny-clip');
  it('scores the set from the sample test and writes remained_meta.csv without touching the images', async () => {
    const set = path.join(tmp, 'set');
    const before = await countImages(set);
    expect(before).toBe(5);
    const r = await diffmix([
      'filter',
      '--set',
      set,
      '--clip',
      tinyClip,
      '--metaclass',
      'object',
      '--drop-fraction',
      '0.2',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.total).toBe(5);
    expect(result.kept + result.dropped).toBe(5);
    expect(result.dropped).toBeGreaterThan(0);
    const remained = (await readFile(path.join(set, 'remained_meta.csv'), 'utf8')).trim().split('\n');
    expect(remained).toHaveLength(1 + result.kept);
    expect(await countImages(set)).toBe(5);
  });

  it('two captions are required when captions are given', async () => {
    const r = await diffmix(['filter', '--set', path.join(tmp, 'set'), '--clip', tinyClip, '--caption', 'only one']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/two captions/);
  });
});

describe('diffmix longtail', () => {
  it('writes an imbalanced subset manifest whose size matches the formula', async () => {
    const out = path.join(tmp, 'lt.json');
    const r = await diffmix([
      'longtail',
      '--data',
      toy,
      '--format',
      'imagefolder',
      '--imbalance-factor',
      '4',
      '--out',
      out,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.subsetImages).toBe(s.expectedTotal);
    expect(s.largestClass).toBeGreaterThan(s.smallestClass);
    expect(existsSync(out)).toBe(true);
    const bad = await diffmix(['longtail', '--data', toy, '--imbalance-factor', '0.5', '--out', out]);
    expect(bad.code).toBe(2);
  });
});

describe('diffmix attention', () => {
  it('renders the maps and reports the rows', async () => {
    const out = path.join(tmp, 'attn.png');
    const image = path.join(toy, 'train', (await readdir(path.join(toy, 'train')))[0] as string);
    const file = path.join(image, (await readdir(image))[0] as string);
    const r = await diffmix([
      'attention',
      '--model',
      tinySd,
      '--image',
      file,
      '--prompt',
      'a photo of a bird',
      '--strength',
      '0.5',
      '--steps',
      '4',
      '--size',
      '64',
      '--out',
      out,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.rows).toHaveLength(1);
    expect(result.rows[0].tokens.map((t: { label: string }) => t.label)).toContain('bird');
    expect(existsSync(out)).toBe(true);
  });
});
