import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors/index.js';
import { formatNpy, parseNpy } from './npy.js';

describe('npy', () => {
  it('writes the documented v1.0 layout and reads it back', () => {
    const data = Float32Array.from([1, -2.5, 3, 4, 5, 6]);
    const bytes = formatNpy({ shape: [2, 3], data });
    expect(Array.from(bytes.subarray(0, 8))).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const hlen = bytes[8]! | (bytes[9]! << 8);
    expect((10 + hlen) % 64).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(10, 10 + hlen));
    expect(header).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\), \} *\n$/);
    const back = parseNpy(bytes);
    expect(back.shape).toEqual([2, 3]);
    expect(Array.from(back.data as Float32Array)).toEqual(Array.from(data));
  });

  it('handles 1-d, scalar and int64 arrays', () => {
    expect(parseNpy(formatNpy({ shape: [3], data: Int32Array.from([1, 2, 3]) })).shape).toEqual([3]);
    const scalar = parseNpy(formatNpy({ shape: [], data: Float64Array.from([0.5]) }));
    expect(scalar.shape).toEqual([]);
    expect(scalar.data[0]).toBe(0.5);
    const big = parseNpy(formatNpy({ shape: [2], data: BigInt64Array.from([49406n, -1n]) }));
    expect(big.dtype).toBe('<i8');
    expect(Array.from(big.data as BigInt64Array)).toEqual([49406n, -1n]);
  });

  it('reads from a Node Buffer that is a view into a larger pool', () => {
    const file = formatNpy({ shape: [3], data: Int32Array.from([999, 959, 919]) });
    const pooled = Buffer.concat([Buffer.from([1, 2, 3]), Buffer.from(file)]).subarray(3);
    expect(Array.from(parseNpy(pooled).data as Int32Array)).toEqual([999, 959, 919]);
  });

  it('errors name the source', () => {
    expect(() => parseNpy(new Uint8Array(4), 'x.npy')).toThrow(ValidationError);
    const bytes = formatNpy({ shape: [4], data: new Float32Array(4) });
    expect(() => parseNpy(bytes.subarray(0, bytes.length - 2), 'cut.npy')).toThrow(/cut\.npy: .*truncated data/);
  });
});
