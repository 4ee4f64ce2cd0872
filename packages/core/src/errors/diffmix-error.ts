/**
 * Base class of every error diffmix throws on purpose.
 *
 * Each kind of failure has its own subclass with a stable `code`, so callers can branch on
 * `err instanceof DatasetFormatError` or, across package copies (two installed versions of
 * @diffmix/core), on `DatasetFormatError.isInstance(err)`, which checks a marker symbol instead of
 * the prototype chain.
 */
const marker = Symbol.for('diffmix.error');

export abstract class DiffmixError extends Error {
  readonly [marker] = true;
  /** Stable machine-readable kind, e.g. `DATASET_FORMAT`. */
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }

  static isInstance(value: unknown): value is DiffmixError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true;
  }
}

/** Checks the marker and the code, so it works across duplicated installs of this package. */
export function hasErrorCode(value: unknown, code: string): boolean {
  return DiffmixError.isInstance(value) && value.code === code;
}
