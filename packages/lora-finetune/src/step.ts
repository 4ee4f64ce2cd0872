/**
 * One LoRA + textual-inversion training step on exported SD graphs (UNet + text encoder), with the
 * trainable tensors fed as graph inputs so the optimiser can update them between steps:
 * text encoder (trainable `<class_i>` rows appended; every other row frozen) → encoder_hidden_states →
 * UNet with LoRA branches → mean((ε̂ − noise)²) → gradients (LoRA matrices, d/d encoder_hidden_states
 * chained into the rows) → AdamW (two groups: `lora`, `embeddings`), grad clipping on LoRA only.
 */
import { formatSafetensors, InvalidArgumentError, Rng } from '@diffmix/core';
import {
  AdamW,
  buildEmbeddingRowsStep,
  buildEpsilonMseStep,
  buildLoraUnetStep,
  clipGradNorm,
  createGraphSession,
  DEFAULT_LORA_TARGETS,
  type EmbeddingRowsStep,
  type Graph,
  type LoraUnetStep,
  type OptimizerStateJson,
} from '@diffmix/ort-train';
import type * as Ort from 'onnxruntime-node';
import { buildFullUnetStep, type FullUnetStep } from './full-step.js';

/**
 * `ti`: placeholder rows only; `db`: LoRA only; `ti+db`: both (Diff-Mix's default); `full`: every UNet
 * weight (no LoRA), plus placeholder rows when `rows` is given.
 */
export type FineTuneMode = 'ti' | 'db' | 'ti+db' | 'full';
export const FINE_TUNE_MODES: readonly FineTuneMode[] = ['ti', 'db', 'ti+db', 'full'];

/**
 * peft's LoRA init: down ~ kaiming_uniform(a = √5) — nn.Linear's default, i.e. U(−1/√in, 1/√in) —
 * and up = 0, so the branch starts as a no-op but its gradients are non-zero from the first step.
 * Each module draws from its own child stream of `rng` (independent of the order modules are visited).
 */
export function peftLoraInit(rng: Rng): NonNullable<LoraTiStepperOptions['loraInit']> {
  return (module, kind, dims) => {
    const out = new Float32Array(dims[0] * dims[1]);
    if (kind === 'up') return out;
    const r = rng.split(`lora-init:${module}`);
    const bound = 1 / Math.sqrt(dims[1]);
    for (let i = 0; i < out.length; i++) out[i] = r.uniformRange(-bound, bound);
    return out;
  };
}

export interface LoraTiStepperOptions {
  ort: typeof Ort;
  unet: Graph;
  textEncoder: Graph;
  mode: FineTuneMode;
  batchSize: number;
  /** Latent [C, H, W] (e.g. [4, 8, 8] for 64 px). */
  latentShape: readonly [number, number, number];
  /** Text-encoder hidden size (cross_attention_dim). */
  hiddenSize: number;
  /** Token sequence length (77). */
  seqLen?: number;
  rank?: number;
  alpha?: number;
  targets?: readonly string[];
  /**
   * LoRA initial values (db / ti+db). Default: `peftLoraInit(Rng.fromSeed(seed))` (down random, up
   * zero). ti mode inserts no LoRA.
   */
  loraInit?: (module: string, kind: 'down' | 'up', dims: readonly [number, number]) => Float32Array;
  /** Seed of the default LoRA init (default 0). */
  seed?: number | string;
  /** Initial placeholder rows [n, hidden] (ti / ti+db; optional in full). */
  rows?: Float32Array;
  lr?: number;
  embeddingLr?: number;
  weightDecay?: number;
  clip?: number;
  /** ONNX Runtime session options of the training sessions (e.g. `{ executionProviders: ['webgpu'] }`). */
  sessionOptions?: Ort.InferenceSession.SessionOptions;
}

export interface StepBatch {
  noisyLatents: Float32Array;
  noise: Float32Array;
  timesteps: readonly number[];
  inputIds: Int32Array;
}

export interface StepResult {
  loss: number;
  prediction: Float32Array;
  encoderHiddenStates: Float32Array;
  /** Gradients before clipping, by parameter name (LoRA keys or UNet weights in full, `ti.rows`). */
  gradients: Map<string, Float32Array>;
  gradEncoderHiddenStates: Float32Array;
}

export const ROWS = 'ti.rows';

export interface StepperCheckpoint {
  params: Map<string, Float32Array>;
  optimizer: OptimizerStateJson;
  optimizerTensors: Map<string, Float32Array>;
}

