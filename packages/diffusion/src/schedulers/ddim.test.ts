import { InvalidArgumentError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { type DDIMConfig, DDIMScheduler } from './ddim.js';
import { img2imgTimesteps } from './img2img.js';

// No DDIM fixture exists in the golden folder: these tests use hand-computed values and float64 formulas.
const SD = {
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  steps_offset: 1,
  clip_sample: false,
  set_alpha_to_one: false,
} as const;
const make = (extra: Partial<DDIMConfig> = {}) => new DDIMScheduler({ ...SD, ...extra });

function vec(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return ((s / 2 ** 32) * 2 - 1) * scale;
  });
}
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

describe('DDIMScheduler', () => {
  it('hand-computed step on a 4-step toy schedule (trained_betas 0.1…0.4)', () => {
    // alphas 0.9, 0.8, 0.7, 0.6 → ᾱ = 0.9, 0.72, 0.504, 0.3024; N = 2, leading: ratio 4 // 2 = 2 → [2, 0]
    const s = new DDIMScheduler({
      num_train_timesteps: 4,
      trained_betas: [0.1, 0.2, 0.3, 0.4],
      clip_sample: false,
      set_alpha_to_one: true,
    });
    s.setTimesteps(2);
    expect(s.timesteps).toEqual([2, 0]);
    [0.9, 0.72, 0.504, 0.3024].forEach((v, i) => {
      expect(s.alphasCumprod[i]).toBeCloseTo(v, 7);
    });
    const x = Float32Array.from([1, -2]);
    const eps = Float32Array.from([0.5, 0.25]);
    // t = 2 → prev 0: x0 = (x − √(1−0.504)·ε)/√0.504, prev = √0.9·x0 + √(1−0.9)·ε
    const x0 = (xi: number, e: number) => (xi - Math.sqrt(0.496) * e) / Math.sqrt(0.504);
    const prev = (xi: number, e: number) => Math.sqrt(0.9) * x0(xi, e) + Math.sqrt(0.1) * e;
    const out = s.step(eps, 2, x);
    expect(out.predOriginalSample[0]).toBeCloseTo(x0(1, 0.5), 6);
    expect(out.prevSample[0]).toBeCloseTo(prev(1, 0.5), 6);
    expect(out.prevSample[1]).toBeCloseTo(prev(-2, 0.25), 6);
    // t = 0 → prev −2 < 0: ᾱ_prev = final_alpha_cumprod = 1 → the step returns x0
    const last = s.step(eps, 0, x);
    expect(Array.from(last.prevSample)).toEqual(Array.from(last.predOriginalSample));
    expect(last.prevSample[0]).toBeCloseTo((1 - Math.sqrt(0.1) * 0.5) / Math.sqrt(0.9), 6);
    // variance(2, 0) = (1 − 0.9)/(1 − 0.504) · (1 − 0.504/0.9)
    expect(s.getVariance(2, 0)).toBeCloseTo((0.1 / 0.496) * (1 - 0.504 / 0.9), 7);
    // set_alpha_to_one false → ᾱ_prev = ᾱ₀ at the end
    const t = new DDIMScheduler({ num_train_timesteps: 4, trained_betas: [0.1, 0.2, 0.3, 0.4], set_alpha_to_one: false });
    t.setTimesteps(2);
    expect(t.stepScalars(0).alphaProdTPrev).toBe(Math.fround(0.9));
  });

  for (const prediction_type of ['epsilon', 'v_prediction', 'sample'] as const) {
    it(`eta = 0 and eta = 0.7 (${prediction_type}) match the float64 DDIM formula`, () => {
      const s = make({ prediction_type });
      s.setTimesteps(50);
      const n = 64;
      for (const eta of [0, 0.7]) {
        let x = vec(n, 1, 3);
        s.timesteps.slice(0, 10).forEach((t, i) => {
          const mo = vec(n, 10 + i, 1);
          const noise = vec(n, 90 + i, 1);
          const out = s.step(mo, t, x, eta > 0 ? { eta, varianceNoise: noise } : {});
          const a = s.alphasCumprod[t]!;
          const ap = s.alphasCumprod[t - 20]!;
          const variance = ((1 - ap) / (1 - a)) * (1 - a / ap);
          const std = eta * Math.sqrt(variance);
          const ref = Array.from(x, (xi, k) => {
            const m = mo[k]!;
            const [x0, e] =
              prediction_type === 'epsilon'
                ? [(xi - Math.sqrt(1 - a) * m) / Math.sqrt(a), m]
                : prediction_type === 'sample'
                  ? [m, (xi - Math.sqrt(a) * m) / Math.sqrt(1 - a)]
                  : [Math.sqrt(a) * xi - Math.sqrt(1 - a) * m, Math.sqrt(a) * m + Math.sqrt(1 - a) * xi];
            return Math.sqrt(ap) * x0 + Math.sqrt(1 - ap - std * std) * e + std * noise[k]!;
          });
          const scale = Math.max(...ref.map(Math.abs));
          expect(maxAbsDiff(out.prevSample, ref), `eta ${eta} step ${i}`).toBeLessThanOrEqual(1e-6 * scale);
          x = out.prevSample;
        });
      }
    });
  }

  it('clip_sample clamps x0 (and use_clipped_model_output recomputes epsilon from it)', () => {
    const s = make({ clip_sample: true, clip_sample_range: 1 });
    s.setTimesteps(10);
    const t = s.timesteps[0]!;
    const x = Float32Array.from([30, -30, 0.1]);
    const eps = Float32Array.from([0, 0, 0]);
    const out = s.step(eps, t, x);
    expect(Array.from(out.predOriginalSample)).toEqual([
      1,
      -1,
      Math.fround(Math.fround(0.1) / Math.fround(Math.sqrt(s.alphasCumprod[t]!))),
    ]);
    const clipped = s.step(eps, t, x, { useClippedModelOutput: true });
    const a = s.alphasCumprod[t]!;
    const ap = s.alphasCumprod[t - 100]!;
    const epsC = (30 - Math.sqrt(a) * 1) / Math.sqrt(1 - a);
    expect(clipped.prevSample[0]).toBeCloseTo(Math.sqrt(ap) + Math.sqrt(1 - ap) * epsC, 4);
  });

  it('eta > 0 needs the noise; bad arguments are rejected', () => {
    const s = make();
    expect(() => s.step(vec(4, 1), 981, vec(4, 2))).toThrow(/setTimesteps/);
    s.setTimesteps(50);
    expect(() => s.step(vec(4, 1), 981, vec(4, 2), { eta: 1 })).toThrow(/varianceNoise/);
    expect(() => s.step(vec(4, 1), 981, vec(4, 2), { eta: -1 })).toThrow(InvalidArgumentError);
    expect(() => s.step(vec(4, 1), 1000, vec(4, 2))).toThrow(/not a training timestep/);
    expect(() => s.step(vec(3, 1), 981, vec(4, 2))).toThrow(/modelOutput/);
  });

  it('add_noise and get_velocity per batch item, float32', () => {
    const s = make();
    const x = vec(8, 1);
    const z = vec(8, 2);
    const noisy = s.addNoise(x, z, [618, 537]);
    const v = s.getVelocity(x, z, [618, 537]);
    for (let i = 0; i < 8; i++) {
      const a = s.alphasCumprod[i < 4 ? 618 : 537]!;
      const sa = Math.fround(Math.sqrt(a));
      const sb = Math.fround(Math.sqrt(Math.fround(1 - a)));
      expect(noisy[i]).toBe(Math.fround(Math.fround(sa * x[i]!) + Math.fround(sb * z[i]!)));
      expect(v[i]).toBe(Math.fround(Math.fround(sa * z[i]!) - Math.fround(sb * x[i]!)));
    }
    expect(s.addNoise(x, z, 618).length).toBe(8);
  });

  it('img2img with DDIM (no begin index): t_start slicing of the leading schedule', () => {
    const s = make();
    const sel = img2imgTimesteps(s, 50, 0.75);
    // int(50 · 0.75) = 37 → t_start 13; leading: 981 − 20·13 = 721
    expect(sel).toMatchObject({ initTimestep: 37, tStart: 13, beginIndex: 13, latentTimestep: 721, numSteps: 37 });
    expect(sel.timesteps.length).toBe(37);
    expect(sel.timesteps.at(-1)).toBe(1);
    expect(() => img2imgTimesteps(s, 10, 0.05)).toThrow(/no denoising step/);
    expect(() => img2imgTimesteps(s, 10, 1.5)).toThrow(/strength/);
    expect(() => img2imgTimesteps(s, 0, 0.5)).toThrow(/numInferenceSteps/);
    // int() truncates the float64 product like Python: 100 · 0.29 = 28.999999999999996 → 28
    expect(img2imgTimesteps(s, 100, 0.29).initTimestep).toBe(28);
  });
});
