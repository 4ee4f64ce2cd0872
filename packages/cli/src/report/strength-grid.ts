/**
 * The paper's Fig. 12 for any model: one source image translated toward several classes at
 * strengths 0.1 … 1.0. Rows are target classes, the first column is the source, then one column per
 * strength. Every cell of a row shares one seed, so a row shows the effect of strength alone.
 */
import type { ClassInfo } from '@diffmix/core';
import { makeContactSheet, type RgbImage } from '@diffmix/datasets';
import { img2img, type StableDiffusion } from '@diffmix/diffusion';

export const GRID_STRENGTHS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] as const;

export interface StrengthGridOptions {
  source: RgbImage;
  targets: readonly ClassInfo[];
  /** Prompt for a target class (e.g. `a photo of a <class_3> shape`). */
  prompt: (target: ClassInfo) => string;
  strengths?: readonly number[];
  steps?: number;
  guidanceScale?: number;
  size?: number;
  seed?: number;
  signal?: AbortSignal;
}

export interface StrengthGrid {
  sheet: RgbImage;
  rows: string[];
  columns: string[];
}

export async function renderStrengthGrid(model: StableDiffusion, options: StrengthGridOptions): Promise<StrengthGrid> {
  const strengths = options.strengths ?? GRID_STRENGTHS;
  const seed = options.seed ?? 0;
  // cells[t][s]
  const cells: RgbImage[][] = options.targets.map(() => []);
  for (const s of strengths) {
    // One batch per strength: img2img takes a single strength for the batch.
    const jobs = options.targets.map((t, i) => ({ image: options.source, prompt: options.prompt(t), seed: seed + i }));
    const out = await img2img(model, jobs, s, {
      ...(options.steps !== undefined ? { steps: options.steps } : {}),
      ...(options.guidanceScale !== undefined ? { guidanceScale: options.guidanceScale } : {}),
      ...(options.size !== undefined ? { size: options.size } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for (const [i, img] of out.images.entries()) cells[i]?.push(img);
  }
  const images = cells.flatMap((row) => [options.source, ...row]);
  const sheet = makeContactSheet(images, { columns: strengths.length + 1, gap: 2 });
  return { sheet, rows: options.targets.map((t) => t.name), columns: ['source', ...strengths.map((s) => `s=${s}`)] };
}
