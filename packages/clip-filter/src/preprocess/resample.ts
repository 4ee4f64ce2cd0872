/**
 * Antialiased separable resampling of 8-bit RGB images, bit-exact with the two resizers that
 * Hugging Face's `CLIPImageProcessor` uses:
 *
 * - `'torchvision'`: `torchvision.transforms.v2.functional.resize(uint8 tensor, …, antialias=True)`
 *   on the CPU, i.e. PyTorch's `_upsample_bicubic2d_aa` / `_upsample_bilinear2d_aa` uint8 kernel
 *   (`aten/src/ATen/native/cpu/UpSampleKernel.cpp`, `_compute_index_ranges_int16_weights`): weights
 *   in float64, normalised per output pixel, then rounded to int16 with a precision chosen from the
 *   largest weight (`weights_precision`, ≤ 21 bits; 15 for a 224 px upscale); transformers 5's
 *   default `CLIPImageProcessor`.
 * - `'pil'`: Pillow's `Image.resize(…, BICUBIC | BILINEAR)` (`libImaging/Resample.c`): the same
 *   filter and support, weights rounded with a fixed 22-bit precision; transformers 4's
 *   `CLIPImageProcessor` and transformers 5's `CLIPImageProcessorPil`.
 *
 * Both run a horizontal pass (when the width changes), rounding to uint8, then a vertical pass
 * (when the height changes); a pixel is `clamp((2^(p−1) + Σ wᵢ·xᵢ) >> p, 0, 255)`. The two differ
 * only in `p`, so their outputs differ by at most a level here and there (measured on the golden
 * images: ≤ 2 levels, 0–1 % of the values).
 *
 * The filter is Keys' cubic with a = −0.5 (bicubic) or the triangle (bilinear); when downscaling
 * the support grows by the scale factor (antialiasing). Coordinates align pixel centres:
 * `center = (i + 0.5)·scale`.
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { Region, RgbImage } from '@diffmix/datasets';

/** Which implementation's integer rounding to reproduce. */
export type ResampleRounding = 'torchvision' | 'pil';
/** PIL resample codes honoured: 2 = bilinear, 3 = bicubic. */
export type ResampleFilter = 'bilinear' | 'bicubic';

interface FilterDef {
  support: number;
  fn: (x: number) => number;
}

// The exact float expressions of each library (they differ by an ulp now and then, which can move
// a 22-bit weight by one unit).
const TORCH_FILTERS: Record<ResampleFilter, FilterDef> = {
  bicubic: {
    support: 2,
    fn(x) {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1; // cubic_convolution1
      if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a; // cubic_convolution2
      return 0;
    },
  },
  bilinear: {
    support: 1,
    fn(x) {
      const t = Math.abs(x);
      return t < 1 ? 1 - t : 0;
    },
  },
};

const PIL_FILTERS: Record<ResampleFilter, FilterDef> = {
  bicubic: {
    support: 2,
    fn(x) {
      const a = -0.5;
      const t = x < 0 ? -x : x;
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  bilinear: {
    support: 1,
    fn(x) {
      const t = x < 0 ? -x : x;
      return t < 1 ? 1 - t : 0;
    },
  },
};

/** Integer weights of one axis: for output i, `size[i]` weights starting at input `min[i]`. */
export interface AxisWeights {
  inSize: number;
  outSize: number;
  /** Weights per output pixel (row stride of `weights`). */
  ksize: number;
  min: Int32Array;
  size: Int32Array;
  weights: Int32Array;
  /** Fixed-point bits of `weights`. */
  precision: number;
}

/** C's `(int)` cast of a double (truncation toward zero). */
const trunc = Math.trunc;

/** Rounds half away from zero, as `(v < 0) ? (int)(-0.5 + v) : (int)(0.5 + v)`. */
function roundAway(v: number): number {
  return v < 0 ? trunc(-0.5 + v) : trunc(0.5 + v);
}

/** Computes the integer weights of one axis (see module doc). */
export function axisWeights(inSize: number, outSize: number, filter: ResampleFilter, rounding: ResampleRounding): AxisWeights {
  if (!Number.isInteger(inSize) || !Number.isInteger(outSize) || inSize < 1 || outSize < 1) {
    throw new InvalidArgumentError('size', `input and output sizes must be positive integers, got ${inSize} → ${outSize}`);
  }
  const def = (rounding === 'pil' ? PIL_FILTERS : TORCH_FILTERS)[filter];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = def.support * filterScale;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const ksize = Math.ceil(support) * 2 + 1;
  const min = new Int32Array(outSize);
  const size = new Int32Array(outSize);
  const real = new Float64Array(outSize * ksize);
  let wtMax = 0;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const xmin = Math.max(trunc(center - support + 0.5), 0);
    let xsize = Math.min(trunc(center + support + 0.5), inSize) - xmin;
    xsize = Math.min(Math.max(xsize, 0), ksize);
    min[i] = xmin;
    size[i] = xsize;
    const base = i * ksize;
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = def.fn((j + xmin - center + 0.5) * invScale);
      real[base + j] = w;
      total += w;
    }
    if (total !== 0) {
      for (let j = 0; j < xsize; j++) {
        const w = (real[base + j] as number) / total;
        real[base + j] = w;
        if (w > wtMax) wtMax = w;
      }
    }
  }
  let precision: number;
  if (rounding === 'pil') {
    precision = 22; // PRECISION_BITS = 32 - 8 - 2
  } else {
    // _compute_index_ranges_int16_weights: the largest precision whose scaled maximum fits int16.
    for (precision = 0; precision < 22; precision++) {
      const next = trunc(0.5 + wtMax * 2 ** (precision + 1));
      if (next >= 1 << 15) break;
    }
  }
  const weights = new Int32Array(outSize * ksize);
  const unit = 2 ** precision;
  for (let k = 0; k < real.length; k++) weights[k] = roundAway((real[k] as number) * unit);
  return { inSize, outSize, ksize, min, size, weights, precision };
}

