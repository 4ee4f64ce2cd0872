/**
 * @diffmix/classifier — image classifiers trained on real + synthetic data with soft labels.
 */
export type * from './engine/types.js';
