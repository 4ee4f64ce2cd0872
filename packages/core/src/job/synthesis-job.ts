/**
 * Synthesis jobs: one image to generate. The id is a hash of every field that determines the
 * output, so re-running a plan finds finished jobs by id, and sharding by id needs no coordination.
 */
import { InvalidArgumentError } from '../errors/index.js';
import { canonicalJson, sha256Hex } from '../hash/index.js';
import type { JsonValue } from '../hash/index.js';

export interface SynthesisJobSpec {
  /** Strategy name, e.g. "diff-mix", "real-mix", "da-fusion". */
  strategy: string;
  /** Record id of the source image (absent for txt2img strategies). */
  sourceRecordId?: string;
  sourceClass: number;
  targetClass: number;
  /** img2img strength in [0, 1] (1 for txt2img). */
  strength: number;
  prompt: string;
  /** Seed of the job's own RNG stream (initial noise etc.). */
  seed: number;
  /**
   * Everything else that changes the pixels: model fingerprint, LoRA/TI fingerprints, scheduler,
   * steps, guidance scale, negative prompt, resolution. Part of the id.
   */
  params?: Record<string, JsonValue>;
}

export interface SynthesisJob extends SynthesisJobSpec {
  /** 24 hex characters (96 bits) of SHA-256 over the canonical JSON of the spec. */
  id: string;
}

/** Length of a job id in hex characters. */
export const JOB_ID_LENGTH = 24;

export function synthesisJobId(spec: SynthesisJobSpec): string {
  validateSpec(spec);
  const { strategy, sourceRecordId, sourceClass, targetClass, strength, prompt, seed, params } = spec;
  const canonical = canonicalJson({
    v: 1,
    strategy,
    sourceRecordId,
    sourceClass,
    targetClass,
    strength,
    prompt,
    seed,
    params: params ?? {},
  });
  return sha256Hex(canonical).slice(0, JOB_ID_LENGTH);
}

export function createSynthesisJob(spec: SynthesisJobSpec): SynthesisJob {
  return { id: synthesisJobId(spec), ...spec };
}

function validateSpec(spec: SynthesisJobSpec): void {
  if (!spec.strategy) throw new InvalidArgumentError('strategy', 'must be a non-empty string');
  for (const k of ['sourceClass', 'targetClass'] as const) {
    if (!Number.isInteger(spec[k]) || spec[k] < 0) throw new InvalidArgumentError(k, `must be a class id, got ${spec[k]}`);
  }
  if (!(spec.strength >= 0 && spec.strength <= 1)) {
    throw new InvalidArgumentError('strength', `must be in [0, 1], got ${spec.strength}`);
  }
  if (!Number.isSafeInteger(spec.seed) || spec.seed < 0) {
    throw new InvalidArgumentError('seed', `must be a non-negative integer, got ${spec.seed}`);
  }
}

export interface Shard {
  /** 0-based shard index. */
  index: number;
  count: number;
}

/** Parses `"i/n"` (0 ≤ i < n). */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new InvalidArgumentError('shard', `expected "i/n" with 0 ≤ i < n, got ${JSON.stringify(text)}`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1 || index >= count) {
    throw new InvalidArgumentError('shard', `expected 0 ≤ i < n, got ${index}/${count}`);
  }
  return { index, count };
}

/** The shard a job id belongs to: the id's first 32 bits, mod n. */
export function shardOfId(id: string, count: number): number {
  if (!/^[0-9a-f]{8}/.test(id)) throw new InvalidArgumentError('id', `not a job id: ${JSON.stringify(id)}`);
  if (!Number.isInteger(count) || count < 1) throw new InvalidArgumentError('count', `must be ≥ 1, got ${count}`);
  return Number.parseInt(id.slice(0, 8), 16) % count;
}

export function inShard(id: string, shard: Shard): boolean {
  return shardOfId(id, shard.count) === shard.index;
}
