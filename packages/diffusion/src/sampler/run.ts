/**
 * `runSampler`: runs (a shard of) a plan into a synthetic set, resumably.
 *
 *  1. records the plan in `<out>/plan.json` (refusing a folder planned with other settings) and opens
 *     the set with `SyntheticSetWriter`, which repairs what a crash left (torn manifest line, temp
 *     files, orphan images; lines whose image is missing or fails its sha256 are redone);
 *  2. takes the plan's jobs of this shard that the set does not have, groups them into batches that
 *     share one UNet call (same steps, guidance, size and number of denoising steps), and runs them:
 *     source images of the next batch are decoded while a batch generates, and a batch's PNGs are
 *     encoded and written while the next one generates;
 *  3. each image goes through the writer (temp file, fsync, rename, then its manifest line), so a
 *     crash loses at most the jobs in flight;
 *  4. when `signal` aborts, the batch in flight is finished and written, the set is closed
 *     (`meta.csv` regenerated) and the summary says how to resume (run the same command again).
 *
 * A job that fails (its source image cannot be decoded, or generation throws: a batch that throws is
 * retried one job at a time) is reported and left for the next run; after `maxFailures` the run
 * stops. Errors writing the set are fatal (thrown after the set is closed).
 */
import { InvalidArgumentError, inShard, silentLogger } from '@diffmix/core';
import type { Dataset, DatasetRecord, Logger, ManifestLine, ProgressReporter, Shard } from '@diffmix/core';
import { SyntheticSetWriter, decodeRecord, encodePng, resize, transformImage } from '@diffmix/datasets';
import type { RecoveryReport, RgbImage } from '@diffmix/datasets';
import type { StableDiffusion } from '../model/stable-diffusion.js';
import { checkModelForStrategy } from '../strategies/adapters.js';
import { type Batch, groupIntoBatches } from './batches.js';
import { type ImageGenerator, toGenerator } from './generator.js';
import type { PlannedJob, SynthesisPlan } from './plan.js';
import { recordPlan } from './plan-file.js';

export type ProgressFactory = (init: { label: string; total: number; initial: number }) => ProgressReporter;

export interface RunSamplerOptions {
  /** A loaded Stable Diffusion (with the adapters the strategy needs) or any `ImageGenerator`. */
  model: StableDiffusion | ImageGenerator;
  plan: SynthesisPlan;
  /**
   * Where source images come from (img2img): the dataset the plan was made from, or a lookup by
   * record id. Not needed for txt2img plans.
   */
  dataset?: Pick<Dataset, 'train'> | ((recordId: string) => DatasetRecord | undefined);
  /** The synthetic set's folder (created if needed). */
  out: string;
  /** This worker's shard (`parseShard("i/n")`); every job belongs to exactly one shard. */
  shard?: Shard;
  /** Jobs per UNet call (default 1). */
  batchSize?: number;
  logger?: Logger;
  /**
   * Progress: a factory (preferred: it gets the shard's total and the count already done, so rates
   * and ETA count only this run) or a reporter (its total is set and its count updated).
   */
  progress?: ProgressReporter | ProgressFactory;
  /** Stop gracefully: the batch in flight is finished and written, then the set is closed. */
  signal?: AbortSignal;
  /** Stop after this many failed jobs (default 100). */
  maxFailures?: number;
  /** Shown in the resume hint (e.g. the command line that was run). */
  resumeCommand?: string;
  /** Called after every image is in the set. */
  onImage?: (line: ManifestLine) => void;
  /** How finished images are checked when the set is opened (default 'sha256'). */
  verify?: 'sha256' | 'exists';
  /** zlib level of the PNGs (default 6). */
  pngCompressionLevel?: number;
}

export interface SamplerFailure {
  id: string;
  sourceRecordId?: string;
  stage: 'decode' | 'generate';
  error: string;
}

