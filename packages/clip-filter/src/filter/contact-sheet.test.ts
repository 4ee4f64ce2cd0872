import path from 'node:path';
import { blankImage, decodeImage } from '@diffmix/datasets';
import { describe, expect, it } from 'vitest';
import { CLIP_FILTER, reference } from '../test-support/golden.js';
import { renderScoreSheet, scoreLabel } from './contact-sheet.js';
import { drawText, FONT_CHARACTERS, GLYPH_HEIGHT, textWidth } from './font.js';

describe('bitmap font', () => {
  it('draws the label characters, clipped to the image', () => {
    for (const ch of '0123456789.# -') expect(FONT_CHARACTERS).toContain(ch);
    const img = blankImage(40, 10);
    drawText(img, '#1 0.5', 0, 0, [255, 255, 255]);
    let lit = 0;
    for (const v of img.data) if (v) lit++;
    expect(lit).toBeGreaterThan(0);
    expect(textWidth('#1 0.5')).toBe(6 * 6 - 1);
    expect(textWidth('ab', 2)).toBe(22);
    drawText(img, '888888888888', 30, 5, [1, 2, 3], 3); // runs off the edge without throwing
  });

  it('draws unknown characters as a filled box', () => {
    const img = blankImage(5, GLYPH_HEIGHT);
    drawText(img, 'Z', 0, 0, [9, 9, 9]);
    expect(img.data.every((v) => v === 9)).toBe(true);
  });
});

describe('score contact sheet', () => {
  it('lays out thumbnails with rank and score labels', async () => {
    const files = reference().images.slice(0, 3);
    const { image, cells } = await renderScoreSheet(
      files.map((f, i) => ({ path: path.join(CLIP_FILTER, f), score: 0.1 * (i + 1), dropped: i === 0 })),
      { thumbSize: 64, columns: 2 },
    );
    expect(cells.map((c) => [c.row, c.column, c.label])).toEqual([
      [0, 0, '#1 0.1000'],
      [0, 1, '#2 0.2000'],
      [1, 0, '#3 0.3000'],
    ]);
    // Two columns of (64 + 2·3) px cells with 4 px gaps; two rows.
    expect(image.width).toBe(2 * 70 + 3 * 4);
    // The first (dropped) cell has a red frame at its top-left corner.
    const p = (4 * image.width + 4) * 3;
    expect(Array.from(image.data.subarray(p, p + 3))).toEqual([220, 30, 30]);
    expect(scoreLabel(12, 0.123456)).toBe('#12 0.1235');
    await expect(renderScoreSheet([])).rejects.toThrow(/at least one image/);
    await expect(decodeImage(path.join(CLIP_FILTER, files[0] as string))).resolves.toBeDefined();
  });
});
