/**
 * External data: where an initializer's bytes live outside the protobuf (`data_location = EXTERNAL`,
 * `external_data` entries `location` / `offset` / `length`), and reading them from disk or memory.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { ModelFormatError } from '@diffmix/core';

/** One external-data reference of an initializer. */
export interface ExternalDataRef {
  /** `location` as written in the model (relative to the model's folder). */
  location: string;
  offset: number;
  /** Byte length (from `length`, else the tensor's size). */
  length: number;
}

/** An in-memory "external data file" as ONNX Runtime's `externalData` session option takes it. */
export interface ExternalDataFile {
  path: string;
  data: Uint8Array;
}

/**
 * Checks that a `location` stays inside the model folder (no absolute path, no `..` escape) and
 * returns it normalised with forward slashes.
 */
export function checkExternalLocation(location: string, modelFile: string, tensor: string): string {
  if (location === '')
    throw new ModelFormatError(modelFile, `initializer ${JSON.stringify(tensor)}: external data has no location`);
  const norm = normalize(location.replace(/\\/g, '/'));
  if (isAbsolute(location) || isAbsolute(norm) || norm === '..' || norm.startsWith(`..${sep}`) || norm.startsWith('../')) {
    throw new ModelFormatError(
      modelFile,
      `initializer ${JSON.stringify(tensor)}: external data location ${JSON.stringify(location)} escapes the model folder`,
    );
  }
  return norm.split(sep).join('/');
}

/**
 * Resolves external data locations to bytes: first among the in-memory files given by the caller,
 * then on disk under `baseDir`. File sizes are checked once per file; reads are positional, so a
 * multi-gigabyte weights file is never read into one buffer.
 */
export class ExternalDataSource {
  private readonly sizes = new Map<string, number>();

  constructor(
    /** Model file name, for errors. */
    readonly modelFile: string,
    /** Folder that locations are relative to (undefined for a model given as bytes without one). */
    readonly baseDir: string | undefined,
    readonly memory: ReadonlyMap<string, Uint8Array>,
  ) {}

  private diskPath(location: string): string {
    if (this.baseDir === undefined) {
      throw new ModelFormatError(
        this.modelFile,
        `external data ${JSON.stringify(location)} is neither given in memory nor findable on disk (no model folder: pass baseDir or externalData)`,
      );
    }
    return join(this.baseDir, location);
  }

  /** Size of an external file (cached). */
  size(location: string): number {
    const mem = this.memory.get(location);
    if (mem) return mem.byteLength;
    const cached = this.sizes.get(location);
    if (cached !== undefined) return cached;
    const path = this.diskPath(location);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (cause) {
      throw new ModelFormatError(this.modelFile, `external data file ${path} cannot be opened (${(cause as Error).message})`, {
        cause,
      });
    }
    try {
      const s = fstatSync(fd).size;
      this.sizes.set(location, s);
      return s;
    } finally {
      closeSync(fd);
    }
  }

  /** Validates that a reference lies inside its file. */
  check(ref: ExternalDataRef, tensor: string): void {
    const size = this.size(ref.location);
    if (ref.offset + ref.length > size) {
      const file = this.memory.has(ref.location) ? `${ref.location} (in memory)` : this.diskPath(ref.location);
      throw new ModelFormatError(
        file,
        `initializer ${JSON.stringify(tensor)} needs bytes [${ref.offset}, ${ref.offset + ref.length}) but the file has ${size} bytes (truncated?)`,
      );
    }
  }

  /** Reads a reference synchronously (a view for in-memory files, a fresh buffer from disk). */
  readSync(ref: ExternalDataRef): Uint8Array {
    const mem = this.memory.get(ref.location);
    if (mem) return mem.subarray(ref.offset, ref.offset + ref.length);
    const path = this.diskPath(ref.location);
    const out = new Uint8Array(ref.length);
    const fd = openSync(path, 'r');
    try {
      let done = 0;
      while (done < ref.length) {
        const n = readSync(fd, out, done, Math.min(ref.length - done, 1 << 30), ref.offset + done);
        if (n === 0) throw new ModelFormatError(path, `unexpected end of file at byte ${ref.offset + done}`);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }

  /** Reads many references, one open file handle per location, without blocking the event loop. */
  async readAll(refs: ExternalDataRef[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = new Array(refs.length);
    const byLocation = new Map<string, number[]>();
    refs.forEach((r, i) => {
      const mem = this.memory.get(r.location);
      if (mem) out[i] = mem.subarray(r.offset, r.offset + r.length);
      else byLocation.set(r.location, [...(byLocation.get(r.location) ?? []), i]);
    });
    for (const [location, indices] of byLocation) {
      const path = this.diskPath(location);
      const handle = await open(path, 'r');
      try {
        for (const i of indices) {
          const r = refs[i] as ExternalDataRef;
          const buf = new Uint8Array(r.length);
          let done = 0;
          while (done < r.length) {
            const { bytesRead } = await handle.read(buf, done, Math.min(r.length - done, 1 << 30), r.offset + done);
            if (bytesRead === 0) throw new ModelFormatError(path, `unexpected end of file at byte ${r.offset + done}`);
            done += bytesRead;
          }
          out[i] = buf;
        }
      } finally {
        await handle.close();
      }
    }
    return out;
  }
}
