export { DiffmixError, hasErrorCode } from './diffmix-error.js';
export {
  AbortedError,
  DatasetFormatError,
  ImageDecodeError,
  InvalidArgumentError,
  ModelFormatError,
  NotFoundError,
  UnsafePathError,
  ValidationError,
} from './kinds.js';