export interface SamplerSummary {
  out: string;
  shard: Shard;
  /** completed: every job of the shard is in the set; interrupted: stopped by the signal; incomplete: failures. */
  status: 'completed' | 'interrupted' | 'incomplete';
  /** 0 completed, 130 interrupted (as after SIGINT), 1 incomplete. */
  exitCode: 0 | 1 | 130;
  /** Jobs in the whole plan. */
  planned: number;
  /** Jobs of this shard. */
  inShard: number;
  /** Jobs of this shard already in the set when the run started. */
  alreadyDone: number;
  /** Images written by this run. */
  generated: number;
  failed: number;
  failures: SamplerFailure[];
  /** Jobs of this shard still missing (failed or not reached). */
  remaining: number;
  seconds: number;
  imagesPerSecond: number;
  imagesPerHour: number;
  batches: number;
  recovery: Omit<RecoveryReport, 'manifest'>;
  /** How to finish the set, when it is not finished. */
  resumeHint?: string;
}

interface Prepared {
  items: Array<{ job: PlannedJob; image?: RgbImage }>;
  failures: SamplerFailure[];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sourceLookup(dataset: RunSamplerOptions['dataset']): ((id: string) => DatasetRecord | undefined) | undefined {
  if (!dataset) return undefined;
  if (typeof dataset === 'function') return dataset;
  const byId = new Map(dataset.train.map((r) => [r.id, r]));
  return (id) => byId.get(id);
}

function placeholderTokens(jobs: readonly PlannedJob[]): string[] {
  const tokens = new Set<string>();
  for (const j of jobs) for (const m of j.prompt.matchAll(/<[^<>\s]+>/g)) tokens.add(m[0]);
  return [...tokens].sort();
}

export async function runSampler(options: RunSamplerOptions): Promise<SamplerSummary> {
  const started = performance.now();
  const { plan, out, signal } = options;
  const logger = options.logger ?? silentLogger;
  const shard = options.shard ?? { index: 0, count: 1 };
  const batchSize = options.batchSize ?? 1;
  const maxFailures = options.maxFailures ?? 100;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new InvalidArgumentError('batchSize', `must be a positive integer, got ${batchSize}`);
  }
  const generator = toGenerator(options.model);
  const lookup = sourceLookup(options.dataset);
  if (plan.mode === 'img2img' && !lookup) {
    throw new InvalidArgumentError('dataset', `plan ${plan.strategy} is img2img: pass the dataset it was planned from`);
  }
  const mine = plan.jobs.filter((j) => inShard(j.id, shard));

  // Every source must resolve before anything is generated (a different dataset is a usage error).
  const sources = new Map<string, DatasetRecord>();
  if (plan.mode === 'img2img' && lookup) {
    const missing: string[] = [];
    for (const j of mine) {
      if (j.sourceRecordId === undefined) throw new InvalidArgumentError('plan', `img2img job ${j.id} has no source record`);
      const r = lookup(j.sourceRecordId);
      if (r) sources.set(j.sourceRecordId, r);
      else missing.push(j.sourceRecordId);
    }
    if (missing.length) {
      throw new InvalidArgumentError(
        'dataset',
        `${missing.length} source record(s) of the plan are not in the dataset (${[...new Set(missing)]
          .slice(0, 3)
          .map((m) => JSON.stringify(m))
          .join(', ')}…): is it the dataset the plan was made from?`,
      );
    }
  }
  if (generator.model) {
    for (const problem of checkModelForStrategy(
      generator.model,
      { name: plan.strategy, artefacts: plan.artefacts },
      placeholderTokens(mine),
    )) {
      logger.warn(problem);
    }
  }

  await recordPlan(out, plan);
  const writer = await SyntheticSetWriter.open(out, {
    classes: plan.dataset.classes,
    shard,
    logger,
    ...(options.verify ? { verify: options.verify } : {}),
  });
  const { manifest: _manifest, ...recovery } = writer.recovery;
  const pending = mine.filter((j) => !writer.has(j.id));
  const alreadyDone = mine.length - pending.length;
  const shardText = `${shard.index}/${shard.count}`;
  logger.info('sampling', {
    strategy: plan.strategy,
    out: writer.root,
    shard: shardText,
    jobs: mine.length,
    alreadyDone,
    pending: pending.length,
    batchSize,
  });

