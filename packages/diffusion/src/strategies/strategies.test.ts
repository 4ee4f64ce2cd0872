import { InvalidArgumentError, Rng, annotate, labelMass } from '@diffmix/core';
import { afterEach, describe, expect, it } from 'vitest';
import { planSynthesis } from '../sampler/plan.js';
import { adapterOptionsFor, checkModelForStrategy } from './adapters.js';
import { BUILTIN_STRATEGIES } from './builtin.js';
import { CLASS_NAME_PROMPT, PLACEHOLDER_PROMPT, defineStrategy, renderPrompt } from './define.js';
import { getStrategy, hasStrategy, listStrategies, registerStrategy, unregisterStrategy } from './registry.js';
import { betaStrength, describeStrength, drawStrength, parseStrengthChoice, strengthSet } from './strength.js';
import { CHI2_CRITICAL_0_001, chiSquare, counts, fakeDataset } from './test-stats.js';

/** 10 classes of very different sizes (3, 6, …, 30 images). */
const dataset = fakeDataset(Array.from({ length: 10 }, (_, c) => 3 * (c + 1)));
const N = 6000;
const classOf = new Map(dataset.train.map((r) => [r.id, r.label]));

function plan(strategy: string, extra: Partial<Parameters<typeof planSynthesis>[0]> = {}) {
  return planSynthesis({ dataset, strategy, seed: 11, count: N, annotation: { gamma: 0.5, scaler: 0.9 }, ...extra });
}

describe('built-in strategies', () => {
  it('fix artefacts, mode, class relation, strengths and prompt as the paper does', () => {
    const table = Object.fromEntries(
      BUILTIN_STRATEGIES.map((s) => [
        s.name,
        [s.artefacts, s.mode, s.relation, describeStrength(s.defaultStrength), s.promptTemplate],
      ]),
    );
    expect(table).toEqual({
      'diff-mix': ['ti+lora', 'img2img', 'inter', '{0.5, 0.7, 0.9}', PLACEHOLDER_PROMPT],
      'real-mix': ['none', 'img2img', 'inter', '{0.5, 0.7, 0.9}', CLASS_NAME_PROMPT],
      'diff-aug': ['ti+lora', 'img2img', 'intra', '{0.5, 0.7, 0.9}', PLACEHOLDER_PROMPT],
      'real-aug': ['none', 'img2img', 'intra', '{0.5, 0.7, 0.9}', CLASS_NAME_PROMPT],
      'real-guidance': ['none', 'img2img', 'intra', '0.1', CLASS_NAME_PROMPT],
      'da-fusion': ['ti', 'img2img', 'intra', '{0.25, 0.5, 0.75, 1}', PLACEHOLDER_PROMPT],
      'diff-gen': ['ti+lora', 'txt2img', 'intra', '1', PLACEHOLDER_PROMPT],
      'real-gen': ['none', 'txt2img', 'intra', '1', CLASS_NAME_PROMPT],
    });
  });

  it('write the prompts with the placeholder token or the class name', () => {
    const target = { id: 7, name: 'Laysan Albatross' };
    const ctx = { metaclass: 'bird', placeholder: (id: number) => `<class_${id}>` };
    expect(getStrategy('diff-mix').prompt(target, ctx)).toBe('a photo of a <class_7> bird');
    expect(getStrategy('real-mix').prompt(target, ctx)).toBe('a photo of a Laysan Albatross');
    expect(getStrategy('da-fusion').prompt(target, ctx, '{placeholder} {name} #{id}')).toBe('<class_7> Laysan Albatross #7');
    expect(() => renderPrompt('a photo of {clas}', target, ctx)).toThrow(/unknown field \{clas\}/);
  });
});

