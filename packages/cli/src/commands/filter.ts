import { createConsoleLogger } from '@diffmix/core';
import { filterSyntheticSet } from '@diffmix/clip-filter';
import type { Command } from 'commander';
import { z } from 'zod';
import { resolveOptions } from '../config.js';
import { installInterruptHandler } from '@diffmix/diffusion';

export const FilterOptionsSchema = z
  .object({
    set: z.string().min(1),
    clip: z.string().min(1),
    metaclass: z.string().optional(),
    caption: z.array(z.string()).optional(),
    dropFraction: z.coerce.number().min(0).lt(1).default(0.1),
    resampler: z.enum(['torchvision', 'pil', 'sharp']).default('torchvision'),
    batchSize: z.coerce.number().int().positive().default(32),
    rescore: z.boolean().optional(),
    device: z.enum(['cpu', 'webgpu', 'cuda', 'auto']).default('cpu'),
    json: z.boolean().optional(),
  })
  .strict()
  .refine((o) => !o.caption || o.caption.length === 2, { message: 'give exactly two captions: positive, then negative', path: ['caption'] });

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerFilter(program: Command): void {
  program
    .command('filter')
    .description('score a synthetic set with CLIP and drop the lowest-scored fraction (writes new files only)')
    .requiredOption('--set <dir>', 'synthetic set (ours, or an official one with meta.csv)')
    .requiredOption('--clip <dir>', 'CLIP ONNX folder (text_model.onnx + vision_model.onnx, tokenizer, preprocessor_config.json)')
    .option('--metaclass <name>', 'bird, aircraft, flower, car, dog, object (default: the set’s)')
    .option('--caption <text>', 'positive then negative caption, instead of the metaclass pair (give twice)', collect)
    .option('--drop-fraction <q>', 'fraction dropped (lowest scores)', '0.1')
    .option('--resampler <r>', 'torchvision (CLIPProcessor parity) | pil | sharp (faster)', 'torchvision')
    .option('--batch-size <n>', 'images per vision call', '32')
    .option('--rescore', 'ignore scores saved by an earlier run')
    .option('--device <d>', 'cpu | webgpu | cuda | auto', 'cpu')
    .option('--config <file>', 'JSON or YAML file with these options')
    .option('--preset <name>', 'paper preset')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText('after', '\nExamples:\n  $ diffmix filter --set syn/cub --clip models/clip-vit-base-patch32 --metaclass bird\n  $ diffmix filter --set syn/cub --clip clip --drop-fraction 0.2 --json')
    .action(async (values: Record<string, unknown>, command: Command) => {
      const o = await resolveOptions({ command, commandName: 'filter', schema: FilterOptionsSchema, values });
      const interrupt = installInterruptHandler({ message: 'interrupted: scores so far are saved; re-run to continue' });
      try {
        const r = await filterSyntheticSet(o.set, {
          model: o.clip,
          device: o.device,
          ...(o.metaclass ? { metaclass: o.metaclass } : {}),
          ...(o.caption ? { captions: o.caption } : {}),
          dropPercent: o.dropFraction * 100,
          resampler: o.resampler,
          batchSize: o.batchSize,
          ...(o.rescore ? { rescore: true } : {}),
          logger: createConsoleLogger({ level: o.json ? 'warn' : 'info' }),
          signal: interrupt.signal,
        });
        const { images: _images, ...summary } = r;
        if (o.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        else process.stdout.write(`kept ${r.kept} of ${r.total}, dropped ${r.dropped} (score < ${r.threshold.toFixed(4)}); files:\n${Object.entries(r.files).map(([k, v]) => `  ${k}: ${v}`).join('\n')}\n`);
        if (interrupt.exitCode) process.exitCode = interrupt.exitCode;
      } finally {
        interrupt.dispose();
      }
    });
}
