/**
 * `ClipScorer`: the probability that an image shows the metaclass, i.e.
 * `softmax(logit_scale · [cos(img, pos), cos(img, neg)])[0]` with a [positive, negative] caption
 * pair, exactly what the official Diff-Mix filter computes with `CLIPModel` + `CLIPProcessor`.
 * Text embeddings are computed once and cached; images are preprocessed (`ClipImageProcessor`)
 * and run through the vision graph in batches, with decoding prefetched in parallel.
 */
import {
  AbortedError,
  createProgress,
  type DatasetRecord,
  InvalidArgumentError,
  type Logger,
  type ProgressMode,
  type ProgressReporter,
  silentLogger,
} from '@diffmix/core';
import { createImageLoader, type DecodeOptions, type RgbImage } from '@diffmix/datasets';
import type { ClipModel, Embeddings, TextPadding } from '../model/clip-model.js';
import { type ClipResampler, ClipImageProcessor } from '../preprocess/processor.js';
import { type CaptionPair, resolveCaptions } from './captions.js';
import { scoresFromLogits, similarityLogits } from './math.js';

export interface ImageScore {
  /** Probability of the positive caption. */
  score: number;
  /** `logits_per_image` row: [positive, negative]. */
  logits: number[];
}

export interface ClipScorerOptions {
  /** Metaclass whose caption pair to use (`METACLASS_CAPTIONS`), unless `captions` is given. */
  metaclass?: string;
  /** [positive, negative] captions; override the metaclass's pair. */
  captions?: readonly string[];
  /** Images per vision-graph call (default 32). */
  batchSize?: number;
  /** Caption padding: 'longest' (CLIPProcessor's `padding=True`, default) or 'max_length' (77); both give the same embeddings. */
  padding?: TextPadding;
  /** Image resize to reproduce (default 'torchvision', transformers 5's CLIPProcessor). */
  resampler?: ClipResampler;
  /** Decoding options (alpha handling, failOn…). */
  decode?: Omit<DecodeOptions, 'steps' | 'rng' | 'name'>;
  /** Images decoded in parallel (default: `@diffmix/datasets`' default). */
  decodeConcurrency?: number;
  logger?: Logger;
}

export interface ScoreSourcesOptions {
  /** A progress reporter to tick, or a mode for a new one (default 'auto': a bar on a TTY, JSON lines otherwise). */
  progress?: ProgressReporter | ProgressMode;
  /** Already-finished items counted in the progress total (resumed work). */
  progressInitial?: number;
  progressTotal?: number;
  signal?: AbortSignal;
}

/** An image to score: a file (`path`) or encoded bytes, named by `id`. */
export type ScoreItem = { id: string; path: string } | { id: string; bytes: Uint8Array };

export interface ScoredItem extends ImageScore {
  id: string;
  /** The file, when the item had one. */
  path?: string;
}

export class ClipScorer {
  readonly model: ClipModel;
  readonly processor: ClipImageProcessor;
  readonly captions: CaptionPair;
  readonly batchSize: number;
  readonly padding: TextPadding;
  private readonly log: Logger;
  private readonly decodeConcurrency: number | undefined;
  private textCache: Promise<Embeddings> | undefined;
  private tokenCache: { inputIds: number[][]; attentionMask: number[][] } | undefined;

  constructor(model: ClipModel, options: ClipScorerOptions = {}) {
    this.model = model;
    this.captions = resolveCaptions(options);
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new InvalidArgumentError('batchSize', `must be a positive integer, got ${batchSize}`);
    this.batchSize = batchSize;
    this.padding = options.padding ?? 'longest';
    this.log = options.logger ?? silentLogger;
    this.decodeConcurrency = options.decodeConcurrency;
    this.processor = new ClipImageProcessor(model.preprocessorConfig, {
      resampler: options.resampler ?? 'torchvision',
      ...(options.decode ? { decode: options.decode } : {}),
    });
  }

  /** Token rows of the captions (cached). */
  get tokens(): { inputIds: number[][]; attentionMask: number[][] } {
    this.tokenCache ??= this.model.tokenize(this.captions, this.padding);
    return this.tokenCache;
  }

  /** Unnormalised caption embeddings [2, dim], computed once (separate graphs only). */
  textEmbeddings(): Promise<Embeddings> {
    this.textCache ??= this.model.encodeTokens(this.tokens.inputIds, this.tokens.attentionMask).catch((err) => {
      this.textCache = undefined;
      throw err;
    });
    return this.textCache;
  }

