import { InvalidArgumentError, Rng, synthesisJobId } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { fakeDataset } from '../strategies/test-stats.js';
import { groupIntoBatches } from './batches.js';
import { parsePlan, planDigest, planSettingsKey, planSynthesis, serializePlan, shardJobs } from './plan.js';
import type { PlanSynthesisOptions } from './plan.js';

const dataset = fakeDataset([4, 7, 5, 9, 3]);
const base: PlanSynthesisOptions = {
  dataset,
  strategy: 'diff-mix',
  seed: 2024,
  annotation: { gamma: 0.5, scaler: 0.9 },
  params: { steps: 25, guidance: 7.5, size: 512, model: 'sha256:abc' },
};

describe('planSynthesis', () => {
  it('is deterministic byte for byte, whatever the order of records and params', () => {
    const a = serializePlan(planSynthesis(base));
    const b = serializePlan(planSynthesis({ ...base }));
    expect(b).toBe(a);
    const shuffled = { ...dataset, train: Rng.fromSeed(1).shuffle(dataset.train), classes: [...dataset.classes].reverse() };
    const reordered = { model: 'sha256:abc', size: 512, guidance: 7.5, steps: 25 };
    expect(serializePlan(planSynthesis({ ...base, dataset: shuffled, params: reordered }))).toBe(a);
    expect(planDigest(planSynthesis(base))).toMatch(/^[0-9a-f]{64}$/);
  });

  it('changes with the seed, and every output-determining input changes the ids', () => {
    const ids = (o: Partial<PlanSynthesisOptions>) => planSynthesis({ ...base, ...o }).jobs.map((j) => j.id);
    const ref = ids({});
    expect(ids({ seed: 2025 })).not.toEqual(ref);
    const other = ids({ params: { ...base.params, model: 'sha256:def' } });
    for (const [i, id] of other.entries()) expect(id).not.toBe(ref[i]);
    // γ and c change labels, not pixels: same ids, different labels.
    const relabelled = planSynthesis({ ...base, annotation: { gamma: 0.8, scaler: 1 } });
    expect(relabelled.jobs.map((j) => j.id)).toEqual(ref);
  });

  it('plans multiplier × training images (5 by default), each job a prefix-stable function of its index', () => {
    const p = planSynthesis(base);
    expect(p.jobs).toHaveLength(5 * 28);
    expect(planSynthesis({ ...base, multiplier: 2 }).jobs).toHaveLength(56);
    const longer = planSynthesis({ ...base, multiplier: 10 });
    expect(longer.jobs.slice(0, p.jobs.length)).toEqual(p.jobs);
    expect(planSettingsKey(longer)).toBe(planSettingsKey(p));
    expect(planSettingsKey(planSynthesis({ ...base, seed: 1 }))).not.toBe(planSettingsKey(p));
  });

  it('gives every job its own seed and a unique id, carried in params', () => {
    const p = planSynthesis({ ...base, count: 2000 });
    expect(new Set(p.jobs.map((j) => j.seed)).size).toBe(2000);
    expect(new Set(p.jobs.map((j) => j.id)).size).toBe(2000);
    for (const j of p.jobs.slice(0, 50)) {
      expect(Number.isSafeInteger(j.seed)).toBe(true);
      expect(j.id).toBe(synthesisJobId(j));
      expect(j.params).toEqual({ guidance: 7.5, model: 'sha256:abc', size: 512, steps: 25 });
    }
    expect(p.jobs.map((j) => j.planIndex)).toEqual(p.jobs.map((_, i) => i));
  });

  it('round-trips through serializePlan / parsePlan and rejects tampering or truncation', () => {
    const p = planSynthesis({ ...base, count: 30 });
    const text = serializePlan(p);
    expect(parsePlan(text)).toEqual(p);
    const lines = text.split('\n');
    expect(() => parsePlan(lines.slice(0, 10).join('\n'))).toThrow(/truncated/);
    const tampered = [...lines];
    tampered[3] = (tampered[3] as string).replace(/"strength":0\.\d/, '"strength":0.3');
    expect(() => parsePlan(tampered.join('\n'))).toThrow(/does not match its fields/);
    expect(() => parsePlan('{"format":"x"}')).toThrow(/not a diffmix synthesis plan/);
  });

  it('refuses strengths that leave no denoising step, and strengths for txt2img', () => {
    expect(() => planSynthesis({ ...base, strategy: 'real-guidance', params: { steps: 5 } })).toThrow(/no denoising step/);
    expect(planSynthesis({ ...base, strategy: 'real-guidance', params: { steps: 10 }, count: 3 }).jobs).toHaveLength(3);
    expect(() => planSynthesis({ ...base, strategy: 'diff-gen', strengths: 0.5 })).toThrow(/always 1/);
    expect(() => planSynthesis({ ...base, strengths: [] })).toThrow(InvalidArgumentError);
    expect(() => planSynthesis({ ...base, params: { steps: 0 } })).toThrow(/steps/);
    expect(() => planSynthesis({ ...base, dataset: { ...dataset, train: [...dataset.train, dataset.train[0]!] } })).toThrow(
      /twice/,
    );
  });
});

describe('shards', () => {
  it.each([1, 2, 3, 7])('%i shards partition the plan exactly', (n) => {
    const p = planSynthesis({ ...base, count: 700 });
    const parts = Array.from({ length: n }, (_, index) => shardJobs(p, { index, count: n }));
    const all = parts.flat().map((j) => j.id);
    expect(all).toHaveLength(p.jobs.length); // no job twice
    expect(new Set(all)).toEqual(new Set(p.jobs.map((j) => j.id))); // none missing
    for (const part of parts) {
      expect(Math.abs(part.length - 700 / n)).toBeLessThan(5 * Math.sqrt((700 * (n - 1)) / (n * n)) + 1);
      // plan order kept within a shard
      const idx = part.map((j) => j.planIndex);
      expect(idx).toEqual([...idx].sort((a, b) => a - b));
    }
  });
});

describe('batches', () => {
  it('group jobs by the settings that must agree and cut them to the batch size', () => {
    const p = planSynthesis({ ...base, count: 40 });
    const batches = groupIntoBatches(p.jobs, 'img2img', 4);
    expect(batches.flatMap((b) => b.jobs)).toHaveLength(40);
    for (const b of batches) {
      expect(b.jobs.length).toBeLessThanOrEqual(4);
      expect(new Set(b.jobs.map((j) => j.strength))).toEqual(new Set([b.strength]));
    }
    expect(new Set(batches.map((b) => b.strength))).toEqual(new Set([0.5, 0.7, 0.9]));
  });

  it('with a step-count key, Beta strengths that give the same number of steps share a batch', () => {
    const p = planSynthesis({ ...base, count: 60, strengths: { kind: 'beta', alpha: 5, beta: 5, min: 0.1, max: 0.9 } });
    const key = (s: number, steps: number) => Math.trunc(steps * s);
    const exact = groupIntoBatches(p.jobs, 'img2img', 8);
    const bySteps = groupIntoBatches(p.jobs, 'img2img', 8, { strengthKey: key });
    expect(exact.length).toBeGreaterThan(50);
    expect(bySteps.length).toBeLessThan(20);
    for (const b of bySteps) expect(new Set(b.jobs.map((j) => key(j.strength, 25))).size).toBe(1);
    expect(() => groupIntoBatches(p.jobs, 'img2img', 0)).toThrow(/batchSize/);
  });
});
