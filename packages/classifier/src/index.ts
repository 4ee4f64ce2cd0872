/**
 * @diffmix/classifier — image classifiers trained on real + synthetic data with soft labels.
 */

export {
  applyMixup,
  type CutMixConfig,
  type CutMixDraw,
  drawCutMix,
  drawMixup,
  type MixupConfig,
  type MixupDraw,
  mixLabels,
  pasteBox,
} from './data/mix.js';
export {
  type Batch,
  type EvalBatch,
  evalBatches,
  type PlannedSample,
  TrainPlan,
  type TrainPlanOptions,
} from './data/pipeline.js';
export { type ReplacementConfig, SyntheticReplacer, type SyntheticReplacerOptions } from './data/replacement.js';
export {
  bindSteps,
  OFFICIAL_RESIZE,
  type ResolvedTransform,
  resolveTransform,
  type TransformConfig,
  testSteps,
  trainAugment,
  trainDecodeSteps,
  trainSteps,
} from './data/transforms.js';
export { AUTO_ENGINE, createEngine, type EngineChoice, probeTfjsBackends, type TfjsBackendProbe } from './engine/create.js';
export { createOrtEngine, type OrtDevice, OrtEngine, type OrtEngineOptions } from './engine/ort/index.js';
export type * from './engine/types.js';
export { type FewShotOptions, type FewShotRow, type MeanStd, meanStd, runFewShot, type Shots } from './fewshot.js';
export {
  CLASSIFIER_PRESETS,
  type ClassifierPreset,
  type ClassifierPresetName,
  classifierPreset,
  DATASET_EPOCHS,
  DATASET_LR,
  type DatasetName,
  datasetLr,
} from './presets.js';
export { CHECKPOINT_FORMAT, checkpointDir, type LoopState, loadCheckpoint, saveCheckpoint } from './train/checkpoint.js';
export { argmax, ConfusionMatrix, type EvalMetrics, evalMetrics } from './train/metrics.js';
export {
  type EpochRecord,
  type EvalRecord,
  evaluate,
  type SyntheticOptions,
  type TrainClassifierOptions,
  type TrainResult,
  trainClassifier,
} from './train/train.js';
