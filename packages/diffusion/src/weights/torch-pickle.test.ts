/**
 * The restricted torch checkpoint reader, on files written by real `torch.save` (PyTorch 1.13, see
 * fixtures/weights/make_fixtures.py) and on a hostile pickle.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ModelFormatError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { isTorchTensor, parseTorchCheckpoint, readTorchCheckpoint } from './index.js';

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/weights/${name}`, import.meta.url));

describe('torch checkpoint reader', () => {
  it('reads an OrderedDict with a transposed float64 tensor, a bfloat16 tensor and an int', async () => {
    const value = await readTorchCheckpoint(fixture('strided.pt'));
    expect(value).toBeInstanceOf(Map);
    const m = value as Map<unknown, unknown>;
    const t = m.get('t');
    expect(isTorchTensor(t)).toBe(true);
    if (!isTorchTensor(t)) return;
    expect(t.dtype).toBe('float64');
    expect(t.shape).toEqual([3, 2]);
    expect(t.stride).toEqual([1, 3]);
    expect([...t.toFloat32()]).toEqual([0, 3, 1, 4, 2, 5]);
    const b = m.get('b');
    expect(isTorchTensor(b) && [...b.toFloat32()]).toEqual([1.5, -2, 3.25]);
    expect(m.get('n')).toBe(3);
  });

  it('reads the Diff-Mix layout: nested dicts, rows that are views of one storage', async () => {
    const value = (await readTorchCheckpoint(fixture('learned_embeds-steps-last.bin'))) as Map<string, unknown>;
    const embeds = value.get('learned_embeds_dict') as Map<string, unknown>;
    const rows = [...embeds.values()];
    expect(rows.every(isTorchTensor)).toBe(true);
    const [a, b] = rows as [import('./index.js').TorchTensor, import('./index.js').TorchTensor];
    expect(a.shape).toEqual([32]);
    expect(a.storage).toBe(b.storage); // one shared storage
    expect(b.offset).toBe(32);
    expect((value.get('name2placeholder') as Map<string, string>).get('Laysan Albatross')).toBe('<class_1>');
  });

  it('refuses a pickle that would call os.system, and runs nothing', () => {
    const marker = '/tmp/diffmix-evil';
    const before = existsSync(marker);
    expect(() => parseTorchCheckpoint(readFileSync(fixture('evil.pt')), 'evil.pt')).toThrow(
      /evil\.pt: refusing to unpickle global (posix|os)\.system: .*convert the file to safetensors/,
    );
    expect(existsSync(marker)).toBe(before);
  });

  it('refuses legacy and non-checkpoint files with a clear error', () => {
    expect(() => parseTorchCheckpoint(new Uint8Array([0x80, 0x02, 0x8a, 0x0a]), 'old.bin')).toThrow(
      /old\.bin: legacy .* convert the file to safetensors/,
    );
    expect(() => parseTorchCheckpoint(new Uint8Array([1, 2, 3, 4]), 'x.bin')).toThrow(ModelFormatError);
    const zipWithoutPickle = new Uint8Array(22);
    zipWithoutPickle.set([0x50, 0x4b, 0x05, 0x06]);
    expect(() => parseTorchCheckpoint(zipWithoutPickle, 'empty.zip')).toThrow(/without data\.pkl/);
  });
});
