/** Small durable-write helpers shared by the synthetic-set writer and meta.csv. */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { tempFileName } from './layout.js';

export function randomTag(): string {
  return randomBytes(4).toString('hex');
}

/** fsync a directory so a rename/create inside it survives a crash; best effort (not every OS allows it). */
export async function fsyncDir(dir: string): Promise<void> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Windows and some network file systems cannot open or sync a directory.
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** Writes `data` to a fresh temp file, fsyncs it and closes it. Throws if the temp name exists. */
export async function writeFileDurably(file: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(file, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `file` atomically: writes a temp file in the same folder (`what`/`tag` name it, see
 * `tempFileName`), fsyncs it, renames it over `file` and fsyncs the folder. Readers see the old or
 * the new content, never a mix.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, what: string, tag = 'u'): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, tempFileName(what, tag, randomTag()));
  try {
    await writeFileDurably(tmp, data);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dir);
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
