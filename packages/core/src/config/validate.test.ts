import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors/index.js';
import { AnnotationConfigSchema } from './annotation.js';
import { parseJsonWith, validate } from './validate.js';

describe('validate', () => {
  it('applies defaults and returns typed output', () => {
    expect(validate(AnnotationConfigSchema, { gamma: 0.5 })).toEqual({ gamma: 0.5, scaler: 1 });
  });

  it('lists every bad field and names the source', () => {
    const err = (() => {
      try {
        parseJsonWith(AnnotationConfigSchema, '{"gamma": -1, "scaler": 2, "typo": 1}', { source: 'run.json' });
      } catch (e) {
        return e;
      }
    })() as ValidationError;
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toMatch(/^run\.json: invalid value/);
    expect(err.issues).toHaveLength(3);
  });

  it('reports malformed JSON with the source', () => {
    expect(() => parseJsonWith(AnnotationConfigSchema, '{gamma:', { source: 'cfg.json' })).toThrow(/cfg\.json: .*not valid JSON/);
  });
});
