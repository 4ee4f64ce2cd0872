/**
 * One LoRA + textual-inversion training step on exported SD graphs (UNet + text encoder), with the
 * trainable tensors fed as graph inputs so the optimiser can update them between steps:
 * text encoder (trainable `<class_i>` rows appended; every other row frozen) → encoder_hidden_states →
 * UNet with LoRA branches → mean((ε̂ − noise)²) → gradients (LoRA matrices, d/d encoder_hidden_states
 * chained into the rows) → AdamW (two groups: `lora`, `embeddings`), grad clipping on LoRA only.
 */
import { formatSafetensors, InvalidArgumentError } from '@diffmix/core';
import {
  AdamW,
  buildEmbeddingRowsStep,
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

export type FineTuneMode = 'ti' | 'db' | 'ti+db';

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
  /** LoRA initial values; default peft-style: down from `randomDown`, up zero. */
  loraInit?: (module: string, kind: 'down' | 'up', dims: readonly [number, number]) => Float32Array;
  /** Initial placeholder rows [n, hidden] (ti / ti+db). */
  rows?: Float32Array;
  lr?: number;
  embeddingLr?: number;
  weightDecay?: number;
  clip?: number;
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
  /** Gradients before clipping, by parameter name (LoRA keys, `ti.rows`). */
  gradients: Map<string, Float32Array>;
  gradEncoderHiddenStates: Float32Array;
}

