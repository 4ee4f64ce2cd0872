import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { DDIMScheduler } from './ddim.js';
import { type DPMSolverMultistepConfig, DPMSolverMultistepScheduler } from './dpm-solver-multistep.js';
import { img2imgTimesteps } from './img2img.js';

const SD = { beta_start: 0.00085, beta_end: 0.012, beta_schedule: 'scaled_linear', steps_offset: 1 } as const;
const make = (extra: Partial<DPMSolverMultistepConfig> = {}) => new DPMSolverMultistepScheduler({ ...SD, ...extra });

/** Deterministic pseudo-random float32 vector. */
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
const maxMag = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
};

/**
 * Float64 reference of one multistep update, from the DPM-Solver / DPM-Solver++ papers' formulas as diffusers
 * writes them (Lu et al. 2022a/b): used to check the float32 port's term bookkeeping for every variant.
 */
function reference(
  algo: string,
  solverType: string,
  order: number,
  sig: number[], // [sigma_t, sigma_s0, sigma_s1, sigma_s2]
  m: Float32Array[], // [m0 (current), m1, m2] converted model outputs
  sample: Float32Array,
  noise: Float32Array | undefined,
): Float64Array {
  const a = sig.map((s) => 1 / Math.sqrt(s * s + 1));
  const sg = sig.map((s, i) => s * a[i]!);
  const lam = a.map((x, i) => Math.log(x) - Math.log(sg[i]!));
  const h = lam[0]! - lam[1]!;
  const [aT, a0] = [a[0]!, a[1]!];
  const [sT, s0] = [sg[0]!, sg[1]!];
  const out = new Float64Array(sample.length);
  for (let i = 0; i < sample.length; i++) {
    const D0 = m[0]![i]!;
    let D1 = 0;
    let D2 = 0;
    if (order === 2) D1 = (D0 - m[1]![i]!) / ((lam[1]! - lam[2]!) / h);
    if (order === 3) {
      const r0 = (lam[1]! - lam[2]!) / h;
      const r1 = (lam[2]! - lam[3]!) / h;
      const d10 = (D0 - m[1]![i]!) / r0;
      const d11 = (m[1]![i]! - m[2]![i]!) / r1;
      D1 = d10 + (r0 / (r0 + r1)) * (d10 - d11);
      D2 = (d10 - d11) / (r0 + r1);
    }
    const x = sample[i]!;
    const z = noise?.[i] ?? 0;
    const em = Math.expm1(-h);
    const ep = Math.expm1(h);
    const e2 = -Math.expm1(-2 * h); // 1 − e^{−2h}
    let v: number;
    if (algo === 'dpmsolver++') {
      v = (sT / s0) * x - aT * em * D0;
      if (order === 2) v += solverType === 'midpoint' ? -0.5 * aT * em * D1 : aT * (em / h + 1) * D1;
      if (order === 3) v += aT * (em / h + 1) * D1 - aT * ((em + h) / (h * h) - 0.5) * D2;
    } else if (algo === 'dpmsolver') {
      v = (aT / a0) * x - sT * ep * D0;
      if (order === 2) v += solverType === 'midpoint' ? -0.5 * sT * ep * D1 : -sT * (ep / h - 1) * D1;
      if (order === 3) v += -sT * (ep / h - 1) * D1 - sT * ((ep - h) / (h * h) - 0.5) * D2;
    } else if (algo === 'sde-dpmsolver++') {
      v = (sT / s0) * Math.exp(-h) * x + aT * e2 * D0 + sT * Math.sqrt(e2) * z;
      if (order === 2) v += solverType === 'midpoint' ? 0.5 * aT * e2 * D1 : aT * (e2 / (-2 * h) + 1) * D1;
      if (order === 3) v += aT * (e2 / (-2 * h) + 1) * D1 + aT * ((e2 - 2 * h) / (4 * h * h) - 0.5) * D2;
    } else {
      v = (aT / a0) * x - 2 * sT * ep * D0 + sT * Math.sqrt(Math.expm1(2 * h)) * z;
      if (order === 2) v += solverType === 'midpoint' ? -sT * ep * D1 : -2 * sT * (ep / h - 1) * D1;
    }
    out[i] = v;
  }
  return out;
}

