/** The golden tiny model's adapters, as the reference pipeline loaded them (LoRA scale 1, both TI tokens). */
import type { LoadStableDiffusionOptions } from '../model/stable-diffusion.js';
import { goldenPath } from './golden.js';

export async function loadGoldenAdapters(): Promise<LoadStableDiffusionOptions> {
  return {
    lora: [{ lora: goldenPath('tiny-sd', 'lora', 'pytorch_lora_weights.safetensors'), scale: 1 }],
    textualInversion: [goldenPath('tiny-sd', 'ti', 'learned_embeds.safetensors')],
  };
}
