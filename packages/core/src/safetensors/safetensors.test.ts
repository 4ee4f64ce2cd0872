import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelFormatError, NotFoundError } from '../errors/index.js';
import {
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  formatSafetensors,
  halfBitsToNumber,
  numberToHalfBits,
  parseSafetensors,
  readSafetensors,
  writeSafetensors,
} from './index.js';

/** Builds a safetensors file from a header object and a data section, without the writer under test. */
function build(header: Record<string, unknown>, data: Uint8Array, pad = 0): Uint8Array {
  const text = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

describe('parseSafetensors', () => {
  it('reads tensors, shapes, dtypes and metadata written by another writer', () => {
    const a = new Float32Array([1, 2, 3, 4, 5, 6]);
    const b = new BigInt64Array([-1n, 2n ** 40n]);
    const data = new Uint8Array(a.byteLength + b.byteLength + 3);
    data.set(bytesOf(a), 0);
    data.set(bytesOf(b), 24);
    data.set([1, 0, 1], 40);
    const file = parseSafetensors(
      build(
        {
          __metadata__: { format: 'pt' },
          'w.a': { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
          'w.b': { dtype: 'I64', shape: [2], data_offsets: [24, 40] },
          mask: { dtype: 'BOOL', shape: [3], data_offsets: [40, 43] },
        },
        data,
      ),
      'x.safetensors',
    );
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(file.keys()).toEqual(['w.a', 'w.b', 'mask']);
    const ta = file.tensor('w.a');
    expect(ta.dtype).toBe('F32');
    expect(ta.shape).toEqual([2, 3]);
    expect([...(ta.data as Float32Array)]).toEqual([1, 2, 3, 4, 5, 6]);
    expect([...(file.tensor('w.b').data as BigInt64Array)]).toEqual([-1n, 2n ** 40n]);
    expect([...file.tensor('mask').data]).toEqual([1, 0, 1]);
    expect(file.raw('w.a').byteLength).toBe(24);
  });

  it('copies misaligned tensors and honours copy: true', () => {
    // header padded so that the data section starts at an odd offset
    const f = new Float32Array([0.5, -0.25]);
    const bytes = build({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, bytesOf(f), 3);
    const t = parseSafetensors(bytes).tensor('t');
    expect([...(t.data as Float32Array)]).toEqual([0.5, -0.25]);
    const aligned = parseSafetensors(formatSafetensors({ t: { shape: [2], data: f } }));
    const copy = aligned.tensor('t', { copy: true }).data;
    expect(copy.buffer).not.toBe(aligned.bytes.buffer);
    expect(aligned.tensor('t').data.buffer).toBe(aligned.bytes.buffer);
  });

  it('copies correctly from a Node Buffer (whose slice is a view, not a copy)', () => {
    const f = new Float32Array([0.5, -0.25, 3]);
    const file = formatSafetensors({ a: { shape: [1], data: new Float32Array([7]) }, t: { shape: [3], data: f } });
    const buf = Buffer.from(file);
    for (const pad of [0, 3]) {
      const bytes = pad ? Buffer.concat([Buffer.alloc(pad), buf]).subarray(pad) : buf;
      const p = parseSafetensors(bytes);
      expect([...p.float32('t', { copy: true }).data]).toEqual([0.5, -0.25, 3]);
      expect([...p.float32('t').data]).toEqual([0.5, -0.25, 3]);
    }
  });

  it('converts F16 / BF16 / F64 to float32 on request', () => {
    const half = new Uint16Array([0x3c00, 0xc100, 0x7bff, 0x0001, 0x8000]);
    const bf = new Uint16Array([0x3f80, 0x4049, 0xc000]);
    const dbl = new Float64Array([0.1, 2]);
    const file = parseSafetensors(
      formatSafetensors({
        h: { dtype: 'F16', shape: [5], data: half },
        b: { dtype: 'BF16', shape: [3], data: bf },
        d: { shape: [2], data: dbl },
      }),
    );
    expect(file.tensor('h').data).toBeInstanceOf(Uint16Array);
    expect([...file.float32('h').data]).toEqual([1, -2.5, 65504, 2 ** -24, -0]);
    expect([...file.float32('b').data]).toEqual([1, 3.140625, -2]);
    expect([...file.float32('d').data]).toEqual([Math.fround(0.1), 2]);
    expect(() => file.float32('missing')).toThrow(/no tensor named "missing"/);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /shorter than the 8-byte header length/],
    ['header longer than file', build({}, new Uint8Array(0)).map((v, i) => (i === 0 ? 200 : v)), /header length 200 exceeds/],
    [
      'not json',
      (() => {
        const b = build({ a: 1 }, new Uint8Array(0));
        b[9] = 0x7b;
        b[10] = 0x7b;
        return b;
      })(),
      /not valid JSON/,
    ],
    [
      'unknown dtype',
      build({ t: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)),
      /unsupported dtype "F8_E4M3"/,
    ],
    [
      'size mismatch',
      build({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8)),
      /span 8 bytes but F32 \[3\] needs 12/,
    ],
    [
      'out of range',
      build({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(12)),
      /out of range: the data section has 12 bytes/,
    ],
    [
      'reversed offsets',
      build({ t: { dtype: 'U8', shape: [0], data_offsets: [4, 0] } }, new Uint8Array(4)),
      /end before they begin/,
    ],
    [
      'overlap',
      build(
        { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
        new Uint8Array(12),
      ),
      /tensors "a" \[0, 8\] and "b" \[4, 12\] overlap/,
    ],
    [
      'bad shape',
      build({ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, new Uint8Array(0)),
      /not a list of non-negative integers/,
    ],
    ['bad metadata', build({ __metadata__: { a: 1 } }, new Uint8Array(0)), /__metadata__.a is not a string/],
  ];
  for (const [name, bytes, re] of bad) {
    it(`rejects a file with ${name}, naming the file`, () => {
      let err: unknown;
      try {
        parseSafetensors(bytes, 'bad.safetensors');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ModelFormatError);
      expect((err as ModelFormatError).file).toBe('bad.safetensors');
      expect((err as Error).message).toMatch(/^bad\.safetensors: /);
      expect((err as Error).message).toMatch(re);
    });
  }

  it('detects a truncated file', () => {
    const full = formatSafetensors({ t: { shape: [8], data: new Float32Array(8) } });
    expect(() => parseSafetensors(full.subarray(0, full.length - 4), 'cut.safetensors')).toThrow(
      /cut\.safetensors: .*out of range.*truncated/,
    );
  });
});

describe('formatSafetensors / writeSafetensors', () => {
  it('round-trips every dtype with metadata and an 8-byte aligned data section', async () => {
    const tensors = {
      f32: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
      f64: { shape: [1], data: new Float64Array([Math.PI]) },
      f16: { dtype: 'F16' as const, shape: [2], data: float32ToFloat16([0.5, -1]) },
      bf16: { dtype: 'BF16' as const, shape: [2], data: float32ToBfloat16([0.5, -1]) },
      i64: { shape: [1], data: new BigInt64Array([-5n]) },
      i32: { shape: [1], data: new Int32Array([-7]) },
      i16: { shape: [1], data: new Int16Array([-300]) },
      i8: { shape: [3], data: new Int8Array([-1, 0, 1]) },
      u8: { shape: [1], data: new Uint8Array([255]) },
      bool: { dtype: 'BOOL' as const, shape: [2], data: new Uint8Array([1, 0]) },
      scalar: { shape: [], data: new Float32Array([2]) },
      empty: { shape: [0, 3], data: new Float32Array(0) },
    };
    const bytes = formatSafetensors(tensors, { format: 'pt' });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    const dir = await mkdtemp(join(tmpdir(), 'st-'));
    try {
      await writeSafetensors(join(dir, 'a.safetensors'), tensors, { format: 'pt' });
      const file = await readSafetensors(join(dir, 'a.safetensors'));
      expect(file.metadata).toEqual({ format: 'pt' });
      for (const [name, t] of Object.entries(tensors)) {
        const got = file.tensor(name);
        expect(got.shape, name).toEqual(t.shape);
        expect([...got.data], name).toEqual([...t.data]);
        // every tensor sits at an offset that is a multiple of its element size
        expect(file.entry(name).byteOffset % t.data.BYTES_PER_ELEMENT).toBe(0);
      }
      expect(file.tensor('bool').dtype).toBe('BOOL');
      expect(file.float32('bf16').data[1]).toBe(-1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses ambiguous or inconsistent input', () => {
    expect(() => formatSafetensors({ t: { shape: [1], data: new Uint16Array(1) } })).toThrow(/explicit dtype/);
    expect(() => formatSafetensors({ t: { shape: [3], data: new Float32Array(2) } })).toThrow(/has 3 elements, data has 2/);
    expect(() => formatSafetensors({ t: { dtype: 'F64', shape: [1], data: new Float32Array(1) } })).toThrow(/does not hold F64/);
  });

  it('names a missing file', async () => {
    await expect(readSafetensors('/nonexistent/x.safetensors')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('half precision helpers', () => {
  it('float32 → float16 rounds to nearest even like NumPy', () => {
    // expected bits computed with numpy: np.float32(v).astype(np.float16).view(np.uint16)
    const cases: [number, number][] = [
      [1.0, 0x3c00],
      [-2.5, 0xc100],
      [65504, 0x7bff],
      [65520, 0x7c00],
      [65519.99, 0x7bff],
      [1e-8, 0x0000],
      [2 ** -24, 0x0001],
      [2 ** -25, 0x0000],
      [2 ** -25 * 1.0000001, 0x0001],
      [3 * 2 ** -25, 0x0002],
      [6.1e-5, 0x03ff],
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [2049, 0x6800],
      [2051, 0x6802],
      [-0, 0x8000],
      [Number.POSITIVE_INFINITY, 0x7c00],
    ];
    for (const [v, bits] of cases) expect(numberToHalfBits(v), String(v)).toBe(bits);
    expect(Number.isNaN(halfBitsToNumber(numberToHalfBits(Number.NaN)))).toBe(true);
  });

  it('every float16 value survives float16 → float32 → float16', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const f = float16ToFloat32(all);
    const back = float32ToFloat16(f);
    for (let i = 0; i < 65536; i++) {
      const nanBits = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (nanBits) expect(Number.isNaN(f[i])).toBe(true);
      else if (back[i] !== i) throw new Error(`0x${i.toString(16)} → ${f[i]} → 0x${back[i]?.toString(16)}`);
    }
  });

  it('bfloat16 rounds to nearest even and round-trips', () => {
    const bits = float32ToBfloat16([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, Math.PI, -2, Number.NaN]);
    expect([...bits.subarray(0, 5)]).toEqual([0x3f80, 0x3f80, 0x3f82, 0x4049, 0xc000]);
    expect(Number.isNaN(bfloat16ToFloat32(bits)[5])).toBe(true);
  });
});
