/**
 * Image IO with sharp: decoding to 8-bit sRGB RGB, torchvision-style geometry steps folded into the
 * decoding pass, normalisation to float CHW tensors, PNG encoding and a prefetching loader.
 */
export {
  type DecodeOptions,
  decodeImage,
  decodeRecord,
  type EncodePngOptions,
  encodePng,
  type FailOn,
  type ImageSource,
  planSteps,
  RESIZE_KERNEL,
  transformImage,
} from './decode.js';
export {
  createImageLoader,
  defaultDecodeConcurrency,
  type ImageLoader,
  type ImageLoaderOptions,
  type LoadedImage,
  threadPoolSize,
} from './loader.js';
export {
  assertRgbImage,
  blankImage,
  type ContactSheetOptions,
  cropImage,
  flipHorizontal,
  fromFloatCHW,
  IMAGENET_MEAN,
  IMAGENET_NORMALIZATION,
  IMAGENET_STD,
  makeContactSheet,
  type Normalization,
  toFloatCHW,
  VAE_NORMALIZATION,
} from './pixels.js';
export { GeometryPlan, type PlanStage, type Size } from './plan.js';
export {
  centerCrop,
  centerCropRegion,
  classifierEvalSteps,
  classifierTrainSteps,
  crop,
  fineTuneSteps,
  horizontalFlip,
  type ImageStep,
  type PaddingArg,
  pad,
  type RandomCropOptions,
  type RandomResizedCropOptions,
  randomCrop,
  randomCropRegion,
  randomHorizontalFlip,
  randomResizedCrop,
  randomResizedCropRegion,
  resize,
  resizeShorter,
  resizeSquare,
  roundHalfEven,
  shorterSideSize,
  toPadding,
} from './steps.js';
export type { Padding, Region, RgbImage } from './types.js';
export { imageIoInfo } from './info.js';
