// End-to-end tests of the built `diffmix` binary (turbo builds it before `test`).
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, diffmix } from './test-support/run-cli.js';

let tmp: string;
beforeAll(async () => {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` (npm test does it)`);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diffmix-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('diffmix demo', () => {
  it('runs the whole pipeline in --quick mode: samples, filters, trains three runs, writes the report', async () => {
    const out = path.join(tmp, 'demo');
    const r = await diffmix(['demo', '--quick', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.dataset).toEqual({ classes: 3, train: 12, test: 12 });
    // Multiplier 1: one synthetic image per training image and strategy; the filter drops the lowest 10 %.
    expect(result.synthetic['diff-mix'].generated).toBe(12);
    expect(result.synthetic['diff-mix'].kept).toBeLessThan(12);
    expect(result.runs.map((x: { method: string }) => x.method)).toEqual(['real only', 'Diff-Mix', 'Diff-Aug']);
    expect(result.runs[1].syntheticImages).toBe(result.synthetic['diff-mix'].kept);
    expect(result.stages.every((s: { status: string }) => s.status === 'done')).toBe(true);
    const report = await readFile(path.join(out, 'report.md'), 'utf8');
    expect(report).toContain('| Diff-Mix | 10 |');
    for (const f of [
      'report.html',
      'strength-grid.png',
      'curve-test-top1.png',
      'clip-scores-diff-mix.png',
      'samples-diff-mix.png',
      'runs/diff-mix/run.json',
    ])
      expect(existsSync(path.join(out, f)), f).toBe(true);
    // The runs are 'diffmix report' inputs.
    const rep = await diffmix([
      'report',
      path.join(out, 'runs', 'real-only'),
      path.join(out, 'runs', 'diff-mix'),
      '--out',
      path.join(out, 'cmp'),
      '--json',
    ]);
    expect(rep.code, rep.stderr).toBe(0);
    expect(JSON.parse(rep.stdout).methods).toEqual(['real only', 'Diff-Mix']);
  });

  it('resumes: a second run over the same folder regenerates nothing and gives the same numbers', async () => {
    const out = path.join(tmp, 'demo');
    const image = path.join(out, 'toy', 'train', '001.red-striped_circle', '0002.png');
    const first = await readFile(image);
    const runBefore = JSON.parse(await readFile(path.join(out, 'runs', 'diff-mix', 'run.json'), 'utf8'));
    const r = await diffmix(['demo', '--quick', '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.runs[1].top1Best).toBe(runBefore.best.top1);
    expect(result.stages.find((s: { name: string }) => s.name === 'sample Diff-Mix').detail).toContain('0 generated now');
    expect(await readFile(image)).toEqual(first);
  });

  it('rejects bad flags with exit code 2 and a message naming the flag', async () => {
    const r = await diffmix(['demo', '--out', path.join(tmp, 'bad'), '--classes', 'zero']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--classes');
    const s = await diffmix(['demo', '--out', path.join(tmp, 'bad'), '--classes', '9']);
    expect(s.code).toBe(2);
    expect(s.stderr).toContain('--classes');
  });
});

describe('diffmix info', () => {
  it('--json reports versions and engines', async () => {
    const r = await diffmix(['info', '--json']);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.packages['@diffmix/core']).toMatch(/^\d+\.\d+\.\d+/);
    expect(info.sharp.version).toMatch(/^\d+\.\d+/);
    expect(typeof info.gpu.usable).toBe('boolean');
    expect(info.packages['@diffmix/classifier']).toMatch(/^\d+\.\d+\.\d+/);
    // The pure-JS tfjs backend is a regular dependency: it must initialise everywhere.
    expect(info.classifier.tfjsBackends.find((b: { backend: string }) => b.backend === 'cpu')).toMatchObject({ usable: true });
    expect(info.classifier.autoEngine).toBe('ort');
  });

  it('unknown commands exit with 2', async () => {
    expect((await diffmix(['no-such-command'])).code).toBe(2);
    expect((await diffmix(['--help'])).code).toBe(0);
  });
});

describe('diffmix report', () => {
  it('compares run folders into report.md / report.html / comparison.json, and names a missing run', async () => {
    const { mkdir, writeFile } = await import('node:fs/promises');
    const runs: string[] = [];
    for (const [method, seed, best] of [
      ['vanilla', 0, 0.5],
      ['diff-mix', 0, 0.6],
      ['diff-mix', 1, 0.7],
    ] as const) {
      const dir = path.join(tmp, 'runs', `${method}-${seed}`);
      await mkdir(dir, { recursive: true });
      const record = {
        version: 1,
        method,
        dataset: 'toy',
        backbone: 'smallcnn',
        seed,
        best: { top1: best, epoch: 2 },
        final: { top1: best - 0.05, epoch: 3 },
      };
      await writeFile(path.join(dir, 'run.json'), JSON.stringify(record));
      runs.push(dir);
    }
    const out = path.join(tmp, 'report');
    const r = await diffmix(['report', ...runs, '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.methods).toEqual(['vanilla', 'diff-mix']);
    expect(json.best['diff-mix'].toy.mean).toBeCloseTo(0.65, 12);
    expect(json.best['diff-mix'].toy.n).toBe(2);
    const md = await readFile(path.join(out, 'report.md'), 'utf8');
    expect(md).toContain('| diff-mix | **65.00 ± 7.07** |');
    expect(existsSync(path.join(out, 'report.html'))).toBe(true);
    expect(existsSync(path.join(out, 'top1-toy.png'))).toBe(true);

    const missing = await diffmix(['report', path.join(tmp, 'runs', 'nope'), '--out', out]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(path.join(tmp, 'runs', 'nope'));
  });
});