describe('selection rules and labels', () => {
  it('Diff-Mix: source class uniform, source image uniform within it, target uniform over all classes', () => {
    const p = plan('diff-mix');
    const src = p.jobs.map((j) => j.sourceClass);
    const tgt = p.jobs.map((j) => j.targetClass);
    const uniform = new Array(10).fill(N / 10);
    // Uniform although class sizes differ tenfold.
    expect(chiSquare(counts(src, 10), uniform)).toBeLessThan(CHI2_CRITICAL_0_001[9] as number);
    expect(chiSquare(counts(tgt, 10), uniform)).toBeLessThan(CHI2_CRITICAL_0_001[9] as number);
    // Target may equal the source (probability 1/N).
    const same = p.jobs.filter((j) => j.sourceClass === j.targetClass).length;
    expect(Math.abs(same - N / 10)).toBeLessThan(4 * Math.sqrt(N * 0.1 * 0.9));
    // Images of the largest class (30 images) drawn uniformly.
    const big = p.jobs.filter((j) => j.sourceClass === 9).map((j) => Number(/(\d+)\.jpg$/.exec(j.sourceRecordId as string)?.[1]));
    expect(chiSquare(counts(big, 30), new Array(30).fill(big.length / 30))).toBeLessThan(59.703); // df 29, p = 0.001
    for (const j of p.jobs) expect(classOf.get(j.sourceRecordId as string)).toBe(j.sourceClass);
  });

  it('Diff-Mix labels are the annotation c·(1 − s^γ)·src + c·s^γ·tgt, strengths uniform over {0.5, 0.7, 0.9}', () => {
    const p = plan('diff-mix');
    for (const j of p.jobs) {
      expect(j.label).toEqual(
        annotate({ strength: j.strength, gamma: 0.5, scaler: 0.9, sourceClass: j.sourceClass, targetClass: j.targetClass }),
      );
      expect(labelMass(j.label)).toBeCloseTo(0.9, 12);
      expect(j.prompt).toBe(`a photo of a <class_${j.targetClass}> bird`);
    }
    const s = p.jobs.map((j) => [0.5, 0.7, 0.9].indexOf(j.strength));
    expect(s).not.toContain(-1);
    expect(chiSquare(counts(s, 3), [N / 3, N / 3, N / 3])).toBeLessThan(CHI2_CRITICAL_0_001[2] as number);
    expect(p.annotation).toEqual({ gamma: 0.5, scaler: 0.9 });
  });

  it('Real-Mix is inter-class with the class name in the prompt', () => {
    const p = plan('real-mix', { count: 500 });
    expect(p.jobs.some((j) => j.sourceClass !== j.targetClass)).toBe(true);
    for (const j of p.jobs) expect(j.prompt).toBe(`a photo of a Class ${j.targetClass} name`);
  });

  it.each(['diff-aug', 'real-aug', 'real-guidance', 'da-fusion'])(
    '%s never changes the class and labels one-hot source',
    (name) => {
      const p = plan(name, { count: 2000 });
      const strategy = getStrategy(name);
      for (const j of p.jobs) {
        expect(j.targetClass).toBe(j.sourceClass);
        expect(classOf.get(j.sourceRecordId as string)).toBe(j.sourceClass);
        expect(j.label).toEqual([[j.sourceClass, 1]]);
        expect(
          strategy.defaultStrength.kind === 'fixed' ||
            (strategy.defaultStrength.kind === 'set' && strategy.defaultStrength.values.includes(j.strength)),
        ).toBe(true);
      }
      expect(
        chiSquare(
          counts(
            p.jobs.map((j) => j.sourceClass),
            10,
          ),
          new Array(10).fill(200),
        ),
      ).toBeLessThan(CHI2_CRITICAL_0_001[9] as number);
    },
  );

  it('Real-guidance runs at s = 0.1 and DA-Fusion over {0.25, 0.5, 0.75, 1.0}', () => {
    expect(new Set(plan('real-guidance', { count: 300 }).jobs.map((j) => j.strength))).toEqual(new Set([0.1]));
    expect(new Set(plan('da-fusion', { count: 300 }).jobs.map((j) => j.strength))).toEqual(new Set([0.25, 0.5, 0.75, 1]));
  });

  it.each(['diff-gen', 'real-gen'])('%s is txt2img: no source image, strength 1, class uniform, one-hot label', (name) => {
    const p = plan(name, { count: 2000 });
    expect(p.mode).toBe('txt2img');
    for (const j of p.jobs) {
      expect(j.sourceRecordId).toBeUndefined();
      expect(j.strength).toBe(1);
      expect(j.targetClass).toBe(j.sourceClass);
      expect(j.label).toEqual([[j.sourceClass, 1]]);
    }
    expect(
      chiSquare(
        counts(
          p.jobs.map((j) => j.sourceClass),
          10,
        ),
        new Array(10).fill(200),
      ),
    ).toBeLessThan(CHI2_CRITICAL_0_001[9] as number);
  });

  it('long-tail: the source image is uniform over all images, so source classes follow the class sizes', () => {
    const p = plan('diff-mix', { longTail: true });
    const total = dataset.train.length; // 165
    const expected = Array.from({ length: 10 }, (_, c) => (N * 3 * (c + 1)) / total);
    expect(
      chiSquare(
        counts(
          p.jobs.map((j) => j.sourceClass),
          10,
        ),
        expected,
      ),
    ).toBeLessThan(CHI2_CRITICAL_0_001[9] as number);
    // Targets stay uniform.
    expect(
      chiSquare(
        counts(
          p.jobs.map((j) => j.targetClass),
          10,
        ),
        new Array(10).fill(N / 10),
      ),
    ).toBeLessThan(CHI2_CRITICAL_0_001[9] as number);
    expect(planSynthesis({ dataset, strategy: 'diff-mix', seed: 1, longTail: true }).jobs).toHaveLength(10 * total);
  });

  it('the same seed gives every strategy the same source images', () => {
    const a = plan('diff-mix', { count: 200 }).jobs.map((j) => j.sourceRecordId);
    const b = plan('real-aug', { count: 200 }).jobs.map((j) => j.sourceRecordId);
    expect(b).toEqual(a);
  });

  it('classes without training images are never sources (but can be targets)', () => {
    const sparse = fakeDataset([5, 0, 5]);
    const p = planSynthesis({ dataset: sparse, strategy: 'diff-mix', seed: 3, count: 600 });
    expect(p.jobs.some((j) => j.sourceClass === 1)).toBe(false);
    expect(p.jobs.some((j) => j.targetClass === 1)).toBe(true);
  });
});