  let progress: ProgressReporter | undefined;
  let ownsProgress = false;
  if (typeof options.progress === 'function') {
    progress = options.progress({ label: `${plan.strategy} ${shardText}`, total: mine.length, initial: alreadyDone });
    ownsProgress = true;
  } else if (options.progress) {
    progress = options.progress;
    progress.setTotal(mine.length);
    progress.update(alreadyDone);
  }

  const failures: SamplerFailure[] = [];
  let generated = 0;
  let interrupted = false;
  let stoppedForFailures = false;
  let fatal: unknown;
  let batchesRun = 0;

  const prepare = async (batch: Batch): Promise<Prepared> => {
    if (batch.mode === 'txt2img') return { items: batch.jobs.map((job) => ({ job })), failures: [] };
    const settled = await Promise.allSettled(
      batch.jobs.map((job) => decodeRecord(sources.get(job.sourceRecordId as string) as DatasetRecord)),
    );
    const prepared: Prepared = { items: [], failures: [] };
    settled.forEach((r, i) => {
      const job = batch.jobs[i] as PlannedJob;
      if (r.status === 'fulfilled') prepared.items.push({ job, image: r.value });
      else prepared.failures.push({ id: job.id, sourceRecordId: job.sourceRecordId, stage: 'decode', error: message(r.reason) });
    });
    return prepared;
  };

  const generate = async (batch: Batch, items: Prepared['items']): Promise<RgbImage[]> => {
    const images = await generator.generate({
      mode: batch.mode,
      strength: batch.strength,
      steps: batch.settings.steps,
      guidance: batch.settings.guidance,
      ...(batch.settings.size !== undefined ? { size: batch.settings.size } : {}),
      ...(batch.settings.negativePrompt !== undefined ? { negativePrompt: batch.settings.negativePrompt } : {}),
      items: items.map(({ job, image }) => ({ prompt: job.prompt, seed: job.seed, ...(image ? { image } : {}) })),
    });
    if (images.length !== items.length)
      throw new Error(`the generator returned ${images.length} images for ${items.length} jobs`);
    return images;
  };

  /** Generates a batch; if it throws, each job alone (so one bad job does not sink the others). */
  const generateBatch = async (batch: Batch, items: Prepared['items']) => {
    const results: Array<{ job: PlannedJob; image: RgbImage; source?: RgbImage }> = [];
    try {
      const images = await generate(batch, items);
      items.forEach((it, i) => {
        results.push({ job: it.job, image: images[i] as RgbImage, ...(it.image ? { source: it.image } : {}) });
      });
    } catch (err) {
      if (items.length === 1) {
        const it = items[0] as Prepared['items'][number];
        failures.push({ id: it.job.id, sourceRecordId: it.job.sourceRecordId, stage: 'generate', error: message(err) });
        logger.warn('generation failed', { id: it.job.id, error: message(err) });
        return results;
      }
      logger.warn('batch generation failed; retrying its jobs one at a time', { jobs: items.length, error: message(err) });
      for (const it of items) {
        try {
          const [image] = await generate(batch, [it]);
          results.push({ job: it.job, image: image as RgbImage, ...(it.image ? { source: it.image } : {}) });
        } catch (e) {
          failures.push({ id: it.job.id, sourceRecordId: it.job.sourceRecordId, stage: 'generate', error: message(e) });
          logger.warn('generation failed', { id: it.job.id, error: message(e) });
        }
      }
    }
    return results;
  };

  const writeAll = async (results: Array<{ job: PlannedJob; image: RgbImage; source?: RgbImage }>) => {
    await Promise.all(
      results.map(async ({ job, image, source }) => {
        let img = image;
        if (source && (img.width !== source.width || img.height !== source.height)) {
          img = await transformImage(img, [resize(source.width, source.height)]);
        }
        const png = await encodePng(img.data, img.width, img.height, { compressionLevel: options.pngCompressionLevel ?? 6 });
        const line = await writer.write({ ...job, width: img.width, height: img.height }, png);
        generated++;
        progress?.tick();
        options.onImage?.(line);
      }),
    );
  };