function clampByte(v: number): number {
  return Math.min(255, Math.max(0, v));
}

export interface ResampleOptions {
  filter?: ResampleFilter;
  rounding?: ResampleRounding;
  /**
   * Only this window of the resized image is produced (the result is `region.width`×`region.height`);
   * parts outside the resized image are zero. Every produced pixel equals the full resize's pixel:
   * resize-then-crop without computing what the crop throws away.
   */
  region?: Region;
}

/**
 * Resizes `img` to `width`×`height` with the antialiased filter of torchvision or Pillow (see module
 * doc). An axis whose size does not change is not resampled (both libraries skip that pass).
 */
export function resampleRgb(img: RgbImage, width: number, height: number, options: ResampleOptions = {}): RgbImage {
  const filter = options.filter ?? 'bicubic';
  const rounding = options.rounding ?? 'torchvision';
  const region = options.region ?? { left: 0, top: 0, width, height };
  if (![region.left, region.top, region.width, region.height].every(Number.isInteger) || region.width < 1 || region.height < 1) {
    throw new InvalidArgumentError('region', `must be integers with a positive size, got ${JSON.stringify(region)}`);
  }
  const inW = img.width;
  const inH = img.height;
  if (img.data.length !== inW * inH * 3) {
    throw new InvalidArgumentError('image', `expected ${inW * inH * 3} bytes (${inW}×${inH}×3), got ${img.data.length}`);
  }
  // Output window clipped to the resized image.
  const x0 = Math.max(0, region.left);
  const x1 = Math.min(width, region.left + region.width);
  const y0 = Math.max(0, region.top);
  const y1 = Math.min(height, region.top + region.height);
  const out = new Uint8Array(region.width * region.height * 3);
  if (x1 <= x0 || y1 <= y0) return { data: out, width: region.width, height: region.height, channels: 3 };

  const needH = width !== inW;
  const needV = height !== inH;
  const hw = needH ? axisWeights(inW, width, filter, rounding) : undefined;
  const vw = needV ? axisWeights(inH, height, filter, rounding) : undefined;

  // Input rows the vertical pass reads for output rows [y0, y1).
  let rowFirst = y0;
  let rowLast = y1; // exclusive
  if (vw) {
    rowFirst = vw.min[y0] as number;
    rowLast = 0;
    for (let y = y0; y < y1; y++) rowLast = Math.max(rowLast, (vw.min[y] as number) + (vw.size[y] as number));
  }
  const cols = x1 - x0;
  const src = img.data;

  // Horizontal pass on the needed rows, output columns [x0, x1): tmp is (rowLast−rowFirst) × cols.
  const rows = rowLast - rowFirst;
  let tmp: Uint8Array;
  if (hw) {
    tmp = new Uint8Array(rows * cols * 3);
    const { ksize, min, size, weights, precision } = hw;
    const half = 1 << (precision - 1);
    for (let r = 0; r < rows; r++) {
      const srcRow = (rowFirst + r) * inW * 3;
      const dstRow = r * cols * 3;
      for (let x = x0; x < x1; x++) {
        const xmin = min[x] as number;
        const n = size[x] as number;
        const kb = x * ksize;
        let s0 = half;
        let s1 = half;
        let s2 = half;
        let p = srcRow + xmin * 3;
        for (let j = 0; j < n; j++, p += 3) {
          const w = weights[kb + j] as number;
          s0 += (src[p] as number) * w;
          s1 += (src[p + 1] as number) * w;
          s2 += (src[p + 2] as number) * w;
        }
        const d = dstRow + (x - x0) * 3;
        tmp[d] = clampByte(s0 >> precision);
        tmp[d + 1] = clampByte(s1 >> precision);
        tmp[d + 2] = clampByte(s2 >> precision);
      }
    }
  } else {
    tmp = new Uint8Array(rows * cols * 3);
    for (let r = 0; r < rows; r++) {
      const s = ((rowFirst + r) * inW + x0) * 3;
      tmp.set(src.subarray(s, s + cols * 3), r * cols * 3);
    }
  }

  // Vertical pass into the output window (exact integer sums < 2^31, held in doubles).
  const ox = x0 - region.left;
  const acc = new Float64Array(cols * 3);
  for (let y = y0; y < y1; y++) {
    const dstRow = ((y - region.top) * region.width + ox) * 3;
    if (!vw) {
      const s = (y - rowFirst) * cols * 3;
      out.set(tmp.subarray(s, s + cols * 3), dstRow);
      continue;
    }
    const { ksize, min, size, weights, precision } = vw;
    const half = 1 << (precision - 1);
    const ymin = (min[y] as number) - rowFirst;
    const n = size[y] as number;
    const kb = y * ksize;
    const stride = cols * 3;
    // Row by row into an accumulator: sequential memory access (same sums, same order per pixel).
    acc.fill(half);
    for (let j = 0; j < n; j++) {
      const w = weights[kb + j] as number;
      const r = (ymin + j) * stride;
      for (let c = 0; c < stride; c++) acc[c] = (acc[c] as number) + (tmp[r + c] as number) * w;
    }
    for (let c = 0; c < stride; c++) out[dstRow + c] = clampByte((acc[c] as number) >> precision);
  }
  return { data: out, width: region.width, height: region.height, channels: 3 };
}
