import { InvalidArgumentError, createConsoleLogger } from '@diffmix/core';
import type { Command } from 'commander';
import { z } from 'zod';
import { resolveOptions } from '../config.js';
import { runDemo } from '../demo/run-demo.js';

export const DemoOptionsSchema = z
  .object({
    out: z.string().min(1),
    classes: z.coerce.number().int().min(2).max(192),
    perClass: z.coerce.number().int().positive(),
    testPerClass: z.coerce.number().int().positive(),
    shots: z.coerce.number().int().positive(),
    seed: z.coerce.number().int().nonnegative(),
    json: z.boolean().optional(),
  })
  .strict()
  .refine((o) => o.shots <= o.perClass, { message: 'shots cannot exceed perClass', path: ['shots'] });

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the method end to end on the embedded toy dataset and write a report (no downloads)')
    .option('--out <dir>', 'output folder', 'demo-out')
    .option('--classes <n>', 'number of toy classes', '8')
    .option('--per-class <n>', 'training images per class', '20')
    .option('--test-per-class <n>', 'test images per class', '10')
    .option('--shots <k>', 'few-shot subset size per class', '5')
    .option('--seed <n>', 'seed of every random choice', '0')
    .option('--config <file>', 'JSON or YAML file with these options (keys as the flags)')
    .option('--preset <name>', 'a paper preset (see docs/reproducing-the-paper.md)')
    .option('--json', 'print the result as JSON on stdout (progress stays on stderr)')
    .addHelpText('after', '\nExamples:\n  $ diffmix demo --out demo-out\n  $ diffmix demo --classes 4 --per-class 6 --json\n  $ diffmix demo --config demo.yaml')
    .action(async (values: Record<string, unknown>, command: Command) => {
      const opts = await resolveOptions({ command, commandName: 'demo', schema: DemoOptionsSchema, values });
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
