export { resolveInside, safePathComponent } from './safe-path.js';
