/** A small synthetic set written with `@diffmix/datasets`' SyntheticSetWriter (test-only). */
import { annotate, createSynthesisJob, type ManifestLine } from '@diffmix/core';
import { encodePng, SyntheticSetWriter } from '@diffmix/datasets';

export const TEST_CLASSES = ['Black footed Albatross', 'Laysan Albatross', 'Sooty Albatross'];

/** A deterministic picture `i` of size w×h: gradients, stripes and blocks that differ per image. */
export function pattern(i: number, width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 3;
      const stripe = ((x + y * (i % 3)) >> (2 + (i % 3))) & 1;
      const block = (((x >> 3) ^ (y >> 3)) + i) & 1;
      data[p] = (x * (17 + i * 13)) & 255;
      data[p + 1] = stripe ? 40 + i * 9 : 220 - i * 7;
      data[p + 2] = block ? (y * (5 + i)) & 255 : 128;
    }
  }
  return data;
}

/** Writes `count` images (sizes vary) into a synthetic set at `root`; returns the manifest lines. */
export async function writeTestSet(root: string, count: number): Promise<ManifestLine[]> {
  const writer = await SyntheticSetWriter.open(root, { classes: TEST_CLASSES });
  const lines: ManifestLine[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const sourceClass = i % 3;
      const targetClass = (i + 1) % 3;
      const strength = [0.5, 0.7, 0.9][i % 3] as number;
      const job = createSynthesisJob({
        strategy: 'diff-mix',
        sourceRecordId: `img-${i}`,
        sourceClass,
        targetClass,
        strength,
        prompt: 'a photo of a <class> bird',
        seed: i,
      });
      const width = 40 + ((i * 23) % 70);
      const height = 40 + ((i * 37) % 50);
      const png = await encodePng(pattern(i, width, height), width, height);
      lines.push(
        await writer.write({ ...job, label: annotate({ strength, gamma: 0.8, sourceClass, targetClass }), width, height }, png),
      );
    }
  } finally {
    await writer.close();
  }
  return lines;
}
