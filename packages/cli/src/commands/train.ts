import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type ClassifierArchName, trainClassifier } from '@diffmix/classifier';
import { readRemainedManifest } from '@diffmix/clip-filter';
import { createConsoleLogger, type Dataset } from '@diffmix/core';
import { readSyntheticSet, type SyntheticRecord } from '@diffmix/datasets';
import { installInterruptHandler } from '@diffmix/diffusion';
import { applyLongTailManifest, makeLongTail, parseLongTailManifest } from '@diffmix/longtail';
import type { Command } from 'commander';
import { z } from 'zod';
import { resolveOptions } from '../config.js';
import { DATASET_FORMATS, loadDataset } from '../datasets.js';
import { writeRunRecord } from '../report/run-record.js';

/** Names users type; the classifier's own names are torchvision's. */
const ARCH_ALIASES: Record<string, ClassifierArchName> = {
  smallcnn: 'smallcnn',
  resnet18: 'resnet18',
  resnet50: 'resnet50',
  vit_b_16: 'vit_b_16',
  'vit-b16': 'vit_b_16',
  'vit-b-16': 'vit_b_16',
};

const probability = z.coerce.number().min(0).max(1);

export const TrainOptionsSchema = z
  .object({
    data: z.string().min(1),
    format: z.enum(DATASET_FORMATS),
    metaclass: z.string().optional(),
    shots: z.coerce.number().int().positive().optional(),
    imbalanceFactor: z.coerce.number().min(1).optional(),
    longtail: z.string().optional(),
    synthetic: z.string().optional(),
    filtered: z.boolean().optional(),
    syntheticProbability: probability.optional(),
    weighting: z.enum(['uniform', 'inverse-count']).optional(),
    gamma: z.coerce.number().positive().optional(),
    scaler: z.coerce.number().positive().max(1).optional(),
    arch: z
      .string()
      .refine((a) => a in ARCH_ALIASES, { message: `one of ${Object.keys(ARCH_ALIASES).join(', ')}` })
      .default('resnet50'),
    resolution: z.coerce.number().int().min(8).default(224),
    weights: z.string().optional(),
    engine: z.enum(['ort', 'tfjs', 'auto']).default('auto'),
    device: z.enum(['cpu', 'webgpu', 'cuda', 'auto']).default('cpu'),
    epochs: z.coerce.number().int().positive().default(128),
    batchSize: z.coerce.number().int().positive().default(64),
    lr: z.coerce.number().positive().default(0.02),
    optimizer: z.enum(['sgd', 'adamw']).default('sgd'),
    weightDecay: z.coerce.number().min(0).default(5e-4),
    labelSmoothing: z.coerce.number().min(0).lt(1).default(0.1),
    cutmix: probability.optional(),
    mixup: probability.optional(),
    evalEvery: z.coerce.number().int().positive().default(4),
    seed: z.coerce.number().int().nonnegative().default(0),
    method: z.string().min(1).optional(),
    datasetName: z.string().min(1).optional(),
    out: z.string().min(1),
    restart: z.boolean().optional(),
    json: z.boolean().optional(),
  })
  .strict()
  .refine((o) => !(o.longtail && o.imbalanceFactor), {
    message: 'give --longtail <manifest> or --imbalance-factor, not both',
    path: ['longtail'],
  })
  .refine((o) => o.synthetic !== undefined || o.syntheticProbability === undefined || o.syntheticProbability === 0, {
    message: '--synthetic-probability needs --synthetic <set>',
    path: ['syntheticProbability'],
  });
export type TrainOptions = z.infer<typeof TrainOptionsSchema>;

/** The default method label for `diffmix report`: what was mixed in. */
function methodLabel(o: TrainOptions): string {
  if (o.method) return o.method;
  const parts = [o.synthetic ? `synthetic:${path.basename(path.resolve(o.synthetic))}` : 'real only'];
  if (o.cutmix) parts.push('CutMix');
  if (o.mixup) parts.push('Mixup');
  return parts.join(' + ');
}

