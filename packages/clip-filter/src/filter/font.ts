/**
 * A 5×7 bitmap font for the few characters a score label needs (`#12 0.3456`), drawn into RGB
 * images without any font library.
 */
import type { RgbImage } from '@diffmix/datasets';

const GLYPHS: Record<string, readonly string[]> = {
  '0': ['01110', '10001', '10011', '10101', '11001', '10001', '01110'],
  '1': ['00100', '01100', '00100', '00100', '00100', '00100', '01110'],
  '2': ['01110', '10001', '00001', '00010', '00100', '01000', '11111'],
  '3': ['11110', '00001', '00001', '01110', '00001', '00001', '11110'],
  '4': ['00010', '00110', '01010', '10010', '11111', '00010', '00010'],
  '5': ['11111', '10000', '11110', '00001', '00001', '10001', '01110'],
  '6': ['00110', '01000', '10000', '11110', '10001', '10001', '01110'],
  '7': ['11111', '00001', '00010', '00100', '01000', '01000', '01000'],
  '8': ['01110', '10001', '10001', '01110', '10001', '10001', '01110'],
  '9': ['01110', '10001', '10001', '01111', '00001', '00010', '01100'],
  '.': ['00000', '00000', '00000', '00000', '00000', '01100', '01100'],
  '#': ['01010', '01010', '11111', '01010', '11111', '01010', '01010'],
  '-': ['00000', '00000', '00000', '11111', '00000', '00000', '00000'],
  ' ': ['00000', '00000', '00000', '00000', '00000', '00000', '00000'],
};

export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;

/** Characters the font can draw. */
export const FONT_CHARACTERS = Object.keys(GLYPHS).join('');

/** Width in pixels of `text` at `scale` (one blank column between glyphs). */
export function textWidth(text: string, scale = 1): number {
  return text.length === 0 ? 0 : (text.length * (GLYPH_WIDTH + 1) - 1) * scale;
}

/**
 * Draws `text` with its top-left corner at (x, y), clipped to the image. Characters the font lacks
 * are drawn as a filled box, so nothing is silently dropped.
 */
export function drawText(
  img: RgbImage,
  text: string,
  x: number,
  y: number,
  color: readonly [number, number, number],
  scale = 1,
): void {
  let cx = x;
  for (const ch of text) {
    const rows = GLYPHS[ch] ?? Array.from({ length: GLYPH_HEIGHT }, () => '11111');
    for (let r = 0; r < GLYPH_HEIGHT; r++) {
      const row = rows[r] as string;
      for (let c = 0; c < GLYPH_WIDTH; c++) {
        if (row[c] !== '1') continue;
        fillRect(img, cx + c * scale, y + r * scale, scale, scale, color);
      }
    }
    cx += (GLYPH_WIDTH + 1) * scale;
  }
}

/** Fills a rectangle, clipped to the image. */
export function fillRect(
  img: RgbImage,
  x: number,
  y: number,
  w: number,
  h: number,
  color: readonly [number, number, number],
): void {
  const x0 = Math.max(0, x);
  const y0 = Math.max(0, y);
  const x1 = Math.min(img.width, x + w);
  const y1 = Math.min(img.height, y + h);
  for (let yy = y0; yy < y1; yy++) {
    for (let xx = x0; xx < x1; xx++) {
      const p = (yy * img.width + xx) * 3;
      img.data[p] = color[0];
      img.data[p + 1] = color[1];
      img.data[p + 2] = color[2];
    }
  }
}
