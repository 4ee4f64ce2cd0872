/**
 * The strategy registry: the built-in strategies plus any registered by the user (a plug-in written
 * outside this repository calls `registerStrategy(defineStrategy({...}))` before planning).
 */
import { InvalidArgumentError } from '@diffmix/core';
import { BUILTIN_STRATEGIES } from './builtin.js';
import type { Strategy } from './types.js';

const registry = new Map<string, Strategy>(BUILTIN_STRATEGIES.map((s) => [s.name, s]));
const builtinNames = new Set(BUILTIN_STRATEGIES.map((s) => s.name));

/** The strategy registered under `name`; throws `InvalidArgumentError` naming the known ones. */
export function getStrategy(name: string): Strategy {
  const s = registry.get(name);
  if (!s) {
    throw new InvalidArgumentError(
      'strategy',
      `unknown strategy ${JSON.stringify(name)}; known: ${[...registry.keys()].join(', ')}`,
    );
  }
  return s;
}

export function hasStrategy(name: string): boolean {
  return registry.has(name);
}

/** Every registered strategy, built-ins first, in registration order. */
export function listStrategies(): Strategy[] {
  return [...registry.values()];
}

/**
 * Adds a strategy. A name already taken is an error unless `replace: true` (built-ins can be
 * replaced too, e.g. to change Diff-Aug's default strengths, but only explicitly).
 */
export function registerStrategy(strategy: Strategy, options: { replace?: boolean } = {}): Strategy {
  for (const k of ['name', 'promptTemplate'] as const) {
    if (typeof strategy[k] !== 'string' || strategy[k] === '')
      throw new InvalidArgumentError(`strategy.${k}`, 'must be a non-empty string');
  }
  for (const k of ['select', 'prompt', 'label'] as const) {
    if (typeof strategy[k] !== 'function') throw new InvalidArgumentError(`strategy.${k}`, 'must be a function');
  }
  if (registry.has(strategy.name) && !options.replace) {
    throw new InvalidArgumentError(
      'strategy',
      `${JSON.stringify(strategy.name)} is already registered${builtinNames.has(strategy.name) ? ' (built in)' : ''}; pass { replace: true } to replace it`,
    );
  }
  registry.set(strategy.name, strategy);
  return strategy;
}

/** Removes a user strategy (built-ins are restored, not removed). Returns whether it was there. */
export function unregisterStrategy(name: string): boolean {
  const builtin = BUILTIN_STRATEGIES.find((s) => s.name === name);
  if (builtin) {
    registry.set(name, builtin);
    return true;
  }
  return registry.delete(name);
}
