export { DiffmixError, hasErrorCode } from './diffmix-error.js';
export {
  AbortedError,
  DatasetFormatError,
  ImageDecodeError,
  InvalidArgumentError,
  NotFoundError,
  UnsafePathError,
  ValidationError,
} from './kinds.js';