  /** Scores `count` preprocessed images (CHW float32 each, concatenated) in one model call. */
  async scorePixelValues(pixelValues: Float32Array, count: number): Promise<ImageScore[]> {
    if (this.model.kind === 'single') {
      const logits = await this.model.singleGraphLogits(pixelValues, count, this.tokens);
      return scoresFromLogits(logits.data, logits.dim);
    }
    const text = await this.textEmbeddings();
    const images = await this.model.encodeImages(pixelValues, count);
    return scoresFromLogits(similarityLogits(images, text, this.model.logitScale.value), text.rows);
  }

  /** Scores decoded images (any size), in batches of `batchSize`. */
  async scoreImages(images: readonly RgbImage[]): Promise<ImageScore[]> {
    const out: ImageScore[] = [];
    for (let i = 0; i < images.length; i += this.batchSize) {
      const chunk = images.slice(i, i + this.batchSize);
      const values = await Promise.all(chunk.map((img) => this.processor.preprocess(img)));
      out.push(
        ...(await this.scorePixelValues(
          concat(
            values,
            chunk.map((_, k) => `image ${i + k}`),
          ),
          chunk.length,
        )),
      );
    }
    return out;
  }

  /**
   * Decodes, preprocesses and scores items in order, yielding one array per batch (so callers can
   * persist progress batch by batch). A file that cannot be decoded throws `ImageDecodeError`
   * naming it; a missing one `NotFoundError`.
   */
  async *scoreSources(
    items: readonly ScoreItem[],
    options: ScoreSourcesOptions = {},
  ): AsyncGenerator<ScoredItem[], void, undefined> {
    const progress =
      typeof options.progress === 'object'
        ? options.progress
        : createProgress({
            label: 'clip-score',
            total: options.progressTotal ?? items.length + (options.progressInitial ?? 0),
            initial: options.progressInitial ?? 0,
            mode: options.progress ?? 'auto',
          });
    const ownProgress = typeof options.progress !== 'object';
    const processor = this.processor;
    const sharp = processor.resampler === 'sharp';
    const loader = createImageLoader<Float32Array>({
      ...(this.decodeConcurrency !== undefined ? { concurrency: this.decodeConcurrency } : {}),
      prefetch: Math.max(2 * this.batchSize, 8),
      transform: sharp ? [processor.sharpStep()] : [],
      decode: processor.decode,
      map: (image) => processor.toPixelValues(sharp ? image : processor.resizeAndCropExact(image)),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const records: DatasetRecord[] = items.map((it) =>
      'path' in it ? { id: it.id, path: it.path, label: 0 } : { id: it.id, bytes: it.bytes, label: 0 },
    );
    let batch: Array<{ item: ScoreItem; values: Float32Array; name: string }> = [];
    const flush = async (): Promise<ScoredItem[]> => {
      const b = batch;
      batch = [];
      const scores = await this.scorePixelValues(
        concat(
          b.map((x) => x.values),
          b.map((x) => x.name),
        ),
        b.length,
      );
      progress.tick(b.length);
      return b.map((x, k) => {
        const s = scores[k] as ImageScore;
        const r: ScoredItem = { id: x.item.id, score: s.score, logits: s.logits };
        if ('path' in x.item) r.path = x.item.path;
        return r;
      });
    };
    let failure: unknown;
    try {
      for await (const loaded of loader.load(records)) {
        if (options.signal?.aborted) throw new AbortedError('scoring aborted');
        const item = items[loaded.index] as ScoreItem;
        batch.push({ item, values: loaded.value, name: 'path' in item ? item.path : item.id });
        if (batch.length === this.batchSize) yield await flush();
      }
      if (batch.length) yield await flush();
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      // Also when the consumer stops early (break / throw after a yield).
      if (ownProgress) progress.stop(failure ? { error: (failure as Error).message } : undefined);
    }
    this.log.debug('scored', { items: items.length });
  }
}

/** Concatenates equally sized pixel tensors; sizes differ only without a center crop. */
function concat(values: readonly Float32Array[], names: readonly string[]): Float32Array {
  const len = values[0]?.length ?? 0;
  const out = new Float32Array(len * values.length);
  values.forEach((v, i) => {
    if (v.length !== len) {
      throw new InvalidArgumentError(
        'images',
        `${names[i]} preprocesses to ${v.length} values but ${names[0]} to ${len}: images of one batch must end up the same size (enable do_center_crop or a fixed size)`,
      );
    }
    out.set(v, i * len);
  });
  return out;
}
