import { longTailTotal, makeLongTail, writeLongTailManifest } from '@diffmix/longtail';
import type { Command } from 'commander';
import { z } from 'zod';
import { resolveOptions } from '../config.js';
import { DATASET_FORMATS, loadDataset } from '../datasets.js';

export const LongTailOptionsSchema = z
  .object({
    data: z.string().min(1),
    format: z.enum(DATASET_FORMATS),
    imbalanceFactor: z.coerce.number().min(1).default(100),
    formula: z.enum(['official', 'paper']).default('official'),
    seed: z.coerce.number().int().nonnegative().default(0),
    out: z.string().min(1),
    json: z.boolean().optional(),
  })
  .strict();

export function registerLongTail(program: Command): void {
  program
    .command('longtail')
    .description('build an imbalanced (long-tail) training subset, as CUB-LT / Flower-LT, and write its manifest')
    .requiredOption('--data <root>', 'dataset root')
    .option('--format <name>', `dataset layout: ${DATASET_FORMATS.join(', ')}`, 'imagefolder')
    .option('--imbalance-factor <rho>', 'ρ = largest / smallest class (100, 20, 10 in the paper)', '100')
    .option('--formula <f>', 'official (exponent k/(N−2), reproduces Table 10) | paper (k/(N−1), Eq. 4 as printed)', 'official')
    .option('--seed <n>', 'seed of the per-class sample', '0')
    .requiredOption('--out <file.json>', 'subset manifest to write')
    .option('--config <file>', 'JSON or YAML file with these options')
    .option('--preset <name>', 'paper preset')
    .option('--json', 'print the summary as JSON on stdout')
    .addHelpText('after', '\nExamples:\n  $ diffmix longtail --data CUB_200_2011 --format cub --imbalance-factor 100 --out cub-lt100.json')
    .action(async (values: Record<string, unknown>, command: Command) => {
      const o = await resolveOptions({ command, commandName: 'longtail', schema: LongTailOptionsSchema, values });
      const dataset = await loadDataset(o.format, o.data);
      const lt = makeLongTail(dataset, { imbalanceFactor: o.imbalanceFactor, formula: o.formula, seed: o.seed });
      await writeLongTailManifest(o.out, lt.manifest);
      const summary = {
        out: o.out,
        classes: dataset.classes.length,
        trainImages: dataset.train.length,
        subsetImages: lt.dataset.train.length,
        expectedTotal: longTailTotal({ numClasses: dataset.classes.length, totalImages: dataset.train.length, imbalanceFactor: o.imbalanceFactor, formula: o.formula }),
        largestClass: Math.max(...lt.trainCounts),
        smallestClass: Math.min(...lt.trainCounts),
      };
      if (o.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      else process.stdout.write(`${summary.subsetImages} of ${summary.trainImages} training images kept (classes from ${summary.largestClass} down to ${summary.smallestClass}); manifest: ${o.out}\n`);
    });
}
