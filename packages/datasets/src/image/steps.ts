/**
 * Geometry steps for the classifier and fine-tuning pipelines, with torchvision's semantics.
 *
 * A step edits a `GeometryPlan` (see `plan.ts`): steps compose freely, and the chain runs as one
 * libvips pass with the decode wherever sharp's fixed operation order allows. Random steps draw from
 * the `Rng` passed to `decodeImage`/`transformImage`, in the order the steps are listed; the draws
 * of each step are documented, so a seed reproduces the same crops on any machine.
 *
 * Every resize uses `RESIZE_KERNEL` (Catmull-Rom cubic, see `decode.ts`).
 */
import { InvalidArgumentError, type Rng } from '@diffmix/core';
import type { GeometryPlan } from './plan.js';
import type { Padding, Region } from './types.js';

export interface ImageStep {
  /** Human-readable description, e.g. `randomResizedCrop(224)`. */
  readonly name: string;
  /** Whether the step draws from the Rng (then an Rng is required). */
  readonly random: boolean;
  apply(plan: GeometryPlan, rng: Rng | undefined): void;
}

type SizeArg = number | { width: number; height: number };

function toSize(what: string, size: SizeArg): { width: number; height: number } {
  const s = typeof size === 'number' ? { width: size, height: size } : size;
  if (!Number.isInteger(s.width) || !Number.isInteger(s.height) || s.width < 1 || s.height < 1) {
    throw new InvalidArgumentError(what, `must be a positive integer or {width, height} of them, got ${JSON.stringify(size)}`);
  }
  return s;
}

function sizeName(s: { width: number; height: number }): string {
  return s.width === s.height ? String(s.width) : `${s.width}×${s.height}`;
}

/** Python's `round()`: halves go to the even neighbour (torchvision computes crop sizes with it). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function needRng(rng: Rng | undefined, name: string): Rng {
  if (!rng) throw new InvalidArgumentError('rng', `step ${name} is random: pass an Rng`);
  return rng;
}

/** Resizes to exactly `width`×`height` (aspect ratio not kept). */
export function resize(width: number, height: number): ImageStep {
  const s = toSize('resize', { width, height });
  return { name: `resize(${sizeName(s)})`, random: false, apply: (plan) => plan.resize(s.width, s.height) };
}

/** Resizes to `size`×`size` (torchvision `Resize((size, size))`). */
export function resizeSquare(size: number): ImageStep {
  const s = toSize('size', size);
  return { name: `resizeSquare(${s.width})`, random: false, apply: (plan) => plan.resize(s.width, s.height) };
}

/** The output size of torchvision's `Resize(size)` (an int): shorter side → `size`, longer side `int(size · long / short)`. */
export function shorterSideSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.max(1, Math.floor((size * height) / width)) };
  return { width: Math.max(1, Math.floor((size * width) / height)), height: size };
}

/** Resizes so the shorter side is `size`, keeping the aspect ratio (torchvision `Resize(size)`). */
export function resizeShorter(size: number): ImageStep {
  toSize('size', size);
  return {
    name: `resizeShorter(${size})`,
    random: false,
    apply(plan) {
      const t = shorterSideSize(plan.width, plan.height, size);
      plan.resize(t.width, t.height);
    },
  };
}

/** Offset of a centred window, as torchvision's `center_crop` (zero padding when the window is larger). */
function centreOffset(image: number, window: number): number {
  if (window > image) return -Math.floor((window - image) / 2);
  return roundHalfEven((image - window) / 2);
}

/** The window torchvision's `CenterCrop` takes from a `width`×`height` image. */
export function centerCropRegion(width: number, height: number, size: SizeArg): Region {
  const s = toSize('size', size);
  return { left: centreOffset(width, s.width), top: centreOffset(height, s.height), width: s.width, height: s.height };
}

/** Crops the centre (torchvision `CenterCrop`: offsets `round((W − w) / 2)`; zero padding if the image is smaller). */
export function centerCrop(size: SizeArg): ImageStep {
  const s = toSize('size', size);
  return {
    name: `centerCrop(${sizeName(s)})`,
    random: false,
    apply: (plan) => plan.crop(centerCropRegion(plan.width, plan.height, s)),
  };
}

