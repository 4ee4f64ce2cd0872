/**
 * The small, exact float32 steps of the SD pipeline between network calls, written out so that
 * each can be checked against the diffusers reference one by one.
 */

/** HWC uint8 RGB → NCHW float32 in [-1, 1] (`2·x/255 − 1`, as diffusers' VaeImageProcessor). */
export function rgbToModelInput(rgb: Uint8Array, width: number, height: number): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      // float32 rounding at each step like torch: x/255 then 2x − 1
      const x = Math.fround((rgb[i * 3 + c] as number) / 255);
      out[c * plane + i] = Math.fround(Math.fround(2 * x) - 1);
    }
  }
  return out;
}

/**
 * Decoder output NCHW in about [-1, 1] → HWC float in [0, 1]: `clamp(x/2 + 0.5, 0, 1)`.
 */
export function modelOutputToFloatHWC(pixels: Float32Array, width: number, height: number): Float32Array {
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.fround(Math.fround((pixels[c * plane + i] as number) / 2) + 0.5);
      out[i * 3 + c] = Math.min(Math.max(v, 0), 1);
    }
  }
  return out;
}

/** `round(x·255)` as uint8 (numpy's round-half-even, as diffusers' numpy_to_pil). */
export function floatHWCToRgb(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = Math.fround((values[i] as number) * 255);
    const r = Math.round(x);
    // half-even tie-breaking
    out[i] = Math.abs(x - Math.trunc(x)) === 0.5 ? 2 * Math.round(x / 2) : r;
  }
  return out;
}

/**
 * Sampling from the VAE's diagonal Gaussian given `parameters` = mean ++ logvar (channels), as
 * diffusers' DiagonalGaussianDistribution: `logvar = clamp(logvar, −30, 20)`, `std = exp(0.5·logvar)`,
 * `z = mean + std·noise`, then scaled by the VAE's scaling factor.
 * `parameters` is [B, 2C, h, w]; `noise` is [B, C, h, w]; without noise, the mean (mode).
 */
export function sampleLatents(parameters: Float32Array, dims: number[], scalingFactor: number, noise?: Float32Array): Float32Array {
  const [b, c2, h, w] = dims as [number, number, number, number];
  const c = c2 / 2;
  const plane = h * w;
  const out = new Float32Array(b * c * plane);
  for (let n = 0; n < b; n++) {
    for (let ch = 0; ch < c; ch++) {
      const meanBase = (n * c2 + ch) * plane;
      const logvarBase = (n * c2 + c + ch) * plane;
      const outBase = (n * c + ch) * plane;
      for (let i = 0; i < plane; i++) {
        const mean = parameters[meanBase + i] as number;
        let z = mean;
        if (noise) {
          const lv = Math.min(20, Math.max(-30, parameters[logvarBase + i] as number));
          const std = Math.fround(Math.exp(Math.fround(0.5 * lv)));
          z = Math.fround(mean + Math.fround(std * (noise[outBase + i] as number)));
        }
        out[outBase + i] = Math.fround(scalingFactor * z);
      }
    }
  }
  return out;
}

/** Classifier-free guidance over a [2B, …] UNet output (unconditional rows first): `u + g·(c − u)`. */
export function applyGuidance(unetOut: Float32Array, guidanceScale: number): Float32Array {
  const half = unetOut.length / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const u = unetOut[i] as number;
    const c = unetOut[half + i] as number;
    out[i] = Math.fround(u + Math.fround(guidanceScale * Math.fround(c - u)));
  }
  return out;
}

/** Divides every element by `divisor` in float32 (latents / scaling factor before decoding, as diffusers divides). */
export function divide(values: Float32Array, divisor: number): Float32Array {
  const out = new Float32Array(values.length);
  const d = Math.fround(divisor);
  for (let i = 0; i < values.length; i++) out[i] = Math.fround((values[i] as number) / d);
  return out;
}

/** The batch concatenated with itself (latents for the unconditional and conditional rows). */
export function repeatBatch(values: Float32Array, times: number): Float32Array {
  const out = new Float32Array(values.length * times);
  for (let i = 0; i < times; i++) out.set(values, i * values.length);
  return out;
}
