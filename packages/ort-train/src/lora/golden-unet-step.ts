/**
 * Test support: the UNet half of the golden LoRA step (`grads/lora_step`, golden README §7) run on any
 * UNet graph — the exported tiny-sd graph, or one built by `buildUnet` — so both are held to the same
 * PyTorch reference. Shapes come from the golden arrays, so any golden folder works.
 */
import type { SafetensorsFile } from '@diffmix/core';
import * as ort from 'onnxruntime-node';
import { createGraphSession } from '../graph/convert.js';
import type { Graph } from '../graph/graph.js';
import { readGoldenF32, readGoldenJson, readGoldenNpy } from '../models/golden-fixtures.js';
import { buildLoraUnetStep, type LoraUnetStep } from './step.js';

export const LORA_STEP = ['grads', 'lora_step'] as const;

export interface GoldenLoraIndex {
  lora: Record<string, { file: string; shape: number[] }>;
  ti: Record<string, { file: string; row: number; token_id: number }>;
}

export interface GoldenUnetStepResult {
  step: LoraUnetStep;
  index: GoldenLoraIndex;
  /** Our d loss / d encoder_hidden_states (to chain into the text encoder). */
  gradEncoderHiddenStates: Float32Array;
  /** [label, ours, reference] for loss, unet_out, d/d encoder_hidden_states and every LoRA gradient. */
  comparisons: [string, Float32Array, Float32Array][];
}

/** One LoRA step (the golden LoRA's values, rank from its shapes, alpha = rank) on `unet`, compared with the golden arrays. */
export async function runGoldenUnetStep(unet: Graph, lora: SafetensorsFile): Promise<GoldenUnetStepResult> {
  const index = readGoldenJson<GoldenLoraIndex>(...LORA_STEP, 'grads_index.json');
  const shape = (name: string) => readGoldenNpy(...LORA_STEP, name).shape;
  const latents = shape('noisy_latents.npy');
  const ehsShape = shape('encoder_hidden_states.npy');
  const rank = (Object.values(index.lora)[0]?.shape ?? []).reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  const step = buildLoraUnetStep(unet, {
    rank,
    alpha: rank,
    init: (module, kind) => lora.float32(`unet.${module}.lora.${kind}.weight`, { copy: true }).data,
    inputGradients: ['encoder_hidden_states'],
    inputShapes: { sample: latents, timestep: [latents[0] as number], encoder_hidden_states: ehsShape },
  });
  const session = (await createGraphSession(ort, step.graph)) as ort.InferenceSession;
  const f32 = (name: string) => new ort.Tensor('float32', readGoldenF32(...LORA_STEP, name), shape(name));
  const ts = readGoldenNpy(...LORA_STEP, 'timesteps.npy');
  const tsInput = unet.inputs.find((i) => i.name !== 'sample' && i.name !== 'encoder_hidden_states');
  const tsName = tsInput?.name ?? 'timestep';
  const tsFloat = tsInput?.type === 'float32';
  const tsData = tsFloat
    ? Float32Array.from(ts.data as ArrayLike<number | bigint>, Number)
    : BigInt64Array.from(ts.data as ArrayLike<number | bigint>, (v) => BigInt(v));
  const out = await session.run({
    sample: f32('noisy_latents.npy'),
    encoder_hidden_states: f32('encoder_hidden_states.npy'),
    [step.target]: f32('noise.npy'),
    [tsName]: new ort.Tensor(tsFloat ? 'float32' : 'int64', tsData, [latents[0] as number]),
  });
  const get = (name: string) => (out[name] as ort.Tensor).data as Float32Array;
  const gradEhs = get(step.gradients.encoder_hidden_states as string);
  const comparisons: [string, Float32Array, Float32Array][] = [
    ['loss', get(step.loss), readGoldenF32(...LORA_STEP, 'loss.npy')],
    ['unet_out', get(step.prediction), readGoldenF32(...LORA_STEP, 'unet_out.npy')],
    ['grad_encoder_hidden_states', gradEhs, readGoldenF32(...LORA_STEP, 'grad_encoder_hidden_states.npy')],
  ];
  for (const [key, entry] of Object.entries(index.lora)) {
    comparisons.push([
      `lora ${key}`,
      get(step.gradients[key] as string),
      readGoldenF32(...LORA_STEP, 'lora_grads', entry.file.replace(/^lora_grads\//, '')),
    ]);
  }
  return { step, index, gradEncoderHiddenStates: gradEhs, comparisons };
}
