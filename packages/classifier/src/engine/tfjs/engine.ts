/**
 * The TensorFlow.js engine: models on tfjs-core ops (no tfjs-layers: BatchNorm in train mode with
 * torch's running-statistics update and torchvision layouts are simpler to get exactly right by
 * hand), gradients from `tf.valueAndGrads`, torch's SGD / AdamW as tensor ops. Every tensor the
 * engine holds is disposed when replaced; each step runs in `tf.tidy`.
 */
import { InvalidArgumentError, ModelFormatError, Rng } from '@diffmix/core';
import * as tf from '@tensorflow/tfjs-core';
import type {
  ClassifierEngine,
  EngineInfo,
  EngineOptions,
  EngineState,
  ModelSpec,
  ModelState,
  OptimizerSpec,
  StateTensor,
  TrainBatch,
  TrainStepResult,
} from '../types.js';
import { type BackendRequest, selectBackend, type TfjsBackendName } from './backend.js';
import { registerGradients } from './gradients.js';
import { fromEngineTensor, toEngineTensor } from './layout.js';
import { type BatchStats, type ModelDefOptions, modelDef, type TfjsModelDef } from './models/index.js';
import { SLOT_NAMES, updateParam } from './optim.js';

export interface TfjsEngineOptions extends EngineOptions {
  /**
   * Forces one tfjs backend (`tensorflow-gpu`, `tensorflow`, `webgpu`, `cpu`); `auto` by default. A
   * string (the loop passes it through from config / CLI): anything else is an InvalidArgumentError.
   */
  backend?: TfjsBackendName | 'auto' | (string & {});
  /** Architecture overrides (tests: a tiny ViT). */
  model?: ModelDefOptions;
}

const BN_MOMENTUM = 0.1;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Checks `weights` against the model strictly (as load_state_dict(strict=True); `num_batches_tracked`
 * ignored) and returns every tensor in state_dict order. Head keys with another shape (another class
 * count) are drawn fresh from `rng`.
 */
export function resolveWeights(def: TfjsModelDef, weights: ModelState, rng: Rng, label = 'weights'): ModelState {
  const expected = new Set(def.tensors.map((t) => t.name));
  const unexpected = [...weights.keys()].filter((k) => !expected.has(k) && !k.endsWith('num_batches_tracked'));
  const missing = def.tensors.filter((t) => !weights.has(t.name) && !def.headKeys.includes(t.name)).map((t) => t.name);
  if (missing.length > 0 || unexpected.length > 0) {
    const parts: string[] = [];
    if (missing.length > 0) parts.push(`missing keys: ${missing.join(', ')}`);
    if (unexpected.length > 0) parts.push(`unexpected keys: ${unexpected.join(', ')}`);
    throw new ModelFormatError(label, `state does not match ${def.arch} (${parts.join('; ')})`);
  }
  const out: ModelState = new Map();
  for (const t of def.tensors) {
    const w = weights.get(t.name);
    if (w && sameShape(w.shape, t.shape)) {
      if (w.data.length !== numel(t.shape))
        throw new ModelFormatError(
          label,
          `tensor ${JSON.stringify(t.name)} has ${w.data.length} values for shape [${t.shape.join(', ')}]`,
        );
      out.set(t.name, { shape: [...t.shape], data: Float32Array.from(w.data) });
    } else if (def.headKeys.includes(t.name)) {
      out.set(t.name, def.initTensor(t.name, rng));
    } else {
      throw new ModelFormatError(
        label,
        `tensor ${JSON.stringify(t.name)} has shape [${(w as StateTensor).shape.join(', ')}], ${def.arch} expects [${t.shape.join(', ')}]`,
      );
    }
  }
  return out;
}

/** Fresh torchvision-style weights for every tensor, drawn in state_dict order from `rng`. */
export function initWeights(def: TfjsModelDef, rng: Rng): ModelState {
  const out: ModelState = new Map();
  for (const t of def.tensors) out.set(t.name, def.initTensor(t.name, rng));
  return out;
}

class TfjsEngine implements ClassifierEngine {
  info: EngineInfo;
  private def?: TfjsModelDef;
  private optimizer?: OptimizerSpec;
  /** Every model tensor (params and BatchNorm buffers) by torchvision key. */
  private tensors = new Map<string, tf.Tensor>();
  /** Optimiser slots by `<slot>/<key>`. */
  private slots = new Map<string, tf.Tensor>();
  private step = 0;
  private trainable: string[] = [];

  constructor(
    info: EngineInfo,
    private readonly options: TfjsEngineOptions,
  ) {
    this.info = info;
  }

  private ready(): TfjsModelDef {
    if (!this.def) throw new InvalidArgumentError('engine', 'init() must be called first');
    return this.def;
  }