describe('strength rules', () => {
  it('parses fixed values, sets, "uniform" and beta', () => {
    expect(parseStrengthChoice('0.7')).toEqual({ kind: 'fixed', value: 0.7 });
    expect(parseStrengthChoice('0.5, 0.7,0.9')).toEqual({ kind: 'set', values: [0.5, 0.7, 0.9] });
    expect(parseStrengthChoice('uniform')).toEqual({ kind: 'set', values: [0.3, 0.5, 0.7, 0.9] });
    expect(parseStrengthChoice('beta')).toEqual({ kind: 'beta', alpha: 5, beta: 5, min: 0.1, max: 0.9 });
    expect(parseStrengthChoice('beta(2,3)')).toEqual({ kind: 'beta', alpha: 2, beta: 3, min: 0.1, max: 0.9 });
    expect(parseStrengthChoice('beta(2,3,0.2,0.8)')).toEqual({ kind: 'beta', alpha: 2, beta: 3, min: 0.2, max: 0.8 });
    for (const bad of ['', '0', '1.5', 'a', '0.5,,0.7', 'beta(1)', '0.5,0.5']) {
      expect(() => parseStrengthChoice(bad)).toThrow(InvalidArgumentError);
    }
  });

  it('Beta(5, 5) is clipped to [0.1, 0.9] with mean 0.5', () => {
    const rng = Rng.fromSeed(5);
    const b = betaStrength();
    const xs = Array.from({ length: 20000 }, () => drawStrength(b, rng));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0.1);
    expect(Math.max(...xs)).toBeLessThanOrEqual(0.9);
    const mean = xs.reduce((a, x) => a + x, 0) / xs.length;
    // sd of Beta(5, 5) = sqrt(25 / (100 · 11)) ≈ 0.151
    expect(Math.abs(mean - 0.5)).toBeLessThan((4 * 0.151) / Math.sqrt(xs.length));
    const p = plan('diff-mix', { count: 500, strengths: b });
    expect(new Set(p.jobs.map((j) => j.strength)).size).toBeGreaterThan(450);
  });

  it('a set draws each value equally often', () => {
    const rng = Rng.fromSeed(9);
    const set = strengthSet([0.3, 0.5, 0.7, 0.9]);
    const idx = Array.from({ length: 8000 }, () => [0.3, 0.5, 0.7, 0.9].indexOf(drawStrength(set, rng)));
    expect(chiSquare(counts(idx, 4), [2000, 2000, 2000, 2000])).toBeLessThan(CHI2_CRITICAL_0_001[3] as number);
  });
});

