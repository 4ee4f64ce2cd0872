export { annotate, canonicalSoftLabel, densify, labelMass, mixSoftLabels, oneHot, smoothLabel } from './soft-label.js';
export type { AnnotateOptions, LabelSmoothingMode, SoftLabel } from './soft-label.js';
