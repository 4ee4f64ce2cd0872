import { describe, expect, it } from 'vitest';
import { DatasetFormatError, DiffmixError, ImageDecodeError, NotFoundError, hasErrorCode } from './index.js';

describe('error classes', () => {
  it('carry a name, a code and the file in the message', () => {
    const e = new DatasetFormatError('cub/images.txt:4', 'expected 2 fields');
    expect(e).toBeInstanceOf(DiffmixError);
    expect(e.name).toBe('DatasetFormatError');
    expect(e.code).toBe('DATASET_FORMAT');
    expect(e.message).toBe('cub/images.txt:4: expected 2 fields');
    expect(new ImageDecodeError('a.jpg', 'truncated').message).toBe('a.jpg: cannot decode image (truncated)');
  });

  it('isInstance works on plain objects carrying the marker (another copy of the package)', () => {
    const foreign = Object.assign(Object.create(null), { [Symbol.for('diffmix.error')]: true, code: 'NOT_FOUND' });
    expect(NotFoundError.isInstance(foreign)).toBe(true);
    expect(DatasetFormatError.isInstance(foreign)).toBe(false);
    expect(hasErrorCode(new Error('x'), 'NOT_FOUND')).toBe(false);
  });
});
