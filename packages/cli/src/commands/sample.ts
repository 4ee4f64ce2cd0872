import { createConsoleLogger, createProgress, parseShard } from '@diffmix/core';
import {
  adapterOptionsFor,
  fingerprintModelFolder,
  formatSamplerSummary,
  getStrategy,
  installInterruptHandler,
  parseStrengthChoice,
  planSynthesis,
  runSampler,
  StableDiffusion,
} from '@diffmix/diffusion';
import type { Command } from 'commander';
import { z } from 'zod';
import { resolveOptions } from '../config.js';
import { DATASET_FORMATS, loadDataset } from '../datasets.js';

export const SampleOptionsSchema = z
  .object({
    data: z.string().min(1),
    format: z.enum(DATASET_FORMATS),
    model: z.string().min(1),
    out: z.string().min(1),
    strategy: z.string().default('diff-mix'),
    lora: z.array(z.string()).default([]),
    ti: z.array(z.string()).default([]),
    strengths: z.union([z.string(), z.number(), z.array(z.number())]).optional(),
    multiplier: z.coerce.number().positive().optional(),
    count: z.coerce.number().int().positive().optional(),
    shots: z.coerce.number().int().positive().optional(),
    longTail: z.boolean().optional(),
    gamma: z.coerce.number().positive().default(0.8),
    scaler: z.coerce.number().gt(0).lte(1).default(1),
    steps: z.coerce.number().int().positive().default(25),
    guidanceScale: z.coerce.number().default(7.5),
    size: z.coerce.number().int().positive().optional(),
    seed: z.coerce.number().int().nonnegative().default(0),
    batchSize: z.coerce.number().int().positive().default(1),
    shard: z.string().optional(),
    device: z.enum(['cpu', 'webgpu', 'cuda', 'auto']).default('cpu'),
    json: z.boolean().optional(),
  })
  .strict();

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerSample(program: Command): void {
  program
    .command('sample')
    .description('plan and generate a synthetic set (resumable; Ctrl-C finishes the images in flight)')
    .requiredOption('--data <root>', 'dataset root')
    .option('--format <name>', `dataset layout: ${DATASET_FORMATS.join(', ')}`, 'imagefolder')
    .requiredOption('--model <dir>', 'Stable Diffusion ONNX folder (see docs/bring-your-own-sd.md)')
    .requiredOption('--out <dir>', 'synthetic set folder (created; re-running resumes)')
    .option(
      '--strategy <name>',
      'diff-mix, real-mix, diff-aug, real-aug, real-guidance, da-fusion, diff-gen, real-gen',
      'diff-mix',
    )
    .option('--lora <file>', 'LoRA safetensors (repeatable)', collect)
    .option('--ti <file>', 'textual-inversion embeddings (repeatable)', collect)
    .option('--strengths <rule>', "0.7 | 0.5,0.7,0.9 | uniform | beta | 'beta(a,b)'")
    .option('--multiplier <x>', 'jobs = x × training images (default 5; 10 with --long-tail)')
    .option('--count <n>', 'exact number of jobs instead of the multiplier')
    .option('--shots <k>', 'use a k-shot subset of the training set (seed 0)')
    .option('--long-tail', 'draw source images uniformly over all images')
    .option('--gamma <g>', 'label exponent γ (0.5 few-shot, 0.8 conventional)', '0.8')
    .option('--scaler <c>', 'label scaler c', '1')
    .option('--steps <n>', 'denoising steps', '25')
    .option('--guidance-scale <g>', 'classifier-free guidance', '7.5')
    .option('--size <px>', 'model-side image size (default: the model’s)')
    .option('--seed <n>', 'plan seed', '0')
    .option('--batch-size <n>', 'jobs per UNet call', '1')
    .option('--shard <i/n>', 'this worker’s shard (0-based)')
    .option('--device <d>', 'cpu | webgpu | cuda | auto', 'cpu')
    .option('--config <file>', 'JSON or YAML file with these options')
    .option('--preset <name>', 'paper preset, e.g. cub-fewshot-5')
    .option('--json', 'print the summary as JSON on stdout')
    .addHelpText(
      'after',
      '\nExamples:\n  $ diffmix sample --data CUB_200_2011 --format cub --model sd15-onnx --lora ckpt/lora.safetensors --ti ckpt/learned_embeds.bin --out syn/cub\n  $ diffmix sample --config run.yaml --shard 1/4 --batch-size 4',
    )
    .action(async (values: Record<string, unknown>, command: Command) => {
      const o = await resolveOptions({ command, commandName: 'sample', schema: SampleOptionsSchema, values });
      const log = createConsoleLogger({ level: o.json ? 'warn' : 'info' });
      const strategy = getStrategy(o.strategy);
      const dataset = await loadDataset(o.format, o.data, { ...(o.shots ? { shots: o.shots } : {}) });
      const adapters = adapterOptionsFor(strategy, { lora: o.lora, textualInversion: o.ti });
      const model = await StableDiffusion.load(o.model, {
        device: o.device,
        logger: log,
        ...adapters,
        skipVaeEncoder: strategy.mode === 'txt2img',
      });
      const modelFiles = [...(adapters.lora ?? []), ...(adapters.textualInversion ?? [])].filter(
        (f): f is string => typeof f === 'string',
      );
      // Every file of the model's parts (external weights included) and the adapters: any change gives new job ids.
      const fingerprint = await fingerprintModelFolder(o.model, modelFiles);
      const strengths =
        o.strengths === undefined ? undefined : typeof o.strengths === 'string' ? parseStrengthChoice(o.strengths) : o.strengths;
      const plan = planSynthesis({
        dataset,
        strategy,
        seed: o.seed,
        ...(o.multiplier !== undefined ? { multiplier: o.multiplier } : {}),
        ...(o.count !== undefined ? { count: o.count } : {}),
        ...(strengths !== undefined ? { strengths } : {}),
        ...(o.longTail ? { longTail: true } : {}),
        annotation: { gamma: o.gamma, scaler: o.scaler },
        params: { steps: o.steps, guidance: o.guidanceScale, ...(o.size ? { size: o.size } : {}), model: fingerprint },
      });
      const interrupt = installInterruptHandler();
      try {
        const summary = await runSampler({
          model,
          plan,
          dataset,
          out: o.out,
          ...(o.shard ? { shard: parseShard(o.shard) } : {}),
          batchSize: o.batchSize,
          logger: log,
          signal: interrupt.signal,
          progress: (init) => createProgress(init),
          resumeCommand: `diffmix ${process.argv.slice(2).join(' ')}`,
        });
        if (o.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        else process.stdout.write(`${formatSamplerSummary(summary)}\n`);
        process.exitCode = interrupt.exitCode ?? summary.exitCode;
      } finally {
        interrupt.dispose?.();
        await model.release();
      }
    });
}