export class LoraTiStepper {
  readonly params = new Map<string, Float32Array>();
  readonly optimizer: AdamW;
  readonly unetStep: LoraUnetStep;
  readonly teStep: EmbeddingRowsStep | undefined;
  /** LoRA matrices being trained (empty in ti and full). */
  readonly loraNames: string[];
  /** Every trained UNet tensor: the LoRA matrices, or in full mode the UNet weights. */
  readonly unetParamNames: string[];
  /** Dims of each trained UNet tensor (as fed to the graph). */
  private readonly unetDims = new Map<string, readonly number[]>();
  private constructor(
    private readonly o: LoraTiStepperOptions,
    unetStep: LoraUnetStep,
    teStep: EmbeddingRowsStep | undefined,
    private readonly unetSession: Ort.InferenceSession,
    private readonly teSession: Ort.InferenceSession,
    private readonly tsType: 'float32' | 'int64',
    private readonly tsName: string,
    private readonly idsType: 'int32' | 'int64',
  ) {
    this.unetStep = unetStep;
    this.teStep = teStep;
    this.loraNames = o.mode === 'ti' || o.mode === 'full' ? [] : unetStep.branches.flatMap((b) => [b.down, b.up]);
    const r = o.rank ?? 10;
    for (const b of unetStep.branches) {
      this.unetDims.set(b.down, [r, b.inFeatures]);
      this.unetDims.set(b.up, [b.outFeatures, r]);
    }
    const full = (unetStep as Partial<FullUnetStep>).weights ?? [];
    for (const w of full) this.unetDims.set(w.name, w.dims);
    this.unetParamNames = o.mode === 'full' ? full.map((w) => w.name) : this.loraNames;
    const groups = [];
    if (this.unetParamNames.length) groups.push({ params: this.unetParamNames, lr: o.lr ?? 5e-5 });
    if (teStep) groups.push({ params: [ROWS], lr: o.embeddingLr ?? 5e-5 });
    this.optimizer = new AdamW(groups, { weightDecay: o.weightDecay ?? 1e-2 });
  }

  static async create(o: LoraTiStepperOptions): Promise<LoraTiStepper> {
    if (!(o.batchSize >= 1)) throw new InvalidArgumentError('batchSize', 'must be ≥ 1');
    const seqLen = o.seqLen ?? 77;
    const [c, h, w] = o.latentShape;
    if (!FINE_TUNE_MODES.includes(o.mode))
      throw new InvalidArgumentError('mode', `must be one of ${FINE_TUNE_MODES.join(', ')}, got ${JSON.stringify(o.mode)}`);
    if ((o.mode === 'ti' || o.mode === 'ti+db') && !o.rows)
      throw new InvalidArgumentError('rows', `mode ${o.mode} needs placeholder rows`);
    if (o.mode === 'db' && o.rows)
      throw new InvalidArgumentError('rows', 'mode db trains no placeholder rows (prompt with the class name)');
    const targets = o.targets ?? DEFAULT_LORA_TARGETS;
    const inputShapes = {
      sample: [o.batchSize, c, h, w],
      timestep: [o.batchSize],
      encoder_hidden_states: [o.batchSize, seqLen, o.hiddenSize],
    };
    const params = new Map<string, Float32Array>();
    let unetStep: LoraUnetStep;
    if (o.mode === 'full') {
      const fs = buildFullUnetStep(o.unet, { inputShapes, inputGradients: ['encoder_hidden_states'] });
      // Copies: the optimiser updates in place, and the graph's initializer data may be shared with a loaded model.
      for (const wt of fs.weights) params.set(wt.name, Float32Array.from(o.unet.initializers.get(wt.name)?.data as Float32Array));
      unetStep = fs;
    } else if (o.mode === 'ti') {
      // Textual inversion trains nothing inside the UNet: only d loss / d encoder_hidden_states.
      unetStep = { ...buildEpsilonMseStep(o.unet, { inputShapes, inputGradients: ['encoder_hidden_states'] }), branches: [] };
    } else {
      // The UNet step: LoRA matrices as inputs, updated by the optimiser.
      unetStep = buildLoraUnetStep(o.unet, {
        rank: o.rank ?? 10,
        alpha: o.alpha ?? o.rank ?? 10,
        targets,
        asInputs: true,
        inputGradients: ['encoder_hidden_states'],
        inputShapes,
      });
      if (unetStep.branches.length === 0)
        throw new InvalidArgumentError('targets', `no UNet module matches ${JSON.stringify(targets)}`);
      const init = o.loraInit ?? peftLoraInit(Rng.fromSeed(o.seed ?? 0));
      for (const b of unetStep.branches) {
        const dd = [o.rank ?? 10, b.inFeatures] as const;
        const ud = [b.outFeatures, o.rank ?? 10] as const;
        params.set(b.down, init(b.module, 'down', dd));
        params.set(b.up, init(b.module, 'up', ud));
      }
    }
    let teStep: EmbeddingRowsStep | undefined;
    let teGraph = o.textEncoder;
    if (o.rows) {
      teStep = buildEmbeddingRowsStep(o.textEncoder, {
        input: 'input_ids',
        append: o.rows,
        name: ROWS,
        asInput: true,
        inputShapes: { input_ids: [o.batchSize, seqLen] },
      });
      teGraph = teStep.graph;
      params.set(ROWS, Float32Array.from(o.rows));
    }
    const so = o.sessionOptions ? { sessionOptions: o.sessionOptions } : {};
    const unetSession = (await createGraphSession(o.ort, unetStep.graph, so)) as Ort.InferenceSession;
    const teSession = (await createGraphSession(o.ort, teGraph, so)) as Ort.InferenceSession;
    const tsInput = o.unet.inputs.find((i) => i.name !== 'sample' && i.name !== 'encoder_hidden_states');
    const idsInput = o.textEncoder.inputs.find((i) => i.name === 'input_ids');
    const s = new LoraTiStepper(
      o,
      unetStep,
      teStep,
      unetSession,
      teSession,
      tsInput?.type === 'float32' ? 'float32' : 'int64',
      tsInput?.name ?? 'timestep',
      idsInput?.type === 'int64' ? 'int64' : 'int32',
    );
    for (const [k, v] of params) s.params.set(k, v);
    return s;
  }

