/**
 * The decoded-image type every image function takes and returns.
 */

/** An 8-bit sRGB image, pixels interleaved (HWC): `data[(y * width + x) * 3 + c]`, c = R, G, B. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

/** An axis-aligned rectangle in pixels. `left`/`top` may be negative where a step pads. */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Pixels added on each side (zero fill). */
export interface Padding {
  left: number;
  top: number;
  right: number;
  bottom: number;
}
