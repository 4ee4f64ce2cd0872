import { InvalidArgumentError } from '@diffmix/core';
import type { ClassInfo } from '@diffmix/core';

/** Classes as `ClassInfo`s, or plain names (id = position). */
export type ClassList = readonly ClassInfo[] | readonly string[];

export function normaliseClasses(classes: ClassList): ClassInfo[] {
  const out: ClassInfo[] = classes.map((c, i) => (typeof c === 'string' ? { id: i, name: c } : c));
  const seen = new Set<number>();
  for (const c of out) {
    if (!Number.isInteger(c.id) || c.id < 0)
      throw new InvalidArgumentError('classes', `class id must be a non-negative integer, got ${c.id}`);
    if (seen.has(c.id)) throw new InvalidArgumentError('classes', `class id ${c.id} appears twice`);
    if (typeof c.name !== 'string') throw new InvalidArgumentError('classes', `class ${c.id} has no name`);
    seen.add(c.id);
  }
  return out;
}
