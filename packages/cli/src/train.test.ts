// `diffmix train` through the built binary, on a small toy dataset (small CNN, 32 px, 2 epochs).
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeToyDataset } from '@diffmix/datasets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffmix } from './test-support/run-cli.js';

let tmp: string;
let toy: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diffmix-train-'));
  toy = path.join(tmp, 'toy');
  await writeToyDataset(toy, { numClasses: 3, imagesPerClass: 8, testPerClass: 4, size: 32, seed: 1 });
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

const base = () => [
  'train',
  '--data',
  toy,
  '--arch',
  'smallcnn',
  '--resolution',
  '32',
  '--epochs',
  '2',
  '--batch-size',
  '8',
  '--lr',
  '0.05',
  '--eval-every',
  '1',
  '--engine',
  'ort',
];

describe('diffmix train', () => {
  it('trains, writes run.json for diffmix report and results.json, and prints JSON', async () => {
    const out = path.join(tmp, 'run-real');
    const r = await diffmix([...base(), '--out', out, '--method', 'vanilla', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ version: 1, method: 'vanilla', backbone: 'smallcnn@32', seed: 0 });
    expect(summary.epochs).toHaveLength(2);
    expect(summary.best.top1).toBeGreaterThanOrEqual(0);
    expect(summary.best.top1).toBeLessThanOrEqual(1);
    const record = JSON.parse(await readFile(path.join(out, 'run.json'), 'utf8'));
    expect(record.final.epoch).toBe(2);
    expect(existsSync(path.join(out, 'results.json'))).toBe(true);
    // Re-running the finished run resumes from its checkpoint and trains no further steps.
    const again = await diffmix([...base(), '--out', out, '--method', 'vanilla', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).stepsThisRun).toBe(0);
    expect(JSON.parse(again.stdout).final.top1).toBe(summary.final.top1);
  });

  it('rejects inconsistent options with exit code 2 and names them', async () => {
    const r = await diffmix([...base(), '--out', path.join(tmp, 'bad'), '--synthetic-probability', '0.3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--synthetic');
    const arch = await diffmix([...base(), '--out', path.join(tmp, 'bad'), '--arch', 'resnet9000']);
    expect(arch.code).toBe(2);
    expect(arch.stderr).toContain('arch');
  });

  it('names a missing synthetic set', async () => {
    const r = await diffmix([...base(), '--out', path.join(tmp, 'bad2'), '--synthetic', path.join(tmp, 'no-such-set')]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('no-such-set');
  });
});
