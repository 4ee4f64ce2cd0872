import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError } from '@diffmix/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintFiles } from './fingerprint.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'diffmix-fp-'));
  await writeFile(path.join(dir, 'a'), 'ab');
  await writeFile(path.join(dir, 'b'), 'c');
  await writeFile(path.join(dir, 'c'), 'a');
  await writeFile(path.join(dir, 'd'), 'bc');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('fingerprintFiles', () => {
  it('hashes contents in order, with file boundaries', async () => {
    const f = (...names: string[]) => fingerprintFiles(names.map((n) => path.join(dir, n)));
    const ab = await f('a', 'b');
    expect(ab).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await f('a', 'b')).toBe(ab);
    expect(await f('b', 'a')).not.toBe(ab);
    expect(await f('c', 'd')).not.toBe(ab); // "ab"+"c" vs "a"+"bc"
    await expect(f('missing')).rejects.toSatisfy((e) => NotFoundError.isInstance(e));
  });
});
