/**
 * The official Diff-Mix `meta.csv`.
 *
 * What the official code writes (github.com/Zhicaiwww/Diff-Mix at a81337b, `scripts/sample_mp.py`
 * end of `main`, and the identical `generate_meta_csv` in `scripts/compose_syn_data.py`): it lists
 * `<out>/data/`, matches each folder with `(.+)` and each file with `(.+)-(\d+)-(.+).png`, and builds
 * a pandas DataFrame with the columns, in this order:
 *  - "First Directory":  the source folder name with `_` → space (`dir.replace("_", " ")`); folders are
 *                        `name.replace(" ", "_").replace("/", "_")`, so this is the class name with
 *                        `/` and `_` turned into spaces, not the folder name;
 *  - "Second Directory": the same for the target name taken from the file name's first group;
 *  - "Number":           `int(...)` of the zero-padded number, so written unpadded (`12`, not `000012`);
 *  - "Strength":         `float(...)` of the file name's strength, written by pandas as Python's float
 *                        repr (`0.7`, `1.0`, `1e-05`);
 *  - "Path":             `os.path.join(dir, file)`: relative to `<out>/data/`, NOT to the set root and
 *                        not absolute (`Black_footed_Albatross/Laysan_Albatross-000012-0.7.png`).
 * It is saved with `valid_df.to_csv(csv_path, index=False)`: no index column, pandas' default
 * QUOTE_MINIMAL quoting (a field is quoted only when it holds `,` `"` or LF; `"` doubled), `\n`
 * line ends, header line first. Rows come in `os.listdir` order; we sort by Path. One deliberate
 * difference: Python's csv leaves a lone CR unquoted when lines end in `\n` (checked with CPython
 * 3.11), which pandas then reads as a line break; we quote CR too so such names round-trip.
 *
 * What the official training code reads (`dataset/base.py`, `HugFewShotDataset.parse_syn_data_pd` and
 * `get_syn_item`): `pd.read_csv(<dir>/meta.csv)` (or `remained_meta.csv` when `clip_filtered_syn`),
 * Path joined as `os.path.join(<dir>, "data", Path)`, labels looked up as
 * `class2label[First Directory]` / `class2label[Second Directory]` (the dataset's class names, with
 * `/` → space for the HF datasets), and the soft label built from the "Strength" column:
 * `c·(1 − s^γ)` on the source and `c·s^γ` on the target ("Number" is not used).
 *
 * This module writes exactly that and parses it back (quoted fields, doubled quotes, embedded
 * newlines, CRLF, a BOM, extra columns such as a pandas index column are all accepted).
 */
import { readFile } from 'node:fs/promises';
import { DatasetFormatError, NotFoundError } from '@diffmix/core';
import { isErrno, writeFileAtomic } from './fsutil.js';
import { formatStrength } from './layout.js';

export const META_CSV_COLUMNS = ['First Directory', 'Second Directory', 'Number', 'Strength', 'Path'] as const;

export interface MetaCsvRow {
  /** Source class label as the official code spells it (see module doc). */
  firstDirectory: string;
  /** Target class label. */
  secondDirectory: string;
  /** The file-name number. */
  number: number;
  strength: number;
  /** Image path relative to `<root>/data/`, `/`-separated. */
  path: string;
  /** 1-based line of the row in the file it was read from. */
  line?: number;
}

/** Quotes a field the way Python's csv module does with QUOTE_MINIMAL (plus CR, see module doc). */
export function formatCsvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export function formatCsvRecord(fields: readonly string[]): string {
  return `${fields.map(formatCsvField).join(',')}\n`;
}

export interface CsvRecord {
  fields: string[];
  /** 1-based line the record starts on. */
  line: number;
}

/**
 * RFC 4180 parser: `,` separated, `"` quoted with `""` escapes, quoted fields may hold newlines; LF or
 * CRLF line ends; a leading BOM is skipped; blank lines are skipped (as pandas does). Like Python's
 * csv and pandas, text after a closing quote is appended to the field. An unterminated quote is an
 * error naming `source:line`.
 */
