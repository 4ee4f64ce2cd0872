import { diffmixVitest } from '../../tooling/vitest.preset.mjs';

export default diffmixVitest();
