/**
 * `SyntheticSetWriter`: writes a synthetic set so that a crash loses at most the images in flight.
 *
 * Writing one image:
 *  1. the PNG goes to a temp file `.diffmix-tmp.<job id>.<shard tag>.<rand>` in its final folder,
 *     is fsynced, renamed to `data/<src>/<tgt>-<index>-<s>.png`, and the folder is fsynced;
 *  2. only then is its manifest line appended, with ONE write of the whole line (O_APPEND) and an
 *     fdatasync. Appends from concurrent `write()` calls are serialised inside the process.
 * So every complete manifest line points at a complete file; a crash leaves at worst a temp file, an
 * image without a line (an orphan), or a torn final line, and `open` cleans up all three.
 *
 * Shards: each writer owns one manifest, `manifest.jsonl` (unsharded) or
 * `manifest.shard-<i>-of-<n>.jsonl`, guarded by a `.lock` file, so concurrent shard processes never
 * append to the same file (no interleaving question, no torn line from one shard in the middle of
 * another's, works on file systems without atomic O_APPEND). Readers merge all manifests. Writers
 * of one set must use the same shard count at the same time (checked via the locks). The file
 * number is derived from the job id (see `layout.ts`), so shards never collide and a file name tells
 * which shard owns it.
 *
 * Resume (`open` on an existing set):
 *  - our manifest: a torn final line (one that does not parse, e.g. a fragment without newline) is
 *    dropped and the file truncated back to the last complete line; a final line that is complete
 *    and valid but lacks only its newline is kept and the newline added; a bad line elsewhere is a
 *    `DatasetFormatError` naming `file:line`;
 *  - other shards' manifests are read but never modified (their writer may be running);
 *  - duplicate job ids: the newest line (by `createdAt`) is kept, the rest reported;
 *  - every line this writer is responsible for (its own manifest, and lines of jobs in its shard
 *    from other manifests, e.g. from a run with another shard count) is checked: the image must exist
 *    and, with `verify: 'sha256'` (default), hash to the recorded sha256. Failures are logged, dropped
 *    from the finished set (so `has()` is false and the job is redone) and removed from our manifest
 *    (rewritten atomically);
 *  - leftover temp files of this shard (or of writers no longer running) are deleted;
 *  - orphans — image files of this shard that no valid manifest line points at (a crash between
 *    rename and append, or a file whose line was dropped) — are DELETED, not re-adopted: the file
 *    alone does not say which job (prompt, seed, params) made it, so it cannot be verified. The job
 *    is redone and, since the file name is a function of the job, lands on the same name: no
 *    duplicate with another number. At most the in-flight jobs of one crash are regenerated.
 *  - a folder that has images but no manifest of ours (e.g. an official Diff-Mix set) is refused,
 *    so its images are never taken for orphans.
 *
 * `close()` regenerates `meta.csv` (official columns) from all manifests, atomically.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Stats } from 'node:fs';
import { mkdir, open, readdir, rename, stat, truncate, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import {
  DatasetFormatError,
  InvalidArgumentError,
  canonicalSoftLabel,
  inShard,
  parseManifestLine,
  resolveInside,
  serializeManifestLine,
  sha256Hex,
  silentLogger,
  synthesisJobId,
} from '@diffmix/core';
import type { ClassInfo, Logger, ManifestLine, Shard, SoftLabel, SynthesisJob } from '@diffmix/core';
import { normaliseClasses } from './classes.js';
import type { ClassList } from './classes.js';
import { forEachLimit, fsyncDir, isErrno, randomTag, writeFileAtomic, writeFileDurably } from './fsutil.js';
import {
  DATA_DIR,
  classFolderName,
  manifestFileName,
  normaliseShard,
  parseSyntheticFileName,
  parseTempFileName,
  shardOfIndex,
  shardTag,
  syntheticFileName,
  syntheticIndex,
  tempFileName,
} from './layout.js';
import { acquireLock, liveLockShards } from './lock.js';
import type { HeldLock } from './lock.js';
import { dedupeManifestEntries, listManifestFiles, readManifestFile } from './manifest-io.js';
import type { DuplicateReport, ManifestEntry } from './manifest-io.js';
import { regenerateMetaCsv } from './set.js';

export interface SyntheticSetWriterOptions {
  /** The dataset's classes (ids and names), or plain names (id = position). Names become folders. */
  classes: ClassList;
  /** Which shard this process writes; omit for a single writer. */
  shard?: Shard;
  logger?: Logger;
  /** How finished lines are checked on open: file exists and hashes right (default), or exists only. */
  verify?: 'sha256' | 'exists';
  /** Take over a lock held by a live process (only when you know it is not writing). */
  breakLock?: boolean;
  /** Clock for `createdAt` (tests). */
  now?: () => Date;
}