/** Crops a fixed window (may extend past the image: zero fill). */
export function crop(region: Region): ImageStep {
  return {
    name: `crop(${region.left},${region.top},${region.width}×${region.height})`,
    random: false,
    apply: (plan) => plan.crop(region),
  };
}

/** torchvision padding: one number (all sides), [left/right, top/bottom] or [left, top, right, bottom]. */
export type PaddingArg = number | readonly [number, number] | readonly [number, number, number, number];

export function toPadding(padding: PaddingArg): Padding {
  const p: Padding =
    typeof padding === 'number'
      ? { left: padding, top: padding, right: padding, bottom: padding }
      : padding.length === 2
        ? { left: padding[0], top: padding[1], right: padding[0], bottom: padding[1] }
        : { left: padding[0], top: padding[1], right: padding[2], bottom: padding[3] };
  for (const v of Object.values(p)) {
    if (!Number.isInteger(v) || v < 0)
      throw new InvalidArgumentError('padding', `must be non-negative integers, got ${JSON.stringify(padding)}`);
  }
  return p;
}

/** Zero-pads each side (torchvision `Pad(padding)` with fill 0). */
export function pad(padding: PaddingArg): ImageStep {
  const p = toPadding(padding);
  return {
    name: `pad(${p.left},${p.top},${p.right},${p.bottom})`,
    random: false,
    apply(plan) {
      plan.crop({ left: -p.left, top: -p.top, width: plan.width + p.left + p.right, height: plan.height + p.top + p.bottom });
    },
  };
}

export interface RandomCropOptions {
  /** Zero padding added before cropping (torchvision's `padding`). */
  padding?: PaddingArg;
  /** Pad further when the (padded) image is smaller than the crop (torchvision's `pad_if_needed`). */
  padIfNeeded?: boolean;
}

/**
 * The window torchvision's `RandomCrop(size, padding, pad_if_needed)` takes, in the coordinates of
 * the unpadded image (negative offsets land in the zero padding). Draws: `top = rng.int(H − h + 1)`,
 * then `left = rng.int(W − w + 1)` on the padded size; both are drawn even when the window fills
 * an axis (`int(1)` consumes one word), so the stream layout does not depend on the image size.
 */
export function randomCropRegion(
  width: number,
  height: number,
  size: SizeArg,
  rng: Rng,
  options: RandomCropOptions = {},
): Region {
  const s = toSize('size', size);
  const p = toPadding(options.padding ?? 0);
  let offL = p.left;
  let offT = p.top;
  let w = width + p.left + p.right;
  let h = height + p.top + p.bottom;
  if (options.padIfNeeded) {
    // torchvision pads both sides of the axis by (size − current).
    if (w < s.width) {
      const d = s.width - w;
      offL += d;
      w += 2 * d;
    }
    if (h < s.height) {
      const d = s.height - h;
      offT += d;
      h += 2 * d;
    }
  }
  if (w < s.width || h < s.height) {
    throw new InvalidArgumentError('size', `crop ${s.width}×${s.height} is larger than the (padded) image ${w}×${h}`);
  }
  const top = rng.int(h - s.height + 1);
  const left = rng.int(w - s.width + 1);
  return { left: left - offL, top: top - offT, width: s.width, height: s.height };
}

/** torchvision `RandomCrop(size, padding, pad_if_needed, fill=0)`: zero-pad, then a uniformly placed window. */
export function randomCrop(size: SizeArg, options: RandomCropOptions = {}): ImageStep {
  const s = toSize('size', size);
  toPadding(options.padding ?? 0);
  const name = `randomCrop(${sizeName(s)})`;
  return {
    name,
    random: true,
    apply: (plan, rng) => plan.crop(randomCropRegion(plan.width, plan.height, s, needRng(rng, name), options)),
  };
}

/** Mirrors left↔right, always. */
export function horizontalFlip(): ImageStep {
  return { name: 'horizontalFlip', random: false, apply: (plan) => plan.flop() };
}

