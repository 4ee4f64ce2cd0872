// ModelFormatError lives in @diffmix/core (every package that reads models throws it); re-exported
// here so `import { ModelFormatError } from '@diffmix/diffusion'` works too.
export { ModelFormatError } from '@diffmix/core';
