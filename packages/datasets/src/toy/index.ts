/**
 * The procedural "toy fine-grained" dataset: classes = base shape × patch colour × body pattern,
 * drawn over varied backgrounds, positions, scales and rotations; deterministic from a seed.
 */
export {
  TOY_COLOURS,
  TOY_MAX_CLASSES,
  TOY_PATTERNS,
  TOY_SHAPES,
  type ToyClass,
  type ToyColour,
  type ToyPattern,
  type ToyShape,
  toyClasses,
} from './classes.js';
export {
  generateToyDataset,
  TOY_GENERATOR,
  type ToyClassesFile,
  type ToyDataset,
  type ToyDatasetOptions,
  toyImageRng,
  writeToyDataset,
} from './generate.js';
export { renderToyImage, TOY_RENDER_VERSION } from './render.js';
