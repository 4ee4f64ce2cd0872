/**
 * The caption pair scored against each image: [positive, negative]. The score is the softmax
 * probability of the positive one.
 */
import { InvalidArgumentError, KNOWN_METACLASSES } from '@diffmix/core';

export type CaptionPair = readonly [positive: string, negative: string];

/** "a photo with a bird on it" / "a photo without a bird on it" for each metaclass diffmix knows. */
export const METACLASS_CAPTIONS: Readonly<Record<string, CaptionPair>> = Object.freeze(
  Object.fromEntries(
    KNOWN_METACLASSES.map((m) => {
      const noun = `${/^[aeiou]/i.test(m) ? 'an' : 'a'} ${m}`;
      return [m, [`a photo with ${noun} on it`, `a photo without ${noun} on it`] as const];
    }),
  ),
);

/**
 * The captions of the official Diff-Mix filter (`scripts/filter_syn_data.py`, `FILTER_CAPTIONS_MAPPING`),
 * by dataset, verbatim — including its typos ("aricraft", "without an car") and trailing ". ".
 * Use them to reproduce the official scores exactly; `METACLASS_CAPTIONS` is the clean form.
 */
export const OFFICIAL_FILTER_CAPTIONS: Readonly<Record<string, CaptionPair>> = Object.freeze({
  cub: ['a photo with a bird on it', 'a photo without a bird on it'],
  aircraft: ['a photo with an aricraft on it. ', 'a photo without an aricraft on it. '],
  dog: ['a photo with a dog on it. ', 'a photo without a dog on it. '],
  flower: ['a photo with a flower on it. ', 'a photo without a flower on it. '],
  car: ['a photo with a car on it. ', 'a photo without an car on it. '],
});

/** The captions to use: `captions` when given (checked), else the metaclass's pair. */
export function resolveCaptions(options: { metaclass?: string; captions?: readonly string[] }): CaptionPair {
  if (options.captions !== undefined) {
    const c = options.captions;
    if (c.length !== 2 || c.some((s) => typeof s !== 'string' || s.trim() === '')) {
      throw new InvalidArgumentError(
        'captions',
        `expected [positive, negative], two non-empty strings; got ${JSON.stringify(c)}`,
      );
    }
    return [c[0] as string, c[1] as string];
  }
  const m = options.metaclass;
  if (m === undefined || m === '') {
    throw new InvalidArgumentError(
      'metaclass',
      `give a metaclass (${KNOWN_METACLASSES.join(', ')}) or captions: [positive, negative]`,
    );
  }
  const pair = METACLASS_CAPTIONS[m];
  if (!pair) {
    throw new InvalidArgumentError(
      'metaclass',
      `no captions known for metaclass ${JSON.stringify(m)} (known: ${Object.keys(METACLASS_CAPTIONS).join(', ')}); ` +
        `pass captions: ["a photo with a ${m} on it", "a photo without a ${m} on it"] (or your own pair)`,
    );
  }
  return pair;
}
