/**
 * The paper's strategies (DESIGN "The method in one page", step 7; supplementary Table 11):
 *
 * | name          | artefacts | mode    | class relation | default strength          | prompt                              |
 * |---------------|-----------|---------|----------------|---------------------------|-------------------------------------|
 * | diff-mix      | ti+lora   | img2img | inter          | {0.5, 0.7, 0.9}           | a photo of a <class_j> <metaclass>  |
 * | real-mix      | none      | img2img | inter          | {0.5, 0.7, 0.9}           | a photo of a <class name>           |
 * | diff-aug      | ti+lora   | img2img | intra          | {0.5, 0.7, 0.9}           | a photo of a <class_i> <metaclass>  |
 * | real-aug      | none      | img2img | intra          | {0.5, 0.7, 0.9}           | a photo of a <class name>           |
 * | real-guidance | none      | img2img | intra          | 0.1                       | a photo of a <class name>           |
 * | da-fusion     | ti        | img2img | intra          | {0.25, 0.5, 0.75, 1.0}    | a photo of a <class_i> <metaclass>  |
 * | diff-gen      | ti+lora   | txt2img | intra          | 1                         | a photo of a <class_i> <metaclass>  |
 * | real-gen      | none      | txt2img | intra          | 1                         | a photo of a <class name>           |
 *
 * The X-Aug / X-Mix baselines use Diff-Mix's strength set so that the comparison changes one knob.
 * Real-filtering is Real-Gen followed by CLIP cleaning (`@diffmix/clip-filter`), not a strategy here.
 */
import { CLASS_NAME_PROMPT, PLACEHOLDER_PROMPT, defineStrategy } from './define.js';
import { DA_FUSION_STRENGTHS, DIFF_MIX_STRENGTHS } from './strength.js';
import type { Strategy } from './types.js';

const mixSet = { kind: 'set', values: DIFF_MIX_STRENGTHS } as const;

export const BUILTIN_STRATEGIES: readonly Strategy[] = Object.freeze([
  defineStrategy({
    name: 'diff-mix',
    description: 'inter-class img2img with the fine-tuned model (TI + LoRA); soft label by strength',
    artefacts: 'ti+lora',
    mode: 'img2img',
    relation: 'inter',
    defaultStrength: mixSet,
    promptTemplate: PLACEHOLDER_PROMPT,
  }),
  defineStrategy({
    name: 'real-mix',
    description: 'inter-class img2img with the pre-trained model and the class name; soft label by strength',
    artefacts: 'none',
    mode: 'img2img',
    relation: 'inter',
    defaultStrength: mixSet,
    promptTemplate: CLASS_NAME_PROMPT,
  }),
  defineStrategy({
    name: 'diff-aug',
    description: 'intra-class img2img with the fine-tuned model (TI + LoRA)',
    artefacts: 'ti+lora',
    mode: 'img2img',
    relation: 'intra',
    defaultStrength: mixSet,
    promptTemplate: PLACEHOLDER_PROMPT,
  }),
  defineStrategy({
    name: 'real-aug',
    description: 'intra-class img2img with the pre-trained model and the class name',
    artefacts: 'none',
    mode: 'img2img',
    relation: 'intra',
    defaultStrength: mixSet,
    promptTemplate: CLASS_NAME_PROMPT,
  }),
  defineStrategy({
    name: 'real-guidance',
    description: 'Real-Aug at strength 0.1 (low-strength intra-class editing)',
    artefacts: 'none',
    mode: 'img2img',
    relation: 'intra',
    defaultStrength: { kind: 'fixed', value: 0.1 },
    promptTemplate: CLASS_NAME_PROMPT,
  }),
  defineStrategy({
    name: 'da-fusion',
    description: 'intra-class img2img with textual inversion only, s ∈ {0.25, 0.5, 0.75, 1.0}',
    artefacts: 'ti',
    mode: 'img2img',
    relation: 'intra',
    defaultStrength: { kind: 'set', values: DA_FUSION_STRENGTHS },
    promptTemplate: PLACEHOLDER_PROMPT,
  }),
  defineStrategy({
    name: 'diff-gen',
    description: 'txt2img with the fine-tuned model (TI + LoRA)',
    artefacts: 'ti+lora',
    mode: 'txt2img',
    relation: 'intra',
    promptTemplate: PLACEHOLDER_PROMPT,
  }),
  defineStrategy({
    name: 'real-gen',
    description: 'txt2img with the pre-trained model and the class name',
    artefacts: 'none',
    mode: 'txt2img',
    relation: 'intra',
    promptTemplate: CLASS_NAME_PROMPT,
  }),
]);
