/**
 * `fineTune()`: Diff-Mix's first stage end to end, as the official training script does it —
 * dataset records → decode, resize (shorter side), random crop, random flip → VAE encoder latents ×
 * scaling factor → prompt from a template → random timesteps, DDPM `add_noise` → MSE against the model's
 * target (ε, or v for v-prediction models: the scheduler config's `prediction_type`) →
 * AdamW (constant lr), grad clipping on the UNet group — with file checkpoints and an exact resume.
 *
 * Randomness: every draw comes from child streams of `Rng.fromSeed(seed)` named by what they are for
 * (`epoch/e` for the data order, `item/p` for the crop / flip / template / caption / VAE posterior of the
 * p-th example drawn, `step/s` for the timesteps and noise of step s). No stream is carried from one
 * step to the next, so the RNG state of a checkpoint is the seed and the step, and a resumed run draws
 * exactly what the uninterrupted run would have.
 */
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AbortedError,
  createProgress,
  type Dataset,
  type DatasetRecord,
  formatSafetensors,
  InvalidArgumentError,
  ModelFormatError,
  NotFoundError,
  type ProgressMode,
  type ProgressReporter,
  parseSafetensors,
  Rng,
} from '@diffmix/core';
import { decodeRecord, fewShot, fineTuneSteps, toFloatCHW, VAE_NORMALIZATION } from '@diffmix/datasets';
import {
  DDIMScheduler,
  defaultPlaceholder,
  loadClipTokenizer,
  readSchedulerConfig,
  sampleLatents,
  VaeEncoder,
} from '@diffmix/diffusion';
import { loadOnnxModel } from '@diffmix/onnx';
import { findEmbeddingGather, type Graph, graphFromOnnxModel, type OptimizerStateJson } from '@diffmix/ort-train';
import * as defaultOrt from 'onnxruntime-node';
import { saveUnetOnnx } from './save-unet.js';
import { FINE_TUNE_MODES, type FineTuneMode, LoraTiStepper, type LoraTiStepperOptions } from './step.js';
import { predictionTypeOf, trainingTarget } from './target.js';

/** The official code's initial placeholder embedding: the row of token id 42170. */
export const DEFAULT_INIT_TOKEN_ID = 42170;
/** The head of the official code (the paper-era code drew from ImageNet's small templates). */
export const DEFAULT_TEMPLATES: readonly string[] = ['a photo of a {}'];

export interface FineTuneOptions {
  /** Stable Diffusion ONNX folder (diffusers / optimum layout, with `vae_encoder/`). */
  model: string;
  /** The dataset; its train split is used (after `subset` and `shots`). */
  dataset: Dataset;
  /** Output folder (created): LoRA / embeddings / `model/` (full), `finetune.json`, `checkpoints/`. */
  outDir: string;
  /** Default `ti+db` (Diff-Mix). */
  mode?: FineTuneMode;
  /** Optimiser steps in total (a resumed run continues up to this). */
  steps: number;
  /** Images per step (default 8: the official 2 per GPU × 4 GPUs). */
  batchSize?: number;
  /** UNet group lr (LoRA, or every weight in full mode); default 5e-5. */
  lr?: number;
  /** Placeholder-row lr; default 5e-5. */
  embeddingLr?: number;
  weightDecay?: number;
  /** Grad-norm clipping of the UNet group (default 1.0); the rows are not clipped. */
  clip?: number;
  rank?: number;
  alpha?: number;
  targets?: readonly string[];
  loraInit?: LoraTiStepperOptions['loraInit'];
  /** Square training resolution in pixels (default the model's native size); a multiple of the VAE factor. */
  resolution?: number;
  /** k images per class (seeded, `shotsSeed`, default 42 like the official fine-tuning subset). */
  shots?: number;
  shotsSeed?: number;
  /** Any other subset of the dataset (e.g. a long-tail one from @diffmix/longtail), applied before `shots`. */
  subset?: (dataset: Dataset) => Dataset;
  /** Prompt templates, `{}` = the subject; one is drawn per example. Default `["a photo of a {}"]`. */
  templates?: readonly string[];
  /** Probability of prompting with the record's caption instead (CUB descriptions in the paper-era code: 0.5). Default 0. */
  captionProbability?: number;
  /**
   * Train a placeholder row `<class_i>` per class and prompt `"<class_i> <metaclass>"`. Always on in ti /
   * ti+db, off in db (prompt: the class name); in full, default off.
   */
  placeholders?: boolean;
  /** Token whose embedding every placeholder row starts from (default 42170). */
  initTokenId?: number;
  /** Placeholder token of a class (default `<class_{id}>`). */
  placeholder?: (classId: number) => string;
  /** `sample` (default, diffusers' `latent_dist.sample()`: mean + std·ε) or `mean` (the posterior mode). */
  latents?: 'sample' | 'mean';
  /** RandomCrop (default true; false = CenterCrop) and RandomHorizontalFlip (default true). */
  randomCrop?: boolean;
  flip?: boolean;
  /** Write a checkpoint every k steps (default 500; 0 = only at the end or on abort). */
  checkpointEvery?: number;
  /** Checkpoints kept (default 1: the latest). */
  keepCheckpoints?: number;
  /**
   * Continue from the latest checkpoint in `outDir/checkpoints` (or from the given checkpoint folder).
   * Without it, an `outDir` that already holds checkpoints is refused rather than overwritten.
   */
  resume?: boolean | string;
  /** Default 42 (the official seed). */
  seed?: number;
  /** onnxruntime-node (default) or a compatible module. */
  ort?: typeof defaultOrt;
  /** Session options of every session (training graphs and VAE encoder), e.g. `{ executionProviders: ['webgpu', 'cpu'] }`. */
  sessionOptions?: defaultOrt.InferenceSession.SessionOptions;
  /** Progress: a mode for `createProgress` (default `auto`) or your own reporter. */
  progress?: ProgressMode | ProgressReporter;
  /** Called after every step. */
  onStep?: (info: { step: number; loss: number }) => void;
  /** Abort between steps: a checkpoint of the finished steps is written, then `AbortedError` is thrown. */
  signal?: AbortSignal;
}

