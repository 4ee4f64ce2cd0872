export { createProgress } from './progress.js';
export type { ProgressMode, ProgressOptions, ProgressReporter, ProgressSnapshot } from './progress.js';