  async init(model: ModelSpec, optimizer: OptimizerSpec): Promise<void> {
    if (this.def) throw new InvalidArgumentError('engine', 'init() was already called');
    if (optimizer.kind !== 'sgd' && optimizer.kind !== 'adamw')
      throw new InvalidArgumentError(
        'optimizer.kind',
        `unknown optimiser ${JSON.stringify((optimizer as { kind: unknown }).kind)}`,
      );
    const def = modelDef(model.arch, model.numClasses, model.imageSize, this.options.model);
    // Same streams as the ORT engine (`split('init')` / `split('head')`): one seed, the same weights in both.
    const rng = Rng.fromSeed(model.seed);
    const state = model.weights ? resolveWeights(def, model.weights, rng.split('head')) : initWeights(def, rng.split('init'));
    this.def = def;
    this.optimizer = optimizer;
    this.trainable = def.tensors.filter((t) => t.kind === 'param').map((t) => t.name);
    for (const [k, t] of state) this.tensors.set(k, toEngineTensor(t));
  }

  private checkImages(images: Float32Array, n: number, what: string): number {
    const def = this.ready();
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${what}.n`, `must be a positive integer, got ${n}`);
    const side = def.imageSize;
    if (images.length !== n * 3 * side * side) {
      throw new InvalidArgumentError(
        `${what}.images`,
        `expected ${n}×3×${side}×${side} = ${n * 3 * side * side} values (NCHW at imageSize ${side}), got ${images.length}`,
      );
    }
    return side;
  }

  private nhwc(images: Float32Array, n: number, side: number): tf.Tensor4D {
    return tf.transpose(tf.tensor4d(images, [n, 3, side, side]), [0, 2, 3, 1]);
  }

  async trainStep(batch: TrainBatch, lr: number): Promise<TrainStepResult> {
    const def = this.ready();
    const opt = this.optimizer as OptimizerSpec;
    const { n } = batch;
    const side = this.checkImages(batch.images, n, 'batch');
    if (batch.targets.length !== n * def.numClasses)
      throw new InvalidArgumentError('batch.targets', `expected ${n}×${def.numClasses} values, got ${batch.targets.length}`);
    if (!(lr >= 0)) throw new InvalidArgumentError('lr', `must be ≥ 0, got ${lr}`);
    const stepNo = this.step + 1;
    const stats = new Map<string, BatchStats>();
    const keys = this.trainable;
    const { loss, params, slots, buffers } = tf.tidy(() => {
      const x = this.nhwc(batch.images, n, side);
      const target = tf.tensor2d(batch.targets, [n, def.numClasses]);
      const lossOf = (...values: tf.Tensor[]): tf.Scalar => {
        const params = new Map(this.tensors);
        keys.forEach((k, i) => {
          params.set(k, values[i] as tf.Tensor);
        });
        const logits = def.forward({ params, train: true, stats, bnMomentum: BN_MOMENTUM }, x);
        // Soft-target cross-entropy, mean over the batch: −Σ_c t_c · log_softmax(z)_c / n.
        return tf.div(tf.neg(tf.sum(tf.mul(target, tf.logSoftmax(logits)))), n) as tf.Scalar;
      };
      const { value, grads } = tf.valueAndGrads(lossOf)(keys.map((k) => this.tensors.get(k) as tf.Tensor));
      // Plain objects, not Maps: tf.tidy keeps only tensors it finds in arrays / objects it returns.
      const params: Record<string, tf.Tensor> = {};
      const slots: Record<string, tf.Tensor> = {};
      keys.forEach((k, i) => {
        const own = new Map<string, tf.Tensor>();
        for (const s of SLOT_NAMES[opt.kind]) {
          const t = this.slots.get(`${s}/${k}`);
          if (t) own.set(s, t);
        }
        const r = updateParam(opt, lr, stepNo, this.tensors.get(k) as tf.Tensor, grads[i] as tf.Tensor, own);
        params[k] = r.param;
        for (const [s, t] of r.slots) slots[`${s}/${k}`] = t;
      });
      // Running statistics: r ← (1 − m)·r + m·s, s = batch mean / unbiased batch variance (torch).
      const buffers: Record<string, tf.Tensor> = {};
      for (const [key, s] of stats) {
        const rm = this.tensors.get(`${key}.running_mean`) as tf.Tensor;
        const rv = this.tensors.get(`${key}.running_var`) as tf.Tensor;
        buffers[`${key}.running_mean`] = tf.add(tf.mul(rm, 1 - BN_MOMENTUM), tf.mul(s.mean, BN_MOMENTUM));
        buffers[`${key}.running_var`] = tf.add(tf.mul(rv, 1 - BN_MOMENTUM), tf.mul(s.varUnbiased, BN_MOMENTUM));
      }
      return { loss: value, params, slots, buffers };
    });
    for (const s of stats.values()) tf.dispose([s.mean, s.varUnbiased]);
    const lossValue = (await loss.data())[0] as number;
    loss.dispose();
    this.replace(this.tensors, params);
    this.replace(this.tensors, buffers);
    this.replace(this.slots, slots);
    this.step = stepNo;
    if (!Number.isFinite(lossValue)) throw new InvalidArgumentError('batch', `the loss is ${lossValue} (diverged or bad input)`);
    return { loss: lossValue };
  }

  private replace(into: Map<string, tf.Tensor>, from: Map<string, tf.Tensor> | Record<string, tf.Tensor>): void {
    for (const [k, t] of from instanceof Map ? from : Object.entries(from)) {
      const old = into.get(k);
      into.set(k, t);
      if (old && old !== t) old.dispose();
    }
  }

  async predict(images: Float32Array, n: number): Promise<Float32Array> {
    const def = this.ready();
    const side = this.checkImages(images, n, 'predict');
    const logits = tf.tidy(() => def.forward({ params: this.tensors, train: false }, this.nhwc(images, n, side)));
    const data = await logits.data();
    logits.dispose();
    // Copy: on the cpu backend data() can hand back the tensor's own storage.
    return Float32Array.from(data as Float32Array);
  }

  async getState(): Promise<EngineState> {
    const def = this.ready();
    const model: ModelState = new Map();
    for (const t of def.tensors) {
      model.set(t.name, await fromEngineTensor(this.tensors.get(t.name) as tf.Tensor));
    }
    const optimizer = new Map<string, StateTensor>();
    for (const [k, v] of this.slots) optimizer.set(k, await fromEngineTensor(v));
    return { model, optimizer, step: this.step };
  }

  async setState(state: EngineState): Promise<void> {
    const def = this.ready();
    const opt = this.optimizer as OptimizerSpec;
    // Strict: a checkpoint of another model or class count is an error, not a silent head swap.
    const expected = new Map(def.tensors.map((t) => [t.name, t]));
    for (const [k, v] of state.model) {
      const t = expected.get(k);
      if (!t) {
        if (k.endsWith('num_batches_tracked')) continue;
        throw new ModelFormatError('state.model', `unexpected key ${JSON.stringify(k)} for ${def.arch}`);
      }
      if (!sameShape(v.shape, t.shape) || v.data.length !== numel(t.shape))
        throw new ModelFormatError(
          'state.model',
          `tensor ${JSON.stringify(k)} has shape [${v.shape.join(', ')}], expected [${t.shape.join(', ')}]`,
        );
    }
    const missing = def.tensors.filter((t) => !state.model.has(t.name)).map((t) => t.name);
    if (missing.length > 0) throw new ModelFormatError('state.model', `missing keys: ${missing.join(', ')}`);
    const allowed = new Set<string>(SLOT_NAMES[opt.kind]);
    for (const [k, v] of state.optimizer) {
      const cut = k.indexOf('/');
      const slot = k.slice(0, cut);
      const key = k.slice(cut + 1);
      const t = expected.get(key);
      if (cut < 0 || !allowed.has(slot) || !t || t.kind !== 'param')
        throw new ModelFormatError('state.optimizer', `unexpected slot ${JSON.stringify(k)} for ${opt.kind} on ${def.arch}`);
      if (!sameShape(v.shape, t.shape) || v.data.length !== numel(t.shape))
        throw new ModelFormatError(
          'state.optimizer',
          `slot ${JSON.stringify(k)} has shape [${v.shape.join(', ')}], expected [${t.shape.join(', ')}]`,
        );
    }
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new ModelFormatError('state', `step must be a non-negative integer, got ${state.step}`);
    const tensors = new Map<string, tf.Tensor>();
    for (const t of def.tensors) {
      const v = state.model.get(t.name) as StateTensor;
      tensors.set(t.name, toEngineTensor({ shape: t.shape, data: v.data }));
    }
    this.replace(this.tensors, tensors);
    for (const t of this.slots.values()) t.dispose();
    this.slots = new Map();
    for (const [k, v] of state.optimizer) this.slots.set(k, toEngineTensor(v));
    this.step = state.step;
  }

  async dispose(): Promise<void> {
    for (const t of this.tensors.values()) t.dispose();
    for (const t of this.slots.values()) t.dispose();
    this.tensors.clear();
    this.slots.clear();
  }
}

/**
 * Creates the tfjs engine: selects and activates the backend (see `backend.ts`), then waits for
 * `init`. `info.backend` / `info.reason` say what runs and why.
 */
export async function createTfjsEngine(options: TfjsEngineOptions = {}): Promise<ClassifierEngine> {
  const request: BackendRequest = {};
  if (options.backend !== undefined) request.backend = options.backend as TfjsBackendName; // validated in candidates()
  if (options.device !== undefined) request.device = options.device;
  const selected = await selectBackend(request);
  // After the backend import, so that a tfjs package that brings tfjs's own rules keeps them.
  registerGradients();
  return new TfjsEngine({ name: 'tfjs', backend: selected.description, reason: selected.reason }, options);
}
