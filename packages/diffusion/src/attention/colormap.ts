/**
 * Colormaps for heat maps and their overlay on an image.
 *
 * `jet`: MATLAB's piecewise-linear jet (dark blue → blue → cyan → yellow → red → dark red).
 * `viridis`: matplotlib's viridis approximated by linear interpolation between nine samples of the
 * published table (at 0, 1/8, …, 1); the in-between colours differ from the exact table by a few
 * 8-bit levels. `gray`: black → white.
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { RgbImage } from '@diffmix/datasets';

export type ColormapName = 'jet' | 'viridis' | 'gray';

const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [0x44, 0x01, 0x54],
  [0x47, 0x2d, 0x7b],
  [0x3b, 0x52, 0x8b],
  [0x2c, 0x72, 0x8e],
  [0x21, 0x91, 0x8c],
  [0x28, 0xae, 0x80],
  [0x5e, 0xc9, 0x62],
  [0xad, 0xdc, 0x30],
  [0xfd, 0xe7, 0x25],
];

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : Number.isNaN(v) ? 0 : v;
}

function jet(v: number): [number, number, number] {
  // Each channel is a trapezoid: r peaks on [5/8, 7/8], g on [3/8, 5/8], b on [1/8, 3/8].
  const ch = (center: number) => clamp01(1.5 - Math.abs(4 * v - center));
  return [ch(3), ch(2), ch(1)].map((c) => Math.round(255 * c)) as [number, number, number];
}

function viridis(v: number): [number, number, number] {
  const x = v * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(x), VIRIDIS.length - 2);
  const f = x - i;
  const a = VIRIDIS[i] as readonly [number, number, number];
  const b = VIRIDIS[i + 1] as readonly [number, number, number];
  return [0, 1, 2].map((c) => Math.round((a[c] as number) * (1 - f) + (b[c] as number) * f)) as [number, number, number];
}

/** The 8-bit RGB colour of v ∈ [0, 1] (values outside are clamped). */
export function colormap(name: ColormapName, v: number): [number, number, number] {
  const x = clamp01(v);
  switch (name) {
    case 'jet':
      return jet(x);
    case 'viridis':
      return viridis(x);
    case 'gray': {
      const g = Math.round(255 * x);
      return [g, g, g];
    }
    default:
      throw new InvalidArgumentError('colormap', `must be jet, viridis or gray, got ${String(name)}`);
  }
}

/** A heat map (values in [0, 1], row-major width×height) as an RGB image. */
export function heatmapImage(values: ArrayLike<number>, width: number, height: number, name: ColormapName = 'jet'): RgbImage {
  if (values.length !== width * height)
    throw new InvalidArgumentError('values', `has ${values.length} values, ${width}×${height} needs ${width * height}`);
  const data = new Uint8Array(width * height * 3);
  // 256-entry lookup table: the map is displayed at 8-bit precision anyway.
  const lut = Array.from({ length: 256 }, (_, i) => colormap(name, i / 255));
  for (let i = 0; i < values.length; i++) {
    const c = lut[Math.round(255 * clamp01(values[i] as number))] as [number, number, number];
    data[3 * i] = c[0];
    data[3 * i + 1] = c[1];
    data[3 * i + 2] = c[2];
  }
  return { data, width, height, channels: 3 };
}

/** `(1 − alpha) · image + alpha · heat` per pixel (same size), rounded to 8 bits. */
export function blendImages(image: RgbImage, heat: RgbImage, alpha: number): RgbImage {
  if (!(alpha >= 0 && alpha <= 1)) throw new InvalidArgumentError('alpha', `must be in [0, 1], got ${alpha}`);
  if (image.width !== heat.width || image.height !== heat.height) {
    throw new InvalidArgumentError('heat', `is ${heat.width}×${heat.height}, the image ${image.width}×${image.height}`);
  }
  const data = new Uint8Array(image.data.length);
  for (let i = 0; i < data.length; i++)
    data[i] = Math.round((1 - alpha) * (image.data[i] as number) + alpha * (heat.data[i] as number));
  return { data, width: image.width, height: image.height, channels: 3 };
}
