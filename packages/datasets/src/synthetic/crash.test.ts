/**
 * Real crashes: a child `node` process writes many images through the built writer and is killed
 * with SIGKILL mid-way, several times; resuming must end with every job exactly once.
 *
 * The child imports a bundle of `src/synthetic/index.ts` made with tsup into a temp folder (all
 * dependencies inlined), so the test does not depend on the package's dist being fresh or on the
 * other modules of the package building.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inShard } from '@diffmix/core';
import type { ManifestLine, Shard } from '@diffmix/core';
import sharp from 'sharp';
import { build } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMetaCsv } from './meta-csv.js';
import { readSyntheticSet } from './read.js';
import { listFiles, makeInput, tempDir } from './test-support.js';
import type { SyntheticWriteInput } from './writer.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const CHILD = `
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const [bundle, specFile] = process.argv.slice(2);
const { SyntheticSetWriter } = await import(pathToFileURL(bundle).href);
const spec = JSON.parse(readFileSync(specFile, 'utf8'));
const png = Buffer.from(spec.png, 'base64');
const w = await SyntheticSetWriter.open(spec.root, { classes: spec.classes, shard: spec.shard ?? undefined });
const { manifest, ...recovery } = w.recovery;
process.stdout.write('open ' + JSON.stringify(recovery) + '\\n');
const todo = spec.jobs.filter((j) => !w.has(j.id));
let next = 0;
const worker = async () => {
  while (next < todo.length) {
    const job = todo[next++];
    await w.write(job, png);
    process.stdout.write('done ' + job.id + '\\n');
  }
};
await Promise.all(Array.from({ length: 4 }, worker));
await w.close();
process.stdout.write('closed\\n');
`;

interface ChildResult {
  signal: NodeJS.Signals | null;
  code: number | null;
  done: number;
  recovery: Record<string, unknown> | undefined;
  stderr: string;
}

let dir: string;
let cleanup: () => Promise<void>;
let bundle: string;
let script: string;
let png: Buffer;

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('diffmix-synth-crash-'));
  const outDir = path.join(dir, 'bundle');
  await build({
    entry: { synth: path.join(here, 'index.ts') },
    outDir,
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    noExternal: [/.*/],
    dts: false,
    sourcemap: false,
    splitting: false,
    clean: false,
    silent: true,
    config: false,
    // Inlined CommonJS dependencies (core's progress bar) require node built-ins.
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  bundle = path.join(outDir, 'synth.js');
  script = path.join(dir, 'child.mjs');
  await writeFile(script, CHILD);
  // ~50 KB of noise, so a write takes long enough to be caught half-way.
  const noise = Buffer.from(createHash('sha512').update('seed').digest());
  const raw = Buffer.alloc(128 * 128 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (noise[i % noise.length] as number) ^ ((i * 2654435761) >>> 24);
  png = await sharp(raw, { raw: { width: 128, height: 128, channels: 3 } })
    .png()
    .toBuffer();
}, 120_000);

afterAll(() => cleanup());

const CLASSES = ['Black footed Albatross', 'Laysan Albatross', 'Sooty/Albatross', 'Boeing 737-200', 'a,b "c"'];

function jobsFor(n: number): SyntheticWriteInput[] {
  return Array.from({ length: n }, (_, i) => makeInput(i, i % 5, (i * 3 + 1) % 5, [0.3, 0.5, 0.7, 0.9][i % 4]));
}

async function runChild(
  root: string,
  jobs: SyntheticWriteInput[],
  shard: Shard | undefined,
  killAfter?: number,
): Promise<ChildResult> {
  const specFile = path.join(dir, `spec-${shard ? `${shard.index}-${shard.count}` : 'all'}.json`);
  await writeFile(specFile, JSON.stringify({ root, classes: CLASSES, shard: shard ?? null, jobs, png: png.toString('base64') }));
  const child = spawn(process.execPath, [script, bundle, specFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let done = 0;
  let recovery: Record<string, unknown> | undefined;
  let stderr = '';
  let buf = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl = buf.indexOf('\n');
    while (nl !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.startsWith('open ')) recovery = JSON.parse(line.slice(5)) as Record<string, unknown>;
      if (line.startsWith('done ')) {
        done++;
        if (killAfter !== undefined && done === killAfter) child.kill('SIGKILL');
      }
      nl = buf.indexOf('\n');
    }
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, done, recovery, stderr }));
  });
}

