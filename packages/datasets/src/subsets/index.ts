export { type FewShotOptions, fewShot, recordsByClass } from './few-shot.js';
export { type ClassCount, type ClassStats, classStats, type SplitStats } from './stats.js';
