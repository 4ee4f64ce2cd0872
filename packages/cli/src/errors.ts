import { AbortedError, DiffmixError, InvalidArgumentError, ValidationError } from '@diffmix/core';
import { ExitCode } from './exit-codes.js';

/** Maps an error to the exit code and the one-line message a user sees. */
export function describeFailure(err: unknown): { code: ExitCode; message: string } {
  if (AbortedError.isInstance(err)) return { code: ExitCode.INTERRUPTED, message: err.message };
  if (InvalidArgumentError.isInstance(err) || ValidationError.isInstance(err)) {
    const issues = ValidationError.isInstance(err) && err.issues.length > 1 ? `\n  - ${err.issues.join('\n  - ')}` : '';
    return { code: ExitCode.USAGE, message: `${err.message}${issues}` };
  }
  if (DiffmixError.isInstance(err)) return { code: ExitCode.DATA, message: err.message };
  const e = err as { code?: string; message?: string };
  if (typeof e?.code === 'string' && e.code.startsWith('commander.')) return { code: ExitCode.USAGE, message: e.message ?? String(err) };
  return { code: ExitCode.INTERNAL, message: err instanceof Error ? err.message : String(err) };
}
