import { installInterruptHandler } from '@diffmix/diffusion';
import { applyLongTailManifest, readLongTailManifest } from '@diffmix/longtail';
import { FINE_TUNE_MODES, type FineTuneMode, fineTune } from '@diffmix/lora-finetune';
import type { Command } from 'commander';
import { z } from 'zod';
import { resolveOptions } from '../config.js';
import { DATASET_FORMATS, loadDataset } from '../datasets.js';

export const FinetuneOptionsSchema = z
  .object({
    data: z.string().min(1),
    format: z.enum(DATASET_FORMATS),
    metaclass: z.string().min(1).optional(),
    model: z.string().min(1),
    out: z.string().min(1),
    mode: z.enum(FINE_TUNE_MODES as [FineTuneMode, ...FineTuneMode[]]).default('ti+db'),
    // `maxSteps` is the name the paper presets (and the official script's --max_train_steps) use.
    steps: z.coerce.number().int().positive().optional(),
    maxSteps: z.coerce.number().int().positive().optional(),
    batchSize: z.coerce.number().int().positive().default(8),
    lr: z.coerce.number().nonnegative().default(5e-5),
    embeddingLr: z.coerce.number().nonnegative().optional(),
    weightDecay: z.coerce.number().nonnegative().default(1e-2),
    rank: z.coerce.number().int().positive().default(10),
    resolution: z.coerce.number().int().positive().optional(),
    checkpointEvery: z.coerce.number().int().nonnegative().default(500),
    resume: z.union([z.boolean(), z.string().min(1)]).optional(),
    seed: z.coerce.number().int().nonnegative().default(42),
    shots: z.coerce.number().int().positive().optional(),
    longTail: z.string().min(1).optional(),
    shotsSeed: z.coerce.number().int().nonnegative().default(42),
    initTokenId: z.coerce.number().int().nonnegative().default(42170),
    captionProbability: z.coerce.number().min(0).max(1).default(0),
    placeholders: z.boolean().optional(),
    latents: z.enum(['sample', 'mean']).default('sample'),
    device: z.enum(['cpu', 'webgpu', 'cuda']).default('cpu'),
    json: z.boolean().optional(),
  })
  .strict();

