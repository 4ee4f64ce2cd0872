/**
 * The toy dataset's rasteriser: signed-distance shapes with one-pixel antialiasing, drawn straight
 * into an RGB buffer (no canvas, no native code).
 *
 * An image: a two-colour gradient background with soft blotches, 0–3 muted distractor blobs and
 * pixel noise; one object (the class's base shape) at a random position, scale and rotation, with a
 * random muted body colour; the class's pattern on the body (stripes, dots or checks at a random
 * angle, period and phase); and a small disc of the class's patch colour at a random place on the
 * body. Everything but shape, pattern and patch colour is a nuisance that varies per image.
 *
 * Every random number comes from the image's `Rng`, drawn in a fixed order (format version
 * `TOY_RENDER_VERSION`), so an image depends only on (class, rng seed path, size).
 */
import { InvalidArgumentError, type Rng } from '@diffmix/core';
import type { RgbImage } from '../image/index.js';
import { TOY_COLOURS, type ToyClass, type ToyPattern, type ToyShape } from './classes.js';

/** Changes whenever the drawing or the order of random draws changes (then images change). */
export const TOY_RENDER_VERSION = 1;

function clamp01(x: number): number {
  return x < 0 ? 0 : Math.min(x, 1);
}

function hsv(h: number, s: number, v: number): [number, number, number] {
  const hh = (((h % 1) + 1) % 1) * 6;
  const i = Math.floor(hh);
  const f = hh - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  const rgb: [number, number, number][] = [
    [v, t, p],
    [q, v, p],
    [p, v, t],
    [p, q, v],
    [t, p, v],
    [v, p, q],
  ];
  const [r, g, b] = rgb[i % 6] as [number, number, number];
  return [r * 255, g * 255, b * 255];
}

/**
 * Regular polygon (or star, with `inner`) vertices as a flat x, y list, centred at 0, first vertex
 * pointing up, x scaled by `sx`.
 */
function polygon(n: number, radius: number, inner?: number, sx = 1): Float64Array {
  const count = inner === undefined ? n : 2 * n;
  const xy = new Float64Array(2 * count);
  for (let k = 0; k < count; k++) {
    const r = inner !== undefined && k % 2 === 1 ? inner : radius;
    const a = -Math.PI / 2 + (2 * Math.PI * k) / count;
    xy[2 * k] = r * Math.cos(a) * sx;
    xy[2 * k + 1] = r * Math.sin(a);
  }
  return xy;
}

/** Signed distance to a closed polygon (negative inside; even-odd rule); `xy` = x0, y0, x1, y1, … */
function polygonSdf(xy: Float64Array, x: number, y: number): number {
  let best = Number.POSITIVE_INFINITY;
  let inside = false;
  const n = xy.length;
  let ax = xy[n - 2] as number;
  let ay = xy[n - 1] as number;
  for (let i = 0; i < n; i += 2) {
    const bx = xy[i] as number;
    const by = xy[i + 1] as number;
    const ex = bx - ax;
    const ey = by - ay;
    const wx = x - ax;
    const wy = y - ay;
    const t = clamp01((wx * ex + wy * ey) / (ex * ex + ey * ey));
    const dx = wx - ex * t;
    const dy = wy - ey * t;
    const d2 = dx * dx + dy * dy;
    if (d2 < best) best = d2;
    if (ay > y !== by > y && x < ax + ((y - ay) * ex) / ey) inside = !inside;
    ax = bx;
    ay = by;
  }
  const d = Math.sqrt(best);
  return inside ? -d : d;
}

function shapeSdf(shape: ToyShape, r: number): (x: number, y: number) => number {
  switch (shape) {
    case 'circle':
      return (x, y) => Math.sqrt(x * x + y * y) - r;
    case 'square': {
      const h = r * 0.82;
      return (x, y) => {
        const qx = Math.abs(x) - h;
        const qy = Math.abs(y) - h;
        const ox = Math.max(qx, 0);
        const oy = Math.max(qy, 0);
        return Math.sqrt(ox * ox + oy * oy) + Math.min(Math.max(qx, qy), 0);
      };
    }
    case 'triangle': {
      const pts = polygon(3, r * 1.2);
      return (x, y) => polygonSdf(pts, x, y + r * 0.15);
    }
    case 'diamond': {
      const pts = polygon(4, r * 1.12, undefined, 0.8);
      return (x, y) => polygonSdf(pts, x, y);
    }
    case 'hexagon': {
      const pts = polygon(6, r);
      return (x, y) => polygonSdf(pts, x, y);
    }
    case 'star': {
      const pts = polygon(5, r * 1.2, r * 0.55);
      return (x, y) => polygonSdf(pts, x, y);
    }
  }
}

