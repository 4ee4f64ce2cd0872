/**
 * Runtime validation where data crosses a file boundary. Schemas are zod schemas; failures become
 * a `ValidationError` that names the file (and line) and lists every offending field.
 */
import type { z } from 'zod';
import { ValidationError } from '../errors/index.js';

export interface ValidateContext {
  /** File or other source the value came from. */
  source?: string;
  /** 1-based line within the source. */
  line?: number;
}

export function formatZodIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.length ? issue.path.map(String).join('.') : '(root)';
    return `${path}: ${issue.message}`;
  });
}

/** Parses `value` with `schema`, or throws a `ValidationError` naming `ctx.source`. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, ctx: ValidateContext = {}): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError({ ...ctx, issues: formatZodIssues(result.error) });
}

/** JSON.parse with an error that names the source, then `validate`. */
export function parseJsonWith<S extends z.ZodType>(schema: S, text: string, ctx: ValidateContext = {}): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new ValidationError({ ...ctx, issues: [`not valid JSON (${(cause as Error).message})`], cause });
  }
  return validate(schema, value, ctx);
}
