/**
 * Parity with diffusers 0.40 over a golden folder (`DIFFMIX_GOLDEN_DIR`, default fixtures/golden):
 * `scheduler/` tables and trajectories, `tiny-sd/scheduler/` configs and the scheduler part of `img2img/<case>/`.
 * Cases are discovered by listing the folders.
 *
 * Tolerances (measured diffs are printed when DIFFMIX_REPORT=1):
 * - timesteps, t_start, begin index: exact.
 * - sigmas / alpha_t / sigma_t / lambda_t: ≤ 1e-6 relative per entry. This port rounds to float32 after each
 *   torch op; the only differences left come from torch's vectorised pow/log (≤ 1 ulp ≈ 6e-8 relative).
 * - betas, alphas_cumprod, add_noise: exact (pure float32 + − × ÷ √ arithmetic).
 * - trajectories and img2img step latents: max|Δ| ≤ 1e-6 · max|ref| per array. The golden README measured an
 *   independent NumPy port at 1e-6 relative; a 1-ulp sigma difference propagates through ~25 steps of float32
 *   arithmetic, so a few ulps of the largest value is what a faithful port can promise.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type NpyArray, parseNpy } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { parseSchedulerConfigJson } from './config.js';
import { DDIMScheduler } from './ddim.js';
import { DPMSolverMultistepScheduler } from './dpm-solver-multistep.js';
import { img2imgTimesteps } from './img2img.js';

const here = dirname(fileURLToPath(import.meta.url));
const GOLDEN = resolve(process.env.DIFFMIX_GOLDEN_DIR ?? join(here, '..', '..', 'fixtures', 'golden'));
const REPORT = process.env.DIFFMIX_REPORT === '1';

const npy = (path: string): NpyArray => parseNpy(readFileSync(path), path);
const f32 = (path: string): Float32Array => {
  const a = npy(path);
  if (!(a.data instanceof Float32Array)) throw new Error(`${path}: expected <f4, got ${a.dtype}`);
  return a.data;
};
const ints = (path: string): number[] => Array.from(npy(path).data as ArrayLike<number | bigint>, Number);
const json = (path: string): Record<string, unknown> => parseSchedulerConfigJson(readFileSync(path, 'utf8'), path);
const subdirs = (dir: string, prefix: string): string[] =>
  existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true })
        .filter((d) => d.isDirectory() && d.name.startsWith(prefix))
        .map((d) => d.name)
        .sort()
    : [];

/** max |a−b| / |b| over entries (equal non-finite values count as 0). */
function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    m = Math.max(m, Math.abs(x - y) / Math.abs(y));
  }
  return m;
}
function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
function maxMag(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
const row = (a: Float32Array, i: number, n: number): Float32Array => a.subarray(i * n, (i + 1) * n);
const report = (...args: unknown[]): void => {
  if (REPORT) console.log('[schedulers golden]', ...args);
};

const SCHED = join(GOLDEN, 'scheduler');
const TINY = join(GOLDEN, 'tiny-sd', 'scheduler');
const stepDirs = subdirs(SCHED, 'dpm_steps');
const imgCases = subdirs(join(GOLDEN, 'img2img'), '');
const sdConfig = (): Record<string, unknown> => json(join(TINY, 'scheduler_config.json'));

describe.skipIf(!existsSync(TINY))(`scheduler configs (${TINY})`, () => {
  it('DPMSolverMultistepScheduler.from_config(SD PNDM config) resolves exactly as diffusers', () => {
    const expected = json(join(TINY, 'dpm_scheduler_config_resolved.json'));
    const got = DPMSolverMultistepScheduler.fromConfig(sdConfig()).toDiffusersConfig();
    const norm = (o: Record<string, unknown>) => {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(o)) {
        if (v === 'Infinity' || v === '-Infinity' || v === 'NaN') out[k] = Number(v);
        else if (k === '_use_default_values') out[k] = [...(v as string[])].sort();
        else out[k] = v;
      }
      return out;
    };
    expect(norm(got)).toEqual(norm(expected));
    expect(got.timestep_spacing).toBe('linspace');
    expect(got.steps_offset).toBe(1);
  });

  it('re-resolving the resolved config is a fixed point', () => {
    const once = DPMSolverMultistepScheduler.fromConfig(sdConfig()).toDiffusersConfig();
    const twice = DPMSolverMultistepScheduler.fromConfig(once).toDiffusersConfig();
    expect(twice).toEqual(once);
  });
});

