import { DiffmixError, hasErrorCode } from './diffmix-error.js';

/** A value read from a file or given by a caller does not match its schema. */
export class ValidationError extends DiffmixError {
  readonly code = 'VALIDATION';
  /** File (or other source) the value came from, if any. */
  readonly source: string | undefined;
  /** 1-based line number inside `source` (manifest lines, CSV rows), if known. */
  readonly line: number | undefined;
  /** Human-readable problems, one per offending field, as `path: message`. */
  readonly issues: string[];

  constructor(args: { message?: string; source?: string; line?: number; issues: string[]; cause?: unknown }) {
    const where = args.source ? `${args.source}${args.line !== undefined ? `:${args.line}` : ''}: ` : '';
    super(args.message ?? `${where}invalid value (${args.issues.join('; ')})`, { cause: args.cause });
    this.source = args.source;
    this.line = args.line;
    this.issues = args.issues;
  }

  static override isInstance(value: unknown): value is ValidationError {
    return hasErrorCode(value, 'VALIDATION');
  }
}

/** A dataset on disk is not laid out as its format requires (missing index file, bad line, label out of range…). */
export class DatasetFormatError extends DiffmixError {
  readonly code = 'DATASET_FORMAT';
  readonly file: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.file = file;
  }

  static override isInstance(value: unknown): value is DatasetFormatError {
    return hasErrorCode(value, 'DATASET_FORMAT');
  }
}

/**
 * A model or weights file (ONNX, safetensors, LoRA, textual-inversion embeddings, torch checkpoint) is
 * malformed or does not fit the model it is applied to (bad header, tensor out of range, unknown LoRA
 * key, shape mismatch). `file` names the offending file.
 */
export class ModelFormatError extends DiffmixError {
  readonly code = 'MODEL_FORMAT';
  readonly file: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.file = file;
  }

  static override isInstance(value: unknown): value is ModelFormatError {
    return hasErrorCode(value, 'MODEL_FORMAT');
  }
}

/** An image file could not be decoded (corrupt, truncated, not an image). */
export class ImageDecodeError extends DiffmixError {
  readonly code = 'IMAGE_DECODE';
  readonly file: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: cannot decode image (${problem})`, options);
    this.file = file;
  }

  static override isInstance(value: unknown): value is ImageDecodeError {
    return hasErrorCode(value, 'IMAGE_DECODE');
  }
}

/** A name (class name, record id) would escape the folder it is written into, or is empty. */
export class UnsafePathError extends DiffmixError {
  readonly code = 'UNSAFE_PATH';
  readonly component: string;

  constructor(name: string, problem: string) {
    super(`unsafe path component ${JSON.stringify(name)}: ${problem}`);
    this.component = name;
  }

  static override isInstance(value: unknown): value is UnsafePathError {
    return hasErrorCode(value, 'UNSAFE_PATH');
  }
}

/** A file or folder the caller pointed at does not exist. */
export class NotFoundError extends DiffmixError {
  readonly code = 'NOT_FOUND';
  readonly file: string;

  constructor(file: string, what = 'file or folder') {
    super(`${file}: ${what} not found`);
    this.file = file;
  }

  static override isInstance(value: unknown): value is NotFoundError {
    return hasErrorCode(value, 'NOT_FOUND');
  }
}

/** The caller asked for something inconsistent (e.g. shard 3/2, a negative strength). */
export class InvalidArgumentError extends DiffmixError {
  readonly code = 'INVALID_ARGUMENT';
  readonly argument: string;

  constructor(argument: string, problem: string) {
    super(`${argument}: ${problem}`);
    this.argument = argument;
  }

  static override isInstance(value: unknown): value is InvalidArgumentError {
    return hasErrorCode(value, 'INVALID_ARGUMENT');
  }
}

/** The work was interrupted (Ctrl-C, AbortSignal); what finished before it is kept. */
export class AbortedError extends DiffmixError {
  readonly code = 'ABORTED';

  constructor(message = 'aborted') {
    super(message);
  }

  static override isInstance(value: unknown): value is AbortedError {
    return hasErrorCode(value, 'ABORTED');
  }
}
