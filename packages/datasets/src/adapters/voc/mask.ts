/**
 * Reading Pascal VOC label masks (`SegmentationClass/*.png`, `SegmentationObject/*.png`) as
 * per-pixel indices, the way PIL + numpy see them in the reference code (`np.asarray(Image.open(p))`
 * on a palette PNG gives the palette *indices*).
 *
 * sharp (libvips) always expands a palette PNG to RGB, so palette PNGs are decoded here directly
 * (zlib inflate + PNG row filters, 1/2/4/8-bit, non-interlaced). Each palette index is then mapped
 * through its PLTE colour back to the VOC colormap index; for the genuine VOC files (whose PLTE *is*
 * the VOC colormap) that is the identity, and a mask re-saved with another palette order (e.g. by an
 * image editor or sharp's quantiser) still reads correctly. 8-bit grayscale PNGs (as in the
 * "SegmentationClassAug" variant) are taken as indices. Anything else (RGB, interlaced, 16-bit) goes
 * through sharp and RGB colours are mapped back through the VOC colormap.
 */
import { inflateSync } from 'node:zlib';
import { DatasetFormatError } from '@diffmix/core';
import sharp, { type OutputInfo } from 'sharp';

/** The VOC colormap (bit-interleaved, as in the VOC devkit's `labelcolormap.m`): entry i → [r, g, b]. */
export function vocColormap(): Uint8Array {
  const cmap = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    let r = 0;
    let g = 0;
    let b = 0;
    let c = i;
    for (let j = 0; j < 8; j++) {
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    cmap[i * 3] = r;
    cmap[i * 3 + 1] = g;
    cmap[i * 3 + 2] = b;
  }
  return cmap;
}

const CMAP = vocColormap();
/** rgb (24-bit) → VOC index. */
const CMAP_INVERSE = new Map<number, number>();
for (let i = 0; i < 256; i++)
  CMAP_INVERSE.set(((CMAP[i * 3] as number) << 16) | ((CMAP[i * 3 + 1] as number) << 8) | (CMAP[i * 3 + 2] as number), i);

export interface IndexMask {
  width: number;
  height: number;
  /** Row-major VOC indices (0 background, 1..20 classes or instance numbers, 255 void). */
  data: Uint8Array;
}

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

interface PngChunks {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
  palette?: Uint8Array;
  idat: Uint8Array[];
}

function readChunks(bytes: Uint8Array, file: string): PngChunks {
  if (bytes.length < 8 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) throw new DatasetFormatError(file, 'not a PNG file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let header: Omit<PngChunks, 'idat' | 'palette'> | undefined;
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  while (pos + 8 <= bytes.length) {
    const length = view.getUint32(pos);
    const type = String.fromCharCode(
      bytes[pos + 4] as number,
      bytes[pos + 5] as number,
      bytes[pos + 6] as number,
      bytes[pos + 7] as number,
    );
    const start = pos + 8;
    const end = start + length;
    if (end + 4 > bytes.length) throw new DatasetFormatError(file, `truncated PNG (chunk ${type})`);
    if (type === 'IHDR') {
      header = {
        width: view.getUint32(start),
        height: view.getUint32(start + 4),
        bitDepth: bytes[start + 8] as number,
        colorType: bytes[start + 9] as number,
        interlace: bytes[start + 12] as number,
      };
    } else if (type === 'PLTE') palette = bytes.subarray(start, end);
    else if (type === 'IDAT') idat.push(bytes.subarray(start, end));
    else if (type === 'IEND') break;
    pos = end + 4; // skip CRC (zlib's Adler-32 still guards the pixel data)
  }
  if (!header) throw new DatasetFormatError(file, 'PNG without IHDR');
  return palette ? { ...header, palette, idat } : { ...header, idat };
}

/** Undoes the PNG row filters; returns the packed scanlines without filter bytes. */
function unfilter(raw: Uint8Array, width: number, height: number, bitsPerPixel: number, file: string): Uint8Array {
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  if (raw.length < height * (stride + 1)) throw new DatasetFormatError(file, 'PNG pixel data shorter than its size');
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)] as number;
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const prev = row - stride;
    for (let x = 0; x < stride; x++) {
      const v = raw[src + x] as number;
      const a = x >= bpp ? (out[row + x - bpp] as number) : 0;
      const b = y > 0 ? (out[prev + x] as number) : 0;
      const c = x >= bpp && y > 0 ? (out[prev + x - bpp] as number) : 0;
      let p: number;
      switch (filter) {
        case 0:
          p = 0;
          break;
        case 1:
          p = a;
          break;
        case 2:
          p = b;
          break;
        case 3:
          p = (a + b) >> 1;
          break;
        case 4: {
          const pa = Math.abs(b - c);
          const pb = Math.abs(a - c);
          const pc = Math.abs(a + b - 2 * c);
          p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw new DatasetFormatError(file, `bad PNG filter type ${filter} on row ${y}`);
      }
      out[row + x] = (v + p) & 0xff;
    }
  }
  return out;
}

