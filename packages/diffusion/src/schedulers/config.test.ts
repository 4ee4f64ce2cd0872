import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, NotFoundError, ValidationError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { formatSchedulerConfigJson, parseSchedulerConfigJson, readSchedulerConfig } from './config.js';
import { DDIMScheduler } from './ddim.js';
import { DPMSolverMultistepScheduler } from './dpm-solver-multistep.js';
import { createScheduler } from './factory.js';

/** SD-1.5's scheduler_config.json (PNDMScheduler), as on the Hub. */
const SD15 = {
  _class_name: 'PNDMScheduler',
  _diffusers_version: '0.6.0',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
};

describe('from_config resolution', () => {
  it('takes the keys DPM-Solver knows, defaults the rest and keeps the others hidden', () => {
    const s = DPMSolverMultistepScheduler.fromConfig(SD15);
    expect(s.config).toMatchObject({
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      beta_end: 0.012,
      steps_offset: 1,
      algorithm_type: 'dpmsolver++',
      solver_order: 2,
      solver_type: 'midpoint',
      lower_order_final: true,
      final_sigmas_type: 'zero',
      timestep_spacing: 'linspace',
      prediction_type: 'epsilon',
      thresholding: false,
      use_karras_sigmas: false,
      euler_at_final: false,
      lambda_min_clipped: Number.NEGATIVE_INFINITY,
      variance_type: null,
    });
    expect(s.useDefaultValues).toContain('timestep_spacing');
    expect(s.useDefaultValues).not.toContain('steps_offset');
    expect(s.hiddenConfig).toEqual({
      _class_name: 'DPMSolverMultistepScheduler',
      _diffusers_version: '0.6.0',
      clip_sample: false,
      set_alpha_to_one: false,
      skip_prk_steps: true,
    });
  });

  it("drops the source's _use_default_values (PNDM's default 'leading' must not leak), but honours explicit keys", () => {
    const pndmRegistered = {
      ...SD15,
      timestep_spacing: 'leading',
      prediction_type: 'epsilon',
      _use_default_values: ['timestep_spacing', 'prediction_type'],
    };
    expect(DPMSolverMultistepScheduler.fromConfig(pndmRegistered).config.timestep_spacing).toBe('linspace');
    const explicit = { ...SD15, timestep_spacing: 'leading' };
    const s = DPMSolverMultistepScheduler.fromConfig(explicit);
    expect(s.config.timestep_spacing).toBe('leading');
    s.setTimesteps(25);
    expect(s.timesteps.slice(0, 3)).toEqual([951, 913, 875]); // 1000 // 26 = 38, + steps_offset 1
  });

  it('overrides win over the source and are validated', () => {
    const s = DPMSolverMultistepScheduler.fromConfig(SD15, { use_karras_sigmas: true, prediction_type: 'v_prediction' });
    expect(s.config.use_karras_sigmas).toBe(true);
    expect(s.config.prediction_type).toBe('v_prediction');
    expect(() => DPMSolverMultistepScheduler.fromConfig(SD15, { nope: 1 } as never)).toThrow(InvalidArgumentError);
    expect(DPMSolverMultistepScheduler.fromConfig(SD15, { prediction_type: undefined }).config.prediction_type).toBe('epsilon');
  });

  it('maps DEIS / UniPC names like diffusers (deis → dpmsolver++, bh2 → midpoint)', () => {
    const s = DPMSolverMultistepScheduler.fromConfig({ ...SD15, algorithm_type: 'deis', solver_type: 'bh2' });
    expect(s.config.algorithm_type).toBe('dpmsolver++');
    expect(s.config.solver_type).toBe('midpoint');
  });

  it('reports every invalid value at once, naming the source', () => {
    const bad = {
      ...SD15,
      beta_schedule: 'cosine',
      steps_offset: 1.5,
      thresholding: 'no',
      solver_order: 4,
      trained_betas: [1, 'x'],
    };
    try {
      DPMSolverMultistepScheduler.fromConfig(bad, {}, 'my/scheduler_config.json');
      expect.unreachable();
    } catch (e) {
      expect(ValidationError.isInstance(e)).toBe(true);
      const err = e as ValidationError;
      expect(err.source).toBe('my/scheduler_config.json');
      expect(err.issues.map((i) => i.split(':')[0])).toEqual([
        'beta_schedule',
        'trained_betas',
        'solver_order',
        'thresholding',
        'steps_offset',
      ]);
      expect(err.message).toMatch(/beta_schedule: expected one of "linear", "scaled_linear", "squaredcos_cap_v2", got "cosine"/);
    }
    expect(() => DPMSolverMultistepScheduler.fromConfig([] as never)).toThrow(ValidationError);
    expect(() => DPMSolverMultistepScheduler.fromConfig({ _use_default_values: 'x' })).toThrow(/_use_default_values/);
  });

  it('rejects combinations diffusers rejects, and features this port does not implement, clearly', () => {
    expect(() => new DPMSolverMultistepScheduler({ algorithm_type: 'dpmsolver' })).toThrow(/final_sigmas_type.*sigma_min/);
    expect(() => new DPMSolverMultistepScheduler({ use_karras_sigmas: true, use_exponential_sigmas: true })).toThrow(/only one/);
    expect(() => new DPMSolverMultistepScheduler({ use_beta_sigmas: true })).toThrow(/not supported/);
    expect(() => new DPMSolverMultistepScheduler({ variance_type: 'learned' })).toThrow(/variance_type/);
    expect(() => new DPMSolverMultistepScheduler({ trained_betas: [0.1, 0.2] })).toThrow(/trained_betas/);
  });

  it('DDIM from the SD config inherits leading spacing, steps_offset, clip_sample and set_alpha_to_one', () => {
    const s = createScheduler('DDIMScheduler', SD15);
    expect(s).toBeInstanceOf(DDIMScheduler);
    expect(s.config).toMatchObject({ timestep_spacing: 'leading', steps_offset: 1, clip_sample: false, set_alpha_to_one: false });
    expect(s.hiddenConfig).toEqual({ _class_name: 'DDIMScheduler', _diffusers_version: '0.6.0', skip_prk_steps: true });
    // A DPM config round-trips through DDIM and back: DDIM ignores DPM keys, DPM gets them back from hidden.
    const dpm = DPMSolverMultistepScheduler.fromConfig(SD15, { solver_order: 3 });
    const ddim = DDIMScheduler.fromConfig(dpm.toDiffusersConfig());
    expect(DPMSolverMultistepScheduler.fromConfig(ddim.toDiffusersConfig()).config.solver_order).toBe(3);
    expect(() => createScheduler('Euler' as never, SD15)).toThrow(/not available/);
  });
});

