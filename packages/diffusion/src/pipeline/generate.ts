/**
 * img2img and txt2img, step for step as diffusers' StableDiffusion(Img2Img)Pipeline computes them:
 *
 *   1. tokenize prompt and negative prompt (max_length 77) → text encoder; with guidance > 1 the UNet
 *      context is [negative ; prompt] (negative rows first)
 *   2. img2img: image → [-1, 1] NCHW → VAE encoder → z = scaling · (mean + std · noise_vae)
 *   3. scheduler.setTimesteps(N); img2img keeps timesteps[t_start:] with t_start = N − int(N·s),
 *      begin index t_start; latents = add_noise(z, noise, timesteps[0]); txt2img: noise · init sigma
 *   4. per timestep: UNet([latents ; latents], t, context) → eps = u + g·(c − u) → scheduler.step
 *   5. VAE decoder(latents / scaling) → clamp(x/2 + 0.5, 0, 1) → round(·255)
 *
 * Several jobs run as one batch when they share the strength and step count (so their timesteps
 * agree); each job's noise comes from its own seed, so batching never changes an image.
 */
import { InvalidArgumentError, Rng } from '@diffmix/core';
import { type RgbImage, resize, transformImage } from '@diffmix/datasets';
import { ModelFormatError } from '@diffmix/core';
import type { StableDiffusion } from '../model/stable-diffusion.js';
import { img2imgTimesteps } from '../schedulers/index.js';
import {
  applyGuidance,
  divide,
  floatHWCToRgb,
  modelOutputToFloatHWC,
  repeatBatch,
  rgbToModelInput,
  sampleLatents,
} from './tensor-math.js';

/** Where a job's Gaussian noise comes from: its seed (default) or recorded draws (parity, replays). */
export interface InjectedNoise {
  /** VAE posterior sample noise [C·h·w] (img2img). */
  vae?: Float32Array;
  /** Noise added to the init latents (img2img) or the initial latents (txt2img) [C·h·w]. */
  latents?: Float32Array;
}

export interface GenerationJob {
  prompt: string;
  negativePrompt?: string;
  /** Seed of this job's noise: streams `Rng.fromSeed(seed).split('vae')` and `.split('latents')`. */
  seed?: number;
  noise?: InjectedNoise;
}

export interface Img2ImgJob extends GenerationJob {
  image: RgbImage;
}

export interface GenerationOptions {
  /** Denoising steps of the full schedule (diffusers' num_inference_steps), default 25. */
  steps?: number;
  /** Classifier-free guidance scale, default 7.5; ≤ 1 disables the unconditional batch. */
  guidanceScale?: number;
  /**
   * Model-side image size (square). Default: the model's native size (512 for SD 1.5). img2img
   * resizes the source to it and the result back to the source's size.
   */
  size?: number;
  /** Called after every scheduler step (for progress and for parity traces). */
  onStep?: (info: StepTrace) => void;
  /** Passed through to the trace: record UNet inputs/outputs (costs copies). */
  trace?: boolean;
  signal?: AbortSignal;
}

export interface StepTrace {
  index: number;
  timestep: number;
  total: number;
  /** Only with `trace: true`. */
  unetSample?: Float32Array;
  unetOut?: Float32Array;
  noisePred?: Float32Array;
  latents?: Float32Array;
}

export interface GenerationResult {
  images: RgbImage[];
  /** Before uint8 conversion, HWC in [0, 1], at the model size. */
  floatImages: Float32Array[];
  timesteps: number[];
  /** Intermediate tensors when `trace: true`. */
  trace?: {
    promptIds: number[][];
    negativeIds?: number[][];
    contexts: Float32Array;
    vaeParameters?: Float32Array;
    initLatents?: Float32Array;
    noisyLatents: Float32Array;
    decoderIn: Float32Array;
    decoded: Float32Array;
  };
}

function checkOptions(steps: number, guidance: number): void {
  if (!Number.isInteger(steps) || steps < 1) throw new InvalidArgumentError('steps', `must be a positive integer, got ${steps}`);
  if (!Number.isFinite(guidance)) throw new InvalidArgumentError('guidanceScale', `must be finite, got ${guidance}`);
}

function noiseFor(job: GenerationJob, stream: 'vae' | 'latents', length: number, index: number): Float32Array {
  const injected = stream === 'vae' ? job.noise?.vae : job.noise?.latents;
  if (injected) {
    if (injected.length !== length) {
      throw new InvalidArgumentError(`jobs[${index}].noise.${stream}`, `has ${injected.length} values, the latents need ${length}`);
    }
    return injected;
  }
  if (job.seed === undefined) throw new InvalidArgumentError(`jobs[${index}].seed`, 'a seed or injected noise is required');
  return Rng.fromSeed(job.seed).split(stream).fillNormal(new Float32Array(length));
}

