export { cleanClassName } from './common.js';
export { type AircraftLevel, type AircraftOptions, cleanAircraftName, loadAircraft } from './aircraft/index.js';
export { type CubOptions, loadCub } from './cub/index.js';
export { compareCodePoints, IMG_EXTENSIONS, type ImageFolderOptions, loadImageFolder } from './imagefolder/index.js';
export { loadParquet, type ParquetOptions } from './parquet/index.js';
export {
  decodeIndexMask,
  type IndexMask,
  largestInstanceLabel,
  loadVoc,
  majorityClassLabel,
  VOC_CLASS_NAMES,
  VOC_RAW_CLASS_NAMES,
  vocColormap,
  type VocLabelRule,
  type VocOptions,
} from './voc/index.js';
export { FLOWERS102_CLASS_NAMES, type FlowersOptions, type FlowersSplit, loadFlowers } from './flowers/index.js';
export { type CarsOptions, loadCars } from './cars/index.js';
export { type DogsOptions, dogClassName, loadDogs } from './dogs/index.js';
