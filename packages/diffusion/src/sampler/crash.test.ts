/**
 * Real interruptions: a child `node` process runs the sampler from the BUILT package (dist/, made by
 * `npm run build` / `npx tsup`; turbo builds before testing) on the tiny model and is killed with
 * SIGKILL after some images, several times, then run to the end. The set must hold every job exactly
 * once, with the same bytes as an uninterrupted run, and no orphan, temp or truncated file. A SIGINT
 * must finish the batch in flight, close the set, print how to resume and exit with 130.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseMetaCsv, readAllManifests } from '@diffmix/datasets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { goldenPath } from '../test-support/golden.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(here, '../../dist/index.js');
const require = createRequire(import.meta.url);
const datasetsDir = path.dirname(require.resolve('@diffmix/datasets/package.json'));

const CHILD = `
const [distUrl, datasetsUrl, specFile] = process.argv.slice(2);
const { readFileSync } = await import('node:fs');
const { StableDiffusion, planSynthesis, runSampler, installInterruptHandler } = await import(distUrl);
const { generateToyDataset } = await import(datasetsUrl);
const spec = JSON.parse(readFileSync(specFile, 'utf8'));
const dataset = await generateToyDataset({ numClasses: 2, imagesPerClass: 3, testPerClass: 0, seed: 7, size: 48 });
const model = await StableDiffusion.load(spec.model, { lora: [spec.lora], textualInversion: [spec.ti] });
const plan = planSynthesis({
  dataset, strategy: 'diff-mix', seed: 3, count: spec.count, annotation: { gamma: 0.5, scaler: 0.9 },
  params: { steps: 25, guidance: 7.5, size: 64, model: 'golden-tiny-sd' },
});
const interrupt = installInterruptHandler();
const logger = { debug() {}, info: (m) => process.stderr.write('info ' + m + '\\n'), warn: (m) => process.stderr.write('warn ' + m + '\\n'), error: (m) => process.stderr.write('error ' + m + '\\n') };
process.stdout.write('ready\\n');
const summary = await runSampler({
  model, plan, dataset, out: spec.out, batchSize: spec.batchSize, logger, signal: interrupt.signal,
  resumeCommand: 'node child.mjs',
  onImage: (line) => process.stdout.write('image ' + line.id + '\\n'),
});
process.stdout.write('summary ' + JSON.stringify(summary) + '\\n');
process.exitCode = interrupt.exitCode ?? summary.exitCode;
`;

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  images: number;
  summary?: Record<string, unknown>;
  stderr: string;
}

let tmp: string;
let script: string;
const COUNT = 24;

beforeAll(async () => {
  if (!existsSync(dist) || !(await readFile(dist, 'utf8')).includes('runSampler')) {
    throw new Error(`${dist} is missing or predates the sampler: build the package first (cd packages/diffusion && npx tsup)`);
  }
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diffmix-sampler-crash-'));
  script = path.join(tmp, 'child.mjs');
  await writeFile(script, CHILD);
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Runs the child; `kill` decides, per image line, whether to send a signal now. */
async function runChild(
  out: string,
  options: { batchSize?: number; killAfter?: number; signal?: NodeJS.Signals } = {},
): Promise<ChildRun> {
  const spec = path.join(tmp, `spec-${path.basename(out)}-${Date.now()}.json`);
  await writeFile(
    spec,
    JSON.stringify({
      model: goldenPath('tiny-sd'),
      lora: goldenPath('tiny-sd', 'lora', 'pytorch_lora_weights.safetensors'),
      ti: goldenPath('tiny-sd', 'ti', 'learned_embeds.safetensors'),
      out,
      count: COUNT,
      batchSize: options.batchSize ?? 2,
    }),
  );
  const child: ChildProcess = spawn(
    process.execPath,
    [script, pathToFileURL(dist).href, pathToFileURL(path.join(datasetsDir, 'dist/index.js')).href, spec],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let images = 0;
  let summary: Record<string, unknown> | undefined;
  let stderr = '';
  let buffer = '';
  let sent = false;
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout?.on('data', (d: Buffer) => {
    buffer += d.toString();
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.startsWith('image ')) images++;
      if (line.startsWith('summary ')) summary = JSON.parse(line.slice(8));
      if (!sent && options.killAfter !== undefined && images >= options.killAfter) {
        sent = true;
        child.kill(options.signal ?? 'SIGKILL');
      }
      nl = buffer.indexOf('\n');
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
    child.on('exit', (c, s) => resolve([c, s]));
  });
  return { code, signal, images, ...(summary ? { summary } : {}), stderr };
}

