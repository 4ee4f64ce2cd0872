import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError, ValidationError } from '@diffmix/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { histogramSpec, lineChartSpec, renderChart } from './charts.js';
import { aggregate, compareRuns, comparisonBlocks, formatAggregate, type RunSummary } from './compare.js';
import { renderHtml, renderMarkdown } from './document.js';
import { readRunRecord, writeRunRecord } from './run-record.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diffmix-report-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

const run = (method: string, dataset: string, best: number, final: number, seed = 0): RunSummary => ({
  dir: `${method}-${dataset}-${seed}`,
  method,
  dataset,
  seed,
  best: { top1: best, epoch: 3 },
  final: { top1: final, epoch: 4 },
});

describe('aggregate', () => {
  it('is mean ± sample std over seeds', () => {
    const a = aggregate([0.5, 0.6, 0.7]);
    expect(a.mean).toBeCloseTo(0.6, 12);
    expect(a.std).toBeCloseTo(0.1, 12); // sqrt(((−.1)² + 0 + .1²) / 2)
    expect(formatAggregate(a)).toBe('60.00 ± 10.00');
    expect(formatAggregate(aggregate([0.8125]))).toBe('81.25');
  });
});

describe('compareRuns', () => {
  it('groups methods × datasets in first-seen order, best and final separately, bold column best', () => {
    const t = compareRuns([
      run('vanilla', 'cub', 0.5, 0.45),
      run('diff-mix', 'cub', 0.6, 0.58),
      run('diff-mix', 'cub', 0.62, 0.6, 1),
      run('vanilla', 'aircraft', 0.7, 0.7),
    ]);
    expect(t.methods).toEqual(['vanilla', 'diff-mix']);
    expect(t.datasets).toEqual(['cub', 'aircraft']);
    expect(t.best.get('diff-mix')?.get('cub')?.mean).toBeCloseTo(0.61, 12);
    expect(t.final.get('diff-mix')?.get('cub')?.mean).toBeCloseTo(0.59, 12);
    expect(t.best.get('diff-mix')?.get('aircraft')).toBeUndefined();
    const md = renderMarkdown({ title: 'x', blocks: comparisonBlocks(t) });
    expect(md).toContain('| diff-mix | **61.00 ± 1.41** | — |');
    expect(md).toContain('| vanilla | 50.00 | **70.00** |');
  });
});

describe('document rendering', () => {
  it('escapes HTML and markdown table syntax in user-provided names', () => {
    const doc = { title: 'a <b>', blocks: [{ kind: 'table' as const, header: ['m', 'v'], rows: [['x|y <script>', '1']] }] };
    expect(renderHtml(doc)).toContain('x|y &lt;script&gt;');
    expect(renderHtml(doc)).not.toContain('<script>');
    expect(renderMarkdown(doc)).toContain('x\\|y <script>');
  });
});

describe('charts', () => {
  it('renders a line chart and a histogram with its cut to SVG and PNG', async () => {
    const line = await renderChart(lineChartSpec([{ x: 1, y: 2, series: 'a' }, { x: 2, y: 1, series: 'a' }], { title: 't', x: 'epoch', y: 'loss' }));
    expect(line.svg.startsWith('<svg')).toBe(true);
    expect([...line.png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join('')).toBe('PNG');
    const hist = await renderChart(histogramSpec([0.1, 0.2, 0.2, 0.9], { title: 'scores', x: 'p', cut: 0.15 }));
    // The cut is drawn as a rule: a <line> element in vega's SVG.
    expect(hist.svg).toMatch(/<line|class="mark-rule/);
  });
});

describe('run records', () => {
  it('round-trips and rejects bad files with the file name', async () => {
    const dir = path.join(tmp, 'r1');
    const { mkdir, writeFile } = await import('node:fs/promises');
    await mkdir(dir, { recursive: true });
    await writeRunRecord(dir, { version: 1, method: 'diff-mix', dataset: 'toy', backbone: 'smallcnn', seed: 2, best: { top1: 0.9, epoch: 4 }, final: { top1: 0.85, epoch: 5 } });
    const s = await readRunRecord(dir);
    expect(s).toMatchObject({ method: 'diff-mix', dataset: 'toy', seed: 2, best: { top1: 0.9 } });
    await expect(readRunRecord(path.join(tmp, 'missing'))).rejects.toSatisfy((e) => NotFoundError.isInstance(e));
    await writeFile(path.join(dir, 'run.json'), JSON.stringify({ version: 1, method: 'x' }));
    const err = await readRunRecord(dir).catch((e) => e);
    expect(ValidationError.isInstance(err)).toBe(true);
    expect(String(err.message)).toContain(path.join(dir, 'run.json'));
    expect(await readFile(path.join(dir, 'run.json'), 'utf8')).toContain('"x"');
  });
});
