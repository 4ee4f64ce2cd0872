/**
 * The training runtime: named parameters and buffers kept in JavaScript (Float32Array), an optimiser,
 * an LR schedule, optional gradient-norm clipping, a seeded RNG for the data pipeline, and a step
 * counter — driven by a {@link StepFunction} `(params, batch) → { loss, grads }`, which may be a
 * hand-written gradient, or an ONNX Runtime session running a forward + backward graph
 * ({@link ortStepFunction}).
 *
 * Checkpoints (`save(dir)` / `load(dir)`): `model.safetensors` (parameters and buffers, by key),
 * `optimizer.safetensors` (state tensors `<slot>/<param>`), `trainer.json` (step, epoch, RNG state,
 * optimiser groups and step counts, user metadata, and the sha256 of both safetensors files). Every
 * file is written to a temporary name and renamed into place, `trainer.json` last, so an interrupted
 * save never leaves a checkpoint that loads: the hashes would not match. Resuming is bit-identical.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  formatSafetensors,
  InvalidArgumentError,
  ModelFormatError,
  parseSafetensors,
  Rng,
  type RngState,
  type SafetensorsInput,
} from '@diffmix/core';
import type { TensorMap } from '../models/state.js';
import { clipGradNorm, type Optimizer, type OptimizerStateJson } from '../optim/optimizers.js';
import type { LrSchedule } from '../optim/schedules.js';

export interface StepResult {
  loss: number;
  /** Gradients by parameter name (parameters without one are not updated). */
  grads: ReadonlyMap<string, Float32Array>;
  /** New values of buffers (e.g. BatchNorm running statistics from a train-mode graph). */
  buffers?: ReadonlyMap<string, Float32Array>;
}

export interface StepContext {
  /** 0-based index of this update. */
  step: number;
  /** Current buffer values. */
  buffers: ReadonlyMap<string, Float32Array>;
}

/** Computes the loss and gradients at `params` for one batch; must not modify `params`. */
export type StepFunction<B> = (
  params: ReadonlyMap<string, Float32Array>,
  batch: B,
  context: StepContext,
) => StepResult | Promise<StepResult>;

export interface ClipOptions {
  maxNorm: number;
  normType?: number;
  /** Parameters whose gradients are clipped together (default: all). */
  params?: readonly string[];
}

export interface TrainerOptions<B> {
  /** Trained tensors (the trainer owns these arrays and updates them in place). */
  params: TensorMap;
  /** Non-trained state updated by the step function (BatchNorm running statistics). */
  buffers?: TensorMap;
  optimizer: Optimizer;
  stepFn: StepFunction<B>;
  /** Multiplier of each group's initial lr by step (default constant). */
  schedule?: LrSchedule;
  clip?: ClipOptions;
  /** RNG for the data pipeline (shuffling, augmentation); saved with checkpoints. Default seed 0. */
  rng?: Rng | number;
}

export interface StepReport {
  step: number;
  loss: number;
  /** Group learning rates used for this update. */
  lr: number[];
  /** Total gradient norm before clipping (when clipping). */
  gradNorm?: number;
}

interface TrainerJson {
  format: 'diffmix-ort-train-checkpoint';
  version: 1;
  step: number;
  epoch: number;
  rng: RngState;
  optimizer: OptimizerStateJson;
  params: string[];
  buffers: string[];
  files: Record<string, string>;
  metadata: Record<string, unknown>;
}

const MODEL_FILE = 'model.safetensors';
const OPTIMIZER_FILE = 'optimizer.safetensors';
const TRAINER_FILE = 'trainer.json';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    await writeFile(tmp, data, { flush: true });
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

export class Trainer<B> {
  readonly params: TensorMap;
  readonly buffers: TensorMap;
  readonly optimizer: Optimizer;
  readonly stepFn: StepFunction<B>;
  readonly schedule: LrSchedule | undefined;
  readonly clip: ClipOptions | undefined;
  rng: Rng;
  /** Updates done so far. */
  step = 0;
  /** Free for the caller's epoch loop (saved with checkpoints). */
  epoch = 0;
  /** Saved with checkpoints (e.g. best accuracy so far). */
  metadata: Record<string, unknown> = {};
  private readonly paramView: Map<string, Float32Array>;

  constructor(options: TrainerOptions<B>) {
    this.params = options.params;
    this.buffers = options.buffers ?? new Map();
    this.optimizer = options.optimizer;
    this.stepFn = options.stepFn;
    this.schedule = options.schedule;
    this.clip = options.clip;
    this.rng = options.rng instanceof Rng ? options.rng : Rng.fromSeed(options.rng ?? 0);
    for (const g of this.optimizer.groups) {
      for (const p of g.params)
        if (!this.params.has(p))
          throw new InvalidArgumentError('optimizer', `group parameter ${JSON.stringify(p)} is not a trainer parameter`);
    }
    this.paramView = new Map([...this.params].map(([k, t]) => [k, t.data]));
  }

