import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Dataset } from '@diffmix/core';
import { generateToyDataset, parseMetaCsv, readAllManifests, readSyntheticSet } from '@diffmix/datasets';
import type { RgbImage } from '@diffmix/datasets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMPOSE_FILE, composeSyntheticSet } from './compose.js';
import type { ImageGenerator } from './generator.js';
import { planSynthesis } from './plan.js';
import { runSampler } from './run.js';

let tmp: string;
let dataset: Dataset;
const pools: Record<string, string> = {};

/** Images whose pixels depend on the seed and strength, so every job's PNG differs. */
const generator: ImageGenerator = {
  async generate(req) {
    return req.items.map((it): RgbImage => {
      const w = it.image?.width ?? 8;
      const h = it.image?.height ?? 8;
      const data = new Uint8Array(w * h * 3);
      for (let i = 0; i < data.length; i++) data[i] = (it.seed + i * Math.round(req.strength * 10)) % 256;
      return { data, width: w, height: h, channels: 3 };
    });
  },
};

async function tree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const go = async (d: string, rel: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await go(path.join(d, e.name), r);
      else
        out[r] = createHash('sha256')
          .update(await readFile(path.join(d, e.name)))
          .digest('hex');
    }
  };
  await go(root, '');
  return out;
}

async function ids(root: string): Promise<string[]> {
  return (await readAllManifests(root)).kept.map((e) => e.line.id).sort();
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diffmix-compose-'));
  dataset = await generateToyDataset({ numClasses: 3, imagesPerClass: 2, testPerClass: 0, seed: 2, size: 16 });
  // Three fixed-strength pools, as the paper's Diff-Mix set is made, plus a copy of the first one.
  for (const [name, s] of [
    ['s0.5', 0.5],
    ['s0.7', 0.7],
    ['s0.9', 0.9],
    ['s0.5-again', 0.5],
  ] as const) {
    const plan = planSynthesis({
      dataset,
      strategy: 'diff-mix',
      seed: 4,
      count: 10,
      strengths: s,
      params: { steps: 25, size: 64 },
    });
    pools[name] = path.join(tmp, 'pools', name);
    const summary = await runSampler({ model: generator, plan, dataset, out: pools[name] as string, batchSize: 4 });
    expect(summary.status).toBe('completed');
  }
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('composeSyntheticSet', () => {
  it('subsamples the union of fixed-strength pools to the target size, copying images and labels', async () => {
    const three = [pools['s0.5'], pools['s0.7'], pools['s0.9']] as string[];
    const before = await Promise.all(three.map(tree));
    const out = path.join(tmp, 'composed-a');
    const s = await composeSyntheticSet({ pools: three, targetSize: 12, seed: 1, out });
    expect(s).toMatchObject({ union: 30, duplicates: 0, selected: 12, copied: 12, alreadyThere: 0, complete: true });
    expect(s.pools.map((p) => p.images)).toEqual([10, 10, 10]);

    // The pools are untouched.
    expect(await Promise.all(three.map(tree))).toEqual(before);

    // Every composed image is a byte-identical copy of a pool image, with the same name, label and line.
    const poolLines = new Map(
      (await Promise.all(three.map(readAllManifests))).flatMap((m) => m.kept.map((e) => [e.line.id, e.line])),
    );
    const { kept } = await readAllManifests(out);
    expect(kept).toHaveLength(12);
    for (const { line } of kept) {
      const src = poolLines.get(line.id)!;
      expect(src).toBeDefined();
      expect({ ...line, createdAt: undefined }).toEqual({ ...src, createdAt: undefined });
    }
    const outTree = await tree(out);
    for (const { line } of kept) expect(outTree[line.path]).toBe(line.sha256);
    expect(new Set(kept.map((e) => e.line.strength)).size).toBeGreaterThan(1); // drawn across pools
    expect(parseMetaCsv(await readFile(path.join(out, 'meta.csv'), 'utf8'))).toHaveLength(12);
    const set = await readSyntheticSet(out);
    expect(set.records).toHaveLength(12);
    expect(set.classes.map((c) => c.name)).toEqual(dataset.classes.map((c) => c.name));
    expect(JSON.parse(await readFile(path.join(out, COMPOSE_FILE), 'utf8'))).toMatchObject({
      seed: 1,
      targetSize: 12,
      union: 30,
    });
  });

  it('is deterministic: same pools (in any order) and seed → same set; another seed → another subset', async () => {
    const three = [pools['s0.5'], pools['s0.7'], pools['s0.9']] as string[];
    const a = path.join(tmp, 'det-a');
    const b = path.join(tmp, 'det-b');
    const c = path.join(tmp, 'det-c');
    await composeSyntheticSet({ pools: three, targetSize: 15, seed: 'x', out: a });
    await composeSyntheticSet({ pools: [...three].reverse(), targetSize: 15, seed: 'x', out: b });
    await composeSyntheticSet({ pools: three, targetSize: 15, seed: 'y', out: c });
    expect(await ids(b)).toEqual(await ids(a));
    const strip = (t: Record<string, string>) => Object.fromEntries(Object.entries(t).filter(([k]) => k.startsWith('data/')));
    expect(strip(await tree(b))).toEqual(strip(await tree(a)));
    expect(await ids(c)).not.toEqual(await ids(a));
    // Re-running is a no-op; a different composition into the same folder is refused.
    const again = await composeSyntheticSet({ pools: three, targetSize: 15, seed: 'x', out: a });
    expect(again).toMatchObject({ copied: 0, alreadyThere: 15 });
    await expect(composeSyntheticSet({ pools: three, targetSize: 15, seed: 'z', out: a })).rejects.toThrow(
      /composed from other pools/,
    );
  });

  it('counts a job found in two pools once', async () => {
    const s = await composeSyntheticSet({
      pools: [pools['s0.5'], pools['s0.5-again'], pools['s0.7']] as string[],
      targetSize: 20,
      seed: 1,
      out: path.join(tmp, 'dups'),
    });
    expect(s).toMatchObject({ union: 20, duplicates: 10, selected: 20 });
  });

  it('checks sizes, folders and pool integrity', async () => {
    const three = [pools['s0.5'], pools['s0.7'], pools['s0.9']] as string[];
    await expect(composeSyntheticSet({ pools: three, targetSize: 31, seed: 1, out: path.join(tmp, 'big') })).rejects.toThrow(
      /more than the 30 distinct images/,
    );
    const all = await composeSyntheticSet({
      pools: three,
      targetSize: 31,
      seed: 1,
      out: path.join(tmp, 'all'),
      allowSmaller: true,
    });
    expect(all.selected).toBe(30);
    await expect(
      composeSyntheticSet({ pools: three, targetSize: 5, seed: 1, out: path.join(three[0] as string, 'sub') }),
    ).rejects.toThrow(/outside the pools/);
    await expect(composeSyntheticSet({ pools: [tmp], targetSize: 1, seed: 1, out: path.join(tmp, 'x', 'y') })).rejects.toThrow(
      /outside the pools/,
    );

    // A damaged pool image is refused, not copied.
    const damaged = path.join(tmp, 'damaged');
    const plan = planSynthesis({ dataset, strategy: 'real-aug', seed: 9, count: 3, strengths: 0.5, params: { steps: 25 } });
    await runSampler({ model: generator, plan, dataset, out: damaged });
    const { kept } = await readAllManifests(damaged);
    await writeFile(path.join(damaged, kept[0]!.line.path), 'not a png');
    await expect(
      composeSyntheticSet({ pools: [damaged], targetSize: 3, seed: 1, out: path.join(tmp, 'from-damaged') }),
    ).rejects.toThrow(/does not match its manifest sha256/);
  });
});
