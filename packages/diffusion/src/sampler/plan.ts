/**
 * Planning: a dataset and a strategy → the list of synthesis jobs, deterministic byte for byte.
 *
 * Job i draws everything from its own stream `Rng.fromSeed(seed).split('plan').split('job').split(i)`:
 * the selection from its child 'select', the strength from 'strength' and the job's noise seed (an
 * integer in [0, 2^53)) from 'seed'. So a job depends only on the plan seed, its index and the
 * inputs, never on the other jobs: a plan with multiplier 10 starts with the plan of multiplier 5,
 * and the same seed gives every strategy the same source images.
 *
 * The job id (`synthesisJobId`) hashes strategy, source record, classes, strength, prompt, seed and
 * `params` (steps, guidance, size, model fingerprint, … everything that changes the pixels); γ and the
 * scaler c only change labels, so they are recorded in the plan (and `plan.json`), not in the id.
 */
import {
  AnnotationConfigSchema,
  InvalidArgumentError,
  Rng,
  canonicalJson,
  createSynthesisJob,
  inShard,
  sha256Hex,
  synthesisJobId,
} from '@diffmix/core';
import type { ClassInfo, Dataset, DatasetRecord, JsonValue, Shard, SoftLabel, SynthesisJob } from '@diffmix/core';
import { defaultPlaceholder } from '../strategies/define.js';
import { getStrategy } from '../strategies/registry.js';
import { checkStrengthChoice, drawStrength, minStrength, toStrengthChoice } from '../strategies/strength.js';
import type {
  ClassRelation,
  FineTuneArtefacts,
  GenerationMode,
  SelectionContext,
  Strategy,
  StrengthChoice,
} from '../strategies/types.js';

/** Generation parameters; all of them go into every job's `params` (and so into its id). */
export interface SynthesisParams {
  /** Denoising steps of the full schedule (default 25). */
  steps?: number;
  /** Classifier-free guidance scale (default 7.5). */
  guidance?: number;
  /** Model-side image size in pixels (the model's native size when absent). */
  size?: number;
  /** Fingerprint of the base model and adapters (e.g. from `fingerprintFiles`). */
  model?: string;
  scheduler?: string;
  negativePrompt?: string;
  [key: string]: JsonValue | undefined;
}

/** A job of a plan: the synthesis job, its position in the plan and its soft label. */
export interface PlannedJob extends SynthesisJob {
  /** Position in the plan (the job's RNG stream is derived from it). */
  planIndex: number;
  label: SoftLabel;
}

export interface SynthesisPlan {
  format: 'diffmix-synthesis-plan';
  version: 1;
  strategy: string;
  mode: GenerationMode;
  relation: ClassRelation;
  artefacts: FineTuneArtefacts;
  dataset: { name: string; metaclass: string; classes: ClassInfo[]; trainSize: number };
  seed: number | string;
  multiplier: number;
  longTail: boolean;
  strength: StrengthChoice;
  annotation: { gamma: number; scaler: number };
  promptTemplate: string;
  params: Record<string, JsonValue>;
  jobs: PlannedJob[];
}

export interface PlanSynthesisOptions {
  dataset: Pick<Dataset, 'name' | 'metaclass' | 'classes' | 'train'>;
  strategy: Strategy | string;
  /** Jobs = round(multiplier × training images); default 5 (10 with `longTail`). */
  multiplier?: number;
  /** Exact number of jobs instead of `multiplier × training images`. */
  count?: number;
  /** Plan seed: an integer in [0, 2^53) or a string. */
  seed: number | string;
  /** Strength rule (a number, a list, or a rule); default the strategy's. Not allowed for txt2img. */
  strengths?: number | readonly number[] | StrengthChoice;
  /** γ (default 0.8) and scaler c (default 1); core's `AnnotationConfigSchema`. */
  annotation?: { gamma?: number; scaler?: number };
  params?: SynthesisParams;
  /** Long-tail selection (source image uniform over all images); also makes the default multiplier 10. */
  longTail?: boolean;
  /** Overrides the strategy's prompt template. */
  promptTemplate?: string;
  /** The TI token of a class (default `<class_{id}>`). */
  placeholder?: (classId: number) => string;
}

export const PLAN_FORMAT = 'diffmix-synthesis-plan' as const;
const TWO_POW_53 = 2 ** 53;

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The selection context of a dataset: records by class, sorted by id; duplicate ids are an error. */
export function selectionContext(dataset: Pick<Dataset, 'classes' | 'train'>, longTail = false): SelectionContext {
  const classIds = new Set(dataset.classes.map((c) => c.id));
  const seen = new Set<string>();
  const byClass = new Map<number, DatasetRecord[]>(dataset.classes.map((c) => [c.id, []]));
  for (const r of dataset.train) {
    if (seen.has(r.id)) throw new InvalidArgumentError('dataset', `training record id ${JSON.stringify(r.id)} appears twice`);
    seen.add(r.id);
    if (!classIds.has(r.label)) {
      throw new InvalidArgumentError(
        'dataset',
        `training record ${JSON.stringify(r.id)} has label ${r.label}, which is not a class id`,
      );
    }
    byClass.get(r.label)?.push(r);
  }
  for (const list of byClass.values()) list.sort((a, b) => compareIds(a.id, b.id));
  const records = [...dataset.train].sort((a, b) => compareIds(a.id, b.id));
  return { classes: [...dataset.classes].sort((a, b) => a.id - b.id), byClass, records, longTail };
}

