import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors/index.js';
import { parseManifestLine, serializeManifestLine } from './manifest-line.js';
import type { ManifestLine } from './manifest-line.js';

const line: ManifestLine = {
  v: 1,
  id: '0123456789abcdef01234567',
  strategy: 'diff-mix',
  sourceRecordId: 'images/001/a.jpg',
  sourceClass: 0,
  targetClass: 1,
  strength: 0.5,
  prompt: 'a photo of a <class_1> bird',
  seed: 7,
  path: 'data/A/B-000003-0.5.png',
  index: 3,
  label: [
    [0, 0.3],
    [1, 0.7],
  ],
  sha256: 'a'.repeat(64),
};

describe('manifest lines', () => {
  it('round-trips through serialize / parse', () => {
    const text = serializeManifestLine(line);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.slice(0, -1)).not.toContain('\n');
    expect(parseManifestLine(text)).toEqual(line);
  });

  it('names the file and line and every bad field', () => {
    const bad = { ...line, strength: 1.5, sha256: 'xyz', extra: true };
    try {
      parseManifestLine(JSON.stringify(bad), { source: 'set/manifest.jsonl', line: 12 });
      expect.unreachable();
    } catch (err) {
      expect(ValidationError.isInstance(err)).toBe(true);
      const e = err as ValidationError;
      expect(e.message).toContain('set/manifest.jsonl:12');
      expect(e.issues.some((i) => i.startsWith('strength'))).toBe(true);
      expect(e.issues.some((i) => i.startsWith('sha256'))).toBe(true);
      expect(e.issues.some((i) => i.includes('extra'))).toBe(true);
    }
  });

  it('rejects truncated JSON and paths that leave the set', () => {
    const text = serializeManifestLine(line);
    expect(() => parseManifestLine(text.slice(0, 40), { source: 'm.jsonl', line: 3 })).toThrow(/m\.jsonl:3: .*not valid JSON/);
    expect(() => parseManifestLine(JSON.stringify({ ...line, path: '../x.png' }))).toThrow(ValidationError);
    expect(() => parseManifestLine(JSON.stringify({ ...line, path: '/etc/passwd' }))).toThrow(ValidationError);
  });

  it('canonicalises the label on read', () => {
    const text = JSON.stringify({ ...line, label: [[1, 0.5], [0, 0.25], [1, 0.25]] });
    expect(parseManifestLine(text).label).toEqual([
      [0, 0.25],
      [1, 0.75],
    ]);
  });
});
