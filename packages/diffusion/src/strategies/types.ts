/**
 * The augmentation-strategy contract. A strategy fixes everything that distinguishes Diff-Mix from
 * its baselines: which fine-tuning artefacts the model needs, img2img or txt2img, the prompt, how
 * the source image and the target class are drawn, the default strength rule and the soft label.
 *
 * The interface is exported so that a new method can be written outside this repository and
 * registered with `registerStrategy`; `defineStrategy` builds one from a few declarative fields.
 */
import type { ClassInfo, DatasetRecord, Rng, SoftLabel } from '@diffmix/core';

/** Fine-tuning artefacts a strategy's model must carry. */
export type FineTuneArtefacts = 'none' | 'ti' | 'lora' | 'ti+lora';

/** img2img from a source image, or txt2img from noise (strength 1, no source). */
export type GenerationMode = 'img2img' | 'txt2img';

/** Inter-class: the target may differ from the source. Intra-class: target = source. */
export type ClassRelation = 'inter' | 'intra';

/**
 * How a job's img2img strength is chosen:
 *  - `fixed`: always `value`;
 *  - `set`: uniformly from `values` (Diff-Mix's {0.5, 0.7, 0.9}; the official "uniform" {0.3, 0.5, 0.7, 0.9});
 *  - `beta`: Beta(alpha, beta) clipped to [min, max] (the paper-era Beta(5, 5) in [0.1, 0.9]).
 */
export type StrengthChoice =
  | { kind: 'fixed'; value: number }
  | { kind: 'set'; values: readonly number[] }
  | { kind: 'beta'; alpha: number; beta: number; min: number; max: number };

/** What selection sees of the dataset (records sorted by id, so listing order never matters). */
export interface SelectionContext {
  classes: readonly ClassInfo[];
  /** Training records by class id (`byClass[c]`), each list sorted by record id. */
  byClass: ReadonlyMap<number, readonly DatasetRecord[]>;
  /** Every training record, sorted by id. */
  records: readonly DatasetRecord[];
  /** Long-tail rule: the source image is drawn uniformly over all images (head-heavy classes). */
  longTail: boolean;
}

/** One draw: a source class (and image, for img2img) and a target class. */
export interface Selection {
  sourceClass: number;
  /** The source image (img2img); absent for txt2img. */
  source?: DatasetRecord;
  targetClass: number;
}

export interface PromptContext {
  metaclass: string;
  /** The textual-inversion token of a class (default `<class_{id}>`, as the official code names them). */
  placeholder: (classId: number) => string;
}

export interface LabelContext {
  sourceClass: number;
  targetClass: number;
  strength: number;
  /** γ and scaler c of the Diff-Mix annotation. */
  annotation: { gamma: number; scaler: number };
}

export interface Strategy {
  /** Registry key and the `strategy` field of every job, e.g. "diff-mix". */
  readonly name: string;
  /** One line for help texts. */
  readonly description: string;
  readonly artefacts: FineTuneArtefacts;
  readonly mode: GenerationMode;
  readonly relation: ClassRelation;
  /** Used when the plan does not override the strengths. txt2img strategies use `{ fixed: 1 }`. */
  readonly defaultStrength: StrengthChoice;
  /**
   * Prompt template: `{placeholder}` (the TI token of the target class), `{name}` (its name),
   * `{metaclass}`, `{id}`. E.g. `"a photo of a {placeholder} {metaclass}"`.
   */
  readonly promptTemplate: string;
  /** Draws the source and target of one job from `rng` (a stream owned by that job alone). */
  select(rng: Rng, ctx: SelectionContext): Selection;
  /** The prompt for a job whose target class is `target`; `template` overrides `promptTemplate`. */
  prompt(target: ClassInfo, ctx: PromptContext, template?: string): string;
  /** The job's soft label. */
  label(ctx: LabelContext): SoftLabel;
}
