import { ValidationError } from '@diffmix/core';

/** Options of a BPE model (the fields of `model` in a `tokenizer.json`). */
export interface BpeModelOptions {
  /** Appended to the last symbol of every word before the vocabulary look-up (`</w>` for CLIP). */
  endOfWordSuffix?: string;
  /** Prepended to every non-first symbol (empty for CLIP). */
  continuingSubwordPrefix?: string;
  /** Token used for symbols missing from the vocabulary (`<|endoftext|>` for CLIP); none: such symbols are dropped. */
  unkToken?: string | null;
  /** Fuse consecutive unknown symbols into one unk token. */
  fuseUnk?: boolean;
  /** Words kept in the BPE cache (the reference default is 10 000). */
  cacheCapacity?: number;
  /** Names used in error messages. */
  vocabSource?: string;
  mergesSource?: string;
  /** 1-based line of each merge inside `mergesSource`, for error messages. */
  mergeLines?: readonly number[];
}

/** One entry of the merge queue: merge the symbol at `pos` with its successor into `newId`. */
interface QueuedMerge {
  rank: number;
  pos: number;
  newId: number;
}

/** Min-heap ordered by (rank, pos), as the reference `BinaryHeap<Merge>`. */
class MergeQueue {
  private readonly items: QueuedMerge[] = [];

  get size(): number {
    return this.items.length;
  }

  private static less(a: QueuedMerge, b: QueuedMerge): boolean {
    return a.rank !== b.rank ? a.rank < b.rank : a.pos < b.pos;
  }

