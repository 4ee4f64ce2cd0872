import { describe, expect, it } from 'vitest';
import { counterFill } from '../models/counter.js';
import { maxAbs, maxAbsDiff, readGoldenF32, readGoldenJson } from '../models/golden-fixtures.js';
import type { WeightsSpec, WeightsSpecArch } from '../models/weights-spec.js';
import { AdamW, clipGradNorm, SGD } from './optimizers.js';
import { constantSchedule, cosineWithWarmup } from './schedules.js';

describe('SGD', () => {
  it('reproduces the golden ResNet-18 SGD step from the golden gradients', () => {
    const step = readGoldenJson<{
      sgd: { lr: number; momentum: number; dampening: number; weight_decay: number; nesterov: boolean };
    }>('grads', 'resnet18_step', 'step.json');
    const spec = readGoldenJson<WeightsSpec>('resnet', 'weights_spec.json');
    const tensors = (spec.resnet18 as WeightsSpecArch).tensors;
    const names = ['fc.weight', 'conv1.weight'];
    const params = new Map<string, Float32Array>();
    const grads = new Map<string, Float32Array>();
    for (const name of names) {
      const t = tensors.find((x) => x.name === name);
      if (!t || t.seed === undefined || t.lo === undefined || t.hi === undefined) throw new Error(name);
      params.set(
        name,
        counterFill(
          t.seed,
          t.shape.reduce((a, b) => a * b, 1),
          t.lo,
          t.hi,
        ),
      );
      grads.set(name, readGoldenF32('grads', 'resnet18_step', `grad_${name}.npy`));
    }
    const before = new Map([...params].map(([k, v]) => [k, Float32Array.from(v)]));
    const { lr, momentum, dampening, weight_decay: weightDecay, nesterov } = step.sgd;
    new SGD(names, { lr, momentum, dampening, weightDecay, nesterov }).step(params, grads);
    for (const name of names) {
      const want = readGoldenF32('grads', 'resnet18_step', `sgd_updated_${name}.npy`);
      const got = params.get(name) as Float32Array;
      const p0 = before.get(name) as Float32Array;
      const dGot = got.map((v, i) => v - (p0[i] as number));
      const dWant = want.map((v, i) => v - (p0[i] as number));
      const abs = maxAbsDiff(got, want);
      const upd = maxAbsDiff(dGot, dWant);
      console.log(
        `SGD ${name}: max|Δp'| ${abs.toExponential(2)}, max|Δ(p'−p)| ${upd.toExponential(2)} of max|p'−p| ${maxAbs(dWant).toExponential(2)}`,
      );
      expect(abs).toBe(0); // float32-emulated torch arithmetic: bit-identical here (≤ 1e-7 would do)
      expect(upd).toBeLessThanOrEqual(1e-5 * maxAbs(dWant));
    }
  });

  it('momentum, dampening, nesterov and weight decay by hand', () => {
    const run = (opts: ConstructorParameters<typeof SGD>[1], steps: number, grad = 1) => {
      const p = new Map([['w', Float32Array.of(1)]]);
      const opt = new SGD(['w'], opts);
      const out: number[] = [];
      for (let i = 0; i < steps; i++) {
        opt.step(p, new Map([['w', Float32Array.of(grad)]]));
        out.push((p.get('w') as Float32Array)[0] as number);
      }
      return out;
    };
    const close = (a: number[], b: number[]) => {
      for (const [i, v] of a.entries()) expect(v).toBeCloseTo(b[i] as number, 6);
    };
    close(run({ lr: 0.1, momentum: 0.9 }, 3), [0.9, 0.71, 0.439]); // buf 1, 1.9, 2.71
    close(run({ lr: 0.1, momentum: 0.9, nesterov: true }, 2), [0.81, 0.81 - 0.1 * (1 + 0.9 * 1.9)]);
    close(run({ lr: 0.1, momentum: 0.9, dampening: 0.5 }, 2), [0.9, 0.9 - 0.1 * (0.9 + 0.5)]);
    // weight decay in isolation: g = 0 → p' = p·(1 − lr·wd); then momentum on the decay term
    close(run({ lr: 0.1, weightDecay: 0.5 }, 2, 0), [0.95, 0.9025]);
    close(run({ lr: 0.1, weightDecay: 0.5, momentum: 0.9 }, 2, 0), [0.95, 0.95 - 0.1 * (0.9 * 0.5 + 0.5 * 0.95)]);
    expect(() => new SGD(['w'], { lr: 0.1, nesterov: true })).toThrow(/nesterov/);
  });

  it('parameter groups keep their own lr and weight decay; schedules scale the initial lr', () => {
    const p = new Map([
      ['a', Float32Array.of(1)],
      ['b', Float32Array.of(1)],
    ]);
    const opt = new SGD(
      [
        { params: ['a'], lr: 0.1 },
        { params: ['b'], lr: 0.01, weightDecay: 1 },
      ],
      { lr: 1 },
    );
    const g = new Map([
      ['a', Float32Array.of(1)],
      ['b', Float32Array.of(1)],
    ]);
    opt.step(p, g);
    expect(p.get('a')?.[0]).toBeCloseTo(0.9, 7);
    expect(p.get('b')?.[0]).toBeCloseTo(1 - 0.01 * 2, 7);
    opt.setLrFactor(0.5);
    expect(opt.groups.map((x) => x.lr)).toEqual([0.05, 0.005]);
    expect(() => new SGD([{ params: ['a'] }, { params: ['a'] }], { lr: 1 })).toThrow(/two groups/);
  });
});