/** Dark-ink coverage of the pattern at pattern-frame point (u, v), antialiased over one pixel. */
function patternCoverage(pattern: ToyPattern, period: number, phaseU: number, phaseV: number): (u: number, v: number) => number {
  switch (pattern) {
    case 'plain':
      return () => 0;
    case 'striped':
      return (u) => {
        const s = u / period + phaseU;
        const f = s - Math.floor(s);
        const sd = f < 0.5 ? -period * Math.min(f, 0.5 - f) : period * Math.min(f - 0.5, 1 - f);
        return clamp01(0.5 - sd);
      };
    case 'dotted':
      return (u, v) => {
        const gu = u / period + phaseU;
        const gv = v / period + phaseV;
        const fu = gu - Math.floor(gu) - 0.5;
        const fv = gv - Math.floor(gv) - 0.5;
        return clamp01(0.5 - (period * Math.sqrt(fu * fu + fv * fv) - 0.3 * period));
      };
    case 'checkered':
      return (u, v) => {
        const gu = u / period + phaseU;
        const gv = v / period + phaseV;
        const fu = gu - Math.floor(gu);
        const fv = gv - Math.floor(gv);
        const e = period * Math.min(fu, 1 - fu, fv, 1 - fv);
        return (Math.floor(gu) + Math.floor(gv)) & 1 ? clamp01(0.5 + e) : clamp01(0.5 - e);
      };
  }
}