/** Every job's noise for one stream, stacked along the batch axis. */
function stackNoise(jobs: readonly GenerationJob[], stream: 'vae' | 'latents', perJob: number): Float32Array {
  const out = new Float32Array(jobs.length * perJob);
  for (let n = 0; n < jobs.length; n++) out.set(noiseFor(jobs[n] as GenerationJob, stream, perJob, n), n * perJob);
  return out;
}

async function encodeContext(model: StableDiffusion, jobs: readonly GenerationJob[], guided: boolean) {
  const prompts = jobs.map((j) => j.prompt);
  const cond = await model.encodePrompts(prompts);
  if (!guided) return { contexts: cond.data, dims: cond.dims, promptIds: cond.ids };
  const uncond = await model.encodePrompts(jobs.map((j) => j.negativePrompt ?? ''));
  const contexts = new Float32Array(uncond.data.length + cond.data.length);
  contexts.set(uncond.data, 0);
  contexts.set(cond.data, uncond.data.length);
  return { contexts, dims: [cond.dims[0]! * 2, ...cond.dims.slice(1)], promptIds: cond.ids, negativeIds: uncond.ids };
}

async function denoise(
  model: StableDiffusion,
  scheduler: ReturnType<StableDiffusion['createScheduler']>,
  timesteps: readonly number[],
  latents: Float32Array,
  latentDims: number[],
  ctx: { contexts: Float32Array; dims: number[] },
  guidance: number,
  options: GenerationOptions,
): Promise<Float32Array> {
  const guided = guidance > 1;
  let current = latents;
  for (let i = 0; i < timesteps.length; i++) {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    const t = timesteps[i] as number;
    const input = scheduler.scaleModelInput(guided ? repeatBatch(current, 2) : current, t);
    const dims = guided ? [latentDims[0]! * 2, ...latentDims.slice(1)] : latentDims;
    const out = await model.unet.predict(input, dims, t, ctx.contexts, ctx.dims);
    const eps = guided ? applyGuidance(out, guidance) : out;
    current = scheduler.step(eps, t, current).prevSample;
    options.onStep?.({
      index: i,
      timestep: t,
      total: timesteps.length,
      ...(options.trace ? { unetSample: input, unetOut: out, noisePred: eps, latents: current } : {}),
    });
  }
  return current;
}

async function decode(model: StableDiffusion, latents: Float32Array, latentDims: number[], size: number) {
  const decoderIn = divide(latents, model.scalingFactor);
  const decoded = await model.vaeDecoder.decode(decoderIn, latentDims);
  const [b, , h, w] = decoded.dims as [number, number, number, number];
  if (h !== size || w !== size) {
    throw new ModelFormatError(model.vaeDecoder.file, `decoded ${w}×${h} pixels from ${latentDims[3]}×${latentDims[2]} latents, expected ${size}×${size}`);
  }
  const plane = 3 * h * w;
  const floats: Float32Array[] = [];
  for (let n = 0; n < b; n++) floats.push(modelOutputToFloatHWC(decoded.data.subarray(n * plane, (n + 1) * plane), w, h));
  return { decoderIn, decoded: decoded.data, floats };
}

function makeTrace(
  ctx: { contexts: Float32Array; promptIds: number[][]; negativeIds?: number[][] },
  dec: { decoderIn: Float32Array; decoded: Float32Array },
  noisyLatents: Float32Array,
  img2imgParts: { vaeParameters?: Float32Array; initLatents?: Float32Array } = {},
): NonNullable<GenerationResult['trace']> {
  return {
    promptIds: ctx.promptIds,
    ...(ctx.negativeIds ? { negativeIds: ctx.negativeIds } : {}),
    contexts: ctx.contexts,
    ...img2imgParts,
    noisyLatents,
    decoderIn: dec.decoderIn,
    decoded: dec.decoded,
  };
}

function modelSize(model: StableDiffusion, options: GenerationOptions): number {
  const size = options.size ?? model.defaultSize;
  if (!Number.isInteger(size) || size < model.vaeScaleFactor || size % model.vaeScaleFactor !== 0) {
    throw new InvalidArgumentError('size', `must be a positive multiple of ${model.vaeScaleFactor}, got ${size}`);
  }
  return size;
}

