/**
 * `trainClassifier`: the Diff-Mix downstream training loop.
 *
 * Per epoch: the real training indices in a seeded order, each replaced with probability p by a
 * synthetic sample (soft label), optional CutMix (per sample) / Mixup (per batch), official label
 * smoothing `target = ε/(C−1) + (1−ε)·y` (ε = 0.1), incomplete last batch dropped. SGD (momentum
 * 0.9, weight decay on every parameter) or AdamW, learning rate `lr · cosineWithWarmup(step)` per
 * iteration (10 % linear warmup, ort-train's schedule = transformers' `get_cosine_schedule_with_warmup`
 * as the official code uses). Evaluation every `evalEvery` epochs and after the last: top-1,
 * per-class accuracy, confusion matrix. Both the final and the best evaluated epoch are reported:
 * the official code reports the BEST test accuracy over the evaluations (model selection on the
 * test set); `final` is the honest number.
 *
 * With `outDir`: a checkpoint after every epoch (and at the batch where an abort stops the run),
 * `results.json` at the end; a later call with the same options resumes from the checkpoint, and the
 * next step gives the same loss as the uninterrupted run would have.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AbortedError,
  createProgress,
  type Dataset,
  InvalidArgumentError,
  type ProgressMode,
  readSafetensors,
  ValidationError,
} from '@diffmix/core';
import type { SyntheticRecord } from '@diffmix/datasets';
import type { SyntheticWeighting } from '@diffmix/longtail';
import { cosineWithWarmup } from '@diffmix/ort-train';
import type { CutMixConfig, MixupConfig } from '../data/mix.js';
import { evalBatches, TrainPlan } from '../data/pipeline.js';
import { SyntheticReplacer } from '../data/replacement.js';
import { resolveTransform, type TransformConfig } from '../data/transforms.js';
import { createEngine, type EngineChoice } from '../engine/create.js';
import type { ClassifierArchName, ClassifierEngine, EngineInfo, ModelState, OptimizerSpec } from '../engine/types.js';
import {
  CHECKPOINT_FORMAT,
  checkpointDir,
  configMismatches,
  type LoopState,
  loadCheckpoint,
  saveCheckpoint,
} from './checkpoint.js';
import { argmax, ConfusionMatrix, type EvalMetrics } from './metrics.js';

export interface SyntheticOptions {
  /** The synthetic set's records (`readSyntheticSet(root).records`), with soft labels. */
  records: readonly SyntheticRecord[];
  /** Replacement probability p. */
  probability: number;
  /** `uniform` (default) or `inverse-count` (long-tail). */
  weighting?: SyntheticWeighting;
}

export interface TrainClassifierOptions {
  dataset: Dataset;
  arch: ClassifierArchName;
  /** Crop side (224 / 384 / 448 official; any ≥ 8 for tests). */
  imageSize: number;
  /** Initial weights (torchvision keys) or a safetensors path; absent: initialised from the seed. */
  weights?: ModelState | string;
  /** `ort`, `tfjs`, `auto` (default: {@link AUTO_ENGINE}), or an engine instance. */
  engine?: EngineChoice | ClassifierEngine;
  /** Engine device: `cpu`, `cuda`, `webgpu`, `auto`. */
  device?: string;
  epochs: number;
  batchSize: number;
  lr: number;
  /** `sgd` (default) or `adamw` (the ViT setting). */
  optimizer?: 'sgd' | 'adamw';
  momentum?: number;
  /** Default 5e-4 (official code). */
  weightDecay?: number;
  /** Warmup fraction of all iterations (default 0.1). */
  warmupFraction?: number;
  /** ε of the official label smoothing (default 0.1). */
  labelSmoothing?: number;
  synthetic?: SyntheticOptions;
  cutmix?: CutMixConfig;
  mixup?: MixupConfig;
  /** Evaluate every k epochs (default 4, official) and always after the last. */
  evalEvery?: number;
  evalBatchSize?: number;
  transform?: Omit<TransformConfig, 'size'>;
  seed?: number;
  /** Checkpoints and results.json go here; a checkpoint found here is resumed. */
  outDir?: string;
  /** Ignore an existing checkpoint and start over (default false). */
  restart?: boolean;
  signal?: AbortSignal;
  progress?: ProgressMode;
  /** Decode concurrency (default: min(cores, libuv pool)). */
  concurrency?: number;
  /** Called after every step (tests, logging). */
  onStep?: (s: { epoch: number; batch: number; globalStep: number; loss: number; lr: number }) => void;
}

export interface EvalRecord extends EvalMetrics {
  epoch: number;
}

export interface EpochRecord {
  epoch: number;
  /** Mean training loss of the epoch's steps. */
  trainLoss: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  /** Fraction of the epoch's samples that were synthetic. */
  syntheticFraction: number;
  testTop1?: number;
  testMeanPerClass?: number;
}

