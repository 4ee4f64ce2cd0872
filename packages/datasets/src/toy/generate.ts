/**
 * The procedural toy fine-grained dataset, in memory or as an ImageFolder tree on disk.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type BytesRecord, type Dataset, type FileRecord, InvalidArgumentError, type ProgressReporter, Rng } from '@diffmix/core';
import { encodePng, threadPoolSize } from '../image/index.js';
import { type ToyClass, toyClasses } from './classes.js';
import { renderToyImage, TOY_RENDER_VERSION } from './render.js';

export interface ToyDatasetOptions {
  /** Number of classes (1–192); see `toyClasses`. */
  numClasses: number;
  /** Train images per class. */
  imagesPerClass: number;
  /** Test images per class. */
  testPerClass: number;
  /** Image side in pixels (default 64). */
  size?: number;
  /** Seed (integer, bigint or string): the same seed gives byte-identical PNGs. */
  seed: number | bigint | string;
  /** PNG encodes (and file writes) in flight (default 2 × the libuv thread-pool size). */
  concurrency?: number;
  /** Ticked once per image. */
  progress?: ProgressReporter;
}

/** A toy dataset: a `Dataset` whose classes carry their attributes. */
export interface ToyDataset extends Dataset {
  classes: ToyClass[];
}

/** Content of `classes.json` written next to the ImageFolder tree. */
export interface ToyClassesFile {
  generator: string;
  name: 'toy';
  metaclass: 'object';
  seed: string;
  size: number;
  imagesPerClass: number;
  testPerClass: number;
  classes: ToyClass[];
}

export const TOY_GENERATOR = `diffmix-toy/v${TOY_RENDER_VERSION}`;

type Split = 'train' | 'test';

interface Job {
  split: Split;
  cls: ToyClass;
  index: number;
  /** Record id, also the path relative to the dataset root: `train/<rawName>/0007.png`. */
  id: string;
}

function checkOptions(o: ToyDatasetOptions): Required<Pick<ToyDatasetOptions, 'size' | 'concurrency'>> {
  for (const key of ['imagesPerClass', 'testPerClass'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 0)
      throw new InvalidArgumentError(key, `must be a non-negative integer, got ${o[key]}`);
  }
  const size = o.size ?? 64;
  const concurrency = o.concurrency ?? 2 * threadPoolSize();
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new InvalidArgumentError('concurrency', `must be a positive integer, got ${concurrency}`);
  return { size, concurrency };
}

function planJobs(classes: ToyClass[], o: ToyDatasetOptions): Job[] {
  const jobs: Job[] = [];
  for (const split of ['train', 'test'] as const) {
    const n = split === 'train' ? o.imagesPerClass : o.testPerClass;
    const width = Math.max(4, String(Math.max(0, n - 1)).length);
    for (const cls of classes) {
      for (let index = 0; index < n; index++) {
        jobs.push({ split, cls, index, id: `${split}/${cls.rawName}/${String(index).padStart(width, '0')}.png` });
      }
    }
  }
  return jobs;
}

/**
 * The Rng of one image: `Rng.fromSeed(seed).split('toy').split('<split>/<class id>/<index>')`, so an
 * image does not depend on how many others are generated or in which order.
 */
export function toyImageRng(seed: number | bigint | string, split: Split, classId: number, index: number): Rng {
  return Rng.fromSeed(seed).split('toy').split(`${split}/${classId}/${index}`);
}

/** Renders and encodes every job with bounded concurrency, handing each PNG to `sink` in job order. */
async function produce(
  jobs: Job[],
  o: ToyDatasetOptions,
  size: number,
  concurrency: number,
  sink: (job: Job, png: Uint8Array) => Promise<void> | void,
): Promise<void> {
  const root = Rng.fromSeed(o.seed).split('toy');
  const inFlight: Array<Promise<void>> = [];
  for (const job of jobs) {
    const img = renderToyImage(job.cls, root.split(`${job.split}/${job.cls.id}/${job.index}`), size);
    inFlight.push(
      encodePng(img.data, size, size).then(async (png) => {
        await sink(job, png);
        o.progress?.tick();
      }),
    );
    if (inFlight.length >= concurrency) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

/**
 * Generates the toy dataset in memory: PNG bytes in `BytesRecord`s (ids `train/<class folder>/0000.png`),
 * metaclass 'object', classes named like "red-striped circle".
 */
export async function generateToyDataset(options: ToyDatasetOptions): Promise<ToyDataset> {
  const { size, concurrency } = checkOptions(options);
  const classes = toyClasses(options.numClasses);
  const jobs = planJobs(classes, options);
  const records = new Map<string, BytesRecord>();
  await produce(jobs, options, size, concurrency, (job, png) => {
    records.set(job.id, { id: job.id, label: job.cls.id, bytes: png });
  });
  const pick = (split: Split) => jobs.filter((j) => j.split === split).map((j) => records.get(j.id) as BytesRecord);
  return { name: 'toy', metaclass: 'object', classes, train: pick('train'), test: pick('test') };
}

/**
 * Writes the toy dataset as an ImageFolder tree and returns it with `FileRecord`s:
 *
 *     dir/train/<id>.<colour>-<pattern>_<shape>/<index>.png
 *     dir/test/<id>.<colour>-<pattern>_<shape>/<index>.png
 *     dir/classes.json      (ToyClassesFile; written last)
 *
 * Class folders carry a zero-padded id prefix so that sorting them gives the class ids, and the
 * ImageFolder adapter's `cleanClassName` turns them back into the class names. Existing files are
 * overwritten.
 */
export async function writeToyDataset(dir: string, options: ToyDatasetOptions): Promise<ToyDataset> {
  const { size, concurrency } = checkOptions(options);
  const classes = toyClasses(options.numClasses);
  const jobs = planJobs(classes, options);
  const root = path.resolve(dir);
  for (const split of ['train', 'test'] as const) {
    for (const cls of classes) await mkdir(path.join(root, split, cls.rawName), { recursive: true });
  }
  await produce(jobs, options, size, concurrency, (job, png) => writeFile(path.join(root, ...job.id.split('/')), png));
  const meta: ToyClassesFile = {
    generator: TOY_GENERATOR,
    name: 'toy',
    metaclass: 'object',
    seed: String(options.seed),
    size,
    imagesPerClass: options.imagesPerClass,
    testPerClass: options.testPerClass,
    classes,
  };
  await writeFile(path.join(root, 'classes.json'), `${JSON.stringify(meta, null, 2)}\n`);
  const record = (j: Job): FileRecord => ({ id: j.id, label: j.cls.id, path: path.join(root, ...j.id.split('/')) });
  return {
    name: 'toy',
    metaclass: 'object',
    classes,
    train: jobs.filter((j) => j.split === 'train').map(record),
    test: jobs.filter((j) => j.split === 'test').map(record),
    root,
  };
}