export interface FineTuneResult {
  outDir: string;
  mode: FineTuneMode;
  /** Steps done in total (= `steps`). */
  steps: number;
  /** Loss of every step, from step 1 (including the steps before a resume). */
  losses: number[];
  /** The step a resume started from (0 for a fresh run). */
  resumedFrom: number;
  /** Placeholder token of each class (empty without placeholders). */
  placeholders: string[];
  /** Files written in `outDir` (relative). */
  files: string[];
}

/** The options that must match for a checkpoint to be resumed (anything that changes the trajectory). */
function trajectoryConfig(o: ResolvedOptions) {
  return {
    mode: o.mode,
    batchSize: o.batchSize,
    lr: o.lr,
    embeddingLr: o.embeddingLr,
    weightDecay: o.weightDecay,
    clip: o.clip,
    rank: o.rank,
    alpha: o.alpha,
    targets: o.targets,
    resolution: o.resolution,
    shots: o.shots ?? null,
    shotsSeed: o.shotsSeed,
    templates: o.templates,
    captionProbability: o.captionProbability,
    placeholders: o.placeholders,
    initTokenId: o.initTokenId,
    latents: o.latents,
    randomCrop: o.randomCrop,
    flip: o.flip,
    seed: o.seed,
    records: o.records.length,
  };
}

interface ResolvedOptions {
  mode: FineTuneMode;
  batchSize: number;
  lr: number;
  embeddingLr: number;
  weightDecay: number;
  clip: number;
  rank: number;
  alpha: number;
  targets: readonly string[] | null;
  resolution: number;
  shots: number | undefined;
  shotsSeed: number;
  templates: readonly string[];
  captionProbability: number;
  placeholders: boolean;
  initTokenId: number;
  latents: 'sample' | 'mean';
  randomCrop: boolean;
  flip: boolean;
  seed: number;
  records: DatasetRecord[];
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  if (!(await exists(file))) return undefined;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new ModelFormatError(file, `not valid JSON (${(cause as Error).message})`, { cause });
  }
}

async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

function positiveInt(name: string, v: number | undefined, dflt: number, min = 1): number {
  const x = v ?? dflt;
  if (!Number.isSafeInteger(x) || x < min) throw new InvalidArgumentError(name, `must be an integer ≥ ${min}, got ${v}`);
  return x;
}

const CHECKPOINT_RE = /^step-(\d+)$/;

