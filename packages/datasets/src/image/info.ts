import sharp from 'sharp';

/** Versions of the image stack (for `diffmix info` and bug reports). */
export function imageIoInfo(): { sharp: string | null; libvips: string | null; concurrency: number } {
  const v = sharp.versions as { sharp?: string; vips?: string };
  return { sharp: v.sharp ?? null, libvips: v.vips ?? null, concurrency: sharp.concurrency() };
}