export interface TrainResult {
  engine: EngineInfo;
  config: Record<string, unknown>;
  epochs: EpochRecord[];
  stepLosses: number[];
  stepLrs: number[];
  /** Evaluation after the last epoch. */
  final: EvalRecord;
  /** The evaluated epoch with the highest top-1 (what the official code reports). */
  best: EvalRecord;
  /** True when this call continued from a checkpoint. */
  resumed: boolean;
  /** Steps run by this call (not counting resumed ones). */
  stepsThisRun: number;
}

async function resolveWeights(w: ModelState | string | undefined): Promise<ModelState | undefined> {
  if (w === undefined || typeof w !== 'string') return w;
  const file = await readSafetensors(w);
  const out: ModelState = new Map();
  for (const k of file.keys()) {
    if (k.endsWith('num_batches_tracked')) continue;
    const t = file.float32(k);
    out.set(k, { shape: t.shape, data: Float32Array.from(t.data) });
  }
  return out;
}

function positiveInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError(name, `must be a positive integer, got ${v}`);
}

/** Evaluates `engine` on test records. */
export async function evaluate(
  engine: ClassifierEngine,
  records: Dataset['test'],
  numClasses: number,
  options: {
    imageSize: number;
    batchSize?: number;
    transform?: Omit<TransformConfig, 'size'>;
    concurrency?: number;
    signal?: AbortSignal;
  },
): Promise<EvalMetrics> {
  const t = resolveTransform({ ...options.transform, size: options.imageSize });
  const cm = new ConfusionMatrix(numClasses);
  for await (const b of evalBatches(records, t, options.batchSize ?? 64, {
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  })) {
    cm.add(b.labels, argmax(await engine.predict(b.images, b.n), numClasses));
  }
  return cm.metrics();
}

