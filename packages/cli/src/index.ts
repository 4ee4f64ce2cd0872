/**
 * @diffmix/cli — programmatic access to what the `diffmix` command runs.
 */
export { collectInfo } from './commands/info.js';
export type { InfoReport } from './commands/info.js';
export { runDemo } from './demo/run-demo.js';
export type { DemoOptions, DemoResult } from './demo/run-demo.js';
export { describeFailure } from './errors.js';
export { ExitCode } from './exit-codes.js';
export { createProgram } from './program.js';
