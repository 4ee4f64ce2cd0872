import { type BytesRecord, type DatasetRecord, ImageDecodeError, Rng } from '@diffmix/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord, encodePng } from './decode.js';
import { createImageLoader, defaultDecodeConcurrency } from './loader.js';
import { toFloatCHW } from './pixels.js';
import { randomResizedCrop } from './steps.js';
import type { RgbImage } from './types.js';

let records: BytesRecord[];

beforeAll(async () => {
  records = await Promise.all(
    Array.from({ length: 24 }, async (_, i) => {
      const w = 20 + (i % 5) * 7;
      const h = 16 + (i % 3) * 9;
      const data = new Uint8Array(w * h * 3);
      for (let k = 0; k < data.length; k++) data[k] = (k * (i + 3) + i * 17) % 256;
      return { id: `img-${i}`, label: i % 4, bytes: await encodePng(data, w, h) };
    }),
  );
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('createImageLoader', () => {
  it('yields every record in input order, equal to a sequential decode', async () => {
    const loader = createImageLoader({ concurrency: 4 });
    const got = await collect(loader.load(records));
    expect(got.map((g) => g.index)).toEqual(records.map((_, i) => i));
    expect(got.map((g) => g.record.id)).toEqual(records.map((r) => r.id));
    for (const [i, g] of got.entries()) expect(g.value).toEqual(await decodeRecord(records[i] as DatasetRecord));
  });

  it('keeps order when decodes finish out of order (async source, slow map)', async () => {
    async function* source() {
      for (const r of records) yield r;
    }
    const loader = createImageLoader({
      concurrency: 3,
      map: async (img: RgbImage, _r, index) => {
        await new Promise((res) => setTimeout(res, (index * 7) % 5));
        return img.width;
      },
    });
    const got = await collect(loader.load(source()));
    expect(got.map((g) => g.index)).toEqual(records.map((_, i) => i));
  });

  it('random steps depend on the record index only, not on concurrency', async () => {
    const opts = { transform: [randomResizedCrop(12)], rng: Rng.fromSeed(9) };
    const a = await collect(createImageLoader({ ...opts, concurrency: 1 }).load(records));
    const b = await collect(createImageLoader({ ...opts, concurrency: 4, prefetch: 16 }).load(records));
    expect(b.map((x) => x.value)).toEqual(a.map((x) => x.value));
    expect(a[0]?.value.width).toBe(12);
    const c = await collect(createImageLoader({ ...opts, rng: Rng.fromSeed(10) }).load(records));
    expect(c.map((x) => x.value)).not.toEqual(a.map((x) => x.value));
  });

  it('never has more than `prefetch` records started but not consumed', async () => {
    let started = 0;
    let consumed = 0;
    let maxAhead = 0;
    const loader = createImageLoader({
      concurrency: 2,
      prefetch: 5,
      transform: () => {
        started++;
        maxAhead = Math.max(maxAhead, started - consumed);
        return [];
      },
      map: (img) => toFloatCHW(img),
    });
    for await (const _ of loader.load(records)) {
      await new Promise((res) => setTimeout(res, 2));
      consumed++;
    }
    expect(consumed).toBe(records.length);
    expect(maxAhead).toBeLessThanOrEqual(5);
    expect(maxAhead).toBeGreaterThanOrEqual(2);
  });

  it('throws the first failing record (naming it) or skips it on request', async () => {
    const broken: DatasetRecord[] = [
      ...records.slice(0, 3),
      { id: 'broken-1', label: 0, bytes: new Uint8Array([1, 2, 3]) },
      ...records.slice(3, 6),
    ];
    const seen: string[] = [];
    const err = await (async () => {
      for await (const g of createImageLoader({ concurrency: 2 }).load(broken)) seen.push(g.record.id);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toContain('broken-1');
    expect(seen).toEqual(['img-0', 'img-1', 'img-2']);

    const skipped: string[] = [];
    const got = await collect(
      createImageLoader({ concurrency: 2, onError: 'skip', onSkip: (_e, r) => skipped.push(r.id) }).load(broken),
    );
    expect(got.map((g) => g.record.id)).toEqual(['img-0', 'img-1', 'img-2', 'img-3', 'img-4', 'img-5']);
    expect(skipped).toEqual(['broken-1']);
  });

  it('stops prefetching when the consumer breaks out', async () => {
    let started = 0;
    const loader = createImageLoader({
      concurrency: 2,
      prefetch: 4,
      transform: () => {
        started++;
        return [];
      },
    });
    for await (const g of loader.load(records)) if (g.index === 2) break;
    await new Promise((res) => setTimeout(res, 20));
    expect(started).toBeLessThanOrEqual(3 + 4);
  });

  it('validates its options and has a sane default', () => {
    expect(defaultDecodeConcurrency()).toBeGreaterThanOrEqual(1);
    expect(() => createImageLoader({ concurrency: 0 })).toThrow(/concurrency/);
    expect(() => createImageLoader({ concurrency: 4, prefetch: 2 })).toThrow(/prefetch/);
  });

  it('aborts with the signal', async () => {
    const ac = new AbortController();
    const loader = createImageLoader({ concurrency: 2, signal: ac.signal });
    const err = await (async () => {
      for await (const g of loader.load(records)) if (g.index === 1) ac.abort();
    })().catch((e: unknown) => e);
    expect((err as Error).name).toBe('AbortedError');
  });
});
