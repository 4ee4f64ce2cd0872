/**
 * @diffmix/longtail — the long-tail protocol of Diff-Mix: imbalanced subsets (CUB-LT, Flower-LT) and
 * their manifests, re-weighted synthetic sampling, many / medium / few accuracy, the CMO and DRW
 * baselines and the training preset.
 */
export { type LongTailCountsOptions, type LongTailFormula, TABLE_10, longTailCounts, longTailTotal } from './counts.js';
export {
  type LongTailOptions,
  type LongTailSubset,
  type TieBreak,
  classCounts,
  makeLongTail,
  rankClassesBySize,
} from './subset.js';
export {
  type ApplyManifestOptions,
  type LongTailManifest,
  type LongTailManifestClass,
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  applyLongTailManifest,
  parseLongTailManifest,
  readLongTailManifest,
  serializeLongTailManifest,
  writeLongTailManifest,
} from './manifest.js';
export {
  SYNTHETIC_PROBABILITY,
  SyntheticReplacement,
  type SyntheticReplacementOptions,
  type SyntheticWeighting,
  type TrainingPick,
  WeightedSyntheticSampler,
  type WeightedSyntheticSamplerOptions,
  inverseCountProbabilities,
} from './reweight.js';
export {
  CUB_LT_THRESHOLDS,
  FLOWERS_LT_THRESHOLDS,
  type GroupAccuracy,
  type LongTailAccuracy,
  type LongTailAccuracyInput,
  type ShotGroup,
  type ShotThresholds,
  longTailAccuracy,
  shotGroup,
} from './metrics.js';
export {
  CMO_DEFAULTS,
  type CmoConfig,
  type CutMix,
  type CutMixBox,
  DRW_DEFAULTS,
  type DrwConfig,
  classBalancedWeights,
  cmoActive,
  cmoClassWeights,
  cmoSampleWeights,
  cmoSampler,
  cutmixBox,
  drawCmoCutMix,
  drwWeights,
} from './baselines.js';
export {
  LONG_TAIL_SCHEDULE,
  LONG_TAIL_TRAINING_PRESET,
  type LongTailTrainingPreset,
  type LrMilestone,
  type LrSchedule,
  type NormalizeConfig,
  lrAt,
} from './preset.js';
export { WeightedSampler } from './weighted.js';
