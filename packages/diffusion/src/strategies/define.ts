/**
 * `defineStrategy`: a strategy from declarative fields, with the official selection, prompt and label
 * rules as defaults (each can be replaced by a function).
 *
 * Selection (official `sample_mp.py`):
 *  - img2img: the source class uniformly over the classes that have training images, then a source
 *    image uniformly within it; with `longTail` the source image uniformly over all images (so the
 *    source follows the head-heavy class distribution);
 *  - inter-class: the target uniformly over all classes (it equals the source with probability 1/N);
 *    intra-class: target = source;
 *  - txt2img: the class uniformly over all classes (with `longTail`, the class of a uniformly drawn
 *    image); no source image; target = source.
 * Every draw comes from its own named child stream of the job's RNG ('source-class', 'source-image',
 * 'source', 'target'), so two strategies planned with the same seed pick the same source images.
 *
 * Labels: inter-class → the Diff-Mix annotation `c·(1 − s^γ)·onehot(src) + c·s^γ·onehot(tgt)`;
 * intra-class (and txt2img) → one-hot of the source class.
 */
import { InvalidArgumentError, annotate, oneHot } from '@diffmix/core';
import type { ClassInfo, Rng, SoftLabel } from '@diffmix/core';
import { checkStrengthChoice } from './strength.js';
import type {
  ClassRelation,
  FineTuneArtefacts,
  GenerationMode,
  LabelContext,
  PromptContext,
  Selection,
  SelectionContext,
  Strategy,
  StrengthChoice,
} from './types.js';

export interface StrategySpec {
  name: string;
  description: string;
  artefacts: FineTuneArtefacts;
  mode: GenerationMode;
  relation: ClassRelation;
  /** Default `{ kind: 'fixed', value: 1 }` for txt2img; required for img2img. */
  defaultStrength?: StrengthChoice;
  promptTemplate: string;
  select?: (rng: Rng, ctx: SelectionContext) => Selection;
  prompt?: (target: ClassInfo, ctx: PromptContext, template?: string) => string;
  label?: (ctx: LabelContext) => SoftLabel;
}

/** `<class_{id}>`: the placeholder tokens the official fine-tuning code adds (one per class). */
export function defaultPlaceholder(classId: number): string {
  return `<class_${classId}>`;
}

/** Prompt with a `"a photo of a <class_j> <metaclass>"`-style template filled in. */
export const PLACEHOLDER_PROMPT = 'a photo of a {placeholder} {metaclass}';
/** The Real-* methods' prompt: the class name. */
export const CLASS_NAME_PROMPT = 'a photo of a {name}';

const FIELDS = new Set(['placeholder', 'name', 'metaclass', 'id']);

/** Checks a template's `{field}`s (only `placeholder`, `name`, `metaclass`, `id`). */
export function checkPromptTemplate(template: string): string {
  for (const m of template.matchAll(/\{([^{}]*)\}/g)) {
    if (!FIELDS.has(m[1] as string)) {
      throw new InvalidArgumentError(
        'promptTemplate',
        `unknown field {${m[1]}} in ${JSON.stringify(template)}; use {placeholder}, {name}, {metaclass} or {id}`,
      );
    }
  }
  return template;
}

export function renderPrompt(template: string, target: ClassInfo, ctx: PromptContext): string {
  checkPromptTemplate(template);
  return template.replace(/\{(placeholder|name|metaclass|id)\}/g, (_, field: string) => {
    switch (field) {
      case 'placeholder':
        return ctx.placeholder(target.id);
      case 'name':
        return target.name;
      case 'metaclass':
        return ctx.metaclass;
      default:
        return String(target.id);
    }
  });
}

function classesWithImages(ctx: SelectionContext): number[] {
  const ids = ctx.classes.map((c) => c.id).filter((id) => (ctx.byClass.get(id)?.length ?? 0) > 0);
  if (ids.length === 0) throw new InvalidArgumentError('dataset', 'has no training images to use as sources');
  return ids;
}

