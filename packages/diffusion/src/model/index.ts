export { type SessionIO, type TensorSpec, describeSession } from './io.js';
export { TextEncoder, Unet, VaeDecoder, VaeEncoder } from './parts.js';
export { DEVICES, type Device, type ModelSource, type OpenedSession, type SessionConfig, availableProviders, openSession } from './providers.js';
export { type LoadStableDiffusionOptions, type PatchedModel, type SchedulerName, StableDiffusion } from './stable-diffusion.js';
