/**
 * @diffmix/clip-filter — CLIP image/text scoring on ONNX Runtime with CLIPProcessor parity, and the
 * percentile filter Diff-Mix applies to its synthetic sets.
 */
export {
  CLIP_DEFAULT_PREPROCESSOR,
  type ClipPreprocessorConfig,
  OPENAI_CLIP_MEAN,
  OPENAI_CLIP_STD,
  parsePreprocessorConfig,
  readPreprocessorConfig,
  type ResizeTarget,
} from './preprocess/config.js';
export {
  CLIP_RESAMPLERS,
  ClipImageProcessor,
  type ClipImageProcessorOptions,
  type ClipResampler,
  clipCropRegion,
  clipResizeSize,
} from './preprocess/processor.js';
export {
  type AxisWeights,
  axisWeights,
  type ResampleFilter,
  type ResampleOptions,
  type ResampleRounding,
  resampleRgb,
} from './preprocess/resample.js';
export {
  ClipModel,
  type ClipModelFiles,
  type Embeddings,
  findClipModelFiles,
  type LoadClipModelOptions,
  type TextPadding,
} from './model/clip-model.js';
export { CLIP_LOGIT_SCALE_INIT, type LogitScaleSource, type ResolvedLogitScale, resolveLogitScale } from './model/logit-scale.js';
export { type CaptionPair, METACLASS_CAPTIONS, OFFICIAL_FILTER_CAPTIONS, resolveCaptions } from './score/captions.js';
export { l2NormalizeRows, percentileLinear, scoresFromLogits, similarityLogits, softmaxRows } from './score/math.js';
export {
  ClipScorer,
  type ClipScorerOptions,
  type ImageScore,
  type ScoredItem,
  type ScoreItem,
  type ScoreSourcesOptions,
} from './score/scorer.js';
export {
  FILTER_DIR,
  FILTER_FILES,
  type FilteredImage,
  type FilterResult,
  type FilterSyntheticSetOptions,
  filterSyntheticSet,
  percentileSplit,
  readRemainedManifest,
  REMAINED_META_CSV,
} from './filter/filter.js';
export {
  type ContactSheetEntry,
  renderScoreSheet,
  scoreLabel,
  scoreSheetPng,
  type ScoreSheetOptions,
} from './filter/contact-sheet.js';
export { drawText, FONT_CHARACTERS, textWidth } from './filter/font.js';
export { openScoreLog, SCORE_LOG_KIND, type ScoreLogHeader, type ScoreLogLine } from './filter/score-log.js';
