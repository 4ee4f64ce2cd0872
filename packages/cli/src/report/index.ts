export * from './charts.js';
export * from './compare.js';
export * from './document.js';
export * from './run-record.js';
export * from './strength-grid.js';
export * from './write.js';
