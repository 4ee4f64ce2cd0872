/**
 * The classes of the procedural toy dataset: base shape × patch colour × body pattern.
 */
import { type ClassInfo, InvalidArgumentError } from '@diffmix/core';

export const TOY_SHAPES = ['circle', 'square', 'triangle', 'diamond', 'hexagon', 'star'] as const;
export const TOY_PATTERNS = ['plain', 'striped', 'dotted', 'checkered'] as const;
/** Patch colours (saturated, so they stand out on the muted bodies). */
export const TOY_COLOURS = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 90, 225],
  yellow: [240, 210, 40],
  magenta: [205, 50, 200],
  cyan: [40, 205, 215],
  orange: [245, 135, 30],
  white: [250, 250, 250],
} as const satisfies Record<string, readonly [number, number, number]>;

export type ToyShape = (typeof TOY_SHAPES)[number];
export type ToyPattern = (typeof TOY_PATTERNS)[number];
export type ToyColour = keyof typeof TOY_COLOURS;

const COLOUR_NAMES = Object.keys(TOY_COLOURS) as ToyColour[];

/** Number of distinct toy classes (6 shapes × 8 colours × 4 patterns). */
export const TOY_MAX_CLASSES = TOY_SHAPES.length * COLOUR_NAMES.length * TOY_PATTERNS.length;

export interface ToyClass extends ClassInfo {
  shape: ToyShape;
  colour: ToyColour;
  pattern: ToyPattern;
  /** Folder name: `<id:3>.<colour>-<pattern>_<shape>` (sorts in id order; `cleanClassName` gives `name`). */
  rawName: string;
}

/**
 * The first `numClasses` toy classes. Class k has pattern k mod 4, colour ⌊k/4⌋ mod 8 and shape
 * ⌊k/32⌋, so small sets share the base shape and differ only in the fine details (the patch colour
 * and the body pattern), like the species of one bird family. Names read "red-striped circle"
 * (`<patch colour>-<pattern> <shape>`). The list depends only on `numClasses`, not on the seed.
 */
export function toyClasses(numClasses: number): ToyClass[] {
  if (!Number.isInteger(numClasses) || numClasses < 1 || numClasses > TOY_MAX_CLASSES) {
    throw new InvalidArgumentError('numClasses', `must be an integer in [1, ${TOY_MAX_CLASSES}], got ${numClasses}`);
  }
  return Array.from({ length: numClasses }, (_, id) => {
    const pattern = TOY_PATTERNS[id % TOY_PATTERNS.length] as ToyPattern;
    const colour = COLOUR_NAMES[Math.floor(id / TOY_PATTERNS.length) % COLOUR_NAMES.length] as ToyColour;
    const shape = TOY_SHAPES[Math.floor(id / (TOY_PATTERNS.length * COLOUR_NAMES.length))] as ToyShape;
    return {
      id,
      name: `${colour}-${pattern} ${shape}`,
      rawName: `${String(id).padStart(3, '0')}.${colour}-${pattern}_${shape}`,
      shape,
      colour,
      pattern,
    };
  });
}
