/**
 * One writer per manifest: `<manifest>.lock` is created with O_EXCL and holds `{pid, hostname}`.
 * A lock whose pid is dead on this host is stale (a killed writer) and is taken over. Writers with
 * different shard counts (or an unsharded writer next to a sharded one) must not run together,
 * because their ownership of files would overlap; that is checked against the other live locks.
 */
import { hostname } from 'node:os';
import { open, readdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DatasetFormatError } from '@diffmix/core';
import type { Shard } from '@diffmix/core';
import { isErrno } from './fsutil.js';
import { manifestFileName, parseManifestFileName } from './layout.js';

interface LockInfo {
  pid: number;
  hostname: string;
  createdAt?: string;
}

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}

async function readLock(file: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(file, 'utf8')) as Partial<LockInfo>;
    if (typeof info.pid === 'number' && typeof info.hostname === 'string') return info as LockInfo;
    return { pid: -1, hostname: hostname() }; // unreadable content: a crash while creating it
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    if (err instanceof SyntaxError) return { pid: -1, hostname: hostname() };
    throw err;
  }
}

/** Whether the process holding a lock may still be running (always true for another host). */
function lockLive(info: LockInfo): boolean {
  return info.hostname !== hostname() || pidAlive(info.pid);
}

export interface HeldLock {
  file: string;
  release(): Promise<void>;
}

export function lockFileName(shard: Shard): string {
  return `${manifestFileName(shard)}.lock`;
}

/** Shards of the live writers in `root` other than `self`'s lock file. */
export async function liveLockShards(root: string, exceptFile?: string): Promise<Shard[]> {
  const out: Shard[] = [];
  for (const name of await readdir(root)) {
    if (!name.endsWith('.lock')) continue;
    const shard = parseManifestFileName(name.slice(0, -'.lock'.length));
    const file = path.join(root, name);
    if (!shard || file === exceptFile) continue;
    const info = await readLock(file);
    if (info && lockLive(info)) out.push(shard);
  }
  return out;
}

export async function acquireLock(root: string, shard: Shard, options: { breakLock?: boolean } = {}): Promise<HeldLock> {
  const file = path.join(root, lockFileName(shard));
  const me: LockInfo = { pid: process.pid, hostname: hostname(), createdAt: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(file, 'wx');
      try {
        await fh.writeFile(JSON.stringify(me));
      } finally {
        await fh.close();
      }
      break;
    } catch (err) {
      if (!isErrno(err, 'EEXIST') || attempt >= 3) throw err;
      const info = await readLock(file);
      if (info && lockLive(info) && !options.breakLock) {
        throw new DatasetFormatError(
          file,
          `another writer holds this set's ${shard.count > 1 ? `shard ${shard.index}/${shard.count}` : 'manifest'} ` +
            `(pid ${info.pid} on ${info.hostname}); if it is not running, delete the lock file or pass breakLock`,
        );
      }
      await unlink(file).catch((e) => {
        if (!isErrno(e, 'ENOENT')) throw e;
      });
    }
  }
  const release = async () => {
    const info = await readLock(file);
    if (info && info.pid === me.pid && info.hostname === me.hostname) await unlink(file).catch(() => {});
  };
  // Check the other writers only after holding our lock, so two racing opens cannot both miss each other.
  const others = await liveLockShards(root, file);
  const clash = others.find((o) => o.count !== shard.count || o.count === 1 || shard.count === 1);
  if (clash) {
    await release();
    throw new DatasetFormatError(
      root,
      `a writer for shard ${clash.index}/${clash.count} is running; writers of one set must all use the same shard count ` +
        `(asked for ${shard.index}/${shard.count})`,
    );
  }
  return { file, release };
}