/** A 32-bit integer hash (for per-pixel noise seeded from the Rng). */
function hash32(x: number): number {
  let h = x | 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Draws one toy image of class `cls`, `size`×`size`, from `rng`. Deterministic: the same class, rng
 * state and size give the same bytes.
 */
export function renderToyImage(cls: Pick<ToyClass, 'shape' | 'colour' | 'pattern'>, rng: Rng, size = 64): RgbImage {
  if (!Number.isInteger(size) || size < 8 || size > 4096)
    throw new InvalidArgumentError('size', `must be an integer in [8, 4096], got ${size}`);
  const S = size;
  // --- draws, in a fixed order -------------------------------------------------------------
  const bgHue = rng.uniform();
  const bgHue2 = bgHue + (rng.uniform() - 0.5) * 0.5;
  const bgSat = 0.08 + 0.3 * rng.uniform();
  const c1 = hsv(bgHue, bgSat, 0.35 + 0.6 * rng.uniform());
  const c2 = hsv(bgHue2, bgSat, 0.35 + 0.6 * rng.uniform());
  const gradAngle = 2 * Math.PI * rng.uniform();
  const blotches = Array.from({ length: 2 + rng.int(3) }, () => ({
    x: S * rng.uniform(),
    y: S * rng.uniform(),
    r: S * (0.15 + 0.25 * rng.uniform()),
    amount: (rng.uniform() - 0.5) * 70,
  }));
  const distractors = Array.from({ length: rng.int(4) }, () => ({
    x: S * rng.uniform(),
    y: S * rng.uniform(),
    r: S * (0.04 + 0.07 * rng.uniform()),
    colour: hsv(rng.uniform(), 0.1 + 0.25 * rng.uniform(), 0.3 + 0.6 * rng.uniform()),
  }));
  const noiseAmp = 3 + 9 * rng.uniform();
  const noiseSeed = rng.nextUint32();
  const cx = S * (0.32 + 0.36 * rng.uniform());
  const cy = S * (0.32 + 0.36 * rng.uniform());
  const r = S * (0.2 + 0.1 * rng.uniform());
  const rot = 2 * Math.PI * rng.uniform();
  const body = hsv(rng.uniform(), 0.15 + 0.3 * rng.uniform(), 0.45 + 0.35 * rng.uniform());
  const period = r * (0.32 + 0.13 * rng.uniform());
  const patAngle = Math.PI * rng.uniform();
  const phaseU = rng.uniform();
  const phaseV = rng.uniform();
  const dark = 0.42 + 0.2 * rng.uniform();
  const patchAngle = 2 * Math.PI * rng.uniform();
  const patchDist = r * 0.35 * Math.sqrt(rng.uniform());
  const patchR = r * (0.22 + 0.08 * rng.uniform());
  const patchGain = 0.88 + 0.2 * rng.uniform();
  // --- derived ------------------------------------------------------------------------------
  const sdf = shapeSdf(cls.shape, r);
  const ink = patternCoverage(cls.pattern, period, phaseU, phaseV);
  const patchColour = TOY_COLOURS[cls.colour].map((c) => Math.min(255, c * patchGain)) as [number, number, number];
  const px0 = cx + patchDist * Math.cos(patchAngle);
  const py0 = cy + patchDist * Math.sin(patchAngle);
  const cosR = Math.cos(-rot);
  const sinR = Math.sin(-rot);
  const cosP = Math.cos(patAngle);
  const sinP = Math.sin(patAngle);
  const gx = Math.cos(gradAngle) / S;
  const gy = Math.sin(gradAngle) / S;
  const reach = r * 1.3 + 1;
  const ox0 = Math.max(0, Math.floor(cx - reach));
  const ox1 = Math.min(S, Math.ceil(cx + reach));
  const oy0 = Math.max(0, Math.floor(cy - reach));
  const oy1 = Math.min(S, Math.ceil(cy + reach));

  const [r1, g1, b1] = c1;
  const [r2, g2, b2] = c2;
  const [br, bg, bb] = body;
  const [pr, pg, pb] = patchColour;
  const n = S * S;
  const R = new Float32Array(n);
  const G = new Float32Array(n);
  const B = new Float32Array(n);

  // Background: gradient, then separable Gaussian blotches (exp(-(dx² + dy²)/r²) = exp(-dx²/r²)·exp(-dy²/r²)).
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const t = clamp01(0.5 + (x + 0.5 - S / 2) * gx + (y + 0.5 - S / 2) * gy);
      const i = y * S + x;
      R[i] = r1 + (r2 - r1) * t;
      G[i] = g1 + (g2 - g1) * t;
      B[i] = b1 + (b2 - b1) * t;
    }
  }
  const ex = new Float64Array(S);
  for (const b of blotches) {
    for (let x = 0; x < S; x++) ex[x] = b.amount * Math.exp(-(((x + 0.5 - b.x) / b.r) ** 2));
    for (let y = 0; y < S; y++) {
      const ey = Math.exp(-(((y + 0.5 - b.y) / b.r) ** 2));
      if (ey < 1e-4) continue;
      for (let x = 0, i = y * S; x < S; x++, i++) {
        const v = (ex[x] as number) * ey;
        R[i] = (R[i] as number) + v;
        G[i] = (G[i] as number) + v;
        B[i] = (B[i] as number) + v;
      }
    }
  }
  // Distractor discs, antialiased, only over their bounding boxes.
  for (const d of distractors) {
    const [dr, dg, db] = d.colour;
    const y1 = Math.min(S, Math.ceil(d.y + d.r + 1));
    const x1 = Math.min(S, Math.ceil(d.x + d.r + 1));
    for (let y = Math.max(0, Math.floor(d.y - d.r - 1)); y < y1; y++) {
      for (let x = Math.max(0, Math.floor(d.x - d.r - 1)); x < x1; x++) {
        const dx = x + 0.5 - d.x;
        const dy = y + 0.5 - d.y;
        const cov = clamp01(0.5 - (Math.sqrt(dx * dx + dy * dy) - d.r));
        if (cov <= 0) continue;
        const i = y * S + x;
        R[i] = (R[i] as number) + (dr - (R[i] as number)) * cov;
        G[i] = (G[i] as number) + (dg - (G[i] as number)) * cov;
        B[i] = (B[i] as number) + (db - (B[i] as number)) * cov;
      }
    }
  }
  // The object: body, darkened by the pattern's ink, under the patch; antialiased edge.
  for (let y = oy0; y < oy1; y++) {
    for (let x = ox0; x < ox1; x++) {
      const lx = x + 0.5 - cx;
      const ly = y + 0.5 - cy;
      const ux = lx * cosR - ly * sinR;
      const uy = lx * sinR + ly * cosR;
      const cov = clamp01(0.5 - sdf(ux, uy));
      if (cov <= 0) continue;
      const keep = 1 - ink(ux * cosP + uy * sinP, -ux * sinP + uy * cosP) * (1 - dark);
      const pdx = x + 0.5 - px0;
      const pdy = y + 0.5 - py0;
      const pc = Math.min(cov, clamp01(0.5 - (Math.sqrt(pdx * pdx + pdy * pdy) - patchR)));
      const or = br * keep + (pr - br * keep) * pc;
      const og = bg * keep + (pg - bg * keep) * pc;
      const ob = bb * keep + (pb - bb * keep) * pc;
      const i = y * S + x;
      R[i] = (R[i] as number) + (or - (R[i] as number)) * cov;
      G[i] = (G[i] as number) + (og - (G[i] as number)) * cov;
      B[i] = (B[i] as number) + (ob - (B[i] as number)) * cov;
    }
  }
  // Noise (one 32-bit hash per pixel, 10 bits per channel, uniform in ±noiseAmp) and quantisation.
  // Uint8ClampedArray stores clamp(round-half-even(v)): the quantisation, without a branchy helper.
  const out = new Uint8ClampedArray(n * 3);
  const k = (2 * noiseAmp) / 1023;
  for (let i = 0; i < n; i++) {
    const h = hash32(noiseSeed ^ Math.imul(i + 1, 0x9e3779b1));
    out[3 * i] = (R[i] as number) + ((h & 1023) - 511.5) * k;
    out[3 * i + 1] = (G[i] as number) + (((h >>> 10) & 1023) - 511.5) * k;
    out[3 * i + 2] = (B[i] as number) + (((h >>> 20) & 1023) - 511.5) * k;
  }
  const data = new Uint8Array(out.buffer);
  return { data, width: S, height: S, channels: 3 };
}
