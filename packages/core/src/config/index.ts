export { AnnotationConfigSchema } from './annotation.js';
export type { AnnotationConfig } from './annotation.js';
export { formatZodIssues, parseJsonWith, validate } from './validate.js';
export type { ValidateContext } from './validate.js';
