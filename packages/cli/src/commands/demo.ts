import { createConsoleLogger } from '@diffmix/core';
import { installInterruptHandler } from '@diffmix/diffusion';
import type { Command } from 'commander';
import { z } from 'zod';
import { resolveOptions } from '../config.js';
import { runDemo } from '../demo/run-demo.js';
import { TOY_SD_CLASSES } from '../demo/toy-model.js';

export const DemoOptionsSchema = z
  .object({
    out: z.string().min(1),
    classes: z.coerce.number().int().min(2).max(TOY_SD_CLASSES),
    perClass: z.coerce.number().int().positive(),
    testPerClass: z.coerce.number().int().positive(),
    multiplier: z.coerce.number().positive(),
    sampleSteps: z.coerce.number().int().positive(),
    epochs: z.coerce.number().int().positive(),
    gridTargets: z.coerce.number().int().positive(),
    seed: z.coerce.number().int().nonnegative(),
    quick: z.boolean().optional(),
    json: z.boolean().optional(),
  })
  .strict();

/** `--quick`: the whole pipeline at toy sizes (CI runs it); explicit flags still win. */
const QUICK = { classes: 3, perClass: 4, testPerClass: 4, multiplier: 1, sampleSteps: 3, epochs: 2, gridTargets: 2 };

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run Diff-Mix end to end on the embedded toy dataset with the shipped toy model, and write a report (no downloads)',
    )
    .option('--out <dir>', 'output folder (re-run to resume)', 'demo-out')
    .option('--classes <n>', `number of toy classes (2–${TOY_SD_CLASSES}: the toy model knows the first ${TOY_SD_CLASSES})`, '8')
    .option('--per-class <n>', 'training images per class', '10')
    .option('--test-per-class <n>', 'test images per class', '20')
    .option('--multiplier <x>', 'synthetic images per training image, per strategy', '2')
    .option('--sample-steps <n>', 'DPM-Solver++ steps per synthetic image', '10')
    .option('--epochs <n>', 'classifier training epochs', '24')
    .option('--grid-targets <n>', 'target classes in the strength grid', '4')
    .option('--seed <n>', 'seed of every random choice', '0')
    .option('--quick', 'tiny sizes: checks the whole pipeline in well under a minute')
    .option('--config <file>', 'JSON or YAML file with these options (keys as the flags)')
    .option('--json', 'print the result as JSON on stdout (progress stays on stderr)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffmix demo --out demo-out\n  $ diffmix demo --quick --out /tmp/demo --json\n  $ diffmix demo --classes 4 --epochs 12',
    )
    .action(async (values: Record<string, unknown>, command: Command) => {
      // Quick-mode sizes replace the defaults but not what the user typed.
      const typed = new Set(Object.keys(values).filter((k) => command.getOptionValueSource(k) === 'cli'));
      const withQuick = values.quick
        ? { ...values, ...Object.fromEntries(Object.entries(QUICK).filter(([k]) => !typed.has(k))) }
        : values;
      const o = await resolveOptions({ command, commandName: 'demo', schema: DemoOptionsSchema, values: withQuick });
      const interrupt = installInterruptHandler({
        message: 'interrupted: finished work is kept; re-run the same command to resume',
      });
      try {
        const result = await runDemo({
          out: o.out,
          numClasses: o.classes,
          imagesPerClass: o.perClass,
          testPerClass: o.testPerClass,
          multiplier: o.multiplier,
          sampleSteps: o.sampleSteps,
          epochs: o.epochs,
          gridTargets: o.gridTargets,
          seed: o.seed,
          progress: o.json ? 'silent' : 'auto',
          logger: createConsoleLogger({ level: o.json ? 'warn' : 'info' }),
          signal: interrupt.signal,
        });
        if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        else {
          for (const r of result.runs)
            process.stdout.write(
              `${r.method}: best top-1 ${(r.top1Best * 100).toFixed(1)} %, final ${(r.top1Final * 100).toFixed(1)} %\n`,
            );
          process.stdout.write(`report: ${result.report}\n`);
        }
      } finally {
        interrupt.dispose();
      }
    });
}