describe('AdamW', () => {
  it('matches a float64 transcription of torch.optim.AdamW over several steps', () => {
    const lr = 1e-2;
    const [b1, b2] = [0.9, 0.999];
    const eps = 1e-8;
    const wd = 0.05;
    const n = 64;
    const p = new Map([['w', counterFill(1, n, -1, 1)]]);
    const ref = Float64Array.from(p.get('w') as Float32Array);
    const m = new Float64Array(n);
    const v = new Float64Array(n);
    const opt = new AdamW(['w'], { lr, betas: [b1, b2], eps, weightDecay: wd });
    for (let t = 1; t <= 5; t++) {
      const g = counterFill(100 + t, n, -0.5, 0.5);
      opt.step(p, new Map([['w', g]]));
      for (let i = 0; i < n; i++) {
        ref[i] = (ref[i] as number) * (1 - lr * wd);
        m[i] = b1 * (m[i] as number) + (1 - b1) * (g[i] as number);
        v[i] = b2 * (v[i] as number) + (1 - b2) * (g[i] as number) ** 2;
        const denom = Math.sqrt(v[i] as number) / Math.sqrt(1 - b2 ** t) + eps;
        ref[i] = (ref[i] as number) - (lr / (1 - b1 ** t)) * ((m[i] as number) / denom);
      }
    }
    expect(maxAbsDiff(p.get('w') as Float32Array, ref)).toBeLessThan(1e-6);
  });

  it('first step moves each weight by lr·sign(g) after the decoupled decay', () => {
    const p = new Map([['w', Float32Array.of(2, -3)]]);
    new AdamW(['w'], { lr: 0.1, weightDecay: 0.1 }).step(p, new Map([['w', Float32Array.of(0.3, -7)]]));
    expect(p.get('w')?.[0]).toBeCloseTo(2 * 0.99 - 0.1, 6);
    expect(p.get('w')?.[1]).toBeCloseTo(-3 * 0.99 + 0.1, 6);
  });

  it('state round-trips: a restored optimiser continues identically', () => {
    const mk = () => new AdamW(['w'], { lr: 0.01 });
    const a = mk();
    const pa = new Map([['w', counterFill(5, 16, -1, 1)]]);
    const grad = (t: number) => new Map([['w', counterFill(t, 16, -1, 1)]]);
    a.step(pa, grad(1));
    a.step(pa, grad(2));
    const b = mk();
    b.loadState(JSON.parse(JSON.stringify(a.stateJson())), a.stateTensors());
    const pb = new Map([['w', Float32Array.from(pa.get('w') as Float32Array)]]);
    a.step(pa, grad(3));
    b.step(pb, grad(3));
    expect(pb.get('w')).toEqual(pa.get('w'));
    expect(() => new SGD(['w'], { lr: 1 }).loadState(a.stateJson(), a.stateTensors())).toThrow(/adamw/);
  });
});

describe('clipGradNorm', () => {
  it('scales by maxNorm / (total + 1e-6) over all tensors, only when above', () => {
    const a = Float32Array.of(3, 4);
    const b = Float32Array.of(12);
    expect(clipGradNorm([a, b], 6.5)).toBeCloseTo(13, 5);
    const c = 6.5 / (13 + 1e-6);
    expect(Array.from(a)).toEqual([3 * c, 4 * c].map(Math.fround));
    expect(b[0]).toBe(Math.fround(12 * c));
    const d = Float32Array.of(0.3, 0.4);
    expect(clipGradNorm([d], 1)).toBeCloseTo(0.5, 6);
    expect(Array.from(d)).toEqual([0.3, 0.4].map(Math.fround));
    const e = Float32Array.of(-5, 2);
    expect(clipGradNorm([e], 1, Infinity)).toBe(5);
    expect(e[0]).toBeCloseTo(-1, 5);
  });
});

describe('schedules', () => {
  it('cosine with 10 % linear warmup, per iteration', () => {
    const s = cosineWithWarmup({ totalSteps: 100 });
    expect(s(0)).toBe(0);
    expect(s(5)).toBeCloseTo(0.5, 12);
    expect(s(10)).toBeCloseTo(1, 12);
    expect(s(55)).toBeCloseTo(0.5, 12);
    expect(s(100)).toBeCloseTo(0, 12);
    expect(cosineWithWarmup({ totalSteps: 10, warmupSteps: 0, minFactor: 0.1 })(10)).toBeCloseTo(0.1, 12);
    expect(constantSchedule()(123)).toBe(1);
    expect(() => cosineWithWarmup({ totalSteps: 0 })).toThrow(/totalSteps/);
  });
});