  /** One update: schedule → step function → clipping → optimiser → buffers. */
  async trainStep(batch: B): Promise<StepReport> {
    const step = this.step;
    this.optimizer.setLrFactor(this.schedule ? this.schedule(step) : 1);
    const bufferView = new Map([...this.buffers].map(([k, t]) => [k, t.data]));
    const result = await this.stepFn(this.paramView, batch, { step, buffers: bufferView });
    if (!Number.isFinite(result.loss)) throw new InvalidArgumentError('loss', `non-finite loss ${result.loss} at step ${step}`);
    for (const [name, g] of result.grads) {
      const p = this.params.get(name);
      if (!p) throw new InvalidArgumentError('grads', `gradient for unknown parameter ${JSON.stringify(name)}`);
      if (g.length !== p.data.length)
        throw new InvalidArgumentError('grads', `${name}: ${g.length} values, parameter has ${p.data.length}`);
    }
    let gradNorm: number | undefined;
    if (this.clip) {
      const names = this.clip.params ?? [...this.params.keys()];
      const list = names.map((n) => result.grads.get(n)).filter((g): g is Float32Array => g !== undefined);
      gradNorm = clipGradNorm(list, this.clip.maxNorm, this.clip.normType ?? 2);
    }
    const lr = this.optimizer.groups.map((g) => g.lr);
    this.optimizer.step(this.paramView, result.grads);
    for (const [name, value] of result.buffers ?? []) {
      const b = this.buffers.get(name);
      if (!b) throw new InvalidArgumentError('buffers', `unknown buffer ${JSON.stringify(name)}`);
      if (value.length !== b.data.length)
        throw new InvalidArgumentError('buffers', `${name}: ${value.length} values, buffer has ${b.data.length}`);
      b.data.set(value);
    }
    this.step++;
    return { step, loss: result.loss, lr, ...(gradNorm === undefined ? {} : { gradNorm }) };
  }

  /** Writes a checkpoint to `dir` (created if needed; existing checkpoint files are replaced). */
  async save(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    const model = new Map<string, SafetensorsInput>();
    for (const [k, t] of this.params) model.set(k, { shape: t.shape, data: t.data });
    for (const [k, t] of this.buffers) {
      if (model.has(k)) throw new InvalidArgumentError('buffers', `${k} is both a parameter and a buffer`);
      model.set(k, { shape: t.shape, data: t.data });
    }
    const opt = new Map<string, SafetensorsInput>();
    for (const [k, t] of this.optimizer.stateTensors()) opt.set(k, { shape: [t.length], data: t });
    const modelBytes = formatSafetensors(model, { format: 'pt' });
    const optBytes = formatSafetensors(opt);
    const json: TrainerJson = {
      format: 'diffmix-ort-train-checkpoint',
      version: 1,
      step: this.step,
      epoch: this.epoch,
      rng: this.rng.state(),
      optimizer: this.optimizer.stateJson(),
      params: [...this.params.keys()],
      buffers: [...this.buffers.keys()],
      files: { [MODEL_FILE]: sha256(modelBytes), [OPTIMIZER_FILE]: sha256(optBytes) },
      metadata: this.metadata,
    };
    await writeAtomic(join(dir, MODEL_FILE), modelBytes);
    await writeAtomic(join(dir, OPTIMIZER_FILE), optBytes);
    await writeAtomic(join(dir, TRAINER_FILE), `${JSON.stringify(json, null, 1)}\n`);
  }

  /**
   * Restores a checkpoint written by {@link save} into this trainer (same parameter and buffer names
   * and shapes, same optimiser kind and groups); the values are copied into the existing arrays.
   */
  async load(dir: string): Promise<void> {
    const jsonPath = join(dir, TRAINER_FILE);
    const json = JSON.parse(await readFile(jsonPath, 'utf8')) as TrainerJson;
    if (json.format !== 'diffmix-ort-train-checkpoint' || json.version !== 1) {
      throw new ModelFormatError(jsonPath, `not a version-1 ort-train checkpoint (format ${JSON.stringify(json.format)})`);
    }
    const read = async (name: string) => {
      const path = join(dir, name);
      const bytes = new Uint8Array(await readFile(path));
      if (sha256(bytes) !== json.files[name])
        throw new ModelFormatError(path, `sha256 differs from ${TRAINER_FILE} (incomplete or mixed checkpoint)`);
      return parseSafetensors(bytes, path);
    };
    const model = await read(MODEL_FILE);
    const opt = await read(OPTIMIZER_FILE);
    const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    if (!same(json.params, [...this.params.keys()]) || !same(json.buffers, [...this.buffers.keys()])) {
      throw new ModelFormatError(jsonPath, 'parameter or buffer names differ from this trainer');
    }
    // Validate everything before changing anything.
    const copies: [Float32Array, Float32Array][] = [];
    for (const [k, t] of [...this.params, ...this.buffers]) {
      const v = model.float32(k);
      if (v.shape.join(',') !== t.shape.join(',')) {
        throw new ModelFormatError(
          model.source,
          `tensor ${JSON.stringify(k)} has shape [${v.shape.join(', ')}], the trainer [${t.shape.join(', ')}]`,
        );
      }
      copies.push([t.data, v.data]);
    }
    const optTensors = new Map(opt.keys().map((k) => [k, opt.float32(k).data]));
    this.optimizer.loadState(json.optimizer, optTensors);
    for (const [dst, src] of copies) dst.set(src);
    this.step = json.step;
    this.epoch = json.epoch;
    this.rng = Rng.fromState(json.rng);
    this.metadata = json.metadata;
  }
}
