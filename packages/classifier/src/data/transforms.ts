/**
 * The official Diff-Mix classifier transforms (see shared reference notes, "Resolution modes"):
 *
 * - train: square `Resize((R, R))` → `RandomCrop(S, padding=8)` → `RandomHorizontalFlip()` →
 *   ImageNet normalisation;
 * - test: square `Resize((R, R))` → `CenterCrop(S)` → ImageNet normalisation;
 *
 * with (S, R) = (448, 512), (384, 440), (224, 256). Other sizes (tests, demos at 32–64 px) use
 * R = round(S / 0.875) — the 224 / 448 ratio — and a padding scaled like the crop, round(8 · S / 224)
 * (at least 1), so a 32 px run augments like a 224 px one instead of padding a quarter of the image.
 *
 * The square resize runs in the decoding pass (sharp / libvips, `@diffmix/datasets` steps); the padded
 * random crop and the flip run on the decoded pixels (`trainAugment`), with the same draws as the
 * datasets steps (`randomCropRegion`: top then left; then one uniform for the flip). Why not the
 * `randomCrop({ padding })` step in the decoding pass: with sharp 0.35 an `extract` followed by
 * `extend` in one pipeline reports the pre-padding size in its output info (the pixels have the
 * padded size), so `decodeImage` returns an image whose width/height disagree with its data (seen
 * here for ~40 % of padded crops; reported, not fixed here — it is @diffmix/datasets' code).
 */
import { InvalidArgumentError, type Rng } from '@diffmix/core';
import {
  centerCrop,
  cropImage,
  flipHorizontal,
  IMAGENET_NORMALIZATION,
  type ImageStep,
  type Normalization,
  type RgbImage,
  randomCrop,
  randomCropRegion,
  randomHorizontalFlip,
  resizeSquare,
} from '@diffmix/datasets';

/** The resize side R of each official resolution mode (crop side S → R). */
export const OFFICIAL_RESIZE: Readonly<Record<number, number>> = { 224: 256, 384: 440, 448: 512 };

export interface TransformConfig {
  /** Crop side S (the model's input size). */
  size: number;
  /** Square resize side R (default: the official value for 224 / 384 / 448, else round(S / 0.875)). */
  resize?: number;
  /** Zero padding of the random crop (default 8 at the official sizes, else round(8·S/224), ≥ 1). */
  padding?: number;
  /** Horizontal flip probability (default 0.5). */
  flip?: number;
  normalization?: Normalization;
}

export interface ResolvedTransform {
  size: number;
  resize: number;
  padding: number;
  flip: number;
  normalization: Normalization;
}

export function resolveTransform(config: TransformConfig): ResolvedTransform {
  const { size } = config;
  if (!Number.isInteger(size) || size < 8) throw new InvalidArgumentError('size', `must be an integer ≥ 8, got ${size}`);
  const resize = config.resize ?? OFFICIAL_RESIZE[size] ?? Math.round(size / 0.875);
  if (!Number.isInteger(resize) || resize < size) {
    throw new InvalidArgumentError('resize', `must be an integer ≥ size (${size}), got ${resize}`);
  }
  const padding = config.padding ?? (OFFICIAL_RESIZE[size] !== undefined ? 8 : Math.max(1, Math.round((8 * size) / 224)));
  if (!Number.isInteger(padding) || padding < 0)
    throw new InvalidArgumentError('padding', `must be an integer ≥ 0, got ${padding}`);
  const flip = config.flip ?? 0.5;
  if (!(flip >= 0 && flip <= 1)) throw new InvalidArgumentError('flip', `must be in [0, 1], got ${flip}`);
  return { size, resize, padding, flip, normalization: config.normalization ?? IMAGENET_NORMALIZATION };
}

/**
 * The whole train geometry as datasets steps (square resize, padded random crop, random flip), for
 * callers decoding themselves; the training pipeline decodes with {@link trainDecodeSteps} and
 * applies {@link trainAugment} (same draws, see the module comment).
 */
export function trainSteps(t: ResolvedTransform): ImageStep[] {
  const steps = [resizeSquare(t.resize), randomCrop(t.size, { padding: t.padding })];
  if (t.flip > 0) steps.push(randomHorizontalFlip(t.flip));
  return steps;
}

/** What the training pipeline runs while decoding: the square resize. */
export function trainDecodeSteps(t: ResolvedTransform): ImageStep[] {
  return [resizeSquare(t.resize)];
}

/** Padded random crop then random horizontal flip on a decoded (resized) image. */
export function trainAugment(img: RgbImage, t: ResolvedTransform, rng: Rng): RgbImage {
  const cropped = cropImage(img, randomCropRegion(img.width, img.height, t.size, rng, { padding: t.padding }));
  return t.flip > 0 && rng.uniform() < t.flip ? flipHorizontal(cropped) : cropped;
}

/** Test geometry: square resize, center crop. */
export function testSteps(t: ResolvedTransform): ImageStep[] {
  return [resizeSquare(t.resize), centerCrop(t.size)];
}

/**
 * Binds random steps to one generator, so that each sample's augmentation comes from its own
 * `Rng` (derived from seed, epoch and position) whatever order or concurrency the loader decodes in.
 * The steps draw from `rng` in list order, exactly as `decodeImage` would.
 */
export function bindSteps(steps: readonly ImageStep[], rng: Rng): ImageStep[] {
  return steps.map((s) => (s.random ? { name: s.name, random: false, apply: (plan) => s.apply(plan, rng) } : s));
}
