import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../errors/index.js';
import { philox4x32 } from './philox.js';
import { Rng } from './rng.js';

function draws(rng: Rng, n: number): number[] {
  return Array.from({ length: n }, () => rng.nextUint32());
}

describe('Rng stream definition', () => {
  it('an integer seed is the Philox key, and word i comes from block floor(i/4)', () => {
    const block = new Uint32Array(4);
    const rng = Rng.fromSeed(0x1_0000_0002); // key = [2, 1]
    const words = draws(rng, 8);
    philox4x32(0, 0, 0, 0, 2, 1, block);
    expect(words.slice(0, 4)).toEqual(Array.from(block));
    philox4x32(1, 0, 0, 0, 2, 1, block);
    expect(words.slice(4, 8)).toEqual(Array.from(block));
  });

  it('uniform() combines two words into 53 bits', () => {
    const a = Rng.fromSeed(7);
    const [w0, w1] = draws(Rng.fromSeed(7), 2) as [number, number];
    expect(a.uniform()).toBe(((w0 >>> 5) * 2 ** 26 + (w1 >>> 6)) / 2 ** 53);
  });

  it('the same seed gives the same stream; different seeds differ', () => {
    expect(draws(Rng.fromSeed(42), 16)).toEqual(draws(Rng.fromSeed(42), 16));
    expect(draws(Rng.fromSeed('job-a'), 16)).toEqual(draws(Rng.fromSeed('job-a'), 16));
    expect(draws(Rng.fromSeed(42), 16)).not.toEqual(draws(Rng.fromSeed(43), 16));
    expect(draws(Rng.fromSeed('42'), 4)).not.toEqual(draws(Rng.fromSeed(42), 4));
  });

  it('split children depend only on the parent seed and label, not on draws made before', () => {
    const fresh = Rng.fromSeed(5);
    const used = Rng.fromSeed(5);
    draws(used, 1001);
    expect(draws(fresh.split('noise'), 8)).toEqual(draws(used.split('noise'), 8));
    expect(draws(fresh.split('noise'), 8)).not.toEqual(draws(fresh.split('crop'), 8));
    expect(draws(fresh.split(1), 8)).not.toEqual(draws(fresh.split('1'), 8));
    expect(draws(fresh.split('a').split('b'), 4)).not.toEqual(draws(fresh.split('b').split('a'), 4));
  });

  it('state() / fromState() resumes exactly, including a spare normal', () => {
    const a = Rng.fromSeed(9);
    a.uniform();
    a.normal(); // leaves a spare
    const b = Rng.fromState(JSON.parse(JSON.stringify(a.state())));
    expect([a.normal(), a.normal(), a.uniform(), a.int(1000)]).toEqual([b.normal(), b.normal(), b.uniform(), b.int(1000)]);
  });

  it('rejects bad seeds and arguments with InvalidArgumentError', () => {
    expect(() => Rng.fromSeed(-1)).toThrow(InvalidArgumentError);
    expect(() => Rng.fromSeed(1.5)).toThrow(InvalidArgumentError);
    expect(() => Rng.fromSeed(0).int(0)).toThrow(InvalidArgumentError);
    expect(() => Rng.fromSeed(0).choice([])).toThrow(InvalidArgumentError);
    expect(() => Rng.fromSeed(0).weightedIndex([0, 0])).toThrow(InvalidArgumentError);
    expect(() => Rng.fromSeed(0).sample([1, 2], 3)).toThrow(InvalidArgumentError);
  });
});

