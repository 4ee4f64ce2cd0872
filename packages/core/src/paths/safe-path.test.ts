import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UnsafePathError } from '../errors/index.js';
import { resolveInside, safePathComponent } from './safe-path.js';

describe('safePathComponent', () => {
  it('follows the official rule for spaces and slashes', () => {
    expect(safePathComponent('Black footed Albatross')).toBe('Black_footed_Albatross');
    expect(safePathComponent('F/A-18')).toBe('F_A-18');
  });

  it('never yields a separator, . or ..', () => {
    for (const hostile of ['../../etc', '..\\..\\win', 'a/../../b', 'x\u0000y', 'new\nline', 'C:evil']) {
      const out = safePathComponent(hostile);
      expect(out).not.toMatch(/[/\\\n:]/);
      expect(out.includes('\u0000')).toBe(false);
      expect(['.', '..']).not.toContain(out);
      expect(path.basename(out)).toBe(out);
    }
    for (const bad of ['', '.', '..']) expect(() => safePathComponent(bad)).toThrow(UnsafePathError);
  });
});

describe('resolveInside', () => {
  it('resolves inside, rejects escapes', () => {
    expect(resolveInside('/tmp/set', 'data/a.png')).toBe(path.resolve('/tmp/set/data/a.png'));
    expect(() => resolveInside('/tmp/set', '../x')).toThrow(UnsafePathError);
    expect(() => resolveInside('/tmp/set', '/etc/passwd')).toThrow(UnsafePathError);
    expect(() => resolveInside('/tmp/set', 'data/../../x')).toThrow(UnsafePathError);
    // a sanitised hostile name starts with dots but is a plain child folder
    expect(resolveInside('/tmp/set', '.._.._etc/a.png')).toBe(path.resolve('/tmp/set/.._.._etc/a.png'));
  });
});
