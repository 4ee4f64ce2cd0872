import { type Dataset, type DatasetRecord, InvalidArgumentError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { classStats, fewShot } from './index.js';

function dataset(perClass: number[], testPerClass: number[] = perClass.map(() => 1)): Dataset {
  const train: DatasetRecord[] = [];
  const test: DatasetRecord[] = [];
  perClass.forEach((n, c) => {
    for (let i = 0; i < n; i++)
      train.push({ id: `train/c${c}/img${String(i).padStart(3, '0')}.jpg`, label: c, path: `/d/train/c${c}/${i}.jpg` });
  });
  testPerClass.forEach((n, c) => {
    for (let i = 0; i < n; i++) test.push({ id: `test/c${c}/${i}.jpg`, label: c, path: `/d/test/c${c}/${i}.jpg` });
  });
  return { name: 'fake', metaclass: 'object', classes: perClass.map((_, id) => ({ id, name: `class ${id}` })), train, test };
}

const idsOf = (ds: Dataset, label: number) => ds.train.filter((r) => r.label === label).map((r) => r.id);

describe('fewShot', () => {
  it('keeps k per class from train, leaves test alone, keeps the original order', () => {
    const ds = dataset([10, 12, 7]);
    const sub = fewShot(ds, { shots: 5, seed: 0 });
    expect(sub.train).toHaveLength(15);
    for (const c of [0, 1, 2]) expect(idsOf(sub, c)).toHaveLength(5);
    expect(sub.test).toBe(ds.test);
    expect(sub.classes).toBe(ds.classes);
    const positions = sub.train.map((r) => ds.train.indexOf(r));
    expect(positions).toEqual(positions.slice().sort((a, b) => a - b));
    expect(ds.train).toHaveLength(29); // input untouched
  });

  it('is stable under re-runs and changes with the seed', () => {
    const ds = dataset([20, 20, 20]);
    const a = fewShot(ds, { shots: 4, seed: 7 }).train.map((r) => r.id);
    expect(fewShot(ds, { shots: 4, seed: 7 }).train.map((r) => r.id)).toEqual(a);
    expect(fewShot(ds, { shots: 4, seed: 8 }).train.map((r) => r.id)).not.toEqual(a);
    expect(fewShot(ds, { shots: 4, seed: 'seven' }).train).toHaveLength(12);
  });

  it("adding a class or changing another class's images does not change a class's picks", () => {
    const base = fewShot(dataset([15, 15]), { shots: 3, seed: 1 });
    const more = fewShot(dataset([15, 15, 9]), { shots: 3, seed: 1 });
    expect(idsOf(more, 0)).toEqual(idsOf(base, 0));
    expect(idsOf(more, 1)).toEqual(idsOf(base, 1));
    const changed = fewShot(dataset([15, 40]), { shots: 3, seed: 1 });
    expect(idsOf(changed, 0)).toEqual(idsOf(base, 0));
  });

  it('does not depend on the order the records are listed in', () => {
    const ds = dataset([12, 12]);
    const reversed = { ...ds, train: ds.train.slice().reverse() };
    const a = fewShot(ds, { shots: 5, seed: 3 })
      .train.map((r) => r.id)
      .sort();
    const b = fewShot(reversed, { shots: 5, seed: 3 })
      .train.map((r) => r.id)
      .sort();
    expect(b).toEqual(a);
  });

  it('throws for classes with fewer than k images unless allowFewer', () => {
    const ds = dataset([10, 2, 0]);
    const err = (() => {
      try {
        fewShot(ds, { shots: 3, seed: 0 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toContain(
      '2 class(es) have fewer than 3 training images: "class 1" (id 1): 2, "class 2" (id 2): 0',
    );
    const sub = fewShot(ds, { shots: 3, seed: 0, allowFewer: true });
    expect([idsOf(sub, 0).length, idsOf(sub, 1).length, idsOf(sub, 2).length]).toEqual([3, 2, 0]);
  });

  it('validates its arguments', () => {
    const ds = dataset([3]);
    for (const shots of [0, -1, 1.5, Number.NaN]) expect(() => fewShot(ds, { shots, seed: 0 })).toThrow(InvalidArgumentError);
    expect(() => fewShot(ds, { shots: 1, seed: -1 })).toThrow(InvalidArgumentError);
    const bad = { ...ds, train: [...ds.train, { id: 'x', label: 5, path: '/x' }] };
    expect(() => fewShot(bad, { shots: 1, seed: 0 })).toThrow(/label 5, outside 0\.\.0/);
  });
});

describe('classStats', () => {
  it('counts per class and summarises each split', () => {
    const stats = classStats(dataset([10, 2, 6], [3, 3, 0]));
    expect(stats.classes).toEqual([
      { id: 0, name: 'class 0', train: 10, test: 3 },
      { id: 1, name: 'class 1', train: 2, test: 3 },
      { id: 2, name: 'class 2', train: 6, test: 0 },
    ]);
    expect(stats.train).toEqual({ total: 18, min: 2, max: 10, mean: 6, imbalanceRatio: 5 });
    expect(stats.test).toEqual({ total: 6, min: 0, max: 3, mean: 2, imbalanceRatio: Number.POSITIVE_INFINITY });
  });

  it('handles empty splits and datasets without classes', () => {
    expect(classStats(dataset([4, 4], [0, 0])).test.imbalanceRatio).toBeNaN();
    expect(classStats(dataset([])).train).toEqual({ total: 0, min: 0, max: 0, mean: 0, imbalanceRatio: Number.NaN });
  });
});