export function parseCsv(text: string, source = 'csv'): CsvRecord[] {
  const records: CsvRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let fields: string[] = [];
  let field = '';
  let recordLine = 1;
  let quoted = false; // inside quotes
  let fieldStarted = false; // anything seen for this record
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '' && !fieldStarted)) records.push({ fields, line: recordLine });
    fields = [];
    field = '';
    fieldStarted = false;
  };
  let quoteOpenedOn = 0;
  for (; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      fieldStarted = true;
      quoteOpenedOn = line;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      fieldStarted = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else {
      field += c;
      fieldStarted = true;
    }
  }
  if (quoted) throw new DatasetFormatError(`${source}:${quoteOpenedOn}`, 'unterminated quoted field');
  if (field !== '' || fields.length > 0 || fieldStarted) endRecord();
  return records;
}

/** The CSV text of a meta.csv (header and one line per row, in the given order). */
export function formatMetaCsv(rows: readonly MetaCsvRow[]): string {
  let out = formatCsvRecord(META_CSV_COLUMNS);
  for (const r of rows) {
    out += formatCsvRecord([r.firstDirectory, r.secondDirectory, String(r.number), formatStrength(r.strength), r.path]);
  }
  return out;
}

/** Writes a meta.csv atomically (temp file in the same folder, fsync, rename). */
export async function writeMetaCsv(file: string, rows: readonly MetaCsvRow[], tag = 'u'): Promise<void> {
  await writeFileAtomic(file, formatMetaCsv(rows), 'meta', tag);
}

/** Parses meta.csv text; errors name `source:line`. */
export function parseMetaCsv(text: string, source = 'meta.csv'): MetaCsvRow[] {
  const records = parseCsv(text, source);
  const header = records[0];
  if (!header) throw new DatasetFormatError(source, 'empty file (expected a header line)');
  const col = new Map<string, number>();
  header.fields.forEach((name, i) => {
    if (!col.has(name.trim())) col.set(name.trim(), i);
  });
  const missing = META_CSV_COLUMNS.filter((c) => !col.has(c));
  if (missing.length) {
    throw new DatasetFormatError(
      `${source}:${header.line}`,
      `missing column(s) ${missing.map((c) => JSON.stringify(c)).join(', ')}`,
    );
  }
  const [iFirst, iSecond, iNumber, iStrength, iPath] = META_CSV_COLUMNS.map((c) => col.get(c) as number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const rows: MetaCsvRow[] = [];
  for (const rec of records.slice(1)) {
    const where = `${source}:${rec.line}`;
    if (rec.fields.length !== header.fields.length) {
      throw new DatasetFormatError(where, `expected ${header.fields.length} fields, found ${rec.fields.length}`);
    }
    const get = (i: number) => rec.fields[i] as string;
    const numberText = get(iNumber).trim();
    if (!/^\d+(\.0*)?$/.test(numberText) || !Number.isSafeInteger(Number(numberText))) {
      throw new DatasetFormatError(where, `Number is not a non-negative integer: ${JSON.stringify(get(iNumber))}`);
    }
    const strengthText = get(iStrength).trim();
    const strength = Number(strengthText);
    if (strengthText === '' || !(strength >= 0 && strength <= 1)) {
      throw new DatasetFormatError(where, `Strength is not a number in [0, 1]: ${JSON.stringify(get(iStrength))}`);
    }
    const p = get(iPath);
    if (p === '') throw new DatasetFormatError(where, 'Path is empty');
    rows.push({
      firstDirectory: get(iFirst),
      secondDirectory: get(iSecond),
      number: Number(numberText),
      strength,
      path: p,
      line: rec.line,
    });
  }
  return rows;
}

/** Reads and parses a meta.csv; `NotFoundError` if it does not exist. */
export async function readMetaCsv(file: string): Promise<MetaCsvRow[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw new NotFoundError(file, 'meta.csv');
    throw err;
  }
  return parseMetaCsv(text, file);
}
