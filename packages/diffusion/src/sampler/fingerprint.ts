/** Content fingerprints for job `params.model`: a changed model or adapter file changes every job id. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { NotFoundError } from '@diffmix/core';

/**
 * `sha256:<hex>` over the files' contents (each preceded by its length), in the order given. Reads
 * every byte: seconds for a full SD 1.5 export; cache it alongside the model if that matters.
 */
export async function fingerprintFiles(files: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  hash.update('diffmix-fingerprint-v1\0');
  for (const file of files) {
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) throw new NotFoundError(path.resolve(file), 'file to fingerprint');
    hash.update(`${st.size}\0`);
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  }
  return `sha256:${hash.digest('hex')}`;
}
