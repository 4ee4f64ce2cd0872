export { type SessionIO, type TensorSpec, describeSession } from './io.js';
export { SdTextEncoder, Unet, VaeDecoder, VaeEncoder } from './parts.js';
export {
  DEVICES,
  type Device,
  type DeviceProbe,
  type ModelSource,
  type OpenedSession,
  type SessionConfig,
  availableProviders,
  openSession,
  ort,
  probeDevices,
} from './providers.js';
export { type LoadStableDiffusionOptions, type PatchedModel, type SchedulerName, StableDiffusion } from './stable-diffusion.js';
