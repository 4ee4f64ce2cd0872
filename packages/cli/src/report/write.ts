/** Writes a report document as `report.md` + `report.html` (and the PNGs its charts refer to). */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type RenderedChart, renderChart } from './charts.js';
import { type ReportBlock, type ReportDocument, renderHtml, renderMarkdown } from './document.js';

async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  await writeFile(`${file}.tmp`, data);
  await rename(`${file}.tmp`, file);
}

/** Renders a chart, writes `<name>.png` and `<name>.svg` into `dir`, returns the image block. */
export async function chartBlock(dir: string, name: string, spec: unknown, alt: string, caption?: string): Promise<ReportBlock> {
  const chart: RenderedChart = await renderChart(spec);
  await mkdir(dir, { recursive: true });
  await writeAtomic(path.join(dir, `${name}.png`), chart.png);
  await writeAtomic(path.join(dir, `${name}.svg`), chart.svg);
  return { kind: 'image', src: `${name}.png`, alt, svg: chart.svg, ...(caption ? { caption } : {}) };
}

export async function writeReport(dir: string, doc: ReportDocument): Promise<{ markdown: string; html: string }> {
  await mkdir(dir, { recursive: true });
  const markdown = path.join(dir, 'report.md');
  const html = path.join(dir, 'report.html');
  await writeAtomic(markdown, renderMarkdown(doc));
  await writeAtomic(html, renderHtml(doc));
  return { markdown, html };
}