  /** Forward + backward (no update). */
  async gradients(batch: StepBatch): Promise<StepResult> {
    const { ort, batchSize: n, latentShape } = this.o;
    const seqLen = this.o.seqLen ?? 77;
    const ids = new ort.Tensor(
      this.idsType,
      this.idsType === 'int64' ? BigInt64Array.from(batch.inputIds, (v) => BigInt(v)) : batch.inputIds,
      [n, seqLen],
    );
    const teFeeds: Record<string, Ort.Tensor> = { input_ids: ids };
    const teOut0 = this.teStep ? undefined : await this.teSession.run(teFeeds);
    let ehs: Float32Array;
    let hidden: number;
    if (this.teStep) {
      const rows = this.params.get(ROWS) as Float32Array;
      hidden = this.teStep.rows.dim;
      teFeeds[ROWS] = new ort.Tensor('float32', rows, [this.teStep.rows.count, hidden]);
      teFeeds[this.teStep.gradOutput] = new ort.Tensor('float32', new Float32Array(n * seqLen * hidden), [n, seqLen, hidden]);
      ehs = (await this.teSession.run(teFeeds))[this.teStep.output]?.data as Float32Array;
    } else {
      const t = teOut0?.[this.o.textEncoder.outputs[0]?.name ?? 'last_hidden_state'] as Ort.Tensor;
      ehs = t.data as Float32Array;
      hidden = t.dims[2] as number;
    }
    const u = this.unetStep;
    const feeds: Record<string, Ort.Tensor> = {
      sample: new ort.Tensor('float32', batch.noisyLatents, [n, ...latentShape]),
      encoder_hidden_states: new ort.Tensor('float32', ehs, [n, seqLen, hidden]),
      [u.target]: new ort.Tensor('float32', batch.noise, [n, ...latentShape]),
      [this.tsName]:
        this.tsType === 'float32'
          ? new ort.Tensor('float32', Float32Array.from(batch.timesteps), [n])
          : new ort.Tensor(
              'int64',
              BigInt64Array.from(batch.timesteps, (v) => BigInt(v)),
              [n],
            ),
    };
    // Every UNet tensor fed as an input (LoRA matrices, or all weights in full mode).
    for (const [k, dims] of this.unetDims) feeds[k] = new ort.Tensor('float32', this.params.get(k) as Float32Array, dims);
    const out = await this.unetSession.run(feeds);
    const get = (k: string) => (out[k] as Ort.Tensor).data as Float32Array;
    const gradients = new Map<string, Float32Array>();
    for (const k of this.unetParamNames) gradients.set(k, Float32Array.from(get(u.gradients[k] as string)));
    const gEhs = get(u.gradients.encoder_hidden_states as string);
    if (this.teStep) {
      teFeeds[this.teStep.gradOutput] = new ort.Tensor('float32', gEhs, [n, seqLen, hidden]);
      const teOut = await this.teSession.run(teFeeds);
      gradients.set(ROWS, Float32Array.from((teOut[this.teStep.gradient] as Ort.Tensor).data as Float32Array));
    }
    return {
      loss: get(u.loss)[0] as number,
      prediction: get(u.prediction),
      encoderHiddenStates: ehs,
      gradients,
      gradEncoderHiddenStates: gEhs,
    };
  }