/** torchvision `RandomHorizontalFlip(p)`: mirrors when `rng.uniform() < p` (one draw). */
export function randomHorizontalFlip(p = 0.5): ImageStep {
  if (!(p >= 0 && p <= 1)) throw new InvalidArgumentError('p', `must be in [0, 1], got ${p}`);
  const name = `randomHorizontalFlip(${p})`;
  return {
    name,
    random: true,
    apply(plan, rng) {
      if (needRng(rng, name).uniform() < p) plan.flop();
    },
  };
}

export interface RandomResizedCropOptions {
  /** Range of the crop's area as a fraction of the image (default [0.08, 1]). */
  scale?: readonly [number, number];
  /** Range of the crop's aspect ratio w/h, sampled log-uniformly (default [3/4, 4/3]). */
  ratio?: readonly [number, number];
}

/**
 * The window of torchvision's `RandomResizedCrop.get_params`: up to 10 attempts of
 * `area = A · U(scale)`, `r = exp(U(log ratio))`, `w = round(√(area·r))`, `h = round(√(area/r))`
 * (Python rounding); the first that fits is placed at `top = rng.int(H − h + 1)`,
 * `left = rng.int(W − w + 1)`. After 10 misses: the centred largest crop whose ratio is clamped to
 * `ratio` (the whole image when its ratio is within range). Draws per attempt: two uniforms
 * (scale, then log-ratio); then two ints for the accepted window.
 */
export function randomResizedCropRegion(width: number, height: number, rng: Rng, options: RandomResizedCropOptions = {}): Region {
  const [s0, s1] = options.scale ?? [0.08, 1];
  const [r0, r1] = options.ratio ?? [3 / 4, 4 / 3];
  if (!(s0 > 0 && s0 <= s1)) throw new InvalidArgumentError('scale', `must be 0 < min ≤ max, got [${s0}, ${s1}]`);
  if (!(r0 > 0 && r0 <= r1)) throw new InvalidArgumentError('ratio', `must be 0 < min ≤ max, got [${r0}, ${r1}]`);
  const area = width * height;
  const logR0 = Math.log(r0);
  const logR1 = Math.log(r1);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * (s0 + (s1 - s0) * rng.uniform());
    const aspect = Math.exp(logR0 + (logR1 - logR0) * rng.uniform());
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { left, top, width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < r0) h = Math.max(1, roundHalfEven(w / r0));
  else if (inRatio > r1) w = Math.max(1, roundHalfEven(h * r1));
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

/**
 * torchvision `RandomResizedCrop(size, scale=(0.08, 1), ratio=(3/4, 4/3))`: a random window
 * (`randomResizedCropRegion`), resized to `size` with `RESIZE_KERNEL` — one libvips pass
 * (extract + resize) when it is the first geometric step.
 */
export function randomResizedCrop(size: SizeArg, options: RandomResizedCropOptions = {}): ImageStep {
  const s = toSize('size', size);
  const name = `randomResizedCrop(${sizeName(s)})`;
  return {
    name,
    random: true,
    apply(plan, rng) {
      plan.crop(randomResizedCropRegion(plan.width, plan.height, needRng(rng, name), options));
      plan.resize(s.width, s.height);
    },
  };
}

/** Classifier training steps: `RandomResizedCrop(size)` + `RandomHorizontalFlip(0.5)`. */
export function classifierTrainSteps(size = 224): ImageStep[] {
  return [randomResizedCrop(size), randomHorizontalFlip(0.5)];
}

/** Classifier evaluation steps: `Resize(round(size / 0.875))` + `CenterCrop(size)` (256 → 224). */
export function classifierEvalSteps(size = 224): ImageStep[] {
  return [resizeShorter(Math.round(size / 0.875)), centerCrop(size)];
}

/** Diffusion fine-tuning steps: `Resize(size)` (shorter side), `CenterCrop` or `RandomCrop(size)`, optional random flip. */
export function fineTuneSteps(size = 512, options: { randomCrop?: boolean; flip?: boolean } = {}): ImageStep[] {
  const steps = [resizeShorter(size), options.randomCrop ? randomCrop(size) : centerCrop(size)];
  if (options.flip ?? true) steps.push(randomHorizontalFlip(0.5));
  return steps;
}
