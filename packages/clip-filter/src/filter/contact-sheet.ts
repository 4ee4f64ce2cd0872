/**
 * A contact sheet of the lowest-scored images: thumbnails in score order (lowest first), each with
 * its rank and score drawn under it; a red frame marks the dropped images, a grey one the kept.
 */
import { blankImage, decodeImage, encodePng, type ImageStep, makeContactSheet, type RgbImage } from '@diffmix/datasets';
import { InvalidArgumentError } from '@diffmix/core';
import { drawText, fillRect, GLYPH_HEIGHT, textWidth } from './font.js';

export interface ContactSheetEntry {
  path: string;
  score: number;
  dropped: boolean;
}

export interface ScoreSheetOptions {
  /** Thumbnail box in pixels (default 128): images are shrunk (or enlarged) to fit it. */
  thumbSize?: number;
  /** Cells per row (default min(n, 8)). */
  columns?: number;
}

const FRAME = 3;
const LABEL_SCALE = 2;
const RED: readonly [number, number, number] = [220, 30, 30];
const GREY: readonly [number, number, number] = [170, 170, 170];
const INK: readonly [number, number, number] = [0, 0, 0];

/** Resize to fit a `size`×`size` box, keeping the aspect ratio (libvips cubic; thumbnails only). */
function fitStep(size: number): ImageStep {
  return {
    name: `fit(${size})`,
    random: false,
    apply(plan) {
      const s = Math.min(size / plan.width, size / plan.height);
      const w = Math.max(1, Math.round(plan.width * s));
      const h = Math.max(1, Math.round(plan.height * s));
      if (w !== plan.width || h !== plan.height) plan.resize(w, h);
    },
  };
}

/** The label under a cell: `#<rank> <score with 4 decimals>`. */
export function scoreLabel(rank: number, score: number): string {
  return `#${rank} ${score.toFixed(4)}`;
}

/** Builds the sheet image (see module doc); `entries` in the order to show them. */
export async function renderScoreSheet(
  entries: readonly ContactSheetEntry[],
  options: ScoreSheetOptions = {},
): Promise<{
  image: RgbImage;
  cells: Array<{ row: number; column: number; label: string }>;
}> {
  if (entries.length === 0) throw new InvalidArgumentError('entries', 'need at least one image for a contact sheet');
  const thumb = options.thumbSize ?? 128;
  if (!Number.isInteger(thumb) || thumb < 16)
    throw new InvalidArgumentError('thumbSize', `must be an integer ≥ 16, got ${thumb}`);
  const columns = options.columns ?? Math.min(entries.length, 8);
  const labelH = GLYPH_HEIGHT * LABEL_SCALE + 6;
  const cellW = thumb + 2 * FRAME;
  const cellH = thumb + 2 * FRAME + labelH;
  const cells: RgbImage[] = [];
  const meta: Array<{ row: number; column: number; label: string }> = [];
  for (const [i, e] of entries.entries()) {
    const img = await decodeImage(e.path, { steps: [fitStep(thumb)] });
    const cell = blankImage(cellW, cellH);
    fillRect(cell, 0, 0, cellW, cellH, [255, 255, 255]);
    fillRect(cell, 0, 0, cellW, thumb + 2 * FRAME, e.dropped ? RED : GREY);
    const ox = FRAME + Math.floor((thumb - img.width) / 2);
    const oy = FRAME + Math.floor((thumb - img.height) / 2);
    fillRect(cell, FRAME, FRAME, thumb, thumb, [255, 255, 255]);
    for (let y = 0; y < img.height; y++) {
      cell.data.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((oy + y) * cellW + ox) * 3);
    }
    const label = scoreLabel(i + 1, e.score);
    // Shrink the label when a small thumbnail cannot hold it at scale 2.
    const scale = textWidth(label, LABEL_SCALE) <= cellW ? LABEL_SCALE : 1;
    drawText(cell, label, Math.max(0, Math.floor((cellW - textWidth(label, scale)) / 2)), thumb + 2 * FRAME + 3, INK, scale);
    cells.push(cell);
    meta.push({ row: Math.floor(i / columns), column: i % columns, label });
  }
  return { image: makeContactSheet(cells, { columns, gap: 4 }), cells: meta };
}

/** Renders the sheet and encodes it as PNG. */
export async function scoreSheetPng(
  entries: readonly ContactSheetEntry[],
  options: ScoreSheetOptions = {},
): Promise<{ png: Uint8Array; width: number; height: number; cells: Array<{ row: number; column: number; label: string }> }> {
  const { image, cells } = await renderScoreSheet(entries, options);
  return { png: await encodePng(image.data, image.width, image.height), width: image.width, height: image.height, cells };
}
