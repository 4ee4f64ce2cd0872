import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError } from '@diffmix/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintFiles, fingerprintModelFolder } from './fingerprint.js';

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

describe('fingerprintModelFolder', () => {
  it('changes when external weights change, not only the graph file', async () => {
    const model = path.join(dir, 'model');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(model, 'unet'), { recursive: true });
    await mkdir(path.join(model, 'text_encoder'), { recursive: true });
    await writeFile(path.join(model, 'unet', 'model.onnx'), 'graph');
    await writeFile(path.join(model, 'unet', 'model.onnx_data'), 'weights-1');
    await writeFile(path.join(model, 'text_encoder', 'model.onnx'), 'te');
    const before = await fingerprintModelFolder(model);
    expect(await fingerprintModelFolder(model)).toBe(before);
    await writeFile(path.join(model, 'unet', 'model.onnx_data'), 'weights-2');
    const after = await fingerprintModelFolder(model);
    expect(after).not.toBe(before);
    // A file outside the model's parts (e.g. a README) does not change it.
    await writeFile(path.join(model, 'README.md'), 'notes');
    expect(await fingerprintModelFolder(model)).toBe(after);
    // Extra adapter files do.
    expect(await fingerprintModelFolder(model, [path.join(dir, 'a')])).not.toBe(after);
    await expect(fingerprintModelFolder(path.join(dir, 'nope'))).rejects.toSatisfy((e) => NotFoundError.isInstance(e));
  });
});
