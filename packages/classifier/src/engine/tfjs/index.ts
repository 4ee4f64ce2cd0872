/**
 * The TensorFlow.js classifier engine (see README § tfjs engine): `createTfjsEngine` picks the
 * backend at run time (tfjs-node-gpu → tfjs-node → webgpu → cpu) and implements `ClassifierEngine`.
 */
export {
  type BackendRequest,
  BackendUnavailableError,
  candidates as tfjsBackendCandidates,
  type SelectedBackend,
  selectBackend as selectTfjsBackend,
  TFJS_BACKENDS,
  type TfjsBackendName,
} from './backend.js';
export {
  createTfjsEngine,
  initWeights as initTfjsWeights,
  resolveWeights as resolveTfjsWeights,
  type TfjsEngineOptions,
} from './engine.js';
export {
  type ModelDefOptions as TfjsModelDefOptions,
  modelDef as tfjsModelDef,
  VIT_B_16,
  type VitConfig,
} from './models/index.js';
export { SLOT_NAMES as TFJS_OPTIMIZER_SLOTS } from './optim.js';
