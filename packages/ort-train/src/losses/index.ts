export type { CrossEntropyOptions, LossWithGrad } from './losses.js';
export { crossEntropy, crossEntropyGraph, mse, mseGraph, oneHotRows } from './losses.js';
