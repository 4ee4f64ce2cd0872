/**
 * The synthesis sampler: plans (deterministic jobs), resumable and shardable runs into a synthetic
 * set, Ctrl-C handling, and composing sets from several pools.
 */
export {
  PLAN_FORMAT,
  type PlanRecord,
  type PlanSynthesisOptions,
  type PlannedJob,
  type SynthesisParams,
  type SynthesisPlan,
  parsePlan,
  planDigest,
  planRecord,
  planSettingsKey,
  planSynthesis,
  selectionContext,
  serializePlan,
  shardJobs,
} from './plan.js';
export { PLAN_FILE, readPlanFile, recordPlan } from './plan-file.js';
export {
  type GenerateItem,
  type GenerateRequest,
  type ImageGenerator,
  stableDiffusionGenerator,
  toGenerator,
} from './generator.js';
export { type Batch, type JobSettings, groupIntoBatches, jobSettings } from './batches.js';
export {
  type ProgressFactory,
  type RunSamplerOptions,
  type SamplerFailure,
  type SamplerSummary,
  formatSamplerSummary,
  runSampler,
} from './run.js';
export { type InterruptHandler, type InterruptHandlerOptions, exitCodeForSignal, installInterruptHandler } from './interrupt.js';
export { COMPOSE_FILE, type ComposeOptions, type ComposeSummary, composeSyntheticSet } from './compose.js';
export { fingerprintFiles, fingerprintModelFolder } from './fingerprint.js';
