import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { resolveOptions } from '../config.js';
import { barChartSpec } from '../report/charts.js';
import { compareRuns, comparisonBlocks, formatAggregate } from '../report/compare.js';
import type { ReportBlock } from '../report/document.js';
import { readRunRecord } from '../report/run-record.js';
import { chartBlock, writeReport } from '../report/write.js';

export const ReportOptionsSchema = z
  .object({
    runs: z.array(z.string().min(1)).min(1, 'give at least one run folder'),
    out: z.string().min(1),
    title: z.string().min(1).default('diffmix runs'),
    json: z.boolean().optional(),
  })
  .strict();

export function registerReport(program: Command): void {
  program
    .command('report')
    .description(
      "compare finished training runs (each a 'diffmix train --out' folder) in one table: methods × datasets, seeds as mean ± std",
    )
    .argument('<runs...>', 'run folders (or their run.json files)')
    .requiredOption('--out <dir>', 'folder for report.md, report.html, comparison.json and charts')
    .option('--title <text>', 'report title', 'diffmix runs')
    .option('--config <file>', 'JSON or YAML file with these options')
    .option('--json', 'print the comparison as JSON on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffmix report runs/cub-* runs/aircraft-* --out report/\n  $ diffmix report runs/*/ --out report/ --json',
    )
    .action(async (runs: string[], values: Record<string, unknown>, command: Command) => {
      const o = await resolveOptions({
        command,
        commandName: 'report',
        schema: ReportOptionsSchema,
        values: { ...values, runs },
      });
      const summaries = [];
      for (const r of o.runs) summaries.push(await readRunRecord(r));
      const table = compareRuns(summaries);
      const blocks: ReportBlock[] = [
        {
          kind: 'paragraph',
          text: `${summaries.length} run(s): ${table.methods.length} method(s) × ${table.datasets.length} dataset(s).`,
        },
        ...comparisonBlocks(table),
      ];
      for (const d of table.datasets) {
        const bars = table.methods.flatMap((m) => {
          const a = table.best.get(m)?.get(d);
          return a ? [{ label: m, value: a.mean * 100 }] : [];
        });
        const safe = d.replace(/[^A-Za-z0-9_-]+/g, '_');
        blocks.push(
          await chartBlock(
            o.out,
            `top1-${safe}`,
            barChartSpec(bars, { title: `${d}: best-epoch top-1`, x: 'top-1 (%)' }),
            `top-1 per method on ${d}`,
          ),
        );
      }
      blocks.push({ kind: 'heading', level: 2, text: 'Runs' });
      blocks.push({
        kind: 'table',
        header: ['run', 'method', 'dataset', 'backbone', 'seed', 'best top-1', 'best epoch', 'final top-1'],
        rows: summaries.map((s) => [
          path.relative(process.cwd(), s.dir) || '.',
          s.method,
          s.dataset,
          s.backbone ?? '',
          String(s.seed ?? ''),
          (s.best.top1 * 100).toFixed(2),
          String(s.best.epoch),
          (s.final.top1 * 100).toFixed(2),
        ]),
      });
      const files = await writeReport(o.out, { title: o.title, blocks });
      const comparison = {
        methods: table.methods,
        datasets: table.datasets,
        best: Object.fromEntries(table.methods.map((m) => [m, Object.fromEntries(table.best.get(m) ?? [])])),
        final: Object.fromEntries(table.methods.map((m) => [m, Object.fromEntries(table.final.get(m) ?? [])])),
        runs: summaries,
      };
      await mkdir(o.out, { recursive: true });
      await writeFile(path.join(o.out, 'comparison.json'), `${JSON.stringify(comparison, null, 2)}\n`);
      if (o.json) process.stdout.write(`${JSON.stringify({ ...comparison, report: files }, null, 2)}\n`);
      else {
        for (const m of table.methods) {
          const cells = table.datasets.map((d) => {
            const a = table.best.get(m)?.get(d);
            return `${d} ${a ? formatAggregate(a) : '—'}`;
          });
          process.stdout.write(`${m}: ${cells.join(', ')}\n`);
        }
        process.stdout.write(`report: ${files.markdown}\n`);
      }
    });
}
