import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeToyDataset } from '@diffmix/datasets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diffmix, tinySd } from './test-support/run-cli.js';

let tmp: string;
let toy: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diffmix-finetune-'));
  toy = path.join(tmp, 'toy');
  await writeToyDataset(toy, { numClasses: 2, imagesPerClass: 3, testPerClass: 1, size: 64, seed: 0 });
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

const common = (out: string) => [
  'finetune',
  '--data',
  toy,
  '--model',
  tinySd,
  '--out',
  out,
  '--steps',
  '30',
  '--batch-size',
  '2',
  '--lr',
  '1e-2',
  '--checkpoint-every',
  '2',
];

describe('diffmix finetune', () => {
  it('trains, writes the outputs and a JSON summary; Ctrl-C then --resume gives the uninterrupted curve', async () => {
    const full = path.join(tmp, 'full');
    const r = await diffmix([...common(full), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({
      status: 'completed',
      mode: 'ti+db',
      steps: 30,
      resumedFrom: 0,
      placeholders: ['<class_0>', '<class_1>'],
    });
    for (const f of ['pytorch_lora_weights.safetensors', 'learned_embeds.safetensors', 'finetune.json'])
      expect(existsSync(path.join(full, f))).toBe(true);
    const reference = JSON.parse(await readFile(path.join(full, 'finetune.json'), 'utf8')).losses as number[];
    expect(reference).toHaveLength(30);

    const out = path.join(tmp, 'interrupted');
    let sent = false;
    let poll: NodeJS.Timeout | undefined;
    const first = await diffmix(common(out), (_text, child) => {
      // Steps are faster than the progress lines (1 per second): watch for the first checkpoint instead.
      poll ??= setInterval(() => {
        if (!sent && existsSync(path.join(out, 'checkpoints', 'step-0000002', 'state.json'))) {
          sent = true;
          child.kill('SIGINT');
        }
      }, 10);
    });
    clearInterval(poll);
    expect(sent).toBe(true);
    expect(first.code, first.stderr).toBe(130);
    expect(existsSync(path.join(out, 'checkpoints'))).toBe(true);
    expect(existsSync(path.join(out, 'finetune.json'))).toBe(false);
    const again = await diffmix(common(out));
    expect(again.code).toBe(2); // refuses to overwrite the checkpoints without --resume
    expect(again.stderr).toMatch(/resume it or choose another output folder/);
    const second = await diffmix([...common(out), '--resume', '--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout).resumedFrom).toBeGreaterThan(0);
    expect(JSON.parse(await readFile(path.join(out, 'finetune.json'), 'utf8')).losses).toEqual(reference);
  }, 180_000);

  it('takes a paper preset (maxSteps, weightDecay, shots, resolution 512) with flags overriding it', async () => {
    const out = path.join(tmp, 'preset');
    const r = await diffmix([
      'finetune',
      '--preset',
      'cub-fewshot-5',
      '--data',
      toy,
      '--model',
      tinySd,
      '--out',
      out,
      '--steps',
      '1',
      '--batch-size',
      '1',
      '--resolution',
      '64',
      '--shots',
      '2',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(await readFile(path.join(out, 'finetune.json'), 'utf8'));
    expect(summary.config).toMatchObject({
      steps: 1,
      batchSize: 1,
      resolution: 64,
      shots: 2,
      weightDecay: 0.01,
      rank: 10,
      mode: 'ti+db',
    });
    expect(summary.dataset.records).toBe(4);
  }, 60_000);

  it('fine-tunes on the long-tail subset of a diffmix longtail manifest', async () => {
    const manifest = path.join(tmp, 'lt.json');
    const lt = await diffmix([
      'longtail',
      '--data',
      toy,
      '--imbalance-factor',
      '3',
      '--formula',
      'paper',
      '--out',
      manifest,
      '--json',
    ]);
    expect(lt.code, lt.stderr).toBe(0);
    const out = path.join(tmp, 'lt');
    const r = await diffmix([
      'finetune',
      '--data',
      toy,
      '--model',
      tinySd,
      '--out',
      out,
      '--steps',
      '1',
      '--batch-size',
      '1',
      '--long-tail',
      manifest,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const records = JSON.parse(await readFile(path.join(out, 'finetune.json'), 'utf8')).dataset.records;
    expect(records).toBeLessThan(6); // 2 classes × 3 images before the subset
    expect(records).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('exits 2 on bad flags and 3 on a missing model', async () => {
    const bad = await diffmix([...common(path.join(tmp, 'bad')), '--mode', 'lora']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--mode/);
    const missing = await diffmix([
      'finetune',
      '--data',
      toy,
      '--model',
      path.join(tmp, 'nope'),
      '--out',
      path.join(tmp, 'x'),
      '--steps',
      '1',
    ]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/nope/);
  }, 60_000);
});
