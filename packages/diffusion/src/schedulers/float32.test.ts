import { describe, expect, it } from 'vitest';
import { fmaF32, numpyArange, numpyLinspace, roundHalfEven, torchCumprodF32, torchLinspaceF32 } from './float32.js';

describe('float32 / NumPy helpers', () => {
  it('roundHalfEven is np.round (ties to even), not Math.round', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 166.5, 499.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([
      0, 2, 2, -0, -2, 166, 500, 2, 3,
    ]);
  });

  it('fmaF32 rounds a·b + c once (ties decided by the exact sum)', () => {
    expect(fmaF32(2 ** -24, 1, 1)).toBe(1); // an exact tie → even
    expect(fmaF32(2 ** -24 + 2 ** -47, 1, 1)).toBe(1 + 2 ** -23); // just above the tie
    // a·b = 2^-24 − 2^-70 and c = 1 + 2^-23: the float64 sum drops 2^-70 and lands on the float32 tie
    // 1 + 2^-23 + 2^-24 (which Math.fround rounds up to even); the exact value is below it.
    const a = 2 ** -24 * (1 + 2 ** -23);
    const b = 1 - 2 ** -23;
    const c = 1 + 2 ** -23;
    expect(Math.fround(a * b + c)).toBe(1 + 2 ** -22);
    expect(fmaF32(a, b, c)).toBe(1 + 2 ** -23);
    expect(fmaF32(3, 0.5, 0.25)).toBe(1.75);
  });

  it('torchLinspaceF32 matches torch for the SD scaled_linear endpoints (first/last exact, symmetric halves)', () => {
    const l = torchLinspaceF32(Math.sqrt(0.00085), Math.sqrt(0.012), 1000);
    expect(l[0]).toBe(Math.fround(Math.sqrt(0.00085)));
    expect(l[999]).toBe(Math.fround(Math.sqrt(0.012)));
    expect(torchLinspaceF32(0, 1, 1)[0]).toBe(0);
    expect(torchLinspaceF32(0, 1, 0).length).toBe(0);
    expect(Array.from(torchLinspaceF32(0, 4, 5))).toEqual([0, 1, 2, 3, 4]);
  });

  it('torchCumprodF32 accumulates in float64 (differs from a float32 running product)', () => {
    const x = new Float32Array(1000).fill(Math.fround(0.999));
    const out = torchCumprodF32(x);
    expect(out[999]).toBe(Math.fround(Math.fround(0.999) ** 1000));
    let acc = 1;
    for (let i = 0; i < 1000; i++) acc = Math.fround(acc * x[i]!);
    expect(out[999]).not.toBe(acc);
  });

  it('numpyLinspace / numpyArange reproduce NumPy, including arange’s extra element', () => {
    expect(Array.from(numpyLinspace(0, 999, 4))).toEqual([0, 333, 666, 999]);
    expect(Array.from(numpyLinspace(0, 1, 1))).toEqual([0]);
    // np.arange(1000, 0, -1000/61) has 62 elements (the last ≈ 1e-13), a known NumPy float-step quirk.
    const a = numpyArange(1000, 0, -1000 / 61);
    expect(a.length).toBe(62);
    expect(Math.abs(a[61]!)).toBeLessThan(1e-9);
    expect(numpyArange(0, 0, 1).length).toBe(0);
  });
});