async function checkComplete(root: string, jobs: SyntheticWriteInput[]): Promise<void> {
  const files = await listFiles(root);
  // Nothing but images, manifests and meta.csv: no temp files, no lock files left behind.
  const other = files.filter((f) => !f.startsWith('data/'));
  expect(other.every((f) => /^manifest(\.shard-\d+-of-\d+)?\.jsonl$|^meta\.csv$/.test(f))).toBe(true);
  const images = files.filter((f) => f.startsWith('data/'));
  expect(images.every((f) => /^data\/[^/]+\/[^/]+-\d{6,}-0\.\d\.png$/.test(f))).toBe(true);

  const lines: ManifestLine[] = [];
  for (const f of other.filter((f) => f.startsWith('manifest'))) {
    const text = await readFile(path.join(root, f), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    for (const l of text.split('\n').filter(Boolean)) lines.push(JSON.parse(l) as ManifestLine);
  }
  // Every job exactly once, and exactly one image per job (no orphan, no duplicate under another number).
  expect(lines.map((l) => l.id).sort()).toEqual(jobs.map((j) => j.id).sort());
  expect(images).toEqual(lines.map((l) => l.path).sort());
  for (const l of lines) {
    expect(
      createHash('sha256')
        .update(await readFile(path.join(root, l.path)))
        .digest('hex'),
    ).toBe(l.sha256);
  }
  expect(parseMetaCsv(await readFile(path.join(root, 'meta.csv'), 'utf8'))).toHaveLength(jobs.length);
  const set = await readSyntheticSet(root);
  expect(set.records).toHaveLength(jobs.length);
  expect(set.duplicates).toEqual([]);
}

describe('SIGKILL mid-way, then resume', () => {
  it('a single writer killed three times ends with every job exactly once', async () => {
    const root = path.join(dir, 'single');
    const jobs = jobsFor(150);
    const recoveries: unknown[] = [];
    let total = 0;
    for (const killAfter of [7, 23, 41]) {
      const r = await runChild(root, jobs, undefined, killAfter);
      expect(r.signal, r.stderr).toBe('SIGKILL');
      total += r.done;
      recoveries.push(r.recovery);
    }
    const last = await runChild(root, jobs, undefined);
    expect(last.code, last.stderr).toBe(0);
    recoveries.push(last.recovery);
    // Each killed run got somewhere, and the last one did not start over.
    expect(total).toBeGreaterThanOrEqual(7 + 23 + 41);
    expect(last.done).toBeLessThan(jobs.length - 7 - 23 - 41 + 1);
    console.info('recoveries after each kill:', JSON.stringify(recoveries));
    await checkComplete(root, jobs);
  });

  it('two shard processes on one set, one killed and resumed while the other runs', async () => {
    const root = path.join(dir, 'sharded');
    const jobs = jobsFor(160);
    const s0 = { index: 0, count: 2 };
    const s1 = { index: 1, count: 2 };
    const own = (s: Shard) => jobs.filter((j) => inShard(j.id, s));
    expect(own(s0).length).toBeGreaterThan(40);
    const other = runChild(root, own(s1), s1);
    const killed = await runChild(root, own(s0), s0, 15);
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    const resumed = await runChild(root, own(s0), s0);
    expect(resumed.code, resumed.stderr).toBe(0);
    const r1 = await other;
    expect(r1.code, r1.stderr).toBe(0);
    await checkComplete(root, jobs);
  });
});