const ROWS = 'ti.rows';

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
  readonly loraNames: string[];
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
    this.loraNames = o.mode === 'ti' ? [] : unetStep.branches.flatMap((b) => [b.down, b.up]);
    const groups = [];
    if (this.loraNames.length) groups.push({ params: this.loraNames, lr: o.lr ?? 5e-5 });
    if (teStep) groups.push({ params: [ROWS], lr: o.embeddingLr ?? 5e-5 });
    this.optimizer = new AdamW(groups, { weightDecay: o.weightDecay ?? 1e-2 });
  }

  static async create(o: LoraTiStepperOptions): Promise<LoraTiStepper> {
    if (!(o.batchSize >= 1)) throw new InvalidArgumentError('batchSize', 'must be ≥ 1');
    const seqLen = o.seqLen ?? 77;
    const [c, h, w] = o.latentShape;
    if ((o.mode === 'ti' || o.mode === 'ti+db') && !o.rows) throw new InvalidArgumentError('rows', `mode ${o.mode} needs placeholder rows`);
    const targets = o.targets ?? DEFAULT_LORA_TARGETS;
    // The UNet step: LoRA matrices as inputs (ti mode: still inserted, fed zeros, never updated).
    const unetStep = buildLoraUnetStep(o.unet, {
      rank: o.rank ?? 10,
      alpha: o.alpha ?? o.rank ?? 10,
      targets,
      asInputs: true,
      inputGradients: ['encoder_hidden_states'],
      inputShapes: { sample: [o.batchSize, c, h, w], timestep: [o.batchSize], encoder_hidden_states: [o.batchSize, seqLen, o.hiddenSize] },
    });
    if (unetStep.branches.length === 0) throw new InvalidArgumentError('targets', `no UNet module matches ${JSON.stringify(targets)}`);
    const params = new Map<string, Float32Array>();
    for (const b of unetStep.branches) {
      const dd = [o.rank ?? 10, b.inFeatures] as const;
      const ud = [b.outFeatures, o.rank ?? 10] as const;
      params.set(b.down, o.loraInit?.(b.module, 'down', dd) ?? new Float32Array(dd[0] * dd[1]));
      params.set(b.up, o.loraInit?.(b.module, 'up', ud) ?? new Float32Array(ud[0] * ud[1]));
    }
    let teStep: EmbeddingRowsStep | undefined;
    let teGraph = o.textEncoder;
    if (o.rows) {
      teStep = buildEmbeddingRowsStep(o.textEncoder, { input: 'input_ids', append: o.rows, name: ROWS, asInput: true, inputShapes: { input_ids: [o.batchSize, seqLen] } });
      teGraph = teStep.graph;
      params.set(ROWS, Float32Array.from(o.rows));
    }
    const unetSession = (await createGraphSession(o.ort, unetStep.graph)) as Ort.InferenceSession;
    const teSession = (await createGraphSession(o.ort, teGraph)) as Ort.InferenceSession;
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
    const ids = new ort.Tensor(this.idsType, this.idsType === 'int64' ? BigInt64Array.from(batch.inputIds, (v) => BigInt(v)) : batch.inputIds, [n, seqLen]);
    const teFeeds: Record<string, Ort.Tensor> = { input_ids: ids };
    const teOut0 = this.teStep
      ? undefined
      : await this.teSession.run(teFeeds);
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
          : new ort.Tensor('int64', BigInt64Array.from(batch.timesteps, (v) => BigInt(v)), [n]),
    };
    for (const b of u.branches) {
      feeds[b.down] = new ort.Tensor('float32', this.params.get(b.down) as Float32Array, [this.o.rank ?? 10, b.inFeatures]);
      feeds[b.up] = new ort.Tensor('float32', this.params.get(b.up) as Float32Array, [b.outFeatures, this.o.rank ?? 10]);
    }
    const out = await this.unetSession.run(feeds);
    const get = (k: string) => (out[k] as Ort.Tensor).data as Float32Array;
    const gradients = new Map<string, Float32Array>();
    for (const k of this.loraNames) gradients.set(k, Float32Array.from(get(u.gradients[k] as string)));
    const gEhs = get(u.gradients.encoder_hidden_states as string);
    if (this.teStep) {
      teFeeds[this.teStep.gradOutput] = new ort.Tensor('float32', gEhs, [n, seqLen, hidden]);
      const teOut = await this.teSession.run(teFeeds);
      gradients.set(ROWS, Float32Array.from((teOut[this.teStep.gradient] as Ort.Tensor).data as Float32Array));
    }
    return { loss: get(u.loss)[0] as number, prediction: get(u.prediction), encoderHiddenStates: ehs, gradients, gradEncoderHiddenStates: gEhs };
  }

  /** Forward, backward, clip LoRA grads (norm `clip`, default 1), AdamW update. Returns the loss. */
  async step(batch: StepBatch): Promise<StepResult> {
    const r = await this.gradients(batch);
    const grads = new Map(r.gradients);
    if (this.loraNames.length) {
      const lora = this.loraNames.map((k) => Float32Array.from(grads.get(k) as Float32Array));
      clipGradNorm(lora, this.o.clip ?? 1.0);
      for (const [i, k] of this.loraNames.entries()) grads.set(k, lora[i] as Float32Array);
    }
    this.optimizer.step(this.params, grads);
    return r;
  }

  /** In-memory checkpoint: parameter copies + AdamW state (JSON + tensors). */
  checkpoint(): StepperCheckpoint {
    const copy = (m: ReadonlyMap<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));
    return { params: copy(this.params), optimizer: this.optimizer.stateJson(), optimizerTensors: copy(this.optimizer.stateTensors()) };
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

  /** diffusers-format LoRA (`unet.<module>.lora.down.weight` / `.lora.up.weight`). */
  loraSafetensors(): Uint8Array {
    const t: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    const r = this.o.rank ?? 10;
    for (const b of this.unetStep.branches) {
      t[b.down] = { dtype: 'F32', shape: [r, b.inFeatures], data: this.params.get(b.down) as Float32Array };
      t[b.up] = { dtype: 'F32', shape: [b.outFeatures, r], data: this.params.get(b.up) as Float32Array };
    }
    return formatSafetensors(t);
  }

  /** Textual-inversion embeddings, one key per placeholder token (`<class_i>` → [hidden]). */
  embeddingsSafetensors(tokens: readonly string[]): Uint8Array {
    if (!this.teStep) throw new InvalidArgumentError('mode', 'no placeholder rows in db mode');
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
