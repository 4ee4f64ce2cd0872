/**
 * Class names become folder names in synthetic sets. The official Diff-Mix code replaces spaces
 * and "/" with "_"; we do the same (so both implementations name folders alike) and also remove
 * everything else that could escape the output folder or break on another OS.
 */
import path from 'node:path';
import { UnsafePathError } from '../errors/index.js';

/**
 * A single path component for `name`: spaces, `/`, `\`, control characters and `<>:"|?*` become
 * `_`. Throws `UnsafePathError` if the result is empty, `.` or `..`.
 */
export function safePathComponent(name: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what we strip
  const cleaned = name.normalize('NFC').replace(/[\s/\\<>:"|?*\u0000-\u001f\u007f]/g, '_');
  if (cleaned === '' || cleaned === '.' || cleaned === '..') {
    throw new UnsafePathError(name, 'not usable as a folder name');
  }
  if (Buffer.byteLength(cleaned) > 200) throw new UnsafePathError(name, 'longer than 200 bytes');
  return cleaned;
}

/**
 * Joins `relative` onto `root` and checks the result stays inside `root` (no `..`, no absolute
 * path); throws `UnsafePathError` otherwise.
 */
export function resolveInside(root: string, relative: string): string {
  const base = path.resolve(root);
  const target = path.resolve(base, relative);
  const rel = path.relative(base, target);
  // Compare whole components: a folder named `.._.._etc` is inside, `..` or `../x` is not.
  if (rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw new UnsafePathError(relative, `escapes ${root}`);
  }
  return target;
}