/** The official selection rules (see the module comment). */
export function officialSelect(mode: GenerationMode, relation: ClassRelation) {
  return (rng: Rng, ctx: SelectionContext): Selection => {
    if (ctx.classes.length === 0) throw new InvalidArgumentError('dataset', 'has no classes');
    let sourceClass: number;
    let source: Selection['source'];
    if (ctx.longTail) {
      if (ctx.records.length === 0) throw new InvalidArgumentError('dataset', 'has no training images to use as sources');
      const record = rng.split('source').choice(ctx.records);
      sourceClass = record.label;
      if (mode === 'img2img') source = record;
    } else if (mode === 'img2img') {
      sourceClass = rng.split('source-class').choice(classesWithImages(ctx));
      source = rng.split('source-image').choice(ctx.byClass.get(sourceClass) ?? []);
    } else {
      sourceClass = (rng.split('source-class').choice(ctx.classes) as ClassInfo).id;
    }
    const targetClass = relation === 'intra' ? sourceClass : (rng.split('target').choice(ctx.classes) as ClassInfo).id;
    return source ? { sourceClass, source, targetClass } : { sourceClass, targetClass };
  };
}

export function officialLabel(relation: ClassRelation) {
  return ({ sourceClass, targetClass, strength, annotation }: LabelContext): SoftLabel =>
    relation === 'intra'
      ? oneHot(sourceClass)
      : annotate({ strength, gamma: annotation.gamma, scaler: annotation.scaler, sourceClass, targetClass });
}

const NAME_RE = /^[a-z0-9][a-z0-9._+-]*$/i;

export function defineStrategy(spec: StrategySpec): Strategy {
  if (!NAME_RE.test(spec.name)) {
    throw new InvalidArgumentError('name', `strategy names are letters, digits and . _ + - (got ${JSON.stringify(spec.name)})`);
  }
  if (!['none', 'ti', 'lora', 'ti+lora'].includes(spec.artefacts)) {
    throw new InvalidArgumentError('artefacts', `must be none, ti, lora or ti+lora, got ${JSON.stringify(spec.artefacts)}`);
  }
  if (spec.mode !== 'img2img' && spec.mode !== 'txt2img') {
    throw new InvalidArgumentError('mode', `must be img2img or txt2img, got ${JSON.stringify(spec.mode)}`);
  }
  if (spec.relation !== 'inter' && spec.relation !== 'intra') {
    throw new InvalidArgumentError('relation', `must be inter or intra, got ${JSON.stringify(spec.relation)}`);
  }
  let defaultStrength: StrengthChoice;
  if (spec.mode === 'txt2img') {
    defaultStrength = spec.defaultStrength ?? { kind: 'fixed', value: 1 };
    if (defaultStrength.kind !== 'fixed' || defaultStrength.value !== 1) {
      throw new InvalidArgumentError('defaultStrength', 'txt2img strategies have strength 1');
    }
  } else {
    if (!spec.defaultStrength) throw new InvalidArgumentError('defaultStrength', 'img2img strategies need a strength rule');
    defaultStrength = checkStrengthChoice(spec.defaultStrength);
  }
  checkPromptTemplate(spec.promptTemplate);
  const template = spec.promptTemplate;
  return Object.freeze({
    name: spec.name,
    description: spec.description,
    artefacts: spec.artefacts,
    mode: spec.mode,
    relation: spec.relation,
    defaultStrength,
    promptTemplate: template,
    select: spec.select ?? officialSelect(spec.mode, spec.relation),
    prompt:
      spec.prompt ??
      ((target: ClassInfo, ctx: PromptContext, override?: string) => renderPrompt(override ?? template, target, ctx)),
    label: spec.label ?? officialLabel(spec.relation),
  });
}

/** Whether the artefacts include textual inversion / LoRA. */
export function usesTextualInversion(artefacts: FineTuneArtefacts): boolean {
  return artefacts === 'ti' || artefacts === 'ti+lora';
}

export function usesLora(artefacts: FineTuneArtefacts): boolean {
  return artefacts === 'lora' || artefacts === 'ti+lora';
}
