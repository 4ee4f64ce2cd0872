/**
 * @diffmix/diffusion — Stable Diffusion 1.x on ONNX Runtime with diffusers parity.
 */
export { ModelFormatError } from './errors.js';
export * from './attention/index.js';
export * from './model/index.js';
export * from './pipeline/index.js';
export * from './schedulers/index.js';
export * from './tokenizer/index.js';
export * from './weights/index.js';
export * from './strategies/index.js';
export * from './sampler/index.js';