  push(item: QueuedMerge): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!MergeQueue.less(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): QueuedMerge | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && MergeQueue.less(items[l]!, items[m]!)) m = l;
        if (r < items.length && MergeQueue.less(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Byte-pair-encoding model with the semantics of the `tokenizers` BPE model: a word is split into
 * characters (suffix added to the last one), then the pair with the lowest merge rank (leftmost on ties)
 * is merged repeatedly until no known pair is left. Results are cached per word.
 */
export class BpeModel {
  readonly vocab: ReadonlyMap<string, number>;
  readonly endOfWordSuffix: string;
  readonly continuingSubwordPrefix: string;
  readonly unkToken: string | null;
  readonly fuseUnk: boolean;
  /** Number of merges. */
  readonly mergeCount: number;

  private readonly idToToken = new Map<number, string>();
  /** pair key (`left * pairBase + right`) → rank and merged id. */
  private readonly merges = new Map<number, { rank: number; newId: number }>();
  private readonly pairBase: number;
  private readonly unkId: number | undefined;
  private readonly cache = new Map<string, readonly number[]>();
  private readonly cacheCapacity: number;

  constructor(
    vocab: ReadonlyMap<string, number>,
    merges: ReadonlyArray<readonly [string, string]>,
    options: BpeModelOptions = {},
  ) {
    const vocabSource = options.vocabSource ?? 'vocab';
    const mergesSource = options.mergesSource ?? 'merges';
    this.vocab = vocab;
    this.endOfWordSuffix = options.endOfWordSuffix ?? '';
    this.continuingSubwordPrefix = options.continuingSubwordPrefix ?? '';
    this.unkToken = options.unkToken ?? null;
    this.fuseUnk = options.fuseUnk ?? false;
    this.cacheCapacity = options.cacheCapacity ?? 10_000;

    let maxId = -1;
    for (const [token, id] of vocab) {
      if (!Number.isSafeInteger(id) || id < 0) {
        throw new ValidationError({
          source: vocabSource,
          issues: [`${JSON.stringify(token)}: id must be a non-negative integer, got ${id}`],
        });
      }
      if (!this.idToToken.has(id)) this.idToToken.set(id, token);
      if (id > maxId) maxId = id;
    }
    if (maxId >= 2 ** 26) {
      throw new ValidationError({
        source: vocabSource,
        issues: [`token ids up to ${maxId} are not supported (max ${2 ** 26 - 1})`],
      });
    }
    this.pairBase = maxId + 1;

    const prefixLength = this.continuingSubwordPrefix.length;
    merges.forEach(([left, right], rank) => {
      const where = { source: mergesSource, line: options.mergeLines?.[rank] ?? rank + 1 };
      const leftId = vocab.get(left);
      const rightId = vocab.get(right);
      if (leftId === undefined || rightId === undefined) {
        const missing = leftId === undefined ? left : right;
        throw new ValidationError({ ...where, issues: [`merge token ${JSON.stringify(missing)} is not in the vocabulary`] });
      }
      const merged =
        left + (prefixLength > 0 && right.startsWith(this.continuingSubwordPrefix) ? right.slice(prefixLength) : right);
      const newId = vocab.get(merged);
      if (newId === undefined) {
        throw new ValidationError({ ...where, issues: [`merged token ${JSON.stringify(merged)} is not in the vocabulary`] });
      }
      const key = leftId * this.pairBase + rightId;
      // The first (lowest-rank) occurrence of a pair wins.
      if (!this.merges.has(key)) this.merges.set(key, { rank, newId });
    });
    this.mergeCount = merges.length;

    if (this.unkToken !== null) {
      this.unkId = vocab.get(this.unkToken);
    }
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  idToTokenString(id: number): string | undefined {
    return this.idToToken.get(id);
  }

  /** Token ids of one (byte-level) word. The returned array is shared with the cache: do not modify it. */
  tokenize(word: string): readonly number[] {
    if (word.length === 0) return [];
    const hit = this.cache.get(word);
    if (hit !== undefined) return hit;
    const ids = this.mergeWord(word);
    if (this.cache.size < this.cacheCapacity) this.cache.set(word, ids);
    return ids;
  }

  /** Drops every cached word. */
  clearCache(): void {
    this.cache.clear();
  }

  private mergeWord(word: string): number[] {
    const symbols: number[] = [];
    const chars = Array.from(word);
    let pendingUnk = false;
    chars.forEach((ch, i) => {
      let s = ch;
      if (i > 0 && this.continuingSubwordPrefix) s = this.continuingSubwordPrefix + s;
      if (i === chars.length - 1) s += this.endOfWordSuffix;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        if (pendingUnk) symbols.push(this.unkId!);
        pendingUnk = false;
        symbols.push(id);
      } else if (this.unkToken !== null) {
        if (this.unkId === undefined) {
          throw new ValidationError({
            source: 'tokenizer',
            issues: [`unk token ${JSON.stringify(this.unkToken)} is not in the vocabulary`],
          });
        }
        if (pendingUnk && !this.fuseUnk) symbols.push(this.unkId);
        pendingUnk = true;
      }
    });
    if (pendingUnk) symbols.push(this.unkId!);
    return this.mergeAll(symbols);
  }

  private mergeAll(ids: number[]): number[] {
    const n = ids.length;
    if (n < 2) return ids;
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const removed = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const queue = new MergeQueue();
    for (let i = 0; i + 1 < n; i++) {
      const m = this.merges.get(ids[i]! * this.pairBase + ids[i + 1]!);
      if (m) queue.push({ rank: m.rank, pos: i, newId: m.newId });
    }
    while (queue.size > 0) {
      const top = queue.pop()!;
      const pos = top.pos;
      if (removed[pos]) continue;
      const right = next[pos]!;
      if (right < 0) continue;
      // Skip stale entries: the pair at `pos` must still merge into the same token.
      const current = this.merges.get(ids[pos]! * this.pairBase + ids[right]!);
      if (current === undefined || current.newId !== top.newId) continue;
      ids[pos] = top.newId;
      removed[right] = 1;
      const after = next[right]!;
      next[pos] = after;
      if (after >= 0) prev[after] = pos;
      const before = prev[pos]!;
      if (before >= 0) {
        const m = this.merges.get(ids[before]! * this.pairBase + ids[pos]!);
        if (m) queue.push({ rank: m.rank, pos: before, newId: m.newId });
      }
      if (after >= 0) {
        const m = this.merges.get(ids[pos]! * this.pairBase + ids[after]!);
        if (m) queue.push({ rank: m.rank, pos, newId: m.newId });
      }
    }
    const out: number[] = [];
    for (let i = 0; i < n; i++) if (!removed[i]) out.push(ids[i]!);
    return out;
  }
}
