import { defineConfig } from 'tsup';
import { diffmixTsup } from '../../tooling/tsup.preset.mjs';

export default defineConfig(diffmixTsup({ entry: ['src/index.ts', 'src/bin.ts'], splitting: true }));
