import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelFormatError, Rng } from '@diffmix/core';
import { DDIMScheduler } from '@diffmix/diffusion';
import { describe, expect, it } from 'vitest';
import { predictionTypeOf, trainingTarget } from './target.js';

const TINY_SD = process.env.DIFFMIX_GOLDEN_DIR
  ? join(process.env.DIFFMIX_GOLDEN_DIR, 'tiny-sd')
  : fileURLToPath(new URL('../../diffusion/fixtures/golden/tiny-sd', import.meta.url));

describe('training target by prediction_type', () => {
  const config = JSON.parse(readFileSync(join(TINY_SD, 'scheduler', 'scheduler_config.json'), 'utf8'));
  const scheduler = DDIMScheduler.fromConfig(config);
  const rng = Rng.fromSeed('target');
  const x0 = rng.fillNormal(new Float32Array(2 * 16));
  const eps = rng.fillNormal(new Float32Array(2 * 16));
  const t = [17, 903];

  it('epsilon → the noise, sample → the clean latents', () => {
    expect(trainingTarget('epsilon', scheduler, x0, eps, t)).toBe(eps);
    expect(trainingTarget('sample', scheduler, x0, eps, t)).toBe(x0);
  });

  it('v_prediction → √ᾱ·ε − √(1 − ᾱ)·x₀ (diffusers get_velocity), per batch item', () => {
    const v = trainingTarget('v_prediction', scheduler, x0, eps, t);
    for (let i = 0; i < v.length; i++) {
      const a = scheduler.alphasCumprod[t[Math.floor(i / 16)] as number] as number;
      const want = Math.sqrt(a) * (eps[i] as number) - Math.sqrt(1 - a) * (x0[i] as number);
      expect(Math.abs((v[i] as number) - want)).toBeLessThan(1e-6);
    }
  });

  it('reads the config (default epsilon) and names a type it cannot train', () => {
    expect(predictionTypeOf({}, 'x')).toBe('epsilon');
    expect(predictionTypeOf({ prediction_type: 'v_prediction' }, 'x')).toBe('v_prediction');
    expect(() => predictionTypeOf({ prediction_type: 'flow_prediction' }, '/m/scheduler/scheduler_config.json')).toThrow(
      ModelFormatError,
    );
    expect(() => predictionTypeOf({ prediction_type: 'flow_prediction' }, '/m/scheduler/scheduler_config.json')).toThrow(
      /scheduler_config\.json.*flow_prediction/,
    );
  });
});