/** The job's noise seed, an integer in [0, 2^53). */
function jobSeed(rng: Rng): number {
  return Math.floor(rng.uniform() * TWO_POW_53);
}

function resolveParams(params: SynthesisParams | undefined): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(params ?? {})) if (v !== undefined) out[k] = v;
  out.steps = params?.steps ?? 25;
  out.guidance = params?.guidance ?? 7.5;
  if (!Number.isInteger(out.steps) || (out.steps as number) < 1) {
    throw new InvalidArgumentError('params.steps', `must be a positive integer, got ${out.steps}`);
  }
  if (typeof out.guidance !== 'number' || !Number.isFinite(out.guidance)) {
    throw new InvalidArgumentError('params.guidance', `must be a finite number, got ${out.guidance}`);
  }
  if (out.size !== undefined && (!Number.isInteger(out.size) || (out.size as number) < 8)) {
    throw new InvalidArgumentError('params.size', `must be a positive integer multiple of 8, got ${out.size}`);
  }
  if (out.negativePrompt !== undefined && typeof out.negativePrompt !== 'string') {
    throw new InvalidArgumentError('params.negativePrompt', 'must be a string');
  }
  // Canonical key order so that plans serialise identically whatever order the caller used.
  return JSON.parse(canonicalJson(out)) as Record<string, JsonValue>;
}

/** Plans the jobs of one strategy on one dataset (see the module comment for the rules). */
export function planSynthesis(options: PlanSynthesisOptions): SynthesisPlan {
  const strategy = typeof options.strategy === 'string' ? getStrategy(options.strategy) : options.strategy;
  const { dataset } = options;
  const longTail = options.longTail ?? false;
  const annotation = AnnotationConfigSchema.parse({ gamma: options.annotation?.gamma, scaler: options.annotation?.scaler });
  const params = resolveParams(options.params);
  const steps = params.steps as number;

  let strength: StrengthChoice;
  if (strategy.mode === 'txt2img') {
    if (options.strengths !== undefined) {
      const s = toStrengthChoice(options.strengths);
      if (s.kind !== 'fixed' || s.value !== 1) {
        throw new InvalidArgumentError('strengths', `${strategy.name} is txt2img: its strength is always 1`);
      }
    }
    strength = { kind: 'fixed', value: 1 };
  } else {
    strength =
      options.strengths === undefined ? checkStrengthChoice(strategy.defaultStrength) : toStrengthChoice(options.strengths);
    const lo = minStrength(strength);
    if (Math.trunc(steps * lo) < 1) {
      throw new InvalidArgumentError(
        'strengths',
        `strength ${lo} with ${steps} steps leaves no denoising step (int(${steps}·${lo}) = 0); raise the strength or the step count`,
      );
    }
  }
  strength = JSON.parse(canonicalJson(strength)) as StrengthChoice;

  const ctx = selectionContext(dataset, longTail);
  const trainSize = dataset.train.length;
  const multiplier = options.multiplier ?? (longTail ? 10 : 5);
  if (!(multiplier > 0) || !Number.isFinite(multiplier)) {
    throw new InvalidArgumentError('multiplier', `must be a positive number, got ${multiplier}`);
  }
  const count = options.count ?? Math.round(multiplier * trainSize);
  if (!Number.isSafeInteger(count) || count < 0)
    throw new InvalidArgumentError('count', `must be a non-negative integer, got ${count}`);

  const template = options.promptTemplate ?? strategy.promptTemplate;
  const promptCtx = { metaclass: String(dataset.metaclass), placeholder: options.placeholder ?? defaultPlaceholder };
  const classById = new Map(ctx.classes.map((c) => [c.id, c]));
  const root = Rng.fromSeed(options.seed).split('plan').split('job');

  const jobs: PlannedJob[] = [];
  for (let i = 0; i < count; i++) {
    const rng = root.split(i);
    const sel = strategy.select(rng.split('select'), ctx);
    const target = classById.get(sel.targetClass);
    if (!target || !classById.has(sel.sourceClass)) {
      throw new InvalidArgumentError(
        'strategy',
        `${strategy.name} selected class ${sel.sourceClass} → ${sel.targetClass}, not both class ids`,
      );
    }
    if (strategy.mode === 'img2img' && !sel.source)
      throw new InvalidArgumentError('strategy', `${strategy.name} selected no source image`);
    const s = drawStrength(strength, rng.split('strength'));
    const job = createSynthesisJob({
      strategy: strategy.name,
      ...(sel.source ? { sourceRecordId: sel.source.id } : {}),
      sourceClass: sel.sourceClass,
      targetClass: sel.targetClass,
      strength: s,
      prompt: strategy.prompt(target, promptCtx, template),
      seed: jobSeed(rng.split('seed')),
      params,
    });
    const label = strategy.label({ sourceClass: sel.sourceClass, targetClass: sel.targetClass, strength: s, annotation });
    jobs.push({ ...job, planIndex: i, label });
  }

  return {
    format: PLAN_FORMAT,
    version: 1,
    strategy: strategy.name,
    mode: strategy.mode,
    relation: strategy.relation,
    artefacts: strategy.artefacts,
    dataset: {
      name: dataset.name,
      metaclass: String(dataset.metaclass),
      // id, name and rawName only: adapters may attach more (the toy dataset's attributes), which says
      // nothing about the synthetic set.
      classes: ctx.classes.map((c) => ({ id: c.id, name: c.name, ...(c.rawName !== undefined ? { rawName: c.rawName } : {}) })),
      trainSize,
    },
    seed: options.seed,
    multiplier,
    longTail,
    strength,
    annotation: { gamma: annotation.gamma, scaler: annotation.scaler },
    promptTemplate: template,
    params,
    jobs,
  };
}

