/** Helpers for the synthetic-set tests (not exported from the package). */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { annotate, createSynthesisJob } from '@diffmix/core';
import type { LogFields, Logger } from '@diffmix/core';
import sharp from 'sharp';
import type { SyntheticWriteInput } from './writer.js';

export async function tempDir(prefix = 'diffmix-synth-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function tinyPng(background = '#102030'): Promise<Buffer> {
  return sharp({ create: { width: 4, height: 4, channels: 3, background } })
    .png()
    .toBuffer();
}

/** A Diff-Mix job `i` between two classes, with its label (γ 0.8, c 1). */
export function makeInput(i: number, sourceClass: number, targetClass: number, strength = 0.7): SyntheticWriteInput {
  const job = createSynthesisJob({
    strategy: 'diff-mix',
    sourceRecordId: `img-${i}`,
    sourceClass,
    targetClass,
    strength,
    prompt: 'a photo of a <tgt>',
    seed: i,
    params: { steps: 25 },
  });
  return { ...job, label: annotate({ strength, gamma: 0.8, sourceClass, targetClass }) };
}

/** Every file under `dir` (relative paths, sorted). */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(path.join(d, e.name), r);
      else out.push(r);
    }
  };
  await walk(dir, '');
  return out.sort();
}

export interface RecordingLogger extends Logger {
  records: Array<{ level: string; message: string; fields?: LogFields }>;
}

export function recordingLogger(): RecordingLogger {
  const records: RecordingLogger['records'] = [];
  const push = (level: string) => (message: string, fields?: LogFields) => {
    records.push({ level, message, fields });
  };
  return { records, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}