/** img2img for one batch of jobs that share strength and step count. */
export async function img2img(model: StableDiffusion, jobs: readonly Img2ImgJob[], strength: number, options: GenerationOptions = {}): Promise<GenerationResult> {
  const steps = options.steps ?? 25;
  const guidance = options.guidanceScale ?? 7.5;
  checkOptions(steps, guidance);
  if (jobs.length === 0) throw new InvalidArgumentError('jobs', 'at least one job is needed');
  if (!model.vaeEncoder) throw new ModelFormatError(model.root, 'img2img needs vae_encoder/model.onnx (the model was loaded with skipVaeEncoder)');
  const size = modelSize(model, options);
  const latentSize = size / model.vaeScaleFactor;
  const b = jobs.length;

  // 2. images → [-1, 1] NCHW at the model size
  const pixels = new Float32Array(b * 3 * size * size);
  for (let n = 0; n < b; n++) {
    const job = jobs[n] as Img2ImgJob;
    const img = job.image.width === size && job.image.height === size ? job.image : await transformImage(job.image, [resize(size, size)]);
    pixels.set(rgbToModelInput(img.data, size, size), n * 3 * size * size);
  }
  const params = await model.vaeEncoder.encode(pixels, [b, 3, size, size]);
  const latentChannels = model.vaeEncoder.outputKind === 'parameters' ? params.dims[1]! / 2 : params.dims[1]!;
  const latentDims = [b, latentChannels, latentSize, latentSize];
  const perJob = latentChannels * latentSize * latentSize;
  let initLatents: Float32Array;
  if (model.vaeEncoder.outputKind === 'parameters') {
    const vaeNoise = stackNoise(jobs, 'vae', perJob);
    initLatents = sampleLatents(params.data, params.dims, model.scalingFactor, vaeNoise);
  } else {
    // The graph sampled already (its own noise): only scale.
    initLatents = params.data.map((v) => Math.fround(model.scalingFactor * v));
  }

  // 3. timesteps and noising
  const scheduler = model.createScheduler();
  const sel = img2imgTimesteps(scheduler, steps, strength);
  const noise = stackNoise(jobs, 'latents', perJob);
  const noisy = scheduler.addNoise(initLatents, noise, sel.latentTimestep);

  // 1 + 4. text context and denoising
  const ctx = await encodeContext(model, jobs, guidance > 1);
  const latents = await denoise(model, scheduler, sel.timesteps, noisy, latentDims, ctx, guidance, options);

  // 5. decode, then back to each source's size
  const dec = await decode(model, latents, latentDims, size);
  const images: RgbImage[] = [];
  for (let n = 0; n < b; n++) {
    const img: RgbImage = { data: floatHWCToRgb(dec.floats[n] as Float32Array), width: size, height: size, channels: 3 };
    const src = (jobs[n] as Img2ImgJob).image;
    images.push(src.width === size && src.height === size ? img : await transformImage(img, [resize(src.width, src.height)]));
  }
  return {
    images,
    floatImages: dec.floats,
    timesteps: sel.timesteps,
    ...(options.trace ? { trace: makeTrace(ctx, dec, noisy, { vaeParameters: params.data, initLatents }) } : {}),
  };
}

/** txt2img (strength 1: every timestep, pure noise start; no VAE encoder). */
export async function txt2img(model: StableDiffusion, jobs: readonly GenerationJob[], options: GenerationOptions = {}): Promise<GenerationResult> {
  const steps = options.steps ?? 25;
  const guidance = options.guidanceScale ?? 7.5;
  checkOptions(steps, guidance);
  if (jobs.length === 0) throw new InvalidArgumentError('jobs', 'at least one job is needed');
  const size = modelSize(model, options);
  const latentSize = size / model.vaeScaleFactor;
  const channels = model.unet.inChannels ?? model.vaeDecoder.latentChannels ?? 4;
  const b = jobs.length;
  const latentDims = [b, channels, latentSize, latentSize];
  const perJob = channels * latentSize * latentSize;
  const scheduler = model.createScheduler();
  scheduler.setTimesteps(steps);
  const latents = stackNoise(jobs, 'latents', perJob);
  const start = scheduler.initNoiseSigma === 1 ? latents : latents.map((v) => Math.fround(v * scheduler.initNoiseSigma));
  const ctx = await encodeContext(model, jobs, guidance > 1);
  const final = await denoise(model, scheduler, scheduler.timesteps, start, latentDims, ctx, guidance, options);
  const dec = await decode(model, final, latentDims, size);
  return {
    images: dec.floats.map((f) => ({ data: floatHWCToRgb(f), width: size, height: size, channels: 3 as const })),
    floatImages: dec.floats,
    timesteps: [...scheduler.timesteps],
    ...(options.trace ? { trace: makeTrace(ctx, dec, start) } : {}),
  };
}