/** A job, its soft label and optional extras, as given to `write`. */
export interface SyntheticWriteInput extends SynthesisJob {
  label: SoftLabel;
  width?: number;
  height?: number;
  clipScore?: number;
  createdAt?: string;
}

export interface RecoveryReport {
  /** This writer's manifest file. */
  manifest: string;
  /** The torn final line dropped from our manifest, if any. */
  tornTail: { line: number; bytes: number; reason: string } | undefined;
  /** Lines dropped from the finished set (image missing, hash mismatch); their jobs will be redone. */
  dropped: Array<{ id: string; file: string; line: number; path: string; reason: 'missing' | 'sha256' | 'unsafe-path' }>;
  duplicates: DuplicateReport[];
  /** Whether our manifest was rewritten without dropped or duplicate lines. */
  rewroteManifest: boolean;
  /** Orphan images deleted (paths relative to the root). */
  orphansDeleted: string[];
  /** Leftover temp files deleted (paths relative to the root). */
  tempsDeleted: string[];
}

interface ClassSlot {
  info: ClassInfo;
  folder: string;
}

const STALE_UNTAGGED_TEMP_MS = 60 * 60 * 1000;

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function statOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await stat(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT') || isErrno(err, 'ENOTDIR')) return undefined;
    throw err;
  }
}