/** The jobs of `plan` that belong to `shard` (by job id; no coordination between workers needed). */
export function shardJobs(plan: Pick<SynthesisPlan, 'jobs'>, shard: Shard | undefined): PlannedJob[] {
  if (!shard || shard.count === 1) return plan.jobs;
  return plan.jobs.filter((j) => inShard(j.id, shard));
}

type PlanHeader = Omit<SynthesisPlan, 'jobs'> & { jobCount: number };

function header(plan: SynthesisPlan): PlanHeader {
  const { jobs, ...rest } = plan;
  return { ...rest, jobCount: jobs.length };
}

/**
 * JSON lines: the header (everything but the jobs, plus `jobCount`) and then one job per line, each
 * in canonical JSON (sorted keys). Equal plans give equal bytes.
 */
export function serializePlan(plan: SynthesisPlan): string {
  return `${canonicalJson(header(plan))}\n${plan.jobs.map((j) => `${canonicalJson(j)}\n`).join('')}`;
}

/** SHA-256 of `serializePlan(plan)`. */
export function planDigest(plan: SynthesisPlan): string {
  return sha256Hex(serializePlan(plan));
}

/** A plan without its jobs, as `plan.json` records it next to a synthetic set. */
export interface PlanRecord extends Omit<SynthesisPlan, 'jobs'> {
  jobCount: number;
  /** `planDigest` of the full plan. */
  digest: string;
}

export function planRecord(plan: SynthesisPlan): PlanRecord {
  return { ...header(plan), digest: planDigest(plan) };
}

/**
 * What must agree for two plans to write into the same set: everything but the job count (a larger
 * multiplier or count extends a plan, since job i does not depend on how many jobs there are).
 */
export function planSettingsKey(plan: SynthesisPlan | PlanRecord): string {
  const { multiplier: _m, ...rest } = plan as SynthesisPlan & Partial<PlanRecord>;
  return canonicalJson({ ...rest, jobs: undefined, jobCount: undefined, digest: undefined });
}

/** Reads `serializePlan` output back; every job id is recomputed and checked. */
export function parsePlan(text: string, source = 'plan'): SynthesisPlan {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const parse = (line: string, n: number): Record<string, unknown> => {
    try {
      const v = JSON.parse(line) as unknown;
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      return v as Record<string, unknown>;
    } catch (err) {
      throw new InvalidArgumentError(source, `line ${n}: not a JSON object (${(err as Error).message})`);
    }
  };
  if (lines.length === 0) throw new InvalidArgumentError(source, 'is empty');
  const head = parse(lines[0] as string, 1) as unknown as PlanHeader;
  if (head.format !== PLAN_FORMAT || head.version !== 1) {
    throw new InvalidArgumentError(
      source,
      `line 1: not a diffmix synthesis plan (format ${JSON.stringify(head.format)}, version ${head.version})`,
    );
  }
  const jobs: PlannedJob[] = [];
  for (let i = 1; i < lines.length; i++) {
    const job = parse(lines[i] as string, i + 1) as unknown as PlannedJob;
    const id = synthesisJobId(job);
    if (id !== job.id)
      throw new InvalidArgumentError(source, `line ${i + 1}: job id ${job.id} does not match its fields (${id})`);
    if (!Array.isArray(job.label)) throw new InvalidArgumentError(source, `line ${i + 1}: job ${job.id} has no label`);
    jobs.push(job);
  }
  if (jobs.length !== head.jobCount) {
    throw new InvalidArgumentError(source, `header says ${head.jobCount} jobs, found ${jobs.length} (truncated file?)`);
  }
  const { jobCount: _c, ...rest } = head;
  return { ...rest, jobs };
}
