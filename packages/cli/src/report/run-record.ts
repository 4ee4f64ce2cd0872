/**
 * `run.json`: what `diffmix train` leaves in its output folder for `diffmix report` — the run's
 * identity (method, dataset, backbone, seed) and its headline numbers. The full curves stay in the
 * classifier's own results file next to it (`results` names it).
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatZodIssues, NotFoundError, ValidationError } from '@diffmix/core';
import { z } from 'zod';
import type { RunSummary } from './compare.js';

export const RUN_FILE = 'run.json';

/** `epoch` counts from 1: the number of epochs completed when the accuracy was measured. */
const Accuracy = z.object({ top1: z.number().min(0).max(1), epoch: z.number().int().nonnegative() });

export const RunRecordSchema = z.object({
  version: z.literal(1),
  method: z.string().min(1),
  dataset: z.string().min(1),
  backbone: z.string().min(1),
  seed: z.number().int(),
  engine: z.string().optional(),
  best: Accuracy,
  final: Accuracy,
  /** Many / medium / few (long-tail) or any named group accuracies. */
  groups: z.record(z.string(), z.number()).optional(),
  /** Results file of the classifier, relative to the run folder. */
  results: z.string().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

export async function writeRunRecord(dir: string, record: RunRecord): Promise<string> {
  const file = path.join(dir, RUN_FILE);
  const parsed = RunRecordSchema.parse(record);
  await writeFile(`${file}.tmp`, `${JSON.stringify(parsed, null, 2)}\n`);
  const { rename } = await import('node:fs/promises');
  await rename(`${file}.tmp`, file);
  return file;
}

/** Reads `<dir>/run.json` (or a run.json path) into a {@link RunSummary}. */
export async function readRunRecord(dirOrFile: string): Promise<RunSummary> {
  const file = dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, RUN_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new NotFoundError(
      path.resolve(file),
      `run record (is ${path.dirname(file)} the --out folder of a finished 'diffmix train'?)`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ValidationError({ source: file, issues: [`not valid JSON: ${(cause as Error).message}`], cause });
  }
  const r = RunRecordSchema.safeParse(json);
  if (!r.success) throw new ValidationError({ source: file, issues: formatZodIssues(r.error) });
  const { method, dataset, backbone, seed, best, final, groups } = r.data;
  return { dir: path.dirname(file), method, dataset, backbone, seed, best, final, ...(groups ? { groups } : {}) };
}