export function registerFinetune(program: Command): void {
  program
    .command('finetune')
    .description(
      'fine-tune Stable Diffusion on a dataset: textual inversion, DreamBooth-LoRA, both, or every UNet weight (resumable)',
    )
    .requiredOption('--data <root>', 'dataset root')
    .option('--format <name>', `dataset layout: ${DATASET_FORMATS.join(', ')}`, 'imagefolder')
    .option('--metaclass <word>', 'metaclass for imagefolder / parquet sets (bird, car, …)')
    .requiredOption('--model <dir>', 'Stable Diffusion ONNX folder with vae_encoder/ (see docs/bring-your-own-sd.md)')
    .requiredOption('--out <dir>', 'output folder: LoRA, embeddings, model/ (full), finetune.json, checkpoints/')
    .option('--mode <m>', `${FINE_TUNE_MODES.join(' | ')}`, 'ti+db')
    .option('--steps <n>', 'optimiser steps in total (default 35000)')
    .option('--max-steps <n>', 'same as --steps (the presets’ key)')
    .option('--batch-size <n>', 'images per step', '8')
    .option('--lr <x>', 'learning rate of the UNet group (LoRA, or all weights in full)', '5e-5')
    .option('--embedding-lr <x>', 'learning rate of the placeholder rows (default: 5e-5)')
    .option('--weight-decay <x>', 'AdamW weight decay', '0.01')
    .option('--rank <r>', 'LoRA rank', '10')
    .option('--resolution <px>', 'training resolution (default: the model’s)')
    .option('--checkpoint-every <n>', 'write a checkpoint every n steps (0: only at the end / on Ctrl-C)', '500')
    .option('--resume [checkpoint]', 'continue from the latest checkpoint in --out (or from this checkpoint folder)')
    .option('--seed <n>', 'seed of every random draw', '42')
    .option('--shots <k>', 'fine-tune on a k-shot subset of the training set')
    .option('--long-tail <manifest>', 'fine-tune on the long-tail subset of this manifest (from diffmix longtail)')
    .option('--shots-seed <n>', 'seed of the k-shot subset (the official fine-tuning subset uses 42)', '42')
    .option('--init-token-id <id>', 'token whose embedding the placeholder rows start from', '42170')
    .option('--caption-probability <p>', 'prompt with the record caption (CUB descriptions) with this probability', '0')
    .option('--placeholders', 'full mode: also train <class_i> rows and prompt with them')
    .option('--latents <how>', 'sample (mean + std·ε, as diffusers) | mean', 'sample')
    .option('--device <d>', 'cpu | webgpu | cuda (unsupported nodes fall back to the CPU)', 'cpu')
    .option('--config <file>', 'JSON or YAML file with these options')
    .option('--preset <name>', 'paper preset')
    .option('--json', 'print the summary as JSON on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffmix finetune --data CUB_200_2011 --format cub --model sd15-onnx --out ft/cub --shots 5\n  $ diffmix finetune --data toy --model tiny-sd --mode full --out ft/toy --steps 2000 --batch-size 4 --lr 1e-4\n  $ diffmix finetune --data CUB_200_2011 --format cub --model sd15-onnx --out ft/cub --resume',
    )
    .action(async (values: Record<string, unknown>, command: Command) => {
      const o = await resolveOptions({ command, commandName: 'finetune', schema: FinetuneOptionsSchema, values });
      const dataset = await loadDataset(o.format, o.data, o.metaclass ? { metaclass: o.metaclass } : {});
      const manifest = o.longTail ? await readLongTailManifest(o.longTail) : undefined;
      const interrupt = installInterruptHandler({
        message: 'interrupt: finishing the current step and writing a checkpoint (press Ctrl-C again to stop at once)',
      });
      try {
        const r = await fineTune({
          model: o.model,
          dataset,
          outDir: o.out,
          mode: o.mode,
          steps: o.steps ?? o.maxSteps ?? 35000,
          batchSize: o.batchSize,
          lr: o.lr,
          ...(o.embeddingLr !== undefined ? { embeddingLr: o.embeddingLr } : {}),
          weightDecay: o.weightDecay,
          rank: o.rank,
          ...(o.resolution !== undefined ? { resolution: o.resolution } : {}),
          checkpointEvery: o.checkpointEvery,
          ...(o.resume !== undefined ? { resume: o.resume } : {}),
          seed: o.seed,
          ...(o.shots !== undefined ? { shots: o.shots, shotsSeed: o.shotsSeed } : {}),
          ...(manifest ? { subset: (d) => applyLongTailManifest(d, manifest, { source: o.longTail }) } : {}),
          initTokenId: o.initTokenId,
          captionProbability: o.captionProbability,
          ...(o.placeholders !== undefined ? { placeholders: o.placeholders } : {}),
          latents: o.latents,
          sessionOptions: { executionProviders: o.device === 'cpu' ? ['cpu'] : [o.device, 'cpu'] },
          signal: interrupt.signal,
        });
        const summary = {
          status: 'completed',
          mode: r.mode,
          steps: r.steps,
          resumedFrom: r.resumedFrom,
          firstLoss: r.losses[0],
          lastLoss: r.losses.at(-1),
          outDir: r.outDir,
          files: r.files,
          placeholders: r.placeholders,
        };
        if (o.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        else
          process.stdout.write(
            `fine-tuned (${r.mode}) ${r.steps} steps${r.resumedFrom ? ` (resumed at ${r.resumedFrom})` : ''}; loss ${r.losses[0]?.toFixed(4)} → ${r.losses.at(-1)?.toFixed(4)}\nwrote ${r.files.map((f) => `${r.outDir}/${f}`).join(', ')}\n`,
          );
      } finally {
        interrupt.dispose?.();
      }
    });
}
