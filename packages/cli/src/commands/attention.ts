import { createConsoleLogger } from '@diffmix/core';
import { renderAttentionMaps } from '@diffmix/diffusion';
import type { Command } from 'commander';
import { z } from 'zod';
import { resolveOptions } from '../config.js';

export const AttentionOptionsSchema = z
  .object({
    model: z.string().min(1),
    image: z.array(z.string()).min(1),
    prompt: z.array(z.string()).min(1),
    strength: z.array(z.coerce.number().min(0).max(1)).default([0.7]),
    tokens: z.array(z.string()).optional(),
    lora: z.array(z.string()).default([]),
    ti: z.array(z.string()).default([]),
    steps: z.coerce.number().int().positive().default(25),
    guidanceScale: z.coerce.number().default(7.5),
    size: z.coerce.number().int().positive().optional(),
    seed: z.coerce.number().int().nonnegative().default(0),
    resolution: z.union([z.literal('auto'), z.literal('all'), z.coerce.number().int().positive()]).default('auto'),
    out: z.string().min(1),
    device: z.enum(['cpu', 'webgpu', 'cuda', 'auto']).default('cpu'),
    json: z.boolean().optional(),
  })
  .strict();

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerAttention(program: Command): void {
  program
    .command('attention')
    .description('render where the prompt tokens act during img2img (cross-attention heat maps)')
    .requiredOption('--model <dir>', 'Stable Diffusion ONNX folder')
    .requiredOption('--image <file>', 'source image (repeatable)', collect)
    .requiredOption('--prompt <text>', 'prompt (repeatable; every image × prompt × strength is a row)', collect)
    .option('--strength <s>', 'img2img strength (repeatable)', collect)
    .option('--tokens <token>', 'token to map: a word, a position 0–76, sot or eot (repeatable; default every prompt token + eot)', collect)
    .option('--lora <file>', 'LoRA safetensors (repeatable)', collect)
    .option('--ti <file>', 'textual-inversion embeddings (repeatable)', collect)
    .option('--steps <n>', 'denoising steps', '25')
    .option('--guidance-scale <g>', 'classifier-free guidance', '7.5')
    .option('--size <px>', 'model-side image size')
    .option('--seed <n>', 'noise seed', '0')
    .option('--resolution <r>', "attention grid: auto (latent/4), all, or a side length", 'auto')
    .requiredOption('--out <file.png>', 'output PNG (a JSON summary is written beside it)')
    .option('--device <d>', 'cpu | webgpu | cuda | auto', 'cpu')
    .option('--config <file>', 'JSON or YAML file with these options')
    .option('--json', 'print the summary as JSON on stdout')
    .addHelpText(
      'after',
      "\nExamples:\n  $ diffmix attention --model sd15-onnx --lora ckpt/lora.safetensors --ti ckpt/embeds.bin \\\n      --image bird.jpg --prompt 'a photo of a <class_3> bird' --strength 0.5 --strength 0.9 --out attn.png",
    )
    .action(async (values: Record<string, unknown>, command: Command) => {
      const o = await resolveOptions({ command, commandName: 'attention', schema: AttentionOptionsSchema, values });
      const result = await renderAttentionMaps({
        modelDir: o.model,
        image: o.image,
        prompt: o.prompt,
        strength: o.strength,
        ...(o.tokens ? { tokens: o.tokens.map((t) => (/^\d+$/.test(t) ? Number(t) : t)) } : {}),
        ...(o.lora.length ? { lora: o.lora } : {}),
        ...(o.ti.length ? { textualInversion: o.ti } : {}),
        steps: o.steps,
        guidanceScale: o.guidanceScale,
        ...(o.size ? { size: o.size } : {}),
        seed: o.seed,
        resolution: o.resolution,
        out: o.out,
        device: o.device,
        logger: createConsoleLogger({ level: o.json ? 'warn' : 'info' }),
      });
      if (o.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const lines = [`wrote ${result.out} (${result.width}×${result.height})`];
      for (const row of result.rows) {
        lines.push(`  row: ${row.prompt} @ s=${row.strength}: source | output | ${row.tokens.map((t) => t.label).join(' | ')}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
