/**
 * A prefetching image loader: decodes records ahead of the consumer with bounded concurrency and
 * yields them in input order.
 *
 * Parallelism: each `decodeImage` is one sharp task, which runs on a libuv thread-pool worker
 * (`UV_THREADPOOL_SIZE`, default 4, read once when the pool starts: set it in the environment before
 * Node starts). Inside a task libvips may use `sharp.concurrency()` threads (default: the number of
 * cores, or 1 on glibc Linux without jemalloc, as in the prebuilt binaries); for small images the
 * gain comes from decoding several images at once, which is what `concurrency` sets. The default is
 * min(cores, thread-pool size). File reads share the same pool.
 *
 * Memory: at most `prefetch` records are in flight or decoded-but-not-consumed (default
 * 2 × concurrency), plus the one the consumer holds; each holds its encoded bytes and one decoded
 * image, whatever the dataset size.
 */
import { availableParallelism } from 'node:os';
import { AbortedError, type DatasetRecord, InvalidArgumentError, type Rng } from '@diffmix/core';
import { type DecodeOptions, decodeRecord } from './decode.js';
import type { ImageStep } from './steps.js';
import type { RgbImage } from './types.js';

/** libuv's thread-pool size for this process (UV_THREADPOOL_SIZE, default 4, max 1024). */
export function threadPoolSize(): number {
  const n = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** Default decode concurrency: min(available cores, libuv thread-pool size). */
export function defaultDecodeConcurrency(): number {
  return Math.max(1, Math.min(availableParallelism(), threadPoolSize()));
}

export interface ImageLoaderOptions<T = RgbImage> {
  /** Records decoded at the same time (default `defaultDecodeConcurrency()`). */
  concurrency?: number;
  /** Records in flight or waiting to be consumed (default 2 × concurrency, at least `concurrency`). */
  prefetch?: number;
  /** Geometry steps for every record, or a function choosing them per record. */
  transform?: readonly ImageStep[] | ((record: DatasetRecord, index: number) => readonly ImageStep[]);
  /**
   * Random source of random steps: record `index` (its position in the iteration) uses
   * `rng.split(index)`, so the crops do not depend on concurrency or timing. Use a different Rng
   * per epoch (`root.split('epoch-3')`).
   */
  rng?: Rng;
  /** Turns the decoded image into the yielded value (e.g. `toFloatCHW`); runs on the main thread. */
  map?: (image: RgbImage, record: DatasetRecord, index: number) => T | Promise<T>;
  /** Decoding options (alpha, failOn…). */
  decode?: Omit<DecodeOptions, 'steps' | 'rng' | 'name'>;
  /** 'throw' (default): the first failing record ends the iteration with its error; 'skip': drop it and call `onSkip`. */
  onError?: 'throw' | 'skip';
  onSkip?: (error: unknown, record: DatasetRecord, index: number) => void;
  signal?: AbortSignal;
}

export interface LoadedImage<T = RgbImage> {
  /** Position of the record in the input. */
  index: number;
  record: DatasetRecord;
  value: T;
}

export interface ImageLoader<T = RgbImage> {
  readonly concurrency: number;
  readonly prefetch: number;
  /** Decodes `records` ahead of the consumer, yielding in input order. Breaking out stops the prefetch. */
  load(records: Iterable<DatasetRecord> | AsyncIterable<DatasetRecord>): AsyncGenerator<LoadedImage<T>, void, undefined>;
}

type Outcome<T> = { ok: true; value: LoadedImage<T> } | { ok: false; error: unknown; record: DatasetRecord; index: number };

/** A FIFO counting semaphore. */
function createLimiter(limit: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async function run<R>(task: () => Promise<R>): Promise<R> {
    if (active >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

function toAsyncIterator(records: Iterable<DatasetRecord> | AsyncIterable<DatasetRecord>): AsyncIterator<DatasetRecord> {
  if (Symbol.asyncIterator in records) return (records as AsyncIterable<DatasetRecord>)[Symbol.asyncIterator]();
  const it = (records as Iterable<DatasetRecord>)[Symbol.iterator]();
  return {
    next: async () => it.next(),
    return: async () => it.return?.() ?? { done: true, value: undefined },
  };
}

export function createImageLoader<T = RgbImage>(options: ImageLoaderOptions<T> = {}): ImageLoader<T> {
  const concurrency = options.concurrency ?? defaultDecodeConcurrency();
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidArgumentError('concurrency', `must be a positive integer, got ${concurrency}`);
  }
  const prefetch = options.prefetch ?? 2 * concurrency;
  if (!Number.isInteger(prefetch) || prefetch < concurrency) {
    throw new InvalidArgumentError('prefetch', `must be an integer ≥ concurrency (${concurrency}), got ${prefetch}`);
  }
  const { transform, rng, map, signal } = options;
  const onError = options.onError ?? 'throw';
  const limit = createLimiter(concurrency);

  const loadOne = async (record: DatasetRecord, index: number): Promise<LoadedImage<T>> => {
    const steps = typeof transform === 'function' ? transform(record, index) : (transform ?? []);
    const decodeOptions: Omit<DecodeOptions, 'name'> = { ...options.decode, steps };
    if (rng) decodeOptions.rng = rng.split(index);
    const image = await limit(() => decodeRecord(record, decodeOptions));
    const value = map ? await map(image, record, index) : (image as unknown as T);
    return { index, record, value };
  };

  async function* load(
    records: Iterable<DatasetRecord> | AsyncIterable<DatasetRecord>,
  ): AsyncGenerator<LoadedImage<T>, void, undefined> {
    const source = toAsyncIterator(records);
    const window: Array<Promise<Outcome<T>>> = [];
    let next = 0;
    let exhausted = false;
    try {
      for (;;) {
        if (signal?.aborted) throw new AbortedError();
        while (!exhausted && window.length < prefetch) {
          const r = await source.next();
          if (r.done) {
            exhausted = true;
            break;
          }
          const index = next++;
          const record = r.value;
          window.push(
            loadOne(record, index).then(
              (value): Outcome<T> => ({ ok: true, value }),
              (error): Outcome<T> => ({ ok: false, error, record, index }),
            ),
          );
        }
        const head = window.shift();
        if (!head) return;
        const out = await head;
        if (out.ok) {
          yield out.value;
        } else if (onError === 'skip') {
          options.onSkip?.(out.error, out.record, out.index);
        } else {
          throw out.error;
        }
      }
    } finally {
      exhausted = true;
      await source.return?.();
    }
  }

  return { concurrency, prefetch, load };
}
