export type { GradientGraph, GradientGraphOptions } from './autodiff.js';
export { buildGradientGraph, UnsupportedOpsError } from './autodiff.js';
export { CAST_CODES, FLOAT_TYPES, GradContext } from './context.js';
export type { FdCheckOptions, FdCheckResult } from './fdcheck.js';
export { checkGradients } from './fdcheck.js';
export type { LowerOptions, RunningStatOutputs } from './lower.js';
export { lowerForTraining } from './lower.js';
export type { GradRule, GradRuleArgs } from './rules.js';
export { gradientRules, NON_DIFFERENTIABLE_OPS } from './rules.js';