  try {
    const batches = groupIntoBatches(pending, plan.mode, batchSize, generator);
    let next: Promise<Prepared> | undefined = batches.length ? prepare(batches[0] as Batch) : undefined;
    let writing: Promise<void> = Promise.resolve();
    for (let b = 0; b < batches.length; b++) {
      if (signal?.aborted) {
        interrupted = true;
        break;
      }
      const batch = batches[b] as Batch;
      const prepared = await (next as Promise<Prepared>);
      next = b + 1 < batches.length ? prepare(batches[b + 1] as Batch) : undefined;
      for (const f of prepared.failures) {
        failures.push(f);
        logger.warn('cannot decode the source image; job skipped', { id: f.id, source: f.sourceRecordId, error: f.error });
      }
      const results = prepared.items.length ? await generateBatch(batch, prepared.items) : [];
      batchesRun++;
      await writing; // at most one batch of writes outstanding
      if (fatal) throw fatal;
      writing = writeAll(results).catch((err) => {
        fatal ??= err;
      });
      if (failures.length >= maxFailures) {
        stoppedForFailures = true;
        logger.error(`stopping after ${failures.length} failed jobs (maxFailures ${maxFailures})`, { last: failures.at(-1) });
        break;
      }
    }
    await writing;
    if (next) await next; // never rejects; do not leave decodes running into close()
    if (fatal) throw fatal;
  } finally {
    await writer.close();
  }

  const seconds = (performance.now() - started) / 1000;
  const remaining = mine.length - alreadyDone - generated;
  const status: SamplerSummary['status'] = interrupted ? 'interrupted' : remaining === 0 ? 'completed' : 'incomplete';
  const imagesPerSecond = seconds > 0 ? generated / seconds : 0;
  const summary: SamplerSummary = {
    out: writer.root,
    shard,
    status,
    exitCode: status === 'completed' ? 0 : status === 'interrupted' ? 130 : 1,
    planned: plan.jobs.length,
    inShard: mine.length,
    alreadyDone,
    generated,
    failed: failures.length,
    failures,
    remaining,
    seconds,
    imagesPerSecond,
    imagesPerHour: imagesPerSecond * 3600,
    batches: batchesRun,
    recovery,
  };
  if (status !== 'completed') {
    const why = interrupted
      ? 'interrupted'
      : stoppedForFailures
        ? 'stopped after too many failures'
        : `${failures.length} job(s) failed`;
    summary.resumeHint =
      `${why}: ${alreadyDone + generated} of ${mine.length} images of shard ${shardText} are in ${writer.root}. ` +
      `Run the same command again to resume${options.resumeCommand ? ` (${options.resumeCommand})` : ''}; finished images are skipped.`;
  }
  if (ownsProgress) {
    progress?.stop({ status, generated, failed: failures.length, imagesPerHour: Math.round(summary.imagesPerHour) });
  }
  logger.info(formatSamplerSummary(summary), {
    status,
    generated,
    failed: failures.length,
    seconds: Number(seconds.toFixed(3)),
    imagesPerHour: Math.round(summary.imagesPerHour),
  });
  if (summary.resumeHint) logger.info(summary.resumeHint);
  return summary;
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min ${s} s`;
}

/** One line: `images 120 (+30 already there) · failures 0 · 12.3 s · 35,122 images/hour · completed`. */
export function formatSamplerSummary(s: SamplerSummary): string {
  const shard = s.shard.count > 1 ? ` [shard ${s.shard.index}/${s.shard.count}]` : '';
  return (
    `images ${s.generated}${s.alreadyDone ? ` (+${s.alreadyDone} already there)` : ''} of ${s.inShard}${shard} · ` +
    `failures ${s.failed} · ${formatDuration(s.seconds)} · ${Math.round(s.imagesPerHour).toLocaleString('en-US')} images/hour · ${s.status}`
  );
}
