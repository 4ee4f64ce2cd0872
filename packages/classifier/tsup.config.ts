import { defineConfig } from 'tsup';
import { diffmixTsup } from '../../tooling/tsup.preset.mjs';

// splitting: the tfjs engine is imported lazily (`engine: 'tfjs'`), so it goes to its own chunk and
// @tensorflow/* load only when asked for.
export default defineConfig(diffmixTsup({ splitting: true }));
