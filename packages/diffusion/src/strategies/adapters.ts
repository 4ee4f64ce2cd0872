/** Which fine-tuning artefacts to load for a strategy, and a check of a loaded model against it. */
import { InvalidArgumentError } from '@diffmix/core';
import type { LoadStableDiffusionOptions, StableDiffusion } from '../model/stable-diffusion.js';
import type { LoraSpec, TextualInversionSpec } from '../weights/index.js';
import { usesLora, usesTextualInversion } from './define.js';
import type { Strategy } from './types.js';

export interface FineTuneFiles {
  lora?: LoraSpec[];
  textualInversion?: TextualInversionSpec[];
}

/**
 * The `lora` / `textualInversion` load options a strategy needs, picked from what fine-tuning
 * produced: Diff-Mix gets both, DA-Fusion only the embeddings, the Real-* methods neither (whatever is
 * passed). Throws `InvalidArgumentError` when an artefact the strategy needs is missing.
 */
export function adapterOptionsFor(
  strategy: Pick<Strategy, 'name' | 'artefacts'>,
  files: FineTuneFiles,
): Pick<LoadStableDiffusionOptions, 'lora' | 'textualInversion'> {
  const out: Pick<LoadStableDiffusionOptions, 'lora' | 'textualInversion'> = {};
  if (usesLora(strategy.artefacts)) {
    if (!files.lora?.length)
      throw new InvalidArgumentError('lora', `strategy ${strategy.name} needs LoRA weights from fine-tuning`);
    out.lora = files.lora;
  }
  if (usesTextualInversion(strategy.artefacts)) {
    if (!files.textualInversion?.length) {
      throw new InvalidArgumentError(
        'textualInversion',
        `strategy ${strategy.name} needs textual-inversion embeddings from fine-tuning`,
      );
    }
    out.textualInversion = files.textualInversion;
  }
  return out;
}

/**
 * Problems of running `strategy` on `model` (empty when it fits): TI tokens the prompts use but the
 * model does not know, LoRA expected but not merged, or adapters loaded for a Real-* strategy.
 */
export function checkModelForStrategy(
  model: Pick<StableDiffusion, 'adapters'>,
  strategy: Pick<Strategy, 'name' | 'artefacts'>,
  promptTokens: readonly string[] = [],
): string[] {
  const problems: string[] = [];
  const ti = model.adapters.textualInversion;
  const lora = model.adapters.lora;
  if (usesTextualInversion(strategy.artefacts)) {
    if (!ti) problems.push(`strategy ${strategy.name} expects textual-inversion embeddings, but the model has none loaded`);
    else {
      const missing = promptTokens.filter((t) => !ti.tokens.has(t));
      if (missing.length) {
        problems.push(
          `the prompts use ${missing.length} placeholder token(s) the embeddings do not define (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}); they are tokenised as plain text`,
        );
      }
    }
  } else if (ti) {
    problems.push(`strategy ${strategy.name} uses no textual inversion, but embeddings are loaded`);
  }
  if (usesLora(strategy.artefacts) && !lora) problems.push(`strategy ${strategy.name} expects LoRA weights, but none are merged`);
  if (!usesLora(strategy.artefacts) && lora) problems.push(`strategy ${strategy.name} uses no LoRA, but LoRA weights are merged`);
  return problems;
}
