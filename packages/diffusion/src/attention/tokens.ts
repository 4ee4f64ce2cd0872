/**
 * Which prompt tokens get a map. A selector is a token position (0 … 76), `sot` / `eot` (the start
 * token, the first end-of-text token), or text: the text is tokenised like the prompt (textual
 * inversion tokens included, multi-vector ones expanded) and its first occurrence in the prompt is
 * used; a word of several BPE pieces gets the sum of their maps. Default: every token of the prompt
 * between the start and end tokens, then the end-of-text token.
 */
import { InvalidArgumentError } from '@diffmix/core';

export type TokenSelector = string | number;

export interface SelectedToken {
  /** What the column is labelled with: the token text, the selector text, or `<eot>` / `<sot>`. */
  label: string;
  /** Positions in the 77 whose maps are summed. */
  positions: number[];
}

export interface TokenText {
  /** The prompt's ids, padded to the context length (as fed to the text encoder). */
  ids: readonly number[];
  bos: number | null;
  eos: number | null;
  /** Ids of a text as the prompt would contain it (no start / end tokens). */
  idsOf(text: string): number[];
  /** Display text of one id. */
  text(id: number): string;
}

function firstIndex(ids: readonly number[], id: number | null, from = 0): number {
  if (id === null) return -1;
  for (let i = from; i < ids.length; i++) if (ids[i] === id) return i;
  return -1;
}

function findSequence(ids: readonly number[], seq: readonly number[]): number {
  outer: for (let i = 0; i + seq.length <= ids.length; i++) {
    for (let j = 0; j < seq.length; j++) if (ids[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

/** The tokens to draw for one prompt, and the selectors that matched nothing in it. */
export function selectTokens(t: TokenText, selectors?: readonly TokenSelector[]): { tokens: SelectedToken[]; missing: string[] } {
  const start = t.bos !== null && t.ids[0] === t.bos ? 1 : 0;
  const eot = firstIndex(t.ids, t.eos, start);
  const tokens: SelectedToken[] = [];
  const missing: string[] = [];
  if (!selectors || selectors.length === 0) {
    const end = eot < 0 ? t.ids.length : eot;
    for (let p = start; p < end; p++) tokens.push({ label: t.text(t.ids[p] as number), positions: [p] });
    if (eot >= 0) tokens.push({ label: '<eot>', positions: [eot] });
    return { tokens, missing };
  }
  for (const sel of selectors) {
    if (typeof sel === 'number') {
      if (!Number.isInteger(sel) || sel < 0 || sel >= t.ids.length) {
        throw new InvalidArgumentError('tokens', `position ${sel} is outside [0, ${t.ids.length})`);
      }
      tokens.push({ label: `${sel}:${t.text(t.ids[sel] as number)}`, positions: [sel] });
      continue;
    }
    const key = sel.trim();
    if (key === 'eot' || key === '<eot>' || key === '<|endoftext|>') {
      if (eot >= 0) tokens.push({ label: '<eot>', positions: [eot] });
      else missing.push(sel);
      continue;
    }
    if (key === 'sot' || key === '<sot>' || key === '<|startoftext|>') {
      if (start === 1) tokens.push({ label: '<sot>', positions: [0] });
      else missing.push(sel);
      continue;
    }
    const seq = t.idsOf(key);
    const at = seq.length ? findSequence(t.ids.slice(0, eot < 0 ? t.ids.length : eot), seq) : -1;
    if (at < 0) missing.push(sel);
    else tokens.push({ label: key, positions: seq.map((_, j) => at + j) });
  }
  return { tokens, missing };
}
