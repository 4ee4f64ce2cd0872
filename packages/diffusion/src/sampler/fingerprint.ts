/** Content fingerprints for job `params.model`: a changed model or adapter file changes every job id. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
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

/** The parts of a diffusers/optimum ONNX folder that change the pixels a job produces. */
const MODEL_PARTS = ['text_encoder', 'unet', 'vae_encoder', 'vae_decoder', 'tokenizer', 'scheduler'] as const;

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * Fingerprint of a whole model folder: every file of its parts (graphs **and** their external
 * weights — `model.onnx_data`, `weights.pb`, … — tokenizer and scheduler), sorted by relative path,
 * each hashed with its path so a renamed file counts as a change. A model whose weights live outside
 * `model.onnx` therefore gets new job ids when those weights change.
 */
export async function fingerprintModelFolder(modelDir: string, extraFiles: readonly string[] = []): Promise<string> {
  const root = path.resolve(modelDir);
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new NotFoundError(root, 'model folder');
  const files: string[] = [];
  for (const part of MODEL_PARTS) files.push(...(await listFiles(path.join(root, part))));
  files.sort();
  const hash = createHash('sha256');
  hash.update('diffmix-model-fingerprint-v1\0');
  for (const file of files) hash.update(`${path.relative(root, file).split(path.sep).join('/')}\0`);
  hash.update(await fingerprintFiles([...files, ...extraFiles]));
  return `sha256:${hash.digest('hex')}`;
}