/** Checkpoint folders in `dir/checkpoints`, complete ones only (state.json is written last), by step. */
async function listCheckpoints(outDir: string): Promise<{ step: number; dir: string }[]> {
  const root = path.join(outDir, 'checkpoints');
  if (!(await exists(root))) return [];
  const out: { step: number; dir: string }[] = [];
  for (const e of await readdir(root)) {
    const m = CHECKPOINT_RE.exec(e);
    if (m && (await exists(path.join(root, e, 'state.json')))) out.push({ step: Number(m[1]), dir: path.join(root, e) });
  }
  return out.sort((a, b) => a.step - b.step);
}

interface CheckpointState {
  format: 'diffmix-finetune-checkpoint/v1';
  step: number;
  losses: number[];
  config: ReturnType<typeof trajectoryConfig>;
  optimizer: OptimizerStateJson;
  /** The RNG state: every stream is derived from the seed and the step (see the module comment). */
  rng: { seed: number; nextStep: number };
}

function tensorsFile(m: ReadonlyMap<string, Float32Array>): Uint8Array {
  const t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const [k, v] of m) t[k] = { dtype: 'F32', shape: [v.length], data: v };
  return formatSafetensors(t);
}

async function writeCheckpoint(outDir: string, stepper: LoraTiStepper, state: CheckpointState, keep: number): Promise<string> {
  const root = path.join(outDir, 'checkpoints');
  await mkdir(root, { recursive: true });
  const final = path.join(root, `step-${String(state.step).padStart(7, '0')}`);
  const tmp = `${final}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  const c = stepper.checkpoint();
  await writeFile(path.join(tmp, 'params.safetensors'), tensorsFile(c.params));
  await writeFile(path.join(tmp, 'optimizer.safetensors'), tensorsFile(c.optimizerTensors));
  // state.json last: a folder without it is an interrupted write and is never resumed from.
  await writeFile(path.join(tmp, 'state.json'), `${JSON.stringify({ ...state, optimizer: c.optimizer }, null, 1)}\n`);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  const all = await listCheckpoints(outDir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) await rm(old.dir, { recursive: true, force: true });
  return final;
}

async function readCheckpoint(
  dir: string,
): Promise<{ state: CheckpointState; params: Map<string, Float32Array>; optimizer: Map<string, Float32Array> }> {
  const stateFile = path.join(dir, 'state.json');
  const state = (await readJson(stateFile)) as CheckpointState | undefined;
  if (!state) throw new NotFoundError(stateFile, 'checkpoint state');
  if (state.format !== 'diffmix-finetune-checkpoint/v1')
    throw new ModelFormatError(stateFile, `unknown checkpoint format ${JSON.stringify(state.format)}`);
  const load = async (name: string) => {
    const file = path.join(dir, name);
    if (!(await exists(file))) throw new NotFoundError(file, 'checkpoint tensors');
    const f = parseSafetensors(new Uint8Array(await readFile(file)), file);
    return new Map(f.keys().map((k) => [k, f.float32(k, { copy: true }).data] as const));
  };
  return { state, params: await load('params.safetensors'), optimizer: await load('optimizer.safetensors') };
}

/** The data order: a fresh permutation of the records per epoch, drawn from `epoch/e`. */
class DataStream {
  private readonly perms = new Map<number, number[]>();
  constructor(
    private readonly root: Rng,
    private readonly n: number,
  ) {}
  /** Record index of the p-th example drawn. */
  at(p: number): number {
    const epoch = Math.floor(p / this.n);
    let perm = this.perms.get(epoch);
    if (!perm) {
      perm = this.root
        .split('epoch')
        .split(epoch)
        .shuffle(Array.from({ length: this.n }, (_, i) => i));
      this.perms.clear();
      this.perms.set(epoch, perm);
    }
    return perm[p % this.n] as number;
  }
}

/** Fine-tunes a Stable Diffusion ONNX model on a dataset (see the module comment and the README). */
export async function fineTune(options: FineTuneOptions): Promise<FineTuneResult> {
  const ort = options.ort ?? defaultOrt;
  const modelDir = path.resolve(options.model);
  if (!(await exists(modelDir))) throw new NotFoundError(modelDir, 'Stable Diffusion folder');
  for (const p of [
    'unet/model.onnx',
    'text_encoder/model.onnx',
    'vae_encoder/model.onnx',
    'tokenizer',
    'scheduler/scheduler_config.json',
  ]) {
    if (!(await exists(path.join(modelDir, p)))) throw new ModelFormatError(modelDir, `fine-tuning needs ${p}, which is missing`);
  }
  const mode = options.mode ?? 'ti+db';
  if (!FINE_TUNE_MODES.includes(mode))
    throw new InvalidArgumentError('mode', `must be one of ${FINE_TUNE_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  const steps = positiveInt('steps', options.steps, 0);
  const placeholders = mode === 'ti' || mode === 'ti+db' ? true : mode === 'db' ? false : (options.placeholders ?? false);
  if (mode === 'db' && options.placeholders) throw new InvalidArgumentError('placeholders', 'db mode trains no placeholder rows');
  const captionProbability = options.captionProbability ?? 0;
  if (!(captionProbability >= 0 && captionProbability <= 1))
    throw new InvalidArgumentError('captionProbability', `must be in [0, 1], got ${captionProbability}`);
  const templates = options.templates ?? DEFAULT_TEMPLATES;
  if (templates.length === 0 || templates.some((t) => !t.includes('{}')))
    throw new InvalidArgumentError('templates', 'need at least one template, each with a {} for the subject');
  const latentsMode = options.latents ?? 'sample';
  if (latentsMode !== 'sample' && latentsMode !== 'mean')
    throw new InvalidArgumentError('latents', `must be 'sample' or 'mean', got ${JSON.stringify(latentsMode)}`);

  // Model configs: latent geometry, hidden size, scaling factor, noise schedule.
  const unetConfig = (await readJson(path.join(modelDir, 'unet', 'config.json'))) ?? {};
  const vaeConfig =
    (await readJson(path.join(modelDir, 'vae_encoder', 'config.json'))) ??
    (await readJson(path.join(modelDir, 'vae_decoder', 'config.json'))) ??
    {};
  const scalingFactor = typeof vaeConfig.scaling_factor === 'number' ? vaeConfig.scaling_factor : 0.18215;
  const vaeFactor = 2 ** ((Array.isArray(vaeConfig.block_out_channels) ? vaeConfig.block_out_channels.length : 4) - 1);
  const sampleSize = typeof unetConfig.sample_size === 'number' ? unetConfig.sample_size : 64;
  const resolution = positiveInt('resolution', options.resolution, sampleSize * vaeFactor);
  if (resolution % vaeFactor !== 0)
    throw new InvalidArgumentError('resolution', `must be a multiple of the VAE factor ${vaeFactor}, got ${resolution}`);
  const schedulerRaw = await readSchedulerConfig(path.join(modelDir, 'scheduler'));
  // diffusers' DDPMScheduler.add_noise: √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε with ᾱ from the config's betas — the same
  // ᾱ (and the same float32 arithmetic) as DDIM's add_noise, which @diffmix/diffusion implements.
  const noiseScheduler = DDIMScheduler.fromConfig(schedulerRaw, {}, path.join(modelDir, 'scheduler', 'scheduler_config.json'));
  const T = noiseScheduler.config.num_train_timesteps;
  const predictionType = predictionTypeOf(schedulerRaw, path.join(modelDir, 'scheduler', 'scheduler_config.json'));

  // Records: subset → shots → train split.
  let dataset = options.dataset;
  if (options.subset) dataset = options.subset(dataset);
  const shotsSeed = options.shotsSeed ?? 42;
  if (options.shots !== undefined) dataset = fewShot(dataset, { shots: positiveInt('shots', options.shots, 1), seed: shotsSeed });
  const records = dataset.train;
  if (records.length === 0)
    throw new InvalidArgumentError('dataset', `${dataset.root ?? dataset.name}: the train split has no records`);

  const o: ResolvedOptions = {
    mode,
    batchSize: positiveInt('batchSize', options.batchSize, 8),
    lr: options.lr ?? 5e-5,
    embeddingLr: options.embeddingLr ?? 5e-5,
    weightDecay: options.weightDecay ?? 1e-2,
    clip: options.clip ?? 1.0,
    rank: positiveInt('rank', options.rank, 10),
    alpha: options.alpha ?? options.rank ?? 10,
    targets: options.targets ?? null,
    resolution,
    shots: options.shots,
    shotsSeed,
    templates,
    captionProbability,
    placeholders,
    initTokenId: positiveInt('initTokenId', options.initTokenId, DEFAULT_INIT_TOKEN_ID, 0),
    latents: latentsMode,
    randomCrop: options.randomCrop ?? true,
    flip: options.flip ?? true,
    seed: positiveInt('seed', options.seed, 42, 0),
    records,
  };
  const checkpointEvery = positiveInt('checkpointEvery', options.checkpointEvery, 500, 0);
  const keep = positiveInt('keepCheckpoints', options.keepCheckpoints, 1);

  // Resume point (checked before the expensive graph building).
  const outDir = path.resolve(options.outDir);
  const existing = await listCheckpoints(outDir);
  let resumeDir: string | undefined;
  if (typeof options.resume === 'string') {
    resumeDir = path.resolve(options.resume);
    if (!(await exists(path.join(resumeDir, 'state.json'))))
      throw new NotFoundError(path.join(resumeDir, 'state.json'), 'checkpoint');
  } else if (options.resume) resumeDir = existing.at(-1)?.dir;
  else if (existing.length > 0) {
    throw new InvalidArgumentError(
      'resume',
      `${path.join(outDir, 'checkpoints')} holds checkpoints of an earlier run (last: step ${existing.at(-1)?.step}); resume it or choose another output folder`,
    );
  }
  const resumed = resumeDir ? await readCheckpoint(resumeDir) : undefined;
  if (resumed) {
    const want = JSON.stringify(trajectoryConfig(o));
    const have = JSON.stringify(resumed.state.config);
    if (want !== have) {
      const a = trajectoryConfig(o) as Record<string, unknown>;
      const b = resumed.state.config as Record<string, unknown>;
      const diff = Object.keys(a).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
      throw new InvalidArgumentError(
        'resume',
        `${resumeDir}: the checkpoint was made with other settings (${diff.map((k) => `${k}: ${JSON.stringify(b[k])} there, ${JSON.stringify(a[k])} now`).join('; ')})`,
      );
    }
    if (resumed.state.step > steps)
      throw new InvalidArgumentError('steps', `${resumeDir} is at step ${resumed.state.step}, past steps = ${steps}`);
  }

  // Graphs, placeholder rows, tokenizer.
  const unetFile = path.join(modelDir, 'unet', 'model.onnx');
  const unet = requireFloat32(await graphFromOnnxModel(await loadOnnxModel(unetFile)), unetFile);
  const teFile = path.join(modelDir, 'text_encoder', 'model.onnx');
  const textEncoder = requireFloat32(await graphFromOnnxModel(await loadOnnxModel(teFile)), teFile);
  const tokenizer = await loadClipTokenizer(path.join(modelDir, 'tokenizer'));
  const tokenOf = options.placeholder ?? defaultPlaceholder;
  const classTokens = placeholders ? dataset.classes.map((c) => tokenOf(c.id)) : [];
  let rows: Float32Array | undefined;
  if (placeholders) {
    const gather = findEmbeddingGather(textEncoder, 'input_ids');
    const table = gather ? textEncoder.initializers.get(gather.table) : undefined;
    if (!gather || !table || table.dims.length !== 2)
      throw new ModelFormatError(teFile, 'no token-embedding table (a Gather of input_ids on a 2-D initializer)');
    const [vocab, hidden] = table.dims as [number, number];
    if (o.initTokenId >= vocab) {
      throw new InvalidArgumentError(
        'initTokenId',
        `token id ${o.initTokenId} is outside the text encoder's vocabulary of ${vocab} rows (${teFile}); pass an id below ${vocab}`,
      );
    }
    const init = (table.data as Float32Array).slice(o.initTokenId * hidden, (o.initTokenId + 1) * hidden);
    rows = new Float32Array(classTokens.length * hidden);
    for (let i = 0; i < classTokens.length; i++) rows.set(init, i * hidden);
    const ids = tokenizer.addTokens(classTokens);
    ids.forEach((id, i) => {
      if (id !== vocab + i) {
        throw new ModelFormatError(
          path.join(modelDir, 'tokenizer'),
          `placeholder ${classTokens[i]} got token id ${id}, but its embedding row is ${vocab + i}: the tokenizer and the text encoder's table (${vocab} rows) disagree, or the token already exists`,
        );
      }
    });
  }
  const hiddenSize =
    (unetConfig.cross_attention_dim as number | undefined) ??
    (unet.inputs.find((i) => i.name === 'encoder_hidden_states')?.shape?.[2] as number | undefined) ??
    768;
  const latentChannels = typeof unetConfig.in_channels === 'number' ? unetConfig.in_channels : 4;
  const lat = resolution / vaeFactor;
  const latentShape = [latentChannels, lat, lat] as const;
  const per = latentChannels * lat * lat;
  const B = o.batchSize;
  const stepper = await LoraTiStepper.create({
    ort,
    unet,
    textEncoder,
    mode,
    batchSize: B,
    latentShape,
    hiddenSize,
    rank: o.rank,
    alpha: o.alpha,
    ...(options.targets ? { targets: options.targets } : {}),
    ...(options.loraInit ? { loraInit: options.loraInit } : {}),
    seed: o.seed,
    ...(rows ? { rows } : {}),
    lr: o.lr,
    embeddingLr: o.embeddingLr,
    weightDecay: o.weightDecay,
    clip: o.clip,
    ...(options.sessionOptions ? { sessionOptions: options.sessionOptions } : {}),
  });
  const vaeFile = path.join(modelDir, 'vae_encoder', 'model.onnx');
  const vae = new VaeEncoder(await ort.InferenceSession.create(vaeFile, options.sessionOptions ?? {}), vaeFile);

  let start = 0;
  const losses: number[] = [];
  if (resumed) {
    stepper.restore({ params: resumed.params, optimizer: resumed.state.optimizer, optimizerTensors: resumed.optimizer });
    start = resumed.state.step;
    losses.push(...resumed.state.losses.slice(0, start));
  }

  const root = Rng.fromSeed(o.seed);
  const data = new DataStream(root, records.length);
  const imageSteps = fineTuneSteps(resolution, { randomCrop: o.randomCrop, flip: o.flip });
  const subject = (label: number) => {
    const c = dataset.classes[label];
    if (!c) throw new InvalidArgumentError('dataset', `label ${label} has no class`);
    return placeholders ? `${tokenOf(c.id)} ${dataset.metaclass}` : c.name;
  };

  /** The batch of step s: images → latents, prompts → ids, timesteps, noise. */
  const makeBatch = async (s: number) => {
    const pixels = new Float32Array(B * 3 * resolution * resolution);
    const vaeNoise = new Float32Array(B * per);
    const ids = new Int32Array(B * 77);
    for (let j = 0; j < B; j++) {
      const p = s * B + j;
      const rec = records[data.at(p)] as DatasetRecord;
      const r = root.split('item').split(p);
      const img = await decodeRecord(rec, { steps: imageSteps, rng: r.split('image') });
      toFloatCHW(img, VAE_NORMALIZATION, pixels.subarray(j * 3 * resolution * resolution, (j + 1) * 3 * resolution * resolution));
      const pr = r.split('prompt');
      const template = templates[pr.int(templates.length)] as string;
      const caption = rec.caption && captionProbability > 0 && pr.uniform() < captionProbability ? rec.caption : undefined;
      const prompt = caption ?? template.replace('{}', subject(rec.label));
      const enc = tokenizer.encode(prompt, { padding: 'max_length', truncation: true });
      ids.set(enc.inputIds, j * 77);
      r.split('vae').fillNormal(vaeNoise.subarray(j * per, (j + 1) * per));
    }
    const params = await vae.encode(pixels, [B, 3, resolution, resolution]);
    const latents =
      vae.outputKind === 'parameters'
        ? sampleLatents(params.data, params.dims, scalingFactor, o.latents === 'sample' ? vaeNoise : undefined)
        : params.data.map((v) => Math.fround(scalingFactor * v));
    const sr = root.split('step').split(s);
    const timesteps = Array.from({ length: B }, () => sr.int(T));
    const noise = sr.fillNormal(new Float32Array(B * per));
    const noisyLatents = noiseScheduler.addNoise(latents, noise, timesteps);
    // The stepper regresses its `noise` field: the model's target (ε, v or x₀).
    return {
      noisyLatents,
      noise: trainingTarget(predictionType, noiseScheduler, latents, noise, timesteps),
      timesteps,
      inputIds: ids,
    };
  };

  await mkdir(outDir, { recursive: true });
  const progress =
    typeof options.progress === 'object'
      ? options.progress
      : createProgress({ label: `finetune ${mode}`, total: steps, initial: start, mode: options.progress ?? 'auto' });
  const stateAt = (step: number): CheckpointState => ({
    format: 'diffmix-finetune-checkpoint/v1',
    step,
    losses: losses.slice(0, step),
    config: trajectoryConfig(o),
    optimizer: stepper.optimizer.stateJson(),
    rng: { seed: o.seed, nextStep: step },
  });
  let lastCheckpoint = start;
  for (let s = start; s < steps; s++) {
    if (options.signal?.aborted) {
      if (s > lastCheckpoint) await writeCheckpoint(outDir, stepper, stateAt(s), keep);
      progress.stop({ aborted: true, step: s });
      throw new AbortedError(
        `fine-tuning interrupted after step ${s} of ${steps}; the checkpoint in ${path.join(outDir, 'checkpoints')} resumes it`,
      );
    }
    const r = await stepper.step(await makeBatch(s));
    if (!Number.isFinite(r.loss))
      throw new InvalidArgumentError('lr', `the loss became ${r.loss} at step ${s + 1}; lower the learning rate`);
    losses.push(r.loss);
    progress.tick();
    options.onStep?.({ step: s + 1, loss: r.loss });
    if (checkpointEvery > 0 && (s + 1) % checkpointEvery === 0) {
      await writeCheckpoint(outDir, stepper, stateAt(s + 1), keep);
      lastCheckpoint = s + 1;
    }
  }
  if (lastCheckpoint < steps) await writeCheckpoint(outDir, stepper, stateAt(steps), keep);

  // Outputs.
  const files: string[] = [];
  if (stepper.loraNames.length > 0) {
    await writeAtomic(path.join(outDir, 'pytorch_lora_weights.safetensors'), stepper.loraSafetensors());
    files.push('pytorch_lora_weights.safetensors');
  }
  if (placeholders) {
    await writeAtomic(path.join(outDir, 'learned_embeds.safetensors'), stepper.embeddingsSafetensors(classTokens));
    files.push('learned_embeds.safetensors');
  }
  if (mode === 'full') {
    await saveUnetOnnx(modelDir, path.join(outDir, 'model'), stepper.unetWeights());
    files.push('model/');
  }
  const { records: _records, ...config } = o;
  const summary = {
    format: 'diffmix-finetune/v1',
    model: modelDir,
    dataset: {
      name: dataset.name,
      root: dataset.root ?? null,
      metaclass: dataset.metaclass,
      records: records.length,
      classes: dataset.classes.length,
    },
    config: { ...config, steps, checkpointEvery, predictionType },
    placeholders: Object.fromEntries(classTokens.map((t, i) => [t, dataset.classes[i]?.name ?? ''])),
    losses,
    resumedFrom: start,
    files,
  };
  await writeAtomic(path.join(outDir, 'finetune.json'), `${JSON.stringify(summary, null, 1)}\n`);
  files.push('finetune.json');
  progress.stop({ steps, loss: losses.at(-1) });
  return { outDir, mode, steps, losses, resumedFrom: start, placeholders: classTokens, files };
}

/** Complete checkpoints of a fine-tuning output folder (`outDir/checkpoints/step-NNNNNNN`), oldest first. */
export { listCheckpoints };

/**
 * Training runs in float32: a float16 export (`--fp16`) would feed float32 LoRA branches into float16
 * MatMuls, and its embedding table would be read as raw half-precision bits. Names the file instead.
 */
function requireFloat32(graph: Graph, file: string): Graph {
  const half = [...graph.initializers].find(([, t]) => t.type === 'float16' || t.type === 'bfloat16');
  const halfInput = graph.inputs.find((i) => i.type === 'float16' || i.type === 'bfloat16');
  if (half || halfInput) {
    const what = half
      ? `initializer ${JSON.stringify(half[0])} is ${half[1].type}`
      : `input ${JSON.stringify(halfInput?.name)} is ${halfInput?.type}`;
    throw new ModelFormatError(
      file,
      `${what}: fine-tuning trains in float32 — use a float32 export (without --fp16); float16 exports are for sampling only`,
    );
  }
  return graph;
}