describe('registry', () => {
  afterEach(() => {
    unregisterStrategy('my-mix');
    unregisterStrategy('diff-aug');
  });

  it('finds the built-ins and names the known strategies for an unknown one', () => {
    expect(listStrategies().map((s) => s.name)).toEqual(BUILTIN_STRATEGIES.map((s) => s.name));
    expect(() => getStrategy('diffmix')).toThrow(/unknown strategy "diffmix"; known: diff-mix, real-mix/);
  });

  it('registers a strategy defined outside the package and plans with it', () => {
    const mine = defineStrategy({
      name: 'my-mix',
      description: 'Diff-Mix towards the next class only',
      artefacts: 'lora',
      mode: 'img2img',
      relation: 'inter',
      defaultStrength: { kind: 'fixed', value: 0.6 },
      promptTemplate: 'a {name}, {metaclass}',
      select: (rng, ctx) => {
        const source = rng.choice(ctx.records);
        return { sourceClass: source.label, source, targetClass: (source.label + 1) % ctx.classes.length };
      },
    });
    registerStrategy(mine);
    expect(hasStrategy('my-mix')).toBe(true);
    expect(() => registerStrategy(mine)).toThrow(/already registered/);
    const p = planSynthesis({ dataset, strategy: 'my-mix', seed: 1, count: 50 });
    for (const j of p.jobs) {
      expect(j.targetClass).toBe((j.sourceClass + 1) % 10);
      expect(j.strength).toBe(0.6);
      expect(j.strategy).toBe('my-mix');
      expect(j.label).toEqual(
        annotate({ strength: 0.6, gamma: 0.8, scaler: 1, sourceClass: j.sourceClass, targetClass: j.targetClass }),
      );
    }
  });

  it('replaces a built-in only when asked, and unregistering restores it', () => {
    const custom = defineStrategy({
      ...getStrategy('diff-aug'),
      name: 'diff-aug',
      defaultStrength: { kind: 'fixed', value: 0.3 },
    });
    expect(() => registerStrategy(custom)).toThrow(/built in/);
    registerStrategy(custom, { replace: true });
    expect(getStrategy('diff-aug').defaultStrength).toEqual({ kind: 'fixed', value: 0.3 });
    unregisterStrategy('diff-aug');
    expect(getStrategy('diff-aug').defaultStrength.kind).toBe('set');
  });

  it('rejects malformed strategies', () => {
    const base = { description: '', artefacts: 'none', mode: 'img2img', relation: 'intra', promptTemplate: 'x' } as const;
    expect(() => defineStrategy({ ...base, name: 'bad name', defaultStrength: { kind: 'fixed', value: 0.5 } })).toThrow(
      /names are/,
    );
    expect(() => defineStrategy({ ...base, name: 'ok' })).toThrow(/need a strength rule/);
    expect(() =>
      defineStrategy({ ...base, name: 'ok', mode: 'txt2img', defaultStrength: { kind: 'fixed', value: 0.5 } }),
    ).toThrow(/strength 1/);
    expect(() =>
      defineStrategy({ ...base, name: 'ok', promptTemplate: '{nam}', defaultStrength: { kind: 'fixed', value: 0.5 } }),
    ).toThrow(/unknown field/);
  });
});

describe('fine-tuning artefacts', () => {
  const files = { lora: ['lora.safetensors'], textualInversion: ['embeds.safetensors'] };

  it('picks the artefacts each strategy uses', () => {
    expect(adapterOptionsFor(getStrategy('diff-mix'), files)).toEqual(files);
    expect(adapterOptionsFor(getStrategy('da-fusion'), files)).toEqual({ textualInversion: files.textualInversion });
    expect(adapterOptionsFor(getStrategy('real-mix'), files)).toEqual({});
    expect(() => adapterOptionsFor(getStrategy('diff-mix'), { lora: files.lora })).toThrow(/textual-inversion/);
  });

  it('reports a model that does not fit the strategy', () => {
    const ti = { tokens: new Map([['<class_0>', 49408]]) } as never;
    const withBoth = { adapters: { textualInversion: ti, lora: {} as never } };
    expect(checkModelForStrategy(withBoth, getStrategy('diff-mix'), ['<class_0>'])).toEqual([]);
    expect(checkModelForStrategy(withBoth, getStrategy('diff-mix'), ['<class_0>', '<class_5>'])[0]).toMatch(/<class_5>/);
    expect(checkModelForStrategy(withBoth, getStrategy('real-mix'))).toHaveLength(2);
    expect(checkModelForStrategy({ adapters: {} }, getStrategy('da-fusion'))[0]).toMatch(/expects textual-inversion/);
  });
});
