export { ManifestLineSchema, parseManifestLine, serializeManifestLine } from './manifest-line.js';
export type { ManifestLine } from './manifest-line.js';
