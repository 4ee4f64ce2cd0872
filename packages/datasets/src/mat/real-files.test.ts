/**
 * Checks the reader against index files written by MATLAB itself, which cannot ship with the
 * repository (they belong to the dataset authors). Point DIFFMIX_MAT_SAMPLES at a folder holding any
 * of: imagelabels.mat, setid.mat (Oxford Flowers 102), cars_meta.mat, cars_train_annos.mat,
 * cars_test_annos.mat (Stanford Cars devkit), train_list.mat, test_list.mat (Stanford Dogs).
 * Files that are absent are skipped.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { matToIntegers, matToRecords, matToStrings, matVariable } from './convert.js';
import { readMatFile } from './read.js';

const dir = process.env.DIFFMIX_MAT_SAMPLES;
const has = (name: string) => dir !== undefined && existsSync(join(dir, name));

describe.skipIf(!dir)('real MATLAB-written index files (DIFFMIX_MAT_SAMPLES)', () => {
  it.skipIf(!has('imagelabels.mat'))(
    'Oxford Flowers imagelabels.mat: 8,189 labels in 1..102, split 4,070 / 4,119 by floor(n/2)',
    async () => {
      const mat = await readMatFile(join(dir as string, 'imagelabels.mat'));
      const labels = matToIntegers(matVariable(mat, 'labels'));
      expect(labels).toHaveLength(8189);
      const counts = new Array<number>(102).fill(0);
      for (const l of labels) counts[l - 1] = (counts[l - 1] ?? 0) + 1;
      expect(Math.min(...counts)).toBe(40);
      expect(Math.max(...counts)).toBe(258);
      expect(counts.reduce((a, n) => a + Math.floor(n / 2), 0)).toBe(4070);
    },
  );

  it.skipIf(!has('setid.mat'))('Oxford Flowers setid.mat: 1,020 / 1,020 / 6,149 indices', async () => {
    const mat = await readMatFile(join(dir as string, 'setid.mat'));
    expect(['trnid', 'valid', 'tstid'].map((n) => matToIntegers(matVariable(mat, n)).length)).toEqual([1020, 1020, 6149]);
  });

  it.skipIf(!has('cars_meta.mat'))('Stanford Cars cars_meta.mat: 196 class names', async () => {
    const names = matToStrings(matVariable(await readMatFile(join(dir as string, 'cars_meta.mat')), 'class_names'));
    expect(names).toHaveLength(196);
    expect(names[0]).toBe('AM General Hummer SUV 2000');
  });

  it.skipIf(!has('cars_train_annos.mat'))('Stanford Cars cars_train_annos.mat: 8,144 annotations', async () => {
    const records = matToRecords(matVariable(await readMatFile(join(dir as string, 'cars_train_annos.mat')), 'annotations'), [
      'class',
      'fname',
    ]);
    expect(records).toHaveLength(8144);
  });

  it.skipIf(!has('cars_test_annos.mat'))('Stanford Cars cars_test_annos.mat: 8,041 annotations', async () => {
    const records = matToRecords(matVariable(await readMatFile(join(dir as string, 'cars_test_annos.mat')), 'annotations'), [
      'fname',
    ]);
    expect(records).toHaveLength(8041);
  });

  it.skipIf(!has('train_list.mat'))('Stanford Dogs train_list.mat: 12,000 files', async () => {
    const mat = await readMatFile(join(dir as string, 'train_list.mat'));
    expect(matToStrings(matVariable(mat, 'file_list'))).toHaveLength(12000);
    expect(matToIntegers(matVariable(mat, 'labels'))).toHaveLength(12000);
  });

  it.skipIf(!has('test_list.mat'))('Stanford Dogs test_list.mat: 8,580 files', async () => {
    const mat = await readMatFile(join(dir as string, 'test_list.mat'));
    expect(matToStrings(matVariable(mat, 'file_list'))).toHaveLength(8580);
  });
});