async function trainingDataset(o: TrainOptions): Promise<Dataset> {
  let dataset = await loadDataset(o.format, o.data, {
    ...(o.shots ? { shots: o.shots } : {}),
    ...(o.metaclass ? { metaclass: o.metaclass } : {}),
  });
  if (o.longtail) {
    const manifest = parseLongTailManifest(await readFile(o.longtail, 'utf8'), o.longtail);
    dataset = applyLongTailManifest(dataset, manifest, { source: o.longtail });
  } else if (o.imbalanceFactor) {
    dataset = makeLongTail(dataset, { imbalanceFactor: o.imbalanceFactor, seed: o.seed }).dataset;
  }
  return dataset;
}

async function syntheticRecords(o: TrainOptions, dataset: Dataset): Promise<SyntheticRecord[] | undefined> {
  if (!o.synthetic) return undefined;
  const set = await readSyntheticSet(o.synthetic, {
    classes: dataset.classes,
    ...(o.gamma !== undefined ? { gamma: o.gamma, relabel: true } : {}),
    ...(o.scaler !== undefined ? { scaler: o.scaler, relabel: true } : {}),
  });
  if (!o.filtered) return set.records;
  // Only what the CLIP filter kept (`diffmix filter` must have run on this set).
  const kept = new Set((await readRemainedManifest(o.synthetic)).map((l) => l.id));
  return set.records.filter((r) => kept.has(r.id));
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description(
      'train an image classifier on the real training set, optionally replacing samples by a synthetic set (Diff-Mix §3.3), CutMix or Mixup',
    )
    .requiredOption('--data <root>', 'dataset root')
    .option('--format <name>', `dataset layout: ${DATASET_FORMATS.join(', ')}`, 'imagefolder')
    .option('--metaclass <word>', 'metaclass for imagefolder / parquet datasets')
    .option('--shots <k>', 'k training images per class (few-shot; subset seed 0 as the official code)')
    .option('--imbalance-factor <rho>', 'train on a long-tail subset made on the fly (ρ = largest / smallest class)')
    .option('--longtail <manifest.json>', "train on the subset of a 'diffmix longtail' manifest")
    .option('--synthetic <dir>', 'synthetic set (diffmix sample output, or an official set with meta.csv)')
    .option('--filtered', "use only the images 'diffmix filter' kept")
    .option(
      '--synthetic-probability <p>',
      'replace each real sample with a synthetic one with probability p (0.1 conventional, 0.3 few-shot, 0.5 long-tail)',
    )
    .option('--weighting <w>', 'uniform | inverse-count (long-tail: target class ∝ 1/(n_k+1))')
    .option('--gamma <g>', 'recompute soft labels with this γ (default: the labels stored in the set)')
    .option('--scaler <c>', 'recompute soft labels with this scaler c')
    .option('--arch <name>', `backbone: ${Object.keys(ARCH_ALIASES).join(', ')}`, 'resnet50')
    .option('--resolution <px>', 'crop side: 224, 384, 448 (official modes) or any ≥ 8', '224')
    .option('--weights <file.safetensors>', 'torchvision state dict to start from (the head is replaced)')
    .option('--engine <name>', 'ort | tfjs | auto (the faster one measured by npm run bench)', 'auto')
    .option('--device <name>', 'cpu | webgpu | cuda | auto', 'cpu')
    .option('--epochs <n>', 'training epochs', '128')
    .option('--batch-size <n>', 'images per step', '64')
    .option('--lr <x>', 'peak learning rate (cosine schedule, 10 % linear warmup, per iteration)', '0.02')
    .option('--optimizer <name>', 'sgd (momentum 0.9) | adamw', 'sgd')
    .option('--weight-decay <x>', 'weight decay', '5e-4')
    .option('--label-smoothing <eps>', 'ε of the label smoothing over soft targets', '0.1')
    .option('--cutmix <p>', 'CutMix baseline with this probability')
    .option('--mixup <p>', 'Mixup baseline with this probability')
    .option('--eval-every <k>', 'evaluate every k epochs (and after the last)', '4')
    .option('--seed <n>', 'seed of initialisation, shuffling and augmentation', '0')
    .option('--method <label>', "name of this run in 'diffmix report' (default: what was mixed in)")
    .option('--dataset-name <label>', "dataset name in 'diffmix report' (default: the dataset's own)")
    .requiredOption('--out <dir>', 'run folder: checkpoints, results.json, run.json (re-run to resume)')
    .option('--restart', 'ignore a checkpoint in --out and start over')
    .option('--config <file>', 'JSON or YAML file with these options')
    .option('--preset <name>', 'paper preset (its train section)')
    .option('--json', 'print the result summary as JSON on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ diffmix train --data CUB_200_2011 --format cub --preset cub-resnet50-448 --synthetic out/cub-diffmix --filtered --out runs/cub-diffmix\n' +
        '  $ diffmix train --data toy --arch smallcnn --resolution 32 --epochs 8 --batch-size 32 --lr 0.05 --out runs/toy-real',
    )
    .action(async (values: Record<string, unknown>, command: Command) => {
      const o = await resolveOptions({ command, commandName: 'train', schema: TrainOptionsSchema, values });
      const log = createConsoleLogger({ level: o.json ? 'warn' : 'info' });
      const dataset = await trainingDataset(o);
      const records = await syntheticRecords(o, dataset);
      const arch = ARCH_ALIASES[o.arch] as ClassifierArchName;
      const interrupt = installInterruptHandler({
        message: `interrupted: a checkpoint is saved in ${o.out}; re-run the same command to resume`,
      });
      const startedAt = new Date().toISOString();
      try {
        log.info(
          `training ${arch} @${o.resolution} on ${dataset.train.length} images, ${dataset.classes.length} classes${records ? ` + ${records.length} synthetic (p = ${o.syntheticProbability ?? 0.1})` : ''}`,
        );
        const result = await trainClassifier({
          dataset,
          arch,
          imageSize: o.resolution,
          ...(o.weights ? { weights: o.weights } : {}),
          engine: o.engine,
          device: o.device,
          epochs: o.epochs,
          batchSize: o.batchSize,
          lr: o.lr,
          optimizer: o.optimizer,
          weightDecay: o.weightDecay,
          labelSmoothing: o.labelSmoothing,
          ...(records
            ? {
                synthetic: {
                  records,
                  probability: o.syntheticProbability ?? 0.1,
                  ...(o.weighting ? { weighting: o.weighting } : {}),
                },
              }
            : {}),
          ...(o.cutmix ? { cutmix: { prob: o.cutmix } } : {}),
          ...(o.mixup ? { mixup: { prob: o.mixup } } : {}),
          evalEvery: o.evalEvery,
          seed: o.seed,
          outDir: o.out,
          ...(o.restart ? { restart: true } : {}),
          signal: interrupt.signal,
          progress: o.json ? 'silent' : 'auto',
        });
        log.info(`engine: ${result.engine.backend} (${result.engine.reason})`);
        const record = {
          version: 1 as const,
          method: methodLabel(o),
          dataset: o.datasetName ?? dataset.name,
          backbone: `${arch}@${o.resolution}`,
          seed: o.seed,
          engine: result.engine.backend,
          // run.json counts epochs from 1 (the classifier's records count from 0).
          best: { top1: result.best.top1, epoch: result.best.epoch + 1 },
          final: { top1: result.final.top1, epoch: result.final.epoch + 1 },
          results: 'results.json',
          startedAt,
          finishedAt: new Date().toISOString(),
        };
        await writeRunRecord(o.out, record);
        const summary = {
          ...record,
          out: o.out,
          resumed: result.resumed,
          stepsThisRun: result.stepsThisRun,
          epochs: result.epochs,
        };
        if (o.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        else
          process.stdout.write(
            `top-1: best ${(result.best.top1 * 100).toFixed(2)} % (epoch ${result.best.epoch + 1}), final ${(result.final.top1 * 100).toFixed(2)} % (epoch ${result.final.epoch + 1} of ${o.epochs}); run: ${o.out}\n`,
          );
      } finally {
        interrupt.dispose();
      }
    });
}