describe('DPMSolverMultistepScheduler', () => {
  it('uses first order for the first step, second order after, first order for the final (zero-sigma) step', () => {
    const s = make();
    s.setTimesteps(20);
    const n = 16;
    let x = vec(n, 1, 10);
    const orders: number[] = [];
    for (const t of s.timesteps) {
      const out = s.step(vec(n, t, 1), t, x);
      orders.push(out.order);
      x = out.prevSample;
      expect(x.every(Number.isFinite)).toBe(true);
    }
    expect(orders.join('')).toBe(`1${'2'.repeat(18)}1`);
    expect(() => s.step(vec(n, 0, 1), 0, x)).toThrow(/outside the schedule/);
  });

  it('third order with lower_order_final for < 15 steps: 1 2 3 … 3 2 1; sigma_min final keeps order 3 for ≥ 15 steps', () => {
    const orders = (cfg: Partial<DPMSolverMultistepConfig>, N: number) => {
      const s = make(cfg);
      s.setTimesteps(N);
      let x = vec(8, 2, 5);
      return s.timesteps
        .map((t) => {
          const out = s.step(vec(8, t), t, x);
          x = out.prevSample;
          return out.order;
        })
        .join('');
    };
    expect(orders({ solver_order: 3 }, 10)).toBe('1233333321');
    expect(orders({ solver_order: 3 }, 16)).toBe(`123${'3'.repeat(12)}1`);
    expect(orders({ solver_order: 3, final_sigmas_type: 'sigma_min' }, 16)).toBe(`123${'3'.repeat(13)}`);
    expect(orders({ solver_order: 3, final_sigmas_type: 'sigma_min', euler_at_final: true }, 16)).toBe(`123${'3'.repeat(12)}1`);
    expect(orders({ solver_order: 1 }, 6)).toBe('111111');
  });

  it('the final step with final_sigmas_type zero returns the data prediction exactly (exp(−∞) = 0, no NaN)', () => {
    const s = make();
    s.setTimesteps(5);
    let x = vec(32, 3, 14);
    let last: ReturnType<typeof s.step> | undefined;
    for (const t of s.timesteps) {
      last = s.step(vec(32, t + 7), t, x);
      x = last.prevSample;
    }
    expect(s.sigmas[5]).toBe(0);
    const scal = s.solverScalars(4, 1);
    expect(scal.lambda[0]).toBe(Number.POSITIVE_INFINITY);
    expect(scal.coefficients).toEqual([0, 1]);
    expect(Array.from(last!.prevSample)).toEqual(Array.from(last!.convertedModelOutput));
  });

  for (const [algo, types, maxOrder, finalType] of [
    ['dpmsolver++', ['midpoint', 'heun'], 3, 'zero'],
    ['dpmsolver', ['midpoint', 'heun'], 3, 'sigma_min'],
    ['sde-dpmsolver++', ['midpoint', 'heun'], 3, 'zero'],
    ['sde-dpmsolver', ['midpoint', 'heun'], 2, 'sigma_min'],
  ] as const) {
    for (const solverType of types) {
      it(`${algo} / ${solverType}, orders 1…${maxOrder}: every step matches the float64 formula (≤ 2e-6·max)`, () => {
        const s = make({ algorithm_type: algo, solver_type: solverType, solver_order: maxOrder, final_sigmas_type: finalType });
        s.setTimesteps(12);
        const n = 64;
        let x = vec(n, 11, 14);
        const sde = algo.startsWith('sde');
        const seen = new Set<number>();
        s.timesteps.forEach((t, i) => {
          const modelOutput = vec(n, 100 + i, 1);
          const noise = sde ? vec(n, 500 + i, 1) : undefined;
          const out = s.step(modelOutput, t, x, noise ? { varianceNoise: noise } : {});
          seen.add(out.order);
          const stored = s.modelOutputs.filter((m): m is Float32Array => m !== null).reverse();
          const sig = [s.sigmas[i + 1]!, s.sigmas[i]!, s.sigmas[i - 1] ?? 1, s.sigmas[i - 2] ?? 1];
          const ref = reference(algo, solverType, out.order, sig, stored, x, noise);
          expect(maxAbsDiff(out.prevSample, ref), `step ${i} order ${out.order}`).toBeLessThanOrEqual(2e-6 * maxMag(ref));
          x = out.prevSample;
        });
        expect([...seen].sort()).toEqual(maxOrder === 3 ? [1, 2, 3] : [1, 2]);
      });
    }
  }

  it('SDE variants need the noise; every variant rejects arrays of the wrong size', () => {
    const s = make({ algorithm_type: 'sde-dpmsolver++' });
    s.setTimesteps(4);
    expect(() => s.step(vec(4, 1), 999, vec(4, 2))).toThrow(/varianceNoise/);
    expect(() => s.step(vec(4, 1), 999, vec(5, 2))).toThrow(InvalidArgumentError);
    const d = make();
    expect(() => d.step(vec(4, 1), 999, vec(4, 2))).toThrow(/setTimesteps/);
    expect(() => d.convertModelOutput(vec(4, 1), vec(4, 2))).toThrow(/not initialised/);
  });

  it('convert_model_output: epsilon, v_prediction and sample against the float64 formulas', () => {
    const n = 32;
    const x = vec(n, 5, 3);
    const mo = vec(n, 6, 1);
    for (const prediction_type of ['epsilon', 'v_prediction', 'sample'] as const) {
      const s = make({ prediction_type });
      s.setTimesteps(10);
      const sigma = s.sigmas[4]!;
      const a = 1 / Math.sqrt(sigma * sigma + 1);
      const sg = sigma * a;
      const got = s.convertModelOutput(mo, x, 4);
      const ref = Array.from(x, (xi, i) =>
        prediction_type === 'epsilon'
          ? (xi - sg * mo[i]!) / a
          : prediction_type === 'v_prediction'
            ? a * xi - sg * mo[i]!
            : mo[i]!,
      );
      expect(maxAbsDiff(got, ref)).toBeLessThanOrEqual(1e-6 * maxMag(ref));
    }
    // dpmsolver (noise prediction) turns a data prediction into epsilon
    const e = make({ algorithm_type: 'dpmsolver', final_sigmas_type: 'sigma_min', prediction_type: 'sample' });
    e.setTimesteps(10);
    const sigma = e.sigmas[2]!;
    const a = 1 / Math.sqrt(sigma * sigma + 1);
    const got = e.convertModelOutput(mo, x, 2);
    const ref = Array.from(x, (xi, i) => (xi - a * mo[i]!) / (sigma * a));
    expect(maxAbsDiff(got, ref)).toBeLessThanOrEqual(1e-6 * maxMag(ref));
  });

  it('dynamic thresholding clamps x0 to the per-image quantile (sample prediction)', () => {
    const s = make({ prediction_type: 'sample', thresholding: true, dynamic_thresholding_ratio: 0.5, sample_max_value: 1.5 });
    s.setTimesteps(4);
    // image 0: |x| median (linear quantile 0.5 of 4 values) = (1 + 2)/2 = 1.5 → clamp to ±1.5, divide by 1.5
    // image 1: median 0.5 → s = max(0.5, 1) = 1 → plain clipping to [−1, 1]
    const mo = Float32Array.from([-3, 1, 2, 0.5, 0.25, -0.75, 4, 0.5]);
    const got = s.convertModelOutput(mo, new Float32Array(8), 0, 2);
    expect(Array.from(got)).toEqual(Array.from(Float32Array.from([-1, 1 / 1.5, 1, 0.5 / 1.5, 0.25, -0.75, 1, 0.5])));
  });

  it('DPM-Solver++ first order equals DDIM (eta 0) on the same timesteps', () => {
    const ddim = new DDIMScheduler({ ...SD, set_alpha_to_one: true, clip_sample: false });
    ddim.setTimesteps(10);
    const dpm = make({ solver_order: 1 });
    dpm.setTimesteps({ timesteps: ddim.timesteps });
    let a = vec(64, 9, 1);
    let b = a;
    ddim.timesteps.forEach((t, i) => {
      const eps = vec(64, 40 + i, 1);
      a = ddim.step(eps, t, a).prevSample;
      b = dpm.step(eps, t, b).prevSample;
      expect(maxAbsDiff(a, b), `step ${i}`).toBeLessThanOrEqual(2e-6 * maxMag(a));
    });
  });

  it('index_for_timestep takes the second match of a repeated timestep, the last index when absent', () => {
    const s = make();
    s.setTimesteps({ timesteps: [999, 500, 500, 250] });
    expect(s.indexForTimestep(500)).toBe(2);
    expect(s.indexForTimestep(999)).toBe(0);
    expect(s.indexForTimestep(123)).toBe(3);
    s.initStepIndex(500);
    expect(s.stepIndex).toBe(2);
  });

  it('begin index (img2img): add_noise and the first step use it; after a step add_noise uses the step index', () => {
    const s = make();
    const sel = img2imgTimesteps(s, 25, 0.7);
    expect(sel).toMatchObject({ tStart: 8, beginIndex: 8, initTimestep: 17, latentTimestep: 679, numSteps: 17 });
    expect(s.beginIndex).toBe(8);
    const x = vec(16, 1);
    const z = vec(16, 2);
    const sigma = s.sigmas[8]!;
    const a = Math.fround(1 / Math.fround(Math.sqrt(Math.fround(Math.fround(sigma * sigma) + 1))));
    const expected = Float32Array.from(x, (xi, i) => Math.fround(a * xi) + Math.fround(Math.fround(sigma * a) * z[i]!));
    // the timestep passed is ignored once the begin index is set
    expect(Array.from(s.addNoise(x, z, 12345))).toEqual(Array.from(expected));
    const out = s.step(vec(16, 3), 679, expected);
    expect(out.stepIndex).toBe(8);
    expect(out.order).toBe(1);
    expect(s.stepIndex).toBe(9);
    const sig9 = s.sigmas[9]!;
    const a9 = Math.fround(1 / Math.fround(Math.sqrt(Math.fround(Math.fround(sig9 * sig9) + 1))));
    expect(s.addNoise(x, z, 0)[0]).toBe(Math.fround(a9 * x[0]!) + Math.fround(Math.fround(sig9 * a9) * z[0]!));
    // without a begin index: looked up per batch item from the timestep
    const t = make();
    t.setTimesteps(25);
    const two = t.addNoise(new Float32Array(4).fill(1), new Float32Array(4), [999, 40]);
    const alphaAt = (i: number) => Math.fround(1 / Math.fround(Math.sqrt(Math.fround(Math.fround(t.sigmas[i]! ** 2) + 1))));
    expect(Array.from(two)).toEqual([alphaAt(0), alphaAt(0), alphaAt(24), alphaAt(24)]);
    expect(() => t.addNoise(new Float32Array(3), new Float32Array(3), [1, 2])).toThrow(/batch items/);
    // setTimesteps resets the solver state
    s.setTimesteps(25);
    expect([s.stepIndex, s.beginIndex, s.lowerOrderNums]).toEqual([null, null, 0]);
    expect(s.modelOutputs).toEqual([null, null]);
  });

  it('scale_model_input is the identity and the defaults match diffusers', () => {
    const s = new DPMSolverMultistepScheduler();
    const x = vec(4, 1);
    expect(s.scaleModelInput(x, 10)).toBe(x);
    expect(s.config.beta_schedule).toBe('linear');
    expect(s.config.timestep_spacing).toBe('linspace');
    expect(s.config.steps_offset).toBe(0);
    expect(s.timesteps.length).toBe(1000);
    expect(s.order).toBe(1);
    expect(s.initNoiseSigma).toBe(1);
  });

  it('karras / lu / exponential sigmas and timesteps match the NumPy reference', () => {
    const ref = JSON.parse(readFileSync(new URL('./testdata/numpy-reference.json', import.meta.url), 'utf8'))
      .sigma_conversions as Record<string, Record<string, { timesteps: number[]; sigmas: number[] }>>;
    for (const N of ['10', '25']) {
      for (const kind of ['karras', 'lu', 'exponential'] as const) {
        const flag = { karras: 'use_karras_sigmas', lu: 'use_lu_lambdas', exponential: 'use_exponential_sigmas' }[kind];
        const s = make({ [flag]: true });
        s.setTimesteps(Number(N));
        const r = ref[N]![kind]!;
        expect(s.timesteps, `${kind} N=${N}`).toEqual(r.timesteps);
        expect(maxAbsDiff(s.sigmas, r.sigmas), `${kind} N=${N}`).toBeLessThanOrEqual(2e-7 * maxMag(r.sigmas));
      }
    }
    expect(() => make({ use_karras_sigmas: true }).setTimesteps({ timesteps: [999, 500] })).toThrow(/custom timesteps/);
  });

  it('rescale_betas_zero_snr: terminal ᾱ is 2^-24 so the first sigma stays finite', () => {
    const s = make({ rescale_betas_zero_snr: true, timestep_spacing: 'trailing' });
    expect(s.betas[999]).toBe(1);
    expect(s.alphasCumprod[999]).toBe(2 ** -24);
    s.setTimesteps(10);
    expect(s.timesteps[0]).toBe(999);
    expect(Number.isFinite(s.sigmas[0]!)).toBe(true);
    expect(s.sigmas[0]).toBe(Math.fround(Math.sqrt(Math.fround(Math.fround(1 - 2 ** -24) / 2 ** -24))));
  });

  it('lambda_min_clipped shortens the schedule of the cosine schedule (searchsorted on the flipped lambda table)', () => {
    const s = make({ beta_schedule: 'squaredcos_cap_v2', lambda_min_clipped: -5.1 });
    let clipped = 0;
    while (s.trainLambdaT[999 - clipped]! < -5.1) clipped++;
    expect(clipped).toBeGreaterThan(0);
    s.setTimesteps(10);
    expect(s.timesteps[0]).toBe(1000 - clipped - 1);
    const free = make({ beta_schedule: 'squaredcos_cap_v2' });
    free.setTimesteps(10);
    expect(free.timesteps[0]).toBe(999);
  });
});