/** Unpacks 1/2/4/8-bit samples into one byte per pixel. */
function unpack(packed: Uint8Array, width: number, height: number, bitDepth: number): Uint8Array {
  if (bitDepth === 8) return packed;
  const stride = Math.ceil((width * bitDepth) / 8);
  const out = new Uint8Array(width * height);
  const mask = (1 << bitDepth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * bitDepth;
      const byte = packed[y * stride + (bit >> 3)] as number;
      out[y * width + x] = (byte >> (8 - bitDepth - (bit & 7))) & mask;
    }
  }
  return out;
}

function colourToIndex(r: number, g: number, b: number, file: string): number {
  const i = CMAP_INVERSE.get((r << 16) | (g << 8) | b);
  if (i === undefined) throw new DatasetFormatError(file, `colour rgb(${r}, ${g}, ${b}) is not in the VOC colormap`);
  return i;
}

async function decodeWithSharp(bytes: Uint8Array, file: string): Promise<IndexMask> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    decoded = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  } catch (cause) {
    throw new DatasetFormatError(file, `cannot decode mask: ${(cause as Error).message}`, { cause });
  }
  const { data, info } = decoded;
  const n = info.width * info.height;
  const out = new Uint8Array(n);
  const ch = info.channels;
  if (ch <= 2) {
    for (let i = 0; i < n; i++) out[i] = data[i * ch] as number;
  } else {
    for (let i = 0; i < n; i++)
      out[i] = colourToIndex(data[i * ch] as number, data[i * ch + 1] as number, data[i * ch + 2] as number, file);
  }
  return { width: info.width, height: info.height, data: out };
}

/** Decodes a VOC mask PNG to VOC indices (see the module comment). */
export async function decodeIndexMask(bytes: Uint8Array, file: string): Promise<IndexMask> {
  const png = readChunks(bytes, file);
  const direct =
    png.interlace === 0 &&
    ((png.colorType === 3 && [1, 2, 4, 8].includes(png.bitDepth)) || (png.colorType === 0 && png.bitDepth === 8));
  if (!direct) return decodeWithSharp(bytes, file);
  const { width, height, bitDepth } = png;
  if (width === 0 || height === 0) throw new DatasetFormatError(file, 'empty PNG');
  let raw: Uint8Array;
  try {
    raw = inflateSync(Buffer.concat(png.idat));
  } catch (cause) {
    throw new DatasetFormatError(file, `corrupt PNG pixel data: ${(cause as Error).message}`, { cause });
  }
  const indices = unpack(unfilter(raw, width, height, bitDepth, file), width, height, bitDepth);
  if (png.colorType === 0) return { width, height, data: indices };
  const palette = png.palette;
  if (!palette) throw new DatasetFormatError(file, 'palette PNG without PLTE chunk');
  // palette index → VOC index through the palette colour; -1 where the colour is not a VOC colour.
  const lut = new Int16Array(256).fill(-1);
  for (let i = 0; i * 3 + 2 < palette.length && i < 256; i++) {
    lut[i] =
      CMAP_INVERSE.get(
        ((palette[i * 3] as number) << 16) | ((palette[i * 3 + 1] as number) << 8) | (palette[i * 3 + 2] as number),
      ) ?? -1;
  }
  const data = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const v = lut[indices[i] as number] as number;
    if (v < 0) {
      const p = indices[i] as number;
      if (p * 3 + 2 >= palette.length) throw new DatasetFormatError(file, `pixel uses palette index ${p} beyond the PLTE chunk`);
      colourToIndex(palette[p * 3] as number, palette[p * 3 + 1] as number, palette[p * 3 + 2] as number, file); // throws
    }
    data[i] = v;
  }
  return { width, height, data };
}
