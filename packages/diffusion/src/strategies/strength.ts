/** Strength rules: constructors, validation, parsing from text and per-job draws. */
import { InvalidArgumentError } from '@diffmix/core';
import type { Rng } from '@diffmix/core';
import type { StrengthChoice } from './types.js';

/** Diff-Mix's strength set (paper). */
export const DIFF_MIX_STRENGTHS: readonly number[] = Object.freeze([0.5, 0.7, 0.9]);
/** The official code's "uniform" strength strategy. */
export const OFFICIAL_UNIFORM_STRENGTHS: readonly number[] = Object.freeze([0.3, 0.5, 0.7, 0.9]);
/** DA-Fusion's strength set. */
export const DA_FUSION_STRENGTHS: readonly number[] = Object.freeze([0.25, 0.5, 0.75, 1.0]);

export function fixedStrength(value: number): StrengthChoice {
  return checkStrengthChoice({ kind: 'fixed', value });
}

export function strengthSet(values: readonly number[]): StrengthChoice {
  return checkStrengthChoice({ kind: 'set', values: [...values] });
}

/** Beta(alpha, beta) clipped to [min, max]; defaults are the paper-era Beta(5, 5) in [0.1, 0.9]. */
export function betaStrength(alpha = 5, beta = 5, min = 0.1, max = 0.9): StrengthChoice {
  return checkStrengthChoice({ kind: 'beta', alpha, beta, min, max });
}

function checkValue(v: number, what: string): void {
  if (!(v > 0 && v <= 1)) throw new InvalidArgumentError(what, `must be in (0, 1], got ${v}`);
}

/** Throws `InvalidArgumentError` for a malformed rule; returns it otherwise. */
export function checkStrengthChoice(choice: StrengthChoice): StrengthChoice {
  switch (choice.kind) {
    case 'fixed':
      checkValue(choice.value, 'strength');
      return choice;
    case 'set':
      if (choice.values.length === 0) throw new InvalidArgumentError('strengths', 'the set is empty');
      for (const v of choice.values) checkValue(v, 'strengths');
      if (new Set(choice.values).size !== choice.values.length) {
        throw new InvalidArgumentError('strengths', `has duplicates: ${choice.values.join(', ')}`);
      }
      return choice;
    case 'beta':
      for (const k of ['alpha', 'beta'] as const) {
        if (!(choice[k] > 0) || !Number.isFinite(choice[k])) throw new InvalidArgumentError(k, `must be > 0, got ${choice[k]}`);
      }
      checkValue(choice.min, 'min');
      checkValue(choice.max, 'max');
      if (choice.min > choice.max) throw new InvalidArgumentError('min', `must be ≤ max (${choice.max}), got ${choice.min}`);
      return choice;
    default:
      throw new InvalidArgumentError('strength', `unknown strength rule ${JSON.stringify((choice as { kind: unknown }).kind)}`);
  }
}

/** A rule from a number, a list of numbers or a rule. */
export function toStrengthChoice(value: number | readonly number[] | StrengthChoice): StrengthChoice {
  if (typeof value === 'number') return fixedStrength(value);
  if (Array.isArray(value)) return value.length === 1 ? fixedStrength(value[0] as number) : strengthSet(value);
  return checkStrengthChoice(value as StrengthChoice);
}

/**
 * Parses a command-line strength: `0.7` (fixed), `0.5,0.7,0.9` (set), `uniform` (the official
 * {0.3, 0.5, 0.7, 0.9}), `beta` (Beta(5, 5) in [0.1, 0.9]) or `beta(a,b)` / `beta(a,b,min,max)`.
 */
export function parseStrengthChoice(text: string): StrengthChoice {
  const t = text.trim().toLowerCase();
  if (t === 'uniform') return strengthSet(OFFICIAL_UNIFORM_STRENGTHS);
  if (t === 'beta') return betaStrength();
  const beta = /^beta\(([^)]*)\)$/.exec(t);
  if (beta) {
    const args = (beta[1] as string).split(',').map((s) => Number(s.trim()));
    if ((args.length !== 2 && args.length !== 4) || args.some((a) => !Number.isFinite(a))) {
      throw new InvalidArgumentError('strength', `expected beta(a,b) or beta(a,b,min,max), got ${JSON.stringify(text)}`);
    }
    const [a, b, min = 0.1, max = 0.9] = args as [number, number, number?, number?];
    return betaStrength(a, b, min, max);
  }
  const parts = t.split(',').map((s) => s.trim());
  const values = parts.map(Number);
  if (parts.some((p) => p === '') || values.some((v) => !Number.isFinite(v))) {
    throw new InvalidArgumentError(
      'strength',
      `expected a number, a comma-separated list, "uniform", "beta" or "beta(a,b)", got ${JSON.stringify(text)}`,
    );
  }
  return toStrengthChoice(values);
}

/** Draws one strength from the rule. */
export function drawStrength(choice: StrengthChoice, rng: Rng): number {
  switch (choice.kind) {
    case 'fixed':
      return choice.value;
    case 'set':
      return rng.choice(choice.values);
    case 'beta':
      return Math.min(choice.max, Math.max(choice.min, rng.beta(choice.alpha, choice.beta)));
  }
}

/** The smallest strength the rule can produce (to check that img2img keeps at least one step). */
export function minStrength(choice: StrengthChoice): number {
  switch (choice.kind) {
    case 'fixed':
      return choice.value;
    case 'set':
      return Math.min(...choice.values);
    case 'beta':
      return choice.min;
  }
}

/** Human text: `0.7`, `{0.5, 0.7, 0.9}`, `Beta(5, 5) in [0.1, 0.9]`. */
export function describeStrength(choice: StrengthChoice): string {
  switch (choice.kind) {
    case 'fixed':
      return String(choice.value);
    case 'set':
      return `{${choice.values.join(', ')}}`;
    case 'beta':
      return `Beta(${choice.alpha}, ${choice.beta}) in [${choice.min}, ${choice.max}]`;
  }
}
