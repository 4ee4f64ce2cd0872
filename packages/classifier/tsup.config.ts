import { defineConfig } from 'tsup';
import { diffmixTsup } from '../../tooling/tsup.preset.mjs';

export default defineConfig(diffmixTsup());