describe.skipIf(!existsSync(SCHED))(`DPM-Solver++ tables (${SCHED})`, () => {
  it('betas and alphas_cumprod are bit-identical', () => {
    const s = DPMSolverMultistepScheduler.fromConfig(sdConfig());
    expect(Array.from(s.betas)).toEqual(Array.from(f32(join(SCHED, 'betas.npy'))));
    expect(Array.from(s.alphasCumprod)).toEqual(Array.from(f32(join(SCHED, 'alphas_cumprod.npy'))));
  });

  it('finds the dpm_steps folders', () => {
    expect(stepDirs.length).toBeGreaterThan(0);
  });

  for (const dir of stepDirs) {
    const base = join(SCHED, dir);
    it(`${dir}: timesteps exact, sigmas / alpha_t / sigma_t / lambda_t ≤ 1e-6 relative`, () => {
      const timesteps = ints(join(base, 'timesteps.npy'));
      const s = DPMSolverMultistepScheduler.fromConfig(sdConfig());
      s.setTimesteps(timesteps.length);
      expect(s.timesteps).toEqual(timesteps);
      const tables = json(join(base, 'tables.json'));
      expect(s.timesteps).toEqual(tables.timesteps);
      const t = s.scheduleTables();
      const sigmas = f32(join(base, 'sigmas.npy'));
      const diffs = {
        sigmas: maxRel(t.sigmas, sigmas),
        sigmas_vs_f64: maxRel(t.sigmas, npy(join(base, 'sigmas_f64.npy')).data as Float64Array),
        alpha_t: maxRel(t.alphaT, f32(join(base, 'alpha_t.npy'))),
        sigma_t: maxRel(t.sigmaT, f32(join(base, 'sigma_t.npy'))),
        lambda_t: maxRel(t.lambdaT, f32(join(base, 'lambda_t.npy'))),
      };
      const bitExact = t.sigmas.filter((v, i) => v === sigmas[i]).length;
      report(dir, diffs, `sigmas bit-identical ${bitExact}/${sigmas.length}`);
      for (const v of Object.values(diffs)) expect(v).toBeLessThanOrEqual(1e-6);
      expect(t.lambdaT[t.lambdaT.length - 1]).toBe(Number.POSITIVE_INFINITY);
    });

    for (const traj of subdirs(base, 'traj_strength')) {
      it(`${dir}/${traj}: img2img timesteps exact, add_noise exact, trajectory ≤ 1e-6·max|ref|`, () => {
        const tdir = join(base, traj);
        const meta = json(join(tdir, 'traj.json'));
        const N = ints(join(base, 'timesteps.npy')).length;
        const s = DPMSolverMultistepScheduler.fromConfig(sdConfig());
        const sel = img2imgTimesteps(s, N, meta.strength as number);
        expect(sel.timesteps).toEqual(meta.timesteps_used);
        expect(sel.tStart).toBe(meta.t_start);
        expect(sel.beginIndex).toBe(meta.begin_index);
        expect(sel.initTimestep).toBe(meta.init_timestep);
        expect(sel.numSteps).toBe(meta.num_steps);

        const x0 = f32(join(tdir, 'x0.npy'));
        const noisyRef = f32(join(tdir, 'noisy.npy'));
        const noisy = s.addNoise(x0, f32(join(tdir, 'noise.npy')), sel.latentTimestep);
        const noisyDiff = maxAbs(noisy, noisyRef);
        expect(noisyDiff).toBeLessThanOrEqual(1e-6 * maxMag(noisyRef));

        const n = x0.length;
        const modelOut = f32(join(tdir, 'model_output.npy'));
        const x0Ref = f32(join(tdir, 'x0_pred.npy'));
        const latRef = f32(join(tdir, 'latents.npy'));
        // Open loop: the recorded model outputs. Closed loop: model_output = 0.1·x + 0.01·t/1000 from our own sample
        // (torch: the float64 scalar is cast to float32 before the add).
        const closed = DPMSolverMultistepScheduler.fromConfig(sdConfig());
        img2imgTimesteps(closed, N, meta.strength as number);
        let sample = noisy;
        let sampleClosed = noisy;
        let worst = { x0: 0, latents: 0, closedLatents: 0, modelOutput: 0 };
        const orders: number[] = [];
        sel.timesteps.forEach((t, i) => {
          const mo = row(modelOut, i, n);
          const ownMo = sampleClosed.map((x) => Math.fround(Math.fround(Math.fround(0.1) * x) + Math.fround((0.01 * t) / 1000)));
          if (i === 0) worst.modelOutput = maxAbs(ownMo, mo) / maxMag(mo);
          const out = s.step(mo, t, sample);
          orders.push(out.order);
          const outClosed = closed.step(ownMo, t, sampleClosed);
          const refX0 = row(x0Ref, i, n);
          const refLat = row(latRef, i, n);
          worst = {
            x0: Math.max(worst.x0, maxAbs(out.convertedModelOutput, refX0) / maxMag(refX0)),
            latents: Math.max(worst.latents, maxAbs(out.prevSample, refLat) / maxMag(refLat)),
            closedLatents: Math.max(worst.closedLatents, maxAbs(outClosed.prevSample, refLat) / maxMag(refLat)),
            modelOutput: worst.modelOutput,
          };
          sample = out.prevSample;
          sampleClosed = outClosed.prevSample;
        });
        report(`${dir}/${traj}`, { noisyAbs: noisyDiff, ...worst, orders: orders.join('') });
        expect(orders[0]).toBe(1);
        expect(orders[orders.length - 1]).toBe(1);
        expect(orders.slice(1, -1).every((o) => o === 2)).toBe(true);
        expect(worst.x0).toBeLessThanOrEqual(1e-6);
        expect(worst.latents).toBeLessThanOrEqual(1e-6);
        expect(worst.closedLatents).toBeLessThanOrEqual(1e-6);
        expect(worst.modelOutput).toBeLessThanOrEqual(1e-6);
      });
    }
  }
});