export async function trainClassifier(options: TrainClassifierOptions): Promise<TrainResult> {
  const { dataset, arch, imageSize, epochs, batchSize, lr } = options;
  const numClasses = dataset.classes.length;
  if (numClasses < 2) throw new InvalidArgumentError('dataset', `needs at least 2 classes, has ${numClasses}`);
  if (dataset.test.length === 0) throw new InvalidArgumentError('dataset', 'the test split is empty: nothing to evaluate');
  positiveInt('epochs', epochs);
  positiveInt('batchSize', batchSize);
  if (!(lr > 0) || !Number.isFinite(lr)) throw new InvalidArgumentError('lr', `must be a finite number > 0, got ${lr}`);
  const evalEvery = options.evalEvery ?? 4;
  positiveInt('evalEvery', evalEvery);
  const seed = options.seed ?? 0;
  const optimizerKind = options.optimizer ?? 'sgd';
  const weightDecay = options.weightDecay ?? 5e-4;
  const momentum = options.momentum ?? 0.9;
  const transform = resolveTransform({ ...options.transform, size: imageSize });
  const trainCounts = new Array<number>(numClasses).fill(0);
  for (const r of dataset.train)
    if (r.label >= 0 && r.label < numClasses) trainCounts[r.label] = (trainCounts[r.label] as number) + 1;
  const replacement = options.synthetic
    ? new SyntheticReplacer({
        synthetic: options.synthetic.records,
        probability: options.synthetic.probability,
        ...(options.synthetic.weighting ? { weighting: options.synthetic.weighting } : {}),
        numClasses,
        trainCounts,
      })
    : undefined;
  const plan = new TrainPlan({
    train: dataset.train,
    numClasses,
    seed,
    batchSize,
    transform,
    ...(replacement ? { replacement } : {}),
    ...(options.cutmix ? { cutmix: options.cutmix } : {}),
    ...(options.mixup ? { mixup: options.mixup } : {}),
    ...(options.labelSmoothing !== undefined ? { labelSmoothing: options.labelSmoothing } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
  });
  const totalSteps = epochs * plan.stepsPerEpoch;
  const schedule = cosineWithWarmup({ totalSteps, warmupFraction: options.warmupFraction ?? 0.1 });
  const config: Record<string, unknown> = {
    dataset: dataset.name,
    numClasses,
    trainSize: dataset.train.length,
    arch,
    imageSize,
    epochs,
    batchSize,
    lr,
    optimizer: optimizerKind,
    momentum,
    weightDecay,
    warmupFraction: options.warmupFraction ?? 0.1,
    labelSmoothing: options.labelSmoothing ?? 0.1,
    synthetic: options.synthetic
      ? {
          count: options.synthetic.records.length,
          probability: options.synthetic.probability,
          weighting: options.synthetic.weighting ?? 'uniform',
        }
      : null,
    cutmix: options.cutmix ?? null,
    mixup: options.mixup ?? null,
    evalEvery,
    transform: { resize: transform.resize, padding: transform.padding, flip: transform.flip },
    seed,
  };

  const engine =
    typeof options.engine === 'object'
      ? options.engine
      : await createEngine(options.engine ?? 'auto', options.device ? { device: options.device } : {});
  const optimizer: OptimizerSpec =
    optimizerKind === 'adamw' ? { kind: 'adamw', lr, weightDecay } : { kind: 'sgd', lr, momentum, weightDecay };
  const weights = await resolveWeights(options.weights);
  await engine.init({ arch, numClasses, imageSize, seed, ...(weights ? { weights } : {}) }, optimizer);

  let loop: LoopState = {
    format: CHECKPOINT_FORMAT,
    config,
    epoch: 0,
    batch: 0,
    globalStep: 0,
    stepLosses: [],
    stepLrs: [],
    history: [],
    engineStep: 0,
  };
  let resumed = false;
  if (options.outDir && !options.restart) {
    const ck = await loadCheckpoint(options.outDir);
    if (ck) {
      const diff = configMismatches(ck.loop.config, config);
      if (diff.length > 0) {
        throw new ValidationError({
          source: join(checkpointDir(options.outDir), 'loop.json'),
          issues: [`the checkpoint was made with other options (${diff.join('; ')}); pass restart: true to start over`],
        });
      }
      await engine.setState(ck.engine);
      loop = ck.loop;
      resumed = true;
    }
  }
  const history = loop.history as Array<EpochRecord & { eval?: EvalRecord }>;
  const progress = createProgress({
    label: `train ${arch}`,
    total: totalSteps,
    initial: loop.globalStep,
    mode: options.progress ?? 'auto',
  });
  const save = async () => {
    if (options.outDir) await saveCheckpoint(options.outDir, await engine.getState(), loop);
  };
  let stepsThisRun = 0;
  const evalOptions = {
    imageSize,
    batchSize: options.evalBatchSize ?? Math.max(batchSize, 32),
    ...(options.transform ? { transform: options.transform } : {}),
    ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  try {
    while (loop.epoch < epochs) {
      const epoch = loop.epoch;
      // Losses of this epoch's steps already done before a mid-epoch resume.
      const epochStart = epoch * plan.stepsPerEpoch;
      let synthetic = loop.epochSynthetic ?? 0;
      for await (const batch of plan.batches(epoch, loop.batch, options.signal)) {
        if (options.signal?.aborted) throw new AbortedError();
        const step = loop.globalStep;
        const stepLr = lr * schedule(step);
        const { loss } = await engine.trainStep(batch, stepLr);
        if (!Number.isFinite(loss)) {
          throw new InvalidArgumentError(
            'lr',
            `training diverged at epoch ${epoch}, step ${step}: loss ${loss} (lower the learning rate)`,
          );
        }
        loop.stepLosses.push(loss);
        loop.stepLrs.push(stepLr);
        loop.globalStep++;
        loop.batch = batch.index + 1;
        synthetic += batch.synthetic;
        loop.epochSynthetic = synthetic;
        stepsThisRun++;
        progress.tick();
        options.onStep?.({ epoch, batch: batch.index, globalStep: step, loss, lr: stepLr });
        if (options.signal?.aborted) throw new AbortedError();
      }
      const losses = loop.stepLosses.slice(epochStart, epochStart + plan.stepsPerEpoch);
      const record: EpochRecord & { eval?: EvalRecord } = {
        epoch,
        trainLoss: losses.reduce((a, b) => a + b, 0) / Math.max(1, losses.length),
        lr: loop.stepLrs[loop.stepLrs.length - 1] ?? 0,
        syntheticFraction: synthetic / Math.max(1, plan.stepsPerEpoch * batchSize),
      };
      if ((epoch + 1) % evalEvery === 0 || epoch === epochs - 1) {
        const m = await evaluate(engine, dataset.test, numClasses, evalOptions);
        record.eval = { epoch, ...m };
        record.testTop1 = m.top1;
        record.testMeanPerClass = m.meanPerClass;
      }
      history.push(record);
      loop.epoch++;
      loop.batch = 0;
      loop.epochSynthetic = 0;
      await save();
    }
  } catch (err) {
    if (err instanceof AbortedError || options.signal?.aborted) {
      // Ctrl-C: keep what was done; the next call resumes at this batch.
      await save();
      progress.stop({ aborted: true, step: loop.globalStep });
      if (typeof options.engine !== 'object') await engine.dispose();
      throw err instanceof AbortedError ? err : new AbortedError(`training aborted at step ${loop.globalStep}`);
    }
    progress.stop({ failed: true });
    if (typeof options.engine !== 'object') await engine.dispose();
    throw err;
  }
  progress.stop({ steps: loop.globalStep });
  const evals = history.flatMap((h) => (h.eval ? [h.eval] : []));
  const final = evals[evals.length - 1] as EvalRecord;
  const best = evals.reduce((a, b) => (b.top1 > a.top1 ? b : a), final);
  const result: TrainResult = {
    engine: engine.info,
    config,
    epochs: history.map(({ eval: _e, ...rest }) => rest),
    stepLosses: loop.stepLosses,
    stepLrs: loop.stepLrs,
    final,
    best,
    resumed,
    stepsThisRun,
  };
  if (typeof options.engine !== 'object') await engine.dispose();
  if (options.outDir) {
    await mkdir(options.outDir, { recursive: true });
    const file = join(options.outDir, 'results.json');
    await writeFile(
      `${file}.tmp`,
      `${JSON.stringify({ note: 'best = highest test top-1 over the evaluations, as the official code reports; final = after the last epoch', ...result }, null, 2)}\n`,
    );
    await rename(`${file}.tmp`, file);
  }
  return result;
}
