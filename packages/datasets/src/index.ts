/**
 * @diffmix/datasets — read datasets in the layouts users download them in; image IO; synthetic sets.
 */
export * from './adapters/index.js';
export * from './image/index.js';
export * from './mat/index.js';
export * from './subsets/index.js';
export * from './synthetic/index.js';
export * from './toy/index.js';
