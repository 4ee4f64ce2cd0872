/** Engine selection by name. */
import { InvalidArgumentError } from '@diffmix/core';
import { createOrtEngine } from './ort/index.js';
import type { ClassifierEngine, EngineName, EngineOptions } from './types.js';

export type EngineChoice = EngineName | 'auto';

/**
 * What `engine: 'auto'` picks: the engine the bench measured faster on the development machine.
 * `npm run bench` (bench-results/classifier.json, 2-core CPU, 2026-11-26): ORT trained the small CNN
 * ×69 (64²) and ×51 (224²) faster than tfjs on its pure-JS CPU backend (the only tfjs backend that
 * installs here); see the README's benchmark table. Re-run the bench where tfjs-node / webgpu exist.
 */
export const AUTO_ENGINE: EngineName = 'ort';

export async function createEngine(choice: EngineChoice = 'auto', options: EngineOptions = {}): Promise<ClassifierEngine> {
  const name = choice === 'auto' ? AUTO_ENGINE : choice;
  if (name === 'ort') return createOrtEngine(options);
  if (name === 'tfjs') {
    // Lazy: tfjs (and whichever backend it picks) is loaded only when asked for.
    let mod: { createTfjsEngine?: (o: EngineOptions) => Promise<ClassifierEngine> };
    try {
      mod = await import('./tfjs/index.js');
    } catch (err) {
      throw new InvalidArgumentError('engine', `the tfjs engine could not be loaded: ${(err as Error).message}`);
    }
    if (typeof mod.createTfjsEngine !== 'function')
      throw new InvalidArgumentError('engine', 'the tfjs engine is not available yet (no createTfjsEngine export)');
    return mod.createTfjsEngine(options);
  }
  throw new InvalidArgumentError('engine', `must be 'ort', 'tfjs' or 'auto', got ${JSON.stringify(choice)}`);
}

export interface TfjsBackendProbe {
  backend: string;
  usable: boolean;
  /** What runs (with versions) when usable; why not (and how to install it) otherwise. */
  detail: string;
}

/**
 * Tries every tfjs backend in the engine's preference order (for `diffmix info`). Activating a
 * backend makes it tfjs's current one: call this in a process that will not train with tfjs next.
 */
export async function probeTfjsBackends(): Promise<TfjsBackendProbe[]> {
  const mod = await import('./tfjs/index.js');
  const out: TfjsBackendProbe[] = [];
  for (const name of mod.TFJS_BACKENDS) {
    try {
      const selected = await mod.selectTfjsBackend({ backend: name });
      out.push({ backend: name, usable: true, detail: selected.description });
    } catch (err) {
      out.push({ backend: name, usable: false, detail: (err as Error).message });
    }
  }
  return out;
}
