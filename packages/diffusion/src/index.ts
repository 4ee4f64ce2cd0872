/**
 * @diffmix/diffusion — Stable Diffusion 1.x on ONNX Runtime with diffusers parity.
 */
export { ModelFormatError } from './errors.js';
export * from './model/index.js';
export * from './pipeline/index.js';
export * from './schedulers/index.js';
export * from './tokenizer/index.js';
export * from './weights/index.js';