// Statistical checks use fixed seeds, so they are deterministic; the bounds are ~5 standard errors,
// wide enough for any correct generator and seed, narrow enough to catch a wrong transform.
describe('Rng distributions', () => {
  it('uniform() has mean 1/2 and variance 1/12', () => {
    const rng = Rng.fromSeed(1);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    let outOfRange = 0;
    for (let i = 0; i < n; i++) {
      const u = rng.uniform();
      if (!(u >= 0 && u < 1)) outOfRange++;
      s += u;
      s2 += u * u;
    }
    expect(outOfRange).toBe(0);
    const mean = s / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 12 / n));
    expect(Math.abs(s2 / n - mean * mean - 1 / 12)).toBeLessThan(0.001);
  });

  it('normal(): mean 0, variance 1, skewness 0, kurtosis 3', () => {
    const rng = Rng.fromSeed(2);
    const n = 200_000;
    const xs = rng.fillNormal(new Float64Array(n));
    let m1 = 0;
    for (const x of xs) m1 += x;
    m1 /= n;
    let m2 = 0;
    let m3 = 0;
    let m4 = 0;
    for (const x of xs) {
      const d = x - m1;
      m2 += d * d;
      m3 += d * d * d;
      m4 += d * d * d * d;
    }
    m2 /= n;
    m3 /= n;
    m4 /= n;
    expect(Math.abs(m1)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(m2 - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
    expect(Math.abs(m3 / m2 ** 1.5)).toBeLessThan(5 * Math.sqrt(6 / n));
    expect(Math.abs(m4 / (m2 * m2) - 3)).toBeLessThan(5 * Math.sqrt(24 / n));
    // tail mass: P(|z| > 2) = 0.0455
    const tail = xs.filter((x) => Math.abs(x) > 2).length / n;
    expect(Math.abs(tail - 0.0455)).toBeLessThan(5 * Math.sqrt((0.0455 * 0.9545) / n));
  });

  it('fillNormal and repeated normal() give the same numbers', () => {
    const a = Rng.fromSeed(3).fillNormal(new Float32Array(9));
    const r = Rng.fromSeed(3);
    const b = Float32Array.from({ length: 9 }, () => r.normal());
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('int(n) is uniform (chi-square) and in range', () => {
    const rng = Rng.fromSeed(4);
    const k = 7;
    const n = 70_000;
    const counts = new Array(k).fill(0);
    for (let i = 0; i < n; i++) counts[rng.int(k)]++;
    const expected = n / k;
    const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(22.46); // 99.9th percentile of chi-square with 6 dof
    const big = rng.int(2 ** 40);
    expect(Number.isInteger(big) && big >= 0 && big < 2 ** 40).toBe(true);
  });

  it('weightedIndex follows the weights', () => {
    const rng = Rng.fromSeed(5);
    const w = [1, 0, 3];
    const n = 40_000;
    const counts = [0, 0, 0];
    for (let i = 0; i < n; i++) counts[rng.weightedIndex(w)]!++;
    expect(counts[1]).toBe(0);
    expect(Math.abs(counts[2]! / n - 0.75)).toBeLessThan(5 * Math.sqrt((0.75 * 0.25) / n));
  });

  it('shuffle is a permutation, uniform over positions; sample draws distinct items', () => {
    const rng = Rng.fromSeed(6);
    const items = [0, 1, 2, 3];
    const firstCounts = [0, 0, 0, 0];
    for (let i = 0; i < 20_000; i++) {
      const p = rng.shuffle(items);
      expect([...p].sort()).toEqual(items);
      firstCounts[p[0]!]!++;
    }
    for (const c of firstCounts) expect(Math.abs(c / 20_000 - 0.25)).toBeLessThan(5 * Math.sqrt(0.1875 / 20_000));
    const s = rng.sample([...Array(50).keys()], 10);
    expect(new Set(s).size).toBe(10);
  });

  it('beta(5, 5) has mean 1/2 and variance 1/44; gamma(0.5) has mean 0.5', () => {
    const rng = Rng.fromSeed(8);
    const n = 50_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const x = rng.beta(5, 5);
      s += x;
      s2 += x * x;
    }
    const mean = s / n;
    expect(Math.abs(mean - 0.5)).toBeLessThan(5 * Math.sqrt(1 / 44 / n));
    expect(Math.abs(s2 / n - mean * mean - 1 / 44)).toBeLessThan(0.001);
    let g = 0;
    for (let i = 0; i < n; i++) g += rng.gamma(0.5);
    expect(Math.abs(g / n - 0.5)).toBeLessThan(5 * Math.sqrt(0.5 / n));
  });
});
