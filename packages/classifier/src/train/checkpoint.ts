/**
 * Training checkpoints: one folder `<outDir>/checkpoint/` holding `state.safetensors` (model tensors
 * under `model/<torchvision key>`, optimiser slots under `optim/<slot>/<key>`) and `loop.json` (where
 * the loop stands, its curves, the config fingerprint). Written to a temporary folder then renamed,
 * so a crash leaves the previous checkpoint or the new one, never a mix.
 *
 * No RNG state needs saving: every random draw of the loop is a function of (seed, epoch, position)
 * (see `data/pipeline.ts`), so `loop.json`'s position and the seed restore the streams exactly.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  formatSafetensors,
  ModelFormatError,
  NotFoundError,
  readSafetensors,
  type SafetensorsInput,
  ValidationError,
} from '@diffmix/core';
import type { EngineState, StateTensor } from '../engine/types.js';

export const CHECKPOINT_FORMAT = 'diffmix-classifier-checkpoint/v1';

export interface LoopState {
  format: typeof CHECKPOINT_FORMAT;
  /** Hash-free fingerprint of the options that must match on resume. */
  config: Record<string, unknown>;
  /** Next epoch to run (0-based) and next batch inside it. */
  epoch: number;
  batch: number;
  /** Optimiser updates done. */
  globalStep: number;
  /** Per-step losses so far (the loss curve). */
  stepLosses: number[];
  /** Per-step learning rates so far. */
  stepLrs: number[];
  /** Finished epochs' records (see TrainResult). */
  history: unknown[];
  /** Engine step count. */
  engineStep: number;
  /** Synthetic samples seen so far in the current epoch (so a mid-epoch resume reports the epoch whole). */
  epochSynthetic?: number;
}

export function checkpointDir(outDir: string): string {
  return join(outDir, 'checkpoint');
}

export async function saveCheckpoint(outDir: string, engine: EngineState, loop: LoopState): Promise<void> {
  const dir = checkpointDir(outDir);
  const tmp = `${dir}.tmp-${process.pid}`;
  const old = `${dir}.old-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const tensors = new Map<string, SafetensorsInput>();
  for (const [k, t] of engine.model) tensors.set(`model/${k}`, { shape: t.shape, data: t.data });
  for (const [k, t] of engine.optimizer) tensors.set(`optim/${k}`, { shape: t.shape, data: t.data });
  await writeFile(join(tmp, 'state.safetensors'), formatSafetensors(tensors, { format: CHECKPOINT_FORMAT }));
  await writeFile(join(tmp, 'loop.json'), `${JSON.stringify({ ...loop, engineStep: engine.step })}\n`);
  await rm(old, { recursive: true, force: true });
  await rename(dir, old).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  await rename(tmp, dir);
  await rm(old, { recursive: true, force: true });
}

export async function loadCheckpoint(outDir: string): Promise<{ engine: EngineState; loop: LoopState } | undefined> {
  const dir = checkpointDir(outDir);
  const loopFile = join(dir, 'loop.json');
  let text: string;
  try {
    text = await readFile(loopFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let loop: LoopState;
  try {
    loop = JSON.parse(text) as LoopState;
  } catch (err) {
    throw new ValidationError({ source: loopFile, issues: [`not JSON: ${(err as Error).message}`] });
  }
  if (loop.format !== CHECKPOINT_FORMAT) {
    throw new ValidationError({
      source: loopFile,
      issues: [`format ${JSON.stringify(loop.format)}, expected ${CHECKPOINT_FORMAT}`],
    });
  }
  const stateFile = join(dir, 'state.safetensors');
  const file = await readSafetensors(stateFile).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new NotFoundError(stateFile);
    throw err;
  });
  const model = new Map<string, StateTensor>();
  const optimizer = new Map<string, StateTensor>();
  for (const key of file.keys()) {
    const t = file.float32(key);
    const entry = { shape: t.shape, data: Float32Array.from(t.data) };
    if (key.startsWith('model/')) model.set(key.slice(6), entry);
    else if (key.startsWith('optim/')) optimizer.set(key.slice(6), entry);
    else throw new ModelFormatError(stateFile, `unexpected tensor ${JSON.stringify(key)} (expected model/… or optim/…)`);
  }
  return { engine: { model, optimizer, step: loop.engineStep }, loop };
}

/** Names the options that differ between a checkpoint and this run. */
export function configMismatches(saved: Record<string, unknown>, current: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(current)]);
  return [...keys]
    .filter((k) => JSON.stringify(saved[k]) !== JSON.stringify(current[k]))
    .map((k) => `${k}: checkpoint ${JSON.stringify(saved[k])}, now ${JSON.stringify(current[k])}`);
}