async function walk(root: string): Promise<string[]> {
  const out: string[] = [];
  const go = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await go(path.join(d, e.name), r);
      else out.push(r);
    }
  };
  await go(root, '');
  return out.sort();
}

/** Checks the set holds every job once, every file hashes right, and nothing else is there. */
async function checkComplete(root: string): Promise<Map<string, string>> {
  const { kept, duplicates, tornTails } = await readAllManifests(root);
  expect(duplicates).toEqual([]);
  expect(tornTails).toEqual([]);
  const raw = (await readFile(path.join(root, 'manifest.jsonl'), 'utf8')).trim().split('\n');
  expect(raw).toHaveLength(COUNT); // exactly once, not just after deduplication
  expect(new Set(kept.map((e) => e.line.id)).size).toBe(COUNT);
  const byId = new Map<string, string>();
  for (const { line } of kept) {
    const bytes = await readFile(path.join(root, line.path));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(line.sha256);
    byId.set(line.id, line.sha256);
  }
  const files = await walk(root);
  expect(files.filter((f) => f.startsWith('data/'))).toEqual(kept.map((e) => e.line.path).sort()); // no orphans, no temps
  expect(files.filter((f) => !f.startsWith('data/'))).toEqual(['manifest.jsonl', 'meta.csv', 'plan.json']); // no locks, no temps
  expect(parseMetaCsv(await readFile(path.join(root, 'meta.csv'), 'utf8'))).toHaveLength(COUNT);
  return byId;
}

describe('sampler in a child process', () => {
  it('SIGKILLed mid-way several times, then re-run: every job exactly once, same bytes as an uninterrupted run', async () => {
    const reference = path.join(tmp, 'reference');
    const ref = await runChild(reference);
    expect(ref.code, ref.stderr).toBe(0);
    expect(ref.images).toBe(COUNT);
    const refHashes = await checkComplete(reference);

    const out = path.join(tmp, 'killed');
    let before = 0;
    for (const killAfter of [3, 5, 4]) {
      const run = await runChild(out, { killAfter });
      expect(run.signal, run.stderr).toBe('SIGKILL');
      expect(run.summary).toBeUndefined();
      expect(run.images).toBeGreaterThanOrEqual(killAfter);
      const { kept } = await readAllManifests(out);
      expect(kept.length).toBeGreaterThanOrEqual(before + killAfter); // progress is kept across kills
      before = kept.length;
    }
    expect(before).toBeLessThan(COUNT);
    const last = await runChild(out);
    expect(last.code, last.stderr).toBe(0);
    expect(last.summary).toMatchObject({ status: 'completed', alreadyDone: before, generated: COUNT - before });
    expect(await checkComplete(out)).toEqual(refHashes);
  }, 240_000);

  it('SIGINT finishes the batch in flight, closes the set, prints how to resume and exits with 130', async () => {
    const out = path.join(tmp, 'interrupted');
    const run = await runChild(out, { killAfter: 2, signal: 'SIGINT', batchSize: 2 });
    expect(run.code, run.stderr).toBe(130);
    expect(run.summary).toMatchObject({ status: 'interrupted', exitCode: 130 });
    const generated = run.summary?.generated as number;
    expect(generated).toBeGreaterThanOrEqual(2);
    expect(generated).toBeLessThan(COUNT);
    expect(run.stderr).toMatch(/SIGINT: finishing the images in flight/);
    expect(run.stderr).toMatch(/Run the same command again to resume \(node child\.mjs\)/);
    const { kept } = await readAllManifests(out);
    expect(kept).toHaveLength(generated);
    expect(parseMetaCsv(await readFile(path.join(out, 'meta.csv'), 'utf8'))).toHaveLength(generated); // closed cleanly
    expect((await walk(out)).filter((f) => f.endsWith('.lock'))).toEqual([]);
    const rest = await runChild(out);
    expect(rest.code).toBe(0);
    expect(rest.summary).toMatchObject({ alreadyDone: generated, generated: COUNT - generated });
    await checkComplete(out);
  }, 120_000);
});
