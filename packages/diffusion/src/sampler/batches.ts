/** Grouping pending jobs into batches that can share one UNet call. */
import { InvalidArgumentError, canonicalJson } from '@diffmix/core';
import type { JsonValue } from '@diffmix/core';
import type { GenerationMode } from '../strategies/types.js';
import type { ImageGenerator } from './generator.js';
import type { PlannedJob } from './plan.js';

/** The generation settings of a job, read from its `params`. */
export interface JobSettings {
  steps: number;
  guidance: number;
  size?: number;
  negativePrompt?: string;
}

export function jobSettings(job: Pick<PlannedJob, 'id' | 'params'>): JobSettings {
  const p = (job.params ?? {}) as Record<string, JsonValue>;
  const steps = p.steps ?? 25;
  const guidance = p.guidance ?? 7.5;
  if (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1) {
    throw new InvalidArgumentError('params.steps', `job ${job.id}: must be a positive integer, got ${JSON.stringify(steps)}`);
  }
  if (typeof guidance !== 'number') throw new InvalidArgumentError('params.guidance', `job ${job.id}: must be a number`);
  const out: JobSettings = { steps, guidance };
  if (typeof p.size === 'number') out.size = p.size;
  if (typeof p.negativePrompt === 'string') out.negativePrompt = p.negativePrompt;
  return out;
}

export interface Batch {
  mode: GenerationMode;
  /** Strength the batch runs at (its first job's). */
  strength: number;
  settings: JobSettings;
  jobs: PlannedJob[];
}

/**
 * Groups jobs by (mode, steps, guidance, size, negative prompt, strength key) in order of first
 * appearance, then cuts each group into batches of at most `batchSize`.
 */
export function groupIntoBatches(
  jobs: readonly PlannedJob[],
  mode: GenerationMode,
  batchSize: number,
  generator?: Pick<ImageGenerator, 'strengthKey'>,
): Batch[] {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new InvalidArgumentError('batchSize', `must be a positive integer, got ${batchSize}`);
  }
  const groups = new Map<string, { settings: JobSettings; jobs: PlannedJob[] }>();
  for (const job of jobs) {
    const settings = jobSettings(job);
    const strengthKey = mode === 'txt2img' ? 1 : (generator?.strengthKey?.(job.strength, settings.steps) ?? job.strength);
    const key = canonicalJson({ ...settings, strengthKey });
    let g = groups.get(key);
    if (!g) {
      g = { settings, jobs: [] };
      groups.set(key, g);
    }
    g.jobs.push(job);
  }
  const out: Batch[] = [];
  for (const g of groups.values()) {
    for (let i = 0; i < g.jobs.length; i += batchSize) {
      const part = g.jobs.slice(i, i + batchSize);
      out.push({ mode, strength: mode === 'txt2img' ? 1 : (part[0] as PlannedJob).strength, settings: g.settings, jobs: part });
    }
  }
  return out;
}
