/**
 * Augmentation strategies: Diff-Mix and its baselines behind one exported interface.
 */
export type {
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
export {
  CLASS_NAME_PROMPT,
  PLACEHOLDER_PROMPT,
  type StrategySpec,
  checkPromptTemplate,
  defaultPlaceholder,
  defineStrategy,
  officialLabel,
  officialSelect,
  renderPrompt,
  usesLora,
  usesTextualInversion,
} from './define.js';
export {
  DA_FUSION_STRENGTHS,
  DIFF_MIX_STRENGTHS,
  OFFICIAL_UNIFORM_STRENGTHS,
  betaStrength,
  checkStrengthChoice,
  describeStrength,
  drawStrength,
  fixedStrength,
  minStrength,
  parseStrengthChoice,
  strengthSet,
  toStrengthChoice,
} from './strength.js';
export { BUILTIN_STRATEGIES } from './builtin.js';
export { getStrategy, hasStrategy, listStrategies, registerStrategy, unregisterStrategy } from './registry.js';
export { type FineTuneFiles, adapterOptionsFor, checkModelForStrategy } from './adapters.js';
