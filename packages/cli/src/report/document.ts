/**
 * A report as a list of blocks, rendered twice: Markdown (readable in a terminal, on GitHub) and a
 * self-contained HTML page (charts inlined as SVG). Keeping one document model means the two files
 * can never disagree about a number.
 */

export interface TableCell {
  text: string;
  /** Bold (e.g. the best value of a column). */
  strong?: boolean;
}

export type ReportBlock =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; header: string[]; rows: (string | TableCell)[][]; caption?: string; align?: ('left' | 'right')[] }
  /** An image file next to the report (`src` relative to it); `svg` inlines the chart in HTML. */
  | { kind: 'image'; src: string; alt: string; svg?: string; caption?: string }
  | { kind: 'code'; text: string };

export interface ReportDocument {
  title: string;
  blocks: ReportBlock[];
}

const cellText = (c: string | TableCell): TableCell => (typeof c === 'string' ? { text: c } : c);

/** Markdown table cells cannot hold `|` or newlines. */
function mdCell(c: string | TableCell): string {
  const { text, strong } = cellText(c);
  const safe = text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  return strong && safe !== '' ? `**${safe}**` : safe;
}

export function renderMarkdown(doc: ReportDocument): string {
  const out: string[] = [`# ${doc.title}`, ''];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case 'heading':
        out.push(`${'#'.repeat(b.level + 1)} ${b.text}`, '');
        break;
      case 'paragraph':
        out.push(b.text, '');
        break;
      case 'list':
        out.push(...b.items.map((i) => `- ${i}`), '');
        break;
      case 'table': {
        const align = b.align ?? b.header.map((_, i) => (i === 0 ? 'left' : 'right'));
        out.push(`| ${b.header.map(mdCell).join(' | ')} |`);
        out.push(`|${align.map((a) => (a === 'right' ? '---:' : ':---')).join('|')}|`);
        for (const row of b.rows) out.push(`| ${row.map(mdCell).join(' | ')} |`);
        if (b.caption) out.push('', `*${b.caption}*`);
        out.push('');
        break;
      }
      case 'image':
        out.push(`![${b.alt.replace(/[[\]]/g, '')}](${encodeURI(b.src)})`);
        if (b.caption) out.push('', `*${b.caption}*`);
        out.push('');
        break;
      case 'code':
        out.push('```', b.text, '```', '');
        break;
    }
  }
  return out.join('\n');
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);
}

const STYLE = `body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;padding:.3rem .6rem}
th{background:#f3f3f3}td.r{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1rem 0}
figcaption{color:#555;font-size:.9rem}img{max-width:100%;image-rendering:pixelated}pre{background:#f6f6f6;padding:.6rem;overflow:auto}`;

export function renderHtml(doc: ReportDocument): string {
  const out: string[] = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(doc.title)}</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<h1>${escapeHtml(doc.title)}</h1>`,
  ];
  for (const b of doc.blocks) {
    switch (b.kind) {
      case 'heading':
        out.push(`<h${b.level + 1}>${escapeHtml(b.text)}</h${b.level + 1}>`);
        break;
      case 'paragraph':
        out.push(`<p>${escapeHtml(b.text)}</p>`);
        break;
      case 'list':
        out.push(`<ul>${b.items.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul>`);
        break;
      case 'table': {
        const align = b.align ?? b.header.map((_, i) => (i === 0 ? 'left' : 'right'));
        const cls = (i: number) => (align[i] === 'right' ? ' class="r"' : '');
        out.push('<table>');
        if (b.caption) out.push(`<caption>${escapeHtml(b.caption)}</caption>`);
        out.push(`<tr>${b.header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`);
        for (const row of b.rows) {
          const cells = row.map((c, i) => {
            const { text, strong } = cellText(c);
            const inner = strong ? `<strong>${escapeHtml(text)}</strong>` : escapeHtml(text);
            return `<td${cls(i)}>${inner}</td>`;
          });
          out.push(`<tr>${cells.join('')}</tr>`);
        }
        out.push('</table>');
        break;
      }
      case 'image': {
        // Inline SVG keeps the page self-contained; vega's SVG is ours, not user input.
        const body = b.svg ?? `<img src="${escapeHtml(encodeURI(b.src))}" alt="${escapeHtml(b.alt)}">`;
        const cap = b.caption ? `<figcaption>${escapeHtml(b.caption)}</figcaption>` : '';
        out.push(`<figure>${body}${cap}</figure>`);
        break;
      }
      case 'code':
        out.push(`<pre>${escapeHtml(b.text)}</pre>`);
        break;
    }
  }
  out.push('</body></html>', '');
  return out.join('\n');
}
