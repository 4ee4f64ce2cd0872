/**
 * The resumable score log `scores.jsonl`: a header line naming what the scores depend on (model
 * files, captions, resampler, logit scale), then one line per scored image, appended (and fsynced)
 * batch by batch. A rerun reads it back and scores only the images it lacks. A final line cut by a
 * crash is dropped (the file is truncated back to the last complete line); a header that does not
 * match the current run is an error unless the caller asks to rescore.
 */
import { open, readFile, truncate } from 'node:fs/promises';
import { InvalidArgumentError, ValidationError } from '@diffmix/core';

export const SCORE_LOG_KIND = 'diffmix-clip-scores';

export interface ScoreLogHeader {
  kind: typeof SCORE_LOG_KIND;
  v: 1;
  captions: readonly string[];
  resampler: string;
  model: Record<string, unknown>;
}

export interface ScoreLogLine {
  id: string;
  /** Image path relative to the set root. */
  path: string;
  score: number;
  logits: number[];
}

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as Record<string, unknown>)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

function isLine(v: unknown): v is ScoreLogLine {
  const o = v as ScoreLogLine;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof o.id === 'string' &&
    typeof o.path === 'string' &&
    typeof o.score === 'number' &&
    Array.isArray(o.logits)
  );
}

export interface OpenedScoreLog {
  file: string;
  /** Scores already in the log, by id (later lines win). */
  existing: Map<string, ScoreLogLine>;
  /** Whether an existing log was reused. */
  resumed: boolean;
  /** Appends lines and fsyncs. */
  append(lines: readonly ScoreLogLine[]): Promise<void>;
}

/**
 * Opens (or starts) the log. `rescore: true` discards an existing log (rewrites it with the new
 * header); otherwise a log written with another header throws `InvalidArgumentError`.
 */
export async function openScoreLog(
  file: string,
  header: ScoreLogHeader,
  options: { rescore?: boolean } = {},
): Promise<OpenedScoreLog> {
  const existing = new Map<string, ScoreLogLine>();
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let resumed = false;
  if (text !== undefined && text.trim() !== '' && !options.rescore) {
    const lines = text.split('\n');
    const endsWithNewline = text.endsWith('\n');
    let keepBytes = 0;
    let offset = 0;
    let sawHeader = false;
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i] as string;
      const lineBytes = Buffer.byteLength(raw, 'utf8') + (i < lines.length - 1 ? 1 : 0);
      const isLast = i === lines.length - 1 || (i === lines.length - 2 && endsWithNewline);
      if (raw.trim() === '') {
        offset += lineBytes;
        if (i < lines.length - 1) keepBytes = offset;
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch (cause) {
        if (isLast) break; // torn append: drop it
        throw new ValidationError({ source: file, line: i + 1, issues: [`not valid JSON (${(cause as Error).message})`], cause });
      }
      if (i === 0) {
        const h = value as Partial<ScoreLogHeader>;
        if (h?.kind !== SCORE_LOG_KIND)
          throw new ValidationError({ source: file, line: 1, issues: ['not a diffmix CLIP score log (bad header)'] });
        if (stable({ ...h }) !== stable({ ...header })) {
          throw new InvalidArgumentError(
            'rescore',
            `${file} holds scores made with other settings (${stable({ captions: h.captions, resampler: h.resampler, model: h.model })}; ` +
              `now ${stable({ captions: header.captions, resampler: header.resampler, model: header.model })}): pass rescore: true to discard them`,
          );
        }
        sawHeader = true;
      } else if (isLine(value)) {
        existing.set(value.id, value);
      } else if (!isLast) {
        throw new ValidationError({ source: file, line: i + 1, issues: ['expected {"id","path","score","logits"}'] });
      } else {
        break;
      }
      offset += lineBytes;
      keepBytes = offset;
    }
    const bytes = Buffer.from(text, 'utf8');
    if (keepBytes < bytes.length) await truncate(file, keepBytes);
    if (sawHeader) {
      // A complete final line without its newline: add it before appending.
      if (bytes[keepBytes - 1] !== 0x0a) {
        const fh = await open(file, 'a');
        try {
          await fh.writeFile('\n');
        } finally {
          await fh.close();
        }
      }
      resumed = true;
    }
  }
  if (!resumed) {
    const fh = await open(file, 'w');
    try {
      await fh.writeFile(`${JSON.stringify(header)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
  return {
    file,
    existing,
    resumed,
    async append(lines) {
      if (lines.length === 0) return;
      const fh = await open(file, 'a');
      try {
        await fh.writeFile(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
        await fh.sync();
      } finally {
        await fh.close();
      }
    },
  };
}