/** Entries of `data/<folder>/` one level down: `{ folder, name, abs, rel }`. */
async function scanData(root: string): Promise<Array<{ folder: string; name: string; abs: string; rel: string }>> {
  const dataDir = path.join(root, DATA_DIR);
  const out: Array<{ folder: string; name: string; abs: string; rel: string }> = [];
  let folders: import('node:fs').Dirent[];
  try {
    folders = await readdir(dataDir, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return out;
    throw err;
  }
  for (const folder of folders) {
    if (!folder.isDirectory()) continue;
    const dir = path.join(dataDir, folder.name);
    for (const f of await readdir(dir, { withFileTypes: true })) {
      if (!f.isFile()) continue;
      out.push({ folder: folder.name, name: f.name, abs: path.join(dir, f.name), rel: `${DATA_DIR}/${folder.name}/${f.name}` });
    }
  }
  return out;
}

function stripUndefined<T extends object>(obj: T): T {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
}

export class SyntheticSetWriter {
  readonly root: string;
  readonly shard: Shard;
  /** Absolute path of the manifest this writer appends to. */
  readonly manifestPath: string;
  readonly classes: readonly ClassInfo[];
  /** What `open` found and repaired. */
  readonly recovery: RecoveryReport;

  private readonly byId: Map<number, ClassSlot>;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly tag: string;
  private readonly finished: Map<string, ManifestLine>;
  /** Relative image path → job id, for every known line and every write in flight. */
  private readonly pathOwner: Map<string, string>;
  private readonly inflight = new Map<string, Promise<ManifestLine>>();
  private readonly madeDirs = new Set<string>();
  private appendChain: Promise<void> = Promise.resolve();
  private broken: Error | undefined;
  private closing: Promise<void> | undefined;

  private constructor(args: {
    root: string;
    shard: Shard;
    manifestPath: string;
    classes: ClassInfo[];
    byId: Map<number, ClassSlot>;
    logger: Logger;
    now: () => Date;
    finished: Map<string, ManifestLine>;
    pathOwner: Map<string, string>;
    recovery: RecoveryReport;
    handle: FileHandle;
    lock: HeldLock;
  }) {
    this.root = args.root;
    this.shard = args.shard;
    this.manifestPath = args.manifestPath;
    this.classes = args.classes;
    this.byId = args.byId;
    this.logger = args.logger;
    this.now = args.now;
    this.tag = shardTag(args.shard);
    this.finished = args.finished;
    this.pathOwner = args.pathOwner;
    this.recovery = args.recovery;
    this.handle = args.handle;
    this.lock = args.lock;
  }

  private readonly handle: FileHandle;
  private readonly lock: HeldLock;

  /** Opens (creating or resuming) the set at `root`; see the module doc for what resuming repairs. */
  static async open(root: string, options: SyntheticSetWriterOptions): Promise<SyntheticSetWriter> {
    const absRoot = path.resolve(root);
    const shard = normaliseShard(options.shard);
    const logger = options.logger ?? silentLogger;
    const verify = options.verify ?? 'sha256';
    const classes = normaliseClasses(options.classes);
    const byId = new Map<number, ClassSlot>();
    const byFolder = new Map<string, ClassInfo>();
    for (const info of classes) {
      const folder = classFolderName(info.name); // throws UnsafePathError for '..', '' …
      const clash = byFolder.get(folder);
      if (clash) {
        logger.warn('two classes share a folder name; the official meta.csv cannot tell them apart', {
          folder,
          classes: [clash.id, info.id],
        });
      }
      byFolder.set(folder, info);
      byId.set(info.id, { info, folder });
    }

    await mkdir(path.join(absRoot, DATA_DIR), { recursive: true });
    const lock = await acquireLock(absRoot, shard, { breakLock: options.breakLock });
    try {
      const manifestName = manifestFileName(shard);
      const manifestPath = path.join(absRoot, manifestName);
      const recovery: RecoveryReport = {
        manifest: manifestPath,
        tornTail: undefined,
        dropped: [],
        duplicates: [],
        rewroteManifest: false,
        orphansDeleted: [],
        tempsDeleted: [],
      };

      const manifests = await listManifestFiles(absRoot);
      let files = await scanData(absRoot);
      if (manifests.length === 0 && files.some((f) => f.name.endsWith('.png'))) {
        throw new DatasetFormatError(
          absRoot,
          'has images under data/ but no manifest.jsonl: it was not written by diffmix (an official Diff-Mix set?). ' +
            'Read it with readSyntheticSet and write new images to a fresh folder',
        );
      }

      // 1. Our manifest (repairable) and the others (read-only).
      const own = await readManifestFile(manifestPath);
      if (own.tornTail) {
        recovery.tornTail = { line: own.tornTail.lineNo, bytes: own.tornTail.droppedBytes, reason: own.tornTail.reason };
        logger.warn('dropping a torn final manifest line (crash while appending)', {
          file: manifestPath,
          line: own.tornTail.lineNo,
          reason: own.tornTail.reason,
        });
      }
      const all: ManifestEntry[] = [];
      for (const m of manifests) {
        if (m.file === manifestPath) continue;
        const content = await readManifestFile(m.file);
        if (content.tornTail) {
          logger.warn('ignoring a torn final line in another shard manifest', { file: m.file, line: content.tornTail.lineNo });
        }
        all.push(...content.entries);
      }
      all.push(...own.entries); // ours last: wins ties

      // 2. One line per job.
      const { kept, duplicates } = dedupeManifestEntries(all);
      recovery.duplicates = duplicates;
      for (const d of duplicates) logger.warn('duplicate manifest lines for one job; keeping the newest', { ...d });

      // 3. Check the lines this writer is responsible for.
      const bad = new Set<ManifestEntry>();
      const mine = kept.filter((e) => e.file === manifestPath || inShard(e.line.id, shard));
      await forEachLimit(mine, 8, async (e) => {
        let abs: string;
        try {
          abs = resolveInside(absRoot, e.line.path);
        } catch {
          bad.add(e);
          recovery.dropped.push({ id: e.line.id, file: e.file, line: e.lineNo, path: e.line.path, reason: 'unsafe-path' });
          return;
        }
        const st = await statOrUndefined(abs);
        let reason: 'missing' | 'sha256' | undefined;
        if (!st?.isFile()) reason = 'missing';
        else if (verify === 'sha256' && (await sha256File(abs)) !== e.line.sha256) reason = 'sha256';
        if (reason) {
          bad.add(e);
          recovery.dropped.push({ id: e.line.id, file: e.file, line: e.lineNo, path: e.line.path, reason });
        }
      });
      recovery.dropped.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line);
      for (const d of recovery.dropped) {
        logger.warn(
          d.reason === 'missing'
            ? 'manifest line points at a missing image; the job will be redone'
            : d.reason === 'sha256'
              ? 'image does not match its manifest sha256; the job will be redone'
              : 'manifest line has an unsafe path; dropped',
          { ...d },
        );
      }
      const valid = kept.filter((e) => !bad.has(e));

      // 4. Rewrite our manifest if it holds lines we no longer count, else just cut a torn tail.
      const ownKept = valid.filter((e) => e.file === manifestPath);
      if (ownKept.length !== own.entries.length) {
        const text = ownKept.map((e) => serializeManifestLine(e.line)).join('');
        await writeFileAtomic(manifestPath, text, 'manifest', shardTag(shard));
        recovery.rewroteManifest = true;
        logger.warn('rewrote the manifest without dropped lines', {
          file: manifestPath,
          kept: ownKept.length,
          was: own.entries.length,
        });
      } else if (own.tornTail) {
        await truncate(manifestPath, own.tornTail.keepBytes);
      }

      // 5. Leftover temp files: ours, or of writers that are no longer running.
      const liveTags = new Set((await liveLockShards(absRoot, lock.file)).map(shardTag));
      const rootEntries = await readdir(absRoot, { withFileTypes: true });
      const candidates = [
        ...files,
        ...rootEntries
          .filter((d) => d.isFile())
          .map((d) => ({ folder: '', name: d.name, abs: path.join(absRoot, d.name), rel: d.name })),
      ];
      for (const f of candidates) {
        const t = parseTempFileName(f.name);
        if (!t) continue;
        if (liveTags.has(t.tag)) continue;
        if (t.tag === 'u') {
          const st = await statOrUndefined(f.abs);
          if (!st || Date.now() - st.mtimeMs < STALE_UNTAGGED_TEMP_MS) continue;
        }
        await unlink(f.abs).catch((err) => {
          if (!isErrno(err, 'ENOENT')) throw err;
        });
        recovery.tempsDeleted.push(f.rel);
      }
      if (recovery.tempsDeleted.length) logger.warn('deleted leftover temp files', { files: recovery.tempsDeleted });

      // 6. Orphans: images of our shard that no valid line points at.
      const referenced = new Set(valid.map((e) => e.line.path));
      files = files.filter((f) => !parseTempFileName(f.name));
      for (const f of files) {
        const parsed = parseSyntheticFileName(f.name);
        if (!parsed || referenced.has(f.rel)) continue;
        if (shardOfIndex(parsed.index, shard.count) !== shard.index) continue;
        await unlink(f.abs).catch((err) => {
          if (!isErrno(err, 'ENOENT')) throw err;
        });
        recovery.orphansDeleted.push(f.rel);
      }
      if (recovery.orphansDeleted.length) {
        logger.warn('deleted images without a manifest line (crash before the line was written); their jobs will be redone', {
          files: recovery.orphansDeleted,
        });
      }

      // 7. Open our manifest for appending.
      const handle = await open(manifestPath, 'a');
      if (own.unterminated && !recovery.rewroteManifest) {
        await handle.write('\n');
        await handle.datasync();
      }
      await fsyncDir(absRoot);
      const finished = new Map<string, ManifestLine>();
      const pathOwner = new Map<string, string>();
      for (const e of valid) {
        finished.set(e.line.id, e.line);
        pathOwner.set(e.line.path, e.line.id);
      }
      return new SyntheticSetWriter({
        root: absRoot,
        shard,
        manifestPath,
        classes,
        byId,
        logger,
        now: options.now ?? (() => new Date()),
        finished,
        pathOwner,
        recovery,
        handle,
        lock,
      });
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** Whether the job has a verified manifest line (finished before or during this session). */
  has(jobId: string): boolean {
    return this.finished.has(jobId);
  }

  /** The manifest line of a finished job. */
  get(jobId: string): ManifestLine | undefined {
    return this.finished.get(jobId);
  }

  /** Number of finished jobs known to this writer. */
  get size(): number {
    return this.finished.size;
  }

  /** Every finished job's line. */
  lines(): ManifestLine[] {
    return [...this.finished.values()];
  }

  /** The image path (relative to the root) a job is written to. */
  pathFor(job: Pick<SynthesisJob, 'id' | 'sourceClass' | 'targetClass' | 'strength'>): string {
    const src = this.slot(job.sourceClass, 'sourceClass');
    const tgt = this.slot(job.targetClass, 'targetClass');
    return `${DATA_DIR}/${src.folder}/${syntheticFileName(tgt.folder, syntheticIndex(job.id), job.strength)}`;
  }

  private slot(id: number, what: string): ClassSlot {
    const s = this.byId.get(id);
    if (!s) throw new InvalidArgumentError(what, `class id ${id} is not one of the set's classes`);
    return s;
  }

  /**
   * Writes one finished image and its manifest line; returns the line. Throws if the job was already
   * written (check `has()` first), is being written, or belongs to another shard.
   */
  write(input: SyntheticWriteInput, png: Uint8Array): Promise<ManifestLine> {
    if (this.closing) return Promise.reject(new InvalidArgumentError('writer', 'is closed'));
    if (this.broken) return Promise.reject(this.broken);
    let line: ManifestLine;
    try {
      line = this.buildLine(input, png);
    } catch (err) {
      return Promise.reject(err);
    }
    const p = this.writeLine(line, png).finally(() => this.inflight.delete(line.id));
    this.inflight.set(line.id, p);
    return p;
  }

  private buildLine(input: SyntheticWriteInput, png: Uint8Array): ManifestLine {
    const { id, strategy, sourceRecordId, sourceClass, targetClass, strength, prompt, seed, params } = input;
    const expected = synthesisJobId({ strategy, sourceRecordId, sourceClass, targetClass, strength, prompt, seed, params });
    if (id !== expected)
      throw new InvalidArgumentError('id', `job id ${id} does not match the job's fields (expected ${expected})`);
    if (!inShard(id, this.shard)) {
      throw new InvalidArgumentError('job', `job ${id} belongs to another shard than ${this.shard.index}/${this.shard.count}`);
    }
    if (this.finished.has(id)) throw new InvalidArgumentError('job', `job ${id} is already in the set`);
    if (this.inflight.has(id)) throw new InvalidArgumentError('job', `job ${id} is already being written`);
    const src = this.slot(sourceClass, 'sourceClass');
    const tgt = this.slot(targetClass, 'targetClass');
    const label = canonicalSoftLabel(input.label);
    for (const [c] of label) this.slot(c, 'label');
    const index = syntheticIndex(id);
    const rel = `${DATA_DIR}/${src.folder}/${syntheticFileName(tgt.folder, index, strength)}`;
    const owner = this.pathOwner.get(rel);
    if (owner !== undefined && owner !== id) {
      throw new InvalidArgumentError('job', `file name ${rel} is already used by job ${owner} (48-bit index collision)`);
    }
    const candidate = stripUndefined({
      v: 1 as const,
      id,
      strategy,
      sourceRecordId,
      sourceClass,
      targetClass,
      sourceClassName: src.info.name,
      targetClassName: tgt.info.name,
      strength,
      prompt,
      seed,
      params,
      path: rel,
      index,
      label,
      sha256: sha256Hex(png),
      width: input.width,
      height: input.height,
      clipScore: input.clipScore,
      createdAt: input.createdAt ?? this.now().toISOString(),
    });
    // Round-trip through the schema so everything we append is readable.
    return parseManifestLine(JSON.stringify(candidate), { source: 'SyntheticSetWriter.write' });
  }

  private async writeLine(line: ManifestLine, png: Uint8Array): Promise<ManifestLine> {
    this.pathOwner.set(line.path, line.id);
    const abs = resolveInside(this.root, line.path);
    const dir = path.dirname(abs);
    const tmp = path.join(dir, tempFileName(line.id, this.tag, randomTag()));
    try {
      if (!this.madeDirs.has(dir)) {
        await mkdir(dir, { recursive: true });
        await fsyncDir(path.dirname(dir));
        this.madeDirs.add(dir);
      }
      await writeFileDurably(tmp, png);
      await rename(tmp, abs);
      await fsyncDir(dir);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      this.pathOwner.delete(line.path);
      throw err;
    }
    await this.append(serializeManifestLine(line));
    this.finished.set(line.id, line);
    return line;
  }

  private append(text: string): Promise<void> {
    const run = async () => {
      if (this.broken) throw this.broken;
      const buf = Buffer.from(text, 'utf8');
      try {
        let off = 0;
        while (off < buf.length) {
          const { bytesWritten } = await this.handle.write(buf, off, buf.length - off, null);
          off += bytesWritten;
        }
        await this.handle.datasync();
      } catch (err) {
        // A partial line may now end the file: no more appends until a reopen repairs it.
        this.broken = err instanceof Error ? err : new Error(String(err));
        throw err;
      }
    };
    const p = this.appendChain.then(run, run);
    this.appendChain = p.catch(() => {});
    return p;
  }

  /** Waits for writes in flight, closes the manifest, regenerates `meta.csv` and releases the lock. */
  close(): Promise<void> {
    if (!this.closing) {
      this.closing = (async () => {
        try {
          await Promise.allSettled([...this.inflight.values()]);
          await this.appendChain;
          await this.handle.close();
          await regenerateMetaCsv(this.root, { tag: this.tag, logger: this.logger });
        } finally {
          await this.lock.release();
        }
      })();
    }
    return this.closing;
  }
}
