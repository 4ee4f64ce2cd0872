/**
 * @diffmix/core — the contracts every diffmix package shares.
 */
export * from './config/index.js';
export * from './errors/index.js';
export * from './hash/index.js';
export * from './job/index.js';
export * from './labels/index.js';
export * from './log/index.js';
export * from './manifest/index.js';
export * from './progress/index.js';
export * from './rng/index.js';
export * from './types/index.js';
export * from './paths/index.js';
export * from './npy/index.js';
export * from './safetensors/index.js';
