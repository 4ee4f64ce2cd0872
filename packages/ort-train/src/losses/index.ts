export { crossEntropy, crossEntropyGraph, mse, mseGraph, oneHotRows } from './losses.js';
export type { CrossEntropyOptions, LossWithGrad } from './losses.js';
