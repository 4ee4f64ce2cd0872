/**
 * `diffmix report`: many training runs → one table like the paper's (methods × datasets), seeds
 * aggregated as mean ± sample std. Each cell shows the best-epoch top-1 (what the official code
 * reports) and, in a second table, the final-epoch top-1 — they differ, and hiding either would
 * flatter or under-sell a method.
 */
import type { ReportBlock, TableCell } from './document.js';

export interface RunSummary {
  /** Folder the run was read from (for messages). */
  dir: string;
  method: string;
  dataset: string;
  backbone?: string;
  seed?: number;
  best: { top1: number; epoch: number };
  final: { top1: number; epoch: number };
  /** Many / medium / few accuracy for long-tail runs. */
  groups?: Record<string, number>;
}

export interface Aggregate {
  mean: number;
  std: number;
  n: number;
}

export function aggregate(values: readonly number[]): Aggregate {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  // Sample standard deviation (n − 1), as papers report over seeds; 0 for a single run.
  const std = n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}

export function formatAggregate(a: Aggregate, digits = 2): string {
  const pct = (v: number) => (v * 100).toFixed(digits);
  return a.n > 1 ? `${pct(a.mean)} ± ${pct(a.std)}` : pct(a.mean);
}

/** Rows in first-seen order, so the user's argument order is the table order. */
function uniq(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}

export interface ComparisonTable {
  methods: string[];
  datasets: string[];
  /** `cells[method][dataset]` over seeds, absent when no run matched. */
  best: Map<string, Map<string, Aggregate>>;
  final: Map<string, Map<string, Aggregate>>;
}

export function compareRuns(runs: readonly RunSummary[]): ComparisonTable {
  const methods = uniq(runs.map((r) => r.method));
  const datasets = uniq(runs.map((r) => r.dataset));
  const collect = (pick: (r: RunSummary) => number) => {
    const table = new Map<string, Map<string, Aggregate>>();
    for (const m of methods) {
      const row = new Map<string, Aggregate>();
      for (const d of datasets) {
        const vals = runs.filter((r) => r.method === m && r.dataset === d).map(pick);
        if (vals.length > 0) row.set(d, aggregate(vals));
      }
      table.set(m, row);
    }
    return table;
  };
  return { methods, datasets, best: collect((r) => r.best.top1), final: collect((r) => r.final.top1) };
}

function tableBlock(t: ComparisonTable, which: 'best' | 'final', caption: string): ReportBlock {
  const cells = t[which];
  const colMax = t.datasets.map((d) => Math.max(...t.methods.map((m) => cells.get(m)?.get(d)?.mean ?? Number.NEGATIVE_INFINITY)));
  const rows: TableCell[][] = t.methods.map((m) => [
    { text: m },
    ...t.datasets.map((d, j): TableCell => {
      const a = cells.get(m)?.get(d);
      if (!a) return { text: '—' };
      return { text: formatAggregate(a), strong: t.methods.length > 1 && a.mean === colMax[j] };
    }),
  ]);
  return { kind: 'table', header: ['method', ...t.datasets], rows, caption };
}

export function comparisonBlocks(t: ComparisonTable): ReportBlock[] {
  const seeds = Math.max(...[...t.best.values()].flatMap((row) => [...row.values()].map((a) => a.n)), 0);
  return [
    { kind: 'heading', level: 1, text: 'Top-1 accuracy (%)' },
    tableBlock(
      t,
      'best',
      `best epoch (the official code reports this)${seeds > 1 ? '; mean ± std over seeds' : ''}; bold = best in column`,
    ),
    tableBlock(t, 'final', 'final epoch'),
  ];
}
