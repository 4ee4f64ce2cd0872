/**
 * @diffmix/ort-train — training on ONNX Runtime: graph building, reverse-mode autodiff over ONNX
 * graphs, losses, optimisers, trainer runtime and classifier model builders.
 */

export * from './autodiff/index.js';
export * from './graph/index.js';
export * from './lora/index.js';
export * from './losses/index.js';
export * from './models/index.js';
export * from './optim/index.js';
export * from './trainer/index.js';
