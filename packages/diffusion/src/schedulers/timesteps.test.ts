import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { ddimTimesteps, dpmTimesteps, type TimestepSpacing } from './timesteps.js';

// Generated with NumPy from diffusers' expressions (see `_provenance` in the file).
const reference = JSON.parse(readFileSync(new URL('./testdata/numpy-reference.json', import.meta.url), 'utf8')) as {
  dpm: Record<TimestepSpacing, Record<string, number[]>>;
  ddim: Record<TimestepSpacing, Record<string, number[]>>;
};
const opts = { numTrainTimesteps: 1000, stepsOffset: 1 };
const spacings: TimestepSpacing[] = ['linspace', 'leading', 'trailing'];

describe('timestep spacing (NumPy reference)', () => {
  for (const spacing of spacings) {
    it(`DPM-Solver ${spacing} equals NumPy for every N in the table`, () => {
      for (const [n, expected] of Object.entries(reference.dpm[spacing]))
        expect(dpmTimesteps(Number(n), spacing, opts), `N=${n}`).toEqual(expected);
    });
    it(`DDIM ${spacing} equals NumPy for every N in the table`, () => {
      for (const [n, expected] of Object.entries(reference.ddim[spacing]))
        expect(ddimTimesteps(Number(n), spacing, opts), `N=${n}`).toEqual(expected);
    });
  }

  it('hand-checked values', () => {
    // SD + DPM-Solver (linspace): round(linspace(0, 999, 26))[::-1][:-1]; 999/25 = 39.96
    expect(dpmTimesteps(25, 'linspace', opts).slice(0, 4)).toEqual([999, 959, 919, 879]);
    // np.round is half-to-even: linspace(0, 999, 7) has 166.5 and 832.5 → 166 and 832
    expect(dpmTimesteps(6, 'linspace', opts)).toEqual([999, 832, 666, 500, 333, 166]);
    // SD + DDIM (leading, steps_offset 1): 1000 // 50 = 20 → 981, 961, …, 1
    const ddim50 = ddimTimesteps(50, 'leading', opts);
    expect(ddim50[0]).toBe(981);
    expect(ddim50[49]).toBe(1);
    expect(ddimTimesteps(4, 'trailing', opts)).toEqual([999, 749, 499, 249]);
    // trailing with N = 61 keeps NumPy's 62nd value (round(1e-13) − 1 = −1), as diffusers does
    const t61 = dpmTimesteps(61, 'trailing', opts);
    expect(t61.length).toBe(62);
    expect(t61[61]).toBe(-1);
    // lambda_min_clipped shortens the range: linspace(0, last − 1, N + 1)
    expect(dpmTimesteps(2, 'linspace', { ...opts, lastTimestep: 801 })).toEqual([800, 400]);
  });

  it('rejects bad step counts and spacings', () => {
    expect(() => dpmTimesteps(0, 'linspace', opts)).toThrow(InvalidArgumentError);
    expect(() => dpmTimesteps(2.5, 'linspace', opts)).toThrow(/positive integer/);
    expect(() => ddimTimesteps(1001, 'leading', opts)).toThrow(/cannot be larger/);
    expect(() => ddimTimesteps(10, 'karras' as TimestepSpacing, opts)).toThrow(/not supported/);
  });
});
