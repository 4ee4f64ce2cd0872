export { canonicalJson, sha256Hex } from './canonical.js';
export type { JsonValue } from './canonical.js';