describe.skipIf(imgCases.length === 0 || !existsSync(TINY))(`img2img scheduler use (${join(GOLDEN, 'img2img')})`, () => {
  for (const name of imgCases) {
    const dir = join(GOLDEN, 'img2img', name);
    it(`${name}: timesteps, begin index, add_noise and scheduler steps match the pipeline run`, () => {
      const c = json(join(dir, 'case.json'));
      const s = DPMSolverMultistepScheduler.fromConfig(sdConfig());
      const sel = img2imgTimesteps(s, c.num_inference_steps as number, c.strength as number);
      expect(s.timesteps).toEqual(c.scheduler_timesteps_full);
      expect(sel.timesteps).toEqual(ints(join(dir, 'unet_timestep.npy')));
      expect(sel.timesteps).toEqual(c.timesteps_used);
      expect(sel.tStart).toBe(c.t_start);
      expect(sel.beginIndex).toBe(c.begin_index);
      expect(sel.initTimestep).toBe(c.init_timestep);
      expect(sel.latentTimestep).toBe(c.latent_timestep);

      const init = f32(join(dir, 'init_latents.npy'));
      const noisyRef = f32(join(dir, 'noisy_latents.npy'));
      const noisy = s.addNoise(init, f32(join(dir, 'noise_1.npy')), sel.latentTimestep);
      const noisyDiff = maxAbs(noisy, noisyRef);
      expect(noisyDiff).toBeLessThanOrEqual(1e-6 * maxMag(noisyRef));

      const n = init.length;
      const eps = f32(join(dir, 'noise_pred.npy'));
      const stepRef = f32(join(dir, 'step_latents.npy'));
      const unetIn = npy(join(dir, 'unet_sample_in.npy'));
      const batch = unetIn.shape[1]!;
      let latents = noisy;
      let worst = 0;
      let worstInput = 0;
      sel.timesteps.forEach((t, i) => {
        const input = s.scaleModelInput(latents, t);
        for (let b = 0; b < batch; b++) {
          const ref = row(unetIn.data as Float32Array, i * batch + b, n);
          worstInput = Math.max(worstInput, maxAbs(input, ref) / maxMag(ref));
        }
        latents = s.step(row(eps, i, n), t, latents).prevSample;
        const ref = row(stepRef, i, n);
        worst = Math.max(worst, maxAbs(latents, ref) / maxMag(ref));
      });
      report(name, { noisyAbs: noisyDiff, stepLatentsRel: worst, unetInputRel: worstInput });
      expect(worst).toBeLessThanOrEqual(1e-6);
      expect(worstInput).toBeLessThanOrEqual(1e-6);
    });
  }
});

// The LoRA training fixture (present in the shared golden folder) noises latents with DDPM's add_noise, which is
// DDIM's formula: check DDIMScheduler.addNoise against it when it is there.
const LORA = join(GOLDEN, 'grads', 'lora_step');
describe.skipIf(!existsSync(join(LORA, 'noisy_latents.npy')) || !existsSync(TINY))(
  'DDIM/DDPM add_noise (grads/lora_step)',
  () => {
    it('√ᾱ_t·x + √(1−ᾱ_t)·noise per batch item is bit-identical', () => {
      const s = DDIMScheduler.fromConfig(sdConfig());
      const got = s.addNoise(f32(join(LORA, 'latents.npy')), f32(join(LORA, 'noise.npy')), ints(join(LORA, 'timesteps.npy')));
      const ref = f32(join(LORA, 'noisy_latents.npy'));
      report('ddim add_noise max abs', maxAbs(got, ref));
      expect(Array.from(got)).toEqual(Array.from(ref));
    });
  },
);
