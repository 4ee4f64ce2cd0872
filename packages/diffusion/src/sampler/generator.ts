/**
 * What the sampler needs from a model: one call that turns a batch of (prompt, seed, image?) into
 * images. `stableDiffusionGenerator` adapts `StableDiffusion` (img2img / txt2img); another backend
 * (a remote service, a test double) implements `ImageGenerator` directly.
 */
import type { RgbImage } from '@diffmix/datasets';
import type { StableDiffusion } from '../model/stable-diffusion.js';
import { img2img, txt2img } from '../pipeline/generate.js';
import type { GenerationMode } from '../strategies/types.js';

export interface GenerateItem {
  prompt: string;
  seed: number;
  /** The source image (img2img). */
  image?: RgbImage;
}

export interface GenerateRequest {
  mode: GenerationMode;
  /** img2img strength shared by the batch (1 for txt2img). */
  strength: number;
  steps: number;
  guidance: number;
  /** Model-side size; the model's native size when absent. */
  size?: number;
  negativePrompt?: string;
  items: GenerateItem[];
}

export interface ImageGenerator {
  /** One image per item, in order; img2img images at their source's size. */
  generate(request: GenerateRequest): Promise<RgbImage[]>;
  /**
   * Jobs whose strengths give the same key may share a batch (and the batch runs at the first job's
   * strength). Default: the exact strength. Stable Diffusion: `int(steps·s)`, the number of denoising
   * steps, which is all img2img takes from the strength — so Beta-drawn strengths still batch.
   */
  strengthKey?(strength: number, steps: number): number;
  /** The model behind it, when it is a `StableDiffusion` (for adapter checks). */
  readonly model?: StableDiffusion;
}

export function stableDiffusionGenerator(model: StableDiffusion): ImageGenerator {
  return {
    model,
    strengthKey: (strength, steps) => Math.min(Math.trunc(steps * strength), steps),
    async generate(req) {
      const options = { steps: req.steps, guidanceScale: req.guidance, ...(req.size !== undefined ? { size: req.size } : {}) };
      const negative = req.negativePrompt !== undefined ? { negativePrompt: req.negativePrompt } : {};
      if (req.mode === 'txt2img') {
        const r = await txt2img(
          model,
          req.items.map((it) => ({ prompt: it.prompt, seed: it.seed, ...negative })),
          options,
        );
        return r.images;
      }
      const jobs = req.items.map((it, i) => {
        if (!it.image) throw new Error(`img2img item ${i} has no source image`);
        return { image: it.image, prompt: it.prompt, seed: it.seed, ...negative };
      });
      return (await img2img(model, jobs, req.strength, options)).images;
    },
  };
}

/** A `StableDiffusion` or any `ImageGenerator`, as one generator. */
export function toGenerator(model: StableDiffusion | ImageGenerator): ImageGenerator {
  return typeof (model as ImageGenerator).generate === 'function'
    ? (model as ImageGenerator)
    : stableDiffusionGenerator(model as StableDiffusion);
}
