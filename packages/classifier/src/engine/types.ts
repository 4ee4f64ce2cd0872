/**
 * The engine contract: what the training loop asks of a backend. The loop owns everything that is the
 * same for every backend — data (decode, transforms, synthetic replacement, CutMix / Mixup, label
 * smoothing), the LR schedule, evaluation maths, checkpoint files — and an engine owns the model's
 * tensors, the forward / backward and the optimiser update. Two implementations: `ort` (graphs from
 * `@diffmix/ort-train` run by ONNX Runtime) and `tfjs` (TensorFlow.js, backend chosen at run time).
 *
 * Conventions, so that both engines see exactly the same numbers:
 * - images are float32 NCHW, already normalised (ImageNet mean / std), `[n, 3, H, W]` row-major;
 * - targets are dense float32 `[n, numClasses]` probability rows, already mixed and smoothed by the
 *   loop; the loss is the mean over the batch of `−Σ_c target_c · log_softmax(logits)_c`;
 * - weights use torchvision state-dict key names and layouts (conv `[out, in, kh, kw]`, linear
 *   `[out, in]`), BatchNorm running statistics included, so a state saved by one engine loads in the
 *   other and torchvision safetensors load in both.
 */

export type EngineName = 'ort' | 'tfjs';

export type ClassifierArchName = 'smallcnn' | 'resnet18' | 'resnet50' | 'vit_b_16';

/** A named float32 tensor in torchvision layout. */
export interface StateTensor {
  shape: number[];
  data: Float32Array;
}

/** Model tensors by torchvision key (parameters and buffers). */
export type ModelState = Map<string, StateTensor>;

export interface ModelSpec {
  arch: ClassifierArchName;
  numClasses: number;
  /** Square input side in pixels (the resolution mode: 224, 384, 448, or small for tests). */
  imageSize: number;
  /**
   * Initial weights (torchvision keys). Keys of the classification head (`fc.*` / `heads.head.*`)
   * whose shape does not match `numClasses` are re-initialised (the head is replaced); any other
   * missing, unexpected or mis-shaped key is a `ModelFormatError` naming the key.
   * Absent: every tensor initialised from `seed` (torchvision's init schemes).
   */
  weights?: ModelState;
  /** Seed for weight initialisation (and anything else random inside the engine). */
  seed: number;
}

export interface SgdSpec {
  kind: 'sgd';
  /** Base learning rate; the loop passes the scheduled rate to each `trainStep`. */
  lr: number;
  momentum: number;
  weightDecay: number;
  nesterov?: boolean;
}

export interface AdamWSpec {
  kind: 'adamw';
  lr: number;
  weightDecay: number;
  betas?: [number, number];
  eps?: number;
}

export type OptimizerSpec = SgdSpec | AdamWSpec;

export interface TrainBatch {
  /** `[n, 3, H, W]` float32, normalised. */
  images: Float32Array;
  /** `[n, numClasses]` float32 soft targets (rows sum to 1). */
  targets: Float32Array;
  n: number;
}

export interface TrainStepResult {
  /** Mean soft cross-entropy of the batch, before the update. */
  loss: number;
}

/** Engine state for checkpoints: model tensors (torchvision keys) and optimiser slots. */
export interface EngineState {
  model: ModelState;
  /** Optimiser slot tensors by `<slot>/<param key>` (e.g. `momentum/fc.weight`). */
  optimizer: Map<string, StateTensor>;
  /** Number of optimiser updates applied. */
  step: number;
}

export interface EngineInfo {
  name: EngineName;
  /** What actually runs: e.g. `onnxruntime-node 1.30 cpu`, `tfjs-backend-webgpu`, `tensorflow (tfjs-node)`. */
  backend: string;
  /** Why this backend was chosen (forced by the user, or the first that initialised). */
  reason: string;
}

export interface ClassifierEngine {
  readonly info: EngineInfo;
  /** Builds the model and optimiser. Called once, before anything else. */
  init(model: ModelSpec, optimizer: OptimizerSpec): Promise<void>;
  /** One optimiser update at learning rate `lr` on a training-mode forward (BatchNorm batch stats). */
  trainStep(batch: TrainBatch, lr: number): Promise<TrainStepResult>;
  /** Eval-mode logits `[n, numClasses]` for `[n, 3, H, W]` images. */
  predict(images: Float32Array, n: number): Promise<Float32Array>;
  getState(): Promise<EngineState>;
  setState(state: EngineState): Promise<void>;
  dispose(): Promise<void>;
}

/** Options common to every engine factory. */
export interface EngineOptions {
  /** Execution device / backend request: `cpu`, `webgpu`, `cuda`, or `auto` (default). */
  device?: string;
  /**
   * Engine-specific backend to force (tfjs: `tensorflow-gpu`, `tensorflow`, `webgpu`, `cpu`, `auto`);
   * engines without such a choice ignore it.
   */
  backend?: string;
}
