import { InvalidArgumentError, createConsoleLogger } from '@diffmix/core';
import type { Command } from 'commander';
import { runDemo } from '../demo/run-demo.js';

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(name, `must be a positive integer, got ${JSON.stringify(value)}`);
    return n;
  };
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the method end to end on the embedded toy dataset and write a report (no downloads)')
    .option('--out <dir>', 'output folder', 'demo-out')
    .option('--classes <n>', 'number of toy classes', positiveInt('--classes'), 8)
    .option('--per-class <n>', 'training images per class', positiveInt('--per-class'), 20)
    .option('--test-per-class <n>', 'test images per class', positiveInt('--test-per-class'), 10)
    .option('--shots <k>', 'few-shot subset size per class', positiveInt('--shots'), 5)
    .option('--seed <n>', 'seed of every random choice', (v) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('--seed', `must be a non-negative integer, got ${v}`);
      return n;
    }, 0)
    .option('--json', 'print the result as JSON on stdout (progress stays on stderr)')
    .addHelpText('after', '\nExamples:\n  $ diffmix demo --out demo-out\n  $ diffmix demo --classes 4 --per-class 6 --json')
    .action(async (opts: { out: string; classes: number; perClass: number; testPerClass: number; shots: number; seed: number; json?: boolean }) => {
      if (opts.shots > opts.perClass) throw new InvalidArgumentError('--shots', `(${opts.shots}) cannot exceed --per-class (${opts.perClass})`);
      const result = await runDemo({
        out: opts.out,
        numClasses: opts.classes,
        imagesPerClass: opts.perClass,
        testPerClass: opts.testPerClass,
        shots: opts.shots,
        seed: opts.seed,
        logger: createConsoleLogger({ level: opts.json ? 'warn' : 'info' }),
      });
      if (opts.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else process.stdout.write(`done: ${result.report}\n`);
    });
}