  /**
   * Forward, backward, clip the UNet grads (LoRA, or all weights in full; norm `clip`, default 1 —
   * the embedding rows are not clipped, as in the official code), AdamW update. Returns the loss.
   */
  async step(batch: StepBatch): Promise<StepResult> {
    const r = await this.gradients(batch);
    const grads = new Map(r.gradients);
    if (this.unetParamNames.length) {
      const lora = this.unetParamNames.map((k) => Float32Array.from(grads.get(k) as Float32Array));
      clipGradNorm(lora, this.o.clip ?? 1.0);
      for (const [i, k] of this.unetParamNames.entries()) grads.set(k, lora[i] as Float32Array);
    }
    this.optimizer.step(this.params, grads);
    return r;
  }

  /** In-memory checkpoint: parameter copies + AdamW state (JSON + tensors). */
  checkpoint(): StepperCheckpoint {
    const copy = (m: ReadonlyMap<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));
    return {
      params: copy(this.params),
      optimizer: this.optimizer.stateJson(),
      optimizerTensors: copy(this.optimizer.stateTensors()),
    };
  }

  /** Restores a `checkpoint()`; later steps are bit-identical to an uninterrupted run. */
  restore(c: StepperCheckpoint): void {
    for (const [k, v] of c.params) {
      const p = this.params.get(k);
      if (!p || p.length !== v.length) throw new InvalidArgumentError('checkpoint', `parameter ${k} does not match`);
      p.set(v);
    }
    this.optimizer.loadState(c.optimizer, c.optimizerTensors);
  }

  get mode(): FineTuneMode {
    return this.o.mode;
  }

  /** The current trained rows [n, hidden] (undefined without rows). */
  get rows(): Float32Array | undefined {
    return this.params.get(ROWS);
  }

  /** Full mode: the current UNet weights by initializer name (live arrays: copy to keep). */
  unetWeights(): Map<string, Float32Array> {
    if (this.o.mode !== 'full') throw new InvalidArgumentError('mode', `unetWeights() is for full mode, not ${this.o.mode}`);
    return new Map(this.unetParamNames.map((k) => [k, this.params.get(k) as Float32Array]));
  }

  /**
   * diffusers-format LoRA (`unet.<module>.lora.down.weight` / `.lora.up.weight`). The layout has no
   * alpha, and loaders then use scale 1, so when alpha ≠ rank the branch scale alpha / rank is folded
   * into `up`: every loader (diffusers, @diffmix/diffusion) reproduces the trained model.
   */
  loraSafetensors(): Uint8Array {
    if (this.o.mode === 'full')
      throw new InvalidArgumentError('mode', 'full mode trains no LoRA: save the UNet with saveUnetOnnx()');
    if (this.o.mode === 'ti') throw new InvalidArgumentError('mode', 'ti mode trains no LoRA: save the embeddings only');
    const t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    const r = this.o.rank ?? 10;
    const scale = (this.o.alpha ?? r) / r;
    for (const b of this.unetStep.branches) {
      t[b.down] = { dtype: 'F32', shape: [r, b.inFeatures], data: this.params.get(b.down) as Float32Array };
      const up = this.params.get(b.up) as Float32Array;
      t[b.up] = { dtype: 'F32', shape: [b.outFeatures, r], data: scale === 1 ? up : up.map((x) => x * scale) };
    }
    return formatSafetensors(t);
  }

  /** Textual-inversion embeddings, one key per placeholder token (`<class_i>` → [hidden]). */
  embeddingsSafetensors(tokens: readonly string[]): Uint8Array {
    if (!this.teStep) throw new InvalidArgumentError('mode', `no placeholder rows in this ${this.o.mode} stepper`);
    const { dim, count } = this.teStep.rows;
    if (tokens.length !== count) throw new InvalidArgumentError('tokens', `${tokens.length} names for ${count} rows`);
    const rows = this.params.get(ROWS) as Float32Array;
    const t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    tokens.forEach((tok, i) => {
      t[tok] = { dtype: 'F32', shape: [dim], data: rows.slice(i * dim, (i + 1) * dim) };
    });
    return formatSafetensors(t);
  }
}
