/**
 * `plan.json` next to a synthetic set: the plan's settings (strategy, seed, strengths, γ and c,
 * generation parameters, dataset classes), its job count and digest — what the official sampler keeps
 * in `config.yaml`. Written atomically; a set is only ever extended by a plan with the same settings.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from '@diffmix/core';
import { type PlanRecord, type SynthesisPlan, planRecord, planSettingsKey } from './plan.js';

export const PLAN_FILE = 'plan.json';
const TEMP_PREFIX = '.plan.json.tmp-';
const STALE_TEMP_MS = 60 * 60 * 1000;

/** Writes `text` to `file` through a temp file in the same folder, fsynced, then renamed. */
export async function writeFileAtomically(file: string, text: string, tempPrefix: string): Promise<void> {
  const tmp = path.join(path.dirname(file), `${tempPrefix}${process.pid}-${randomBytes(4).toString('hex')}`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

export async function readPlanFile(root: string): Promise<PlanRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(root, PLAN_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as PlanRecord;
  } catch {
    return undefined; // unreadable (cannot happen with atomic writes): rewritten below
  }
}

/**
 * Checks that `root` holds no set planned with other settings, then records `plan` there. A plan
 * with the same settings and more jobs replaces the record; one with fewer jobs leaves it.
 */
export async function recordPlan(root: string, plan: SynthesisPlan): Promise<PlanRecord> {
  await mkdir(root, { recursive: true });
  const record = planRecord(plan);
  const existing = await readPlanFile(root);
  if (existing) {
    if (planSettingsKey(existing) !== planSettingsKey(record)) {
      const diff = (
        ['strategy', 'seed', 'strength', 'annotation', 'params', 'promptTemplate', 'longTail', 'dataset'] as const
      ).filter((k) => JSON.stringify(existing[k]) !== JSON.stringify(record[k]));
      throw new InvalidArgumentError(
        'out',
        `${root} holds a set planned with other settings (${diff.join(', ') || 'format'} differ${diff.length === 1 ? 's' : ''}); ` +
          'write this plan to another folder (compose sets with composeSyntheticSet)',
      );
    }
    if (existing.jobCount >= record.jobCount) return existing;
  }
  await writeFileAtomically(path.join(root, PLAN_FILE), `${JSON.stringify(record, null, 2)}\n`, TEMP_PREFIX);
  // Temp files of writers that crashed long ago (a live shard's temp is at most seconds old).
  for (const name of await readdir(root)) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const st = await stat(path.join(root, name)).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > STALE_TEMP_MS) await unlink(path.join(root, name)).catch(() => {});
  }
  return record;
}
