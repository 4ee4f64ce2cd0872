import { Command } from 'commander';
import { registerAttention } from './commands/attention.js';
import { registerDemo } from './commands/demo.js';
import { registerFilter } from './commands/filter.js';
import { registerFinetune } from './commands/finetune.js';
import { registerInfo } from './commands/info.js';
import { registerLongTail } from './commands/longtail.js';
import { registerReport } from './commands/report.js';
import { registerSample } from './commands/sample.js';
import { registerTrain } from './commands/train.js';

/** The `diffmix` command tree. Subcommands arrive as their packages land (see docs/README.md). */
export function createProgram(version: string): Command {
  const program = new Command('diffmix')
    .description('Generative data augmentation for image classifiers: Diff-Mix and its baselines')
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerInfo(program);
  registerDemo(program);
  registerFinetune(program);
  registerSample(program);
  registerFilter(program);
  registerLongTail(program);
  registerAttention(program);
  registerReport(program);
  registerTrain(program);
  return program;
}
