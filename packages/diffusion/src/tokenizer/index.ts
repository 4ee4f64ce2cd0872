export type { AddedToken, AddedTokenFlags, AddedTokenInit } from './added-vocabulary.js';
export { BpeModel, type BpeModelOptions } from './bpe.js';
export { byteLevelAlphabet, toByteLevel } from './byte-level.js';
export {
  type BatchEncoding,
  CLIP_END_OF_WORD,
  CLIP_MAX_LENGTH,
  ClipTokenizer,
  type ClipTokenizerInit,
  type DecodeOptions,
  type EncodeOptions,
  type Encoding,
  type PaddingMode,
  type SpecialTokenInit,
  type SpecialTokenName,
} from './clip-tokenizer.js';
export {
  type ClipTokenizerFiles,
  type LoadClipTokenizerOptions,
  loadClipTokenizer,
  loadClipTokenizerFromFiles,
  parseMergesText,
  parseTokenizerJson,
  parseTokenizerSettings,
  parseVocabObject,
  type ParsedMerges,
  type TokenizerJsonContents,
  type TokenizerSettings,
} from './load.js';
export { normalizeClipText, preTokenizeClip } from './text.js';