describe('config JSON', () => {
  it("reads Python's bare Infinity / NaN tokens (outside strings only) and writes them back", () => {
    const text = '{"lambda_min_clipped": -Infinity, "note": "NaN and -Infinity stay text", "x": [Infinity, NaN]}';
    const parsed = parseSchedulerConfigJson(text);
    expect(parsed.note).toBe('NaN and -Infinity stay text');
    const s = DPMSolverMultistepScheduler.fromConfig({ ...SD15, lambda_min_clipped: parsed.lambda_min_clipped });
    expect(s.config.lambda_min_clipped).toBe(Number.NEGATIVE_INFINITY);
    const python = formatSchedulerConfigJson({ a: Number.NEGATIVE_INFINITY, b: 'x' });
    expect(python).toContain('"a": -Infinity');
    expect(formatSchedulerConfigJson({ a: Number.NEGATIVE_INFINITY }, { nonFinite: 'string' })).toContain('"a": "-Infinity"');
    expect(parseSchedulerConfigJson(python).a).toBe('-Infinity');
    expect(() => parseSchedulerConfigJson('{oops', 'f.json')).toThrow(/f\.json: .*not valid JSON/);
    expect(() => parseSchedulerConfigJson('[1]')).toThrow(/expected a JSON object/);
  });

  it('readSchedulerConfig accepts the file or its folder and reports a missing one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sched-'));
    writeFileSync(join(dir, 'scheduler_config.json'), JSON.stringify(SD15));
    expect(await readSchedulerConfig(dir)).toEqual(SD15);
    expect(await readSchedulerConfig(join(dir, 'scheduler_config.json'))).toEqual(SD15);
    await expect(readSchedulerConfig(join(dir, 'missing'))).rejects.toBeInstanceOf(NotFoundError);
    const empty = mkdtempSync(join(tmpdir(), 'sched-'));
    await expect(readSchedulerConfig(empty)).rejects.toThrow(/scheduler_config\.json: scheduler config not found/);
  });
});
