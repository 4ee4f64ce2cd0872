import { InvalidArgumentError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { longTailCounts } from './counts.js';
import { classCounts, makeLongTail, rankClassesBySize } from './subset.js';
import { fakeDataset } from './test-support.js';

// CUB's training split: 5,994 images, 194 classes of 30 and 6 of 29 (shape only; ids are fake).
const cubShaped = () =>
  fakeDataset(
    Array.from({ length: 200 }, (_, c) => (c % 33 === 5 ? 29 : 30)),
    { name: 'cub' },
  );
// Flowers (Diff-Mix 50/50 split): 4,070 images over 102 classes; sizes varied.
const flowersShaped = () => {
  const sizes = Array.from({ length: 102 }, (_, c) => 10 + ((c * 37) % 60));
  const diff = 4070 - sizes.reduce((a, b) => a + b, 0);
  sizes[0] = (sizes[0] as number) + diff;
  return fakeDataset(sizes, { name: 'flowers' });
};

describe('makeLongTail', () => {
  it('reproduces Table 10 on CUB- and Flowers-shaped datasets', () => {
    const cub = cubShaped();
    expect(cub.train.length).toBe(5994);
    const fl = flowersShaped();
    expect(fl.train.length).toBe(4070);
    expect([100, 20, 10].map((rho) => makeLongTail(cub, { imbalanceFactor: rho, seed: 0 }).dataset.train.length)).toEqual([
      1242, 1798, 2238,
    ]);
    expect([100, 20, 10].map((rho) => makeLongTail(fl, { imbalanceFactor: rho, seed: 0 }).dataset.train.length)).toEqual([
      847, 1238, 1532,
    ]);
  });

  it('gives the largest class n̄ and follows the ranking; test split and classes unchanged', () => {
    const sizes = [12, 40, 25, 40, 8, 30];
    const ds = fakeDataset(sizes);
    const { dataset, trainCounts, manifest } = makeLongTail(ds, { imbalanceFactor: 10, seed: 1 });
    // ranking: 40 (id 1), 40 (id 3), 30 (5), 25 (2), 12 (0), 8 (4); ties by class id
    expect(rankClassesBySize(ds)).toEqual([1, 3, 5, 2, 0, 4]);
    const targets = longTailCounts({ numClasses: 6, totalImages: 155, imbalanceFactor: 10 });
    const expected = new Array(6);
    [1, 3, 5, 2, 0, 4].forEach((c, rank) => {
      expected[c] = targets[rank];
    });
    expect(trainCounts).toEqual(expected);
    expect(classCounts(dataset)).toEqual(expected);
    expect(dataset.test).toBe(ds.test);
    expect(dataset.classes).toBe(ds.classes);
    expect(manifest.classes.map((c) => c.rank)).toEqual([4, 0, 3, 1, 5, 2]);
    expect(manifest.classes.map((c) => c.available)).toEqual(sizes);
    expect(manifest.parameters.meanPerClass).toBeCloseTo(155 / 6, 12);
    // train keeps the original order
    const order = ds.train.map((r) => r.id);
    const idx = dataset.train.map((r) => order.indexOf(r.id));
    expect([...idx].sort((a, b) => a - b)).toEqual(idx);
  });

  it('tie-break by first appearance follows the order of dataset.train', () => {
    const ds = fakeDataset([10, 10, 10]);
    ds.train = [...ds.train.filter((r) => r.label === 2), ...ds.train.filter((r) => r.label !== 2)];
    expect(rankClassesBySize(ds, 'class-id')).toEqual([0, 1, 2]);
    expect(rankClassesBySize(ds, 'first-appearance')).toEqual([2, 0, 1]);
    const { manifest } = makeLongTail(ds, { imbalanceFactor: 10, seed: 0, tieBreak: 'first-appearance' });
    expect(manifest.classes[2]?.rank).toBe(0);
    expect(manifest.parameters.tieBreak).toBe('first-appearance');
  });

  it('is deterministic; different seeds pick different images; the listing order does not matter', () => {
    const ds = cubShaped();
    const ids = (seed: number | string, d = ds) => makeLongTail(d, { imbalanceFactor: 100, seed }).dataset.train.map((r) => r.id);
    expect(ids(7)).toEqual(ids(7));
    expect(ids('run-a')).toEqual(ids('run-a'));
    expect(ids(7)).not.toEqual(ids(8));
    const reversed = { ...ds, train: [...ds.train].reverse() };
    expect(new Set(ids(7, reversed))).toEqual(new Set(ids(7)));
  });

  it("a class's picks depend only on its own records, and ρ = 100 ⊂ ρ = 10 with the same seed", () => {
    const ds = fakeDataset([50, 40, 30, 20, 10, 5]);
    const picks = (d = ds, rho = 10) => {
      const out = makeLongTail(d, { imbalanceFactor: rho, seed: 3 });
      return (c: number) => out.dataset.train.filter((r) => r.label === c).map((r) => r.id);
    };
    const a = picks();
    // change class 5's images: the other classes keep their picks
    const changed = { ...ds, train: ds.train.filter((r) => !(r.label === 5 && r.id.endsWith('0004.jpg'))) };
    const b = picks(changed);
    for (const c of [0, 1, 2, 3]) expect(b(c)).toEqual(a(c));
    const strong = picks(ds, 100);
    for (const c of [0, 1, 2, 3, 4, 5]) for (const id of strong(c)) expect(a(c)).toContain(id);
  });

  it('throws when a class has fewer images than n_k, unless allowFewer', () => {
    // n̄ = 20, ranking 2 (35), 0 (22), 1 (3); official exponent k/(N−2) = k → targets 20, 2, 1: enough images
    const ds = fakeDataset([22, 3, 35]);
    expect(makeLongTail(ds, { imbalanceFactor: 10, seed: 0 }).trainCounts).toEqual([2, 1, 20]);
    // n̄ = 12, ρ = 2 → targets 12, 9, 7, 6, 4; class 4 has no image
    const short = fakeDataset([15, 15, 15, 15, 0]);
    expect(() => makeLongTail(short, { imbalanceFactor: 2, seed: 0 })).toThrow(/fewer training images.*id 4/);
    expect(() => makeLongTail(short, { imbalanceFactor: 2, seed: 0 })).toThrow(InvalidArgumentError);
    const kept = makeLongTail(short, { imbalanceFactor: 2, seed: 0, allowFewer: true });
    expect(kept.trainCounts[4]).toBe(0);
    expect(kept.manifest.classes[4]).toMatchObject({ available: 0, count: 0, rank: 4 });
  });

  it('rejects duplicate record ids and bad seeds', () => {
    const ds = fakeDataset([5, 5, 5]);
    ds.train.push({ ...(ds.train[0] as (typeof ds.train)[number]) });
    expect(() => makeLongTail(ds, { imbalanceFactor: 2, seed: 0 })).toThrow(/twice/);
    expect(() => makeLongTail(fakeDataset([5, 5, 5]), { imbalanceFactor: 2, seed: -1 })).toThrow(InvalidArgumentError);
  });
});
