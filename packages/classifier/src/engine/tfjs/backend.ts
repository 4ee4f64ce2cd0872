/**
 * Picks the TensorFlow.js backend at run time.
 *
 * Order for `auto`: `@tensorflow/tfjs-node-gpu` (libtensorflow with CUDA) → `@tensorflow/tfjs-node`
 * (libtensorflow on the CPU) → `@tensorflow/tfjs-backend-webgpu` on the `webgpu` package (Dawn) →
 * `@tensorflow/tfjs-backend-cpu` (plain JavaScript, always installed).
 *
 * Only tfjs-core and tfjs-backend-cpu are dependencies. The others are not even optional
 * dependencies: tfjs-node(-gpu) downloads libtensorflow in an install script (which fails without
 * network access and which npm 11 does not run unless approved), and `webgpu` ships Dawn for five
 * platforms (≈130 MB). Users install the one they want; it is found here by a dynamic import whose
 * specifier is a variable, so that neither TypeScript nor the bundler needs it at build time.
 *
 * A TensorFlow.js backend is process-global: every tfjs engine in one process runs on the backend
 * the last selection set.
 */
import { DiffmixError, hasErrorCode, InvalidArgumentError } from '@diffmix/core';
import * as tf from '@tensorflow/tfjs-core';

/** A backend the tfjs engine can run on. */
export type TfjsBackendName = 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'cpu';

export const TFJS_BACKENDS: readonly TfjsBackendName[] = ['tensorflow-gpu', 'tensorflow', 'webgpu', 'cpu'];

/** The requested backend was forced but cannot run here (package missing, no adapter, …). */
export class BackendUnavailableError extends DiffmixError {
  readonly code = 'BACKEND_UNAVAILABLE';
  readonly backend: string;

  constructor(backend: string, problem: string, options?: { cause?: unknown }) {
    super(`tfjs backend ${backend}: ${problem}`, options);
    this.backend = backend;
  }

  static override isInstance(value: unknown): value is BackendUnavailableError {
    return hasErrorCode(value, 'BACKEND_UNAVAILABLE');
  }
}

export interface SelectedBackend {
  name: TfjsBackendName;
  /** Human-readable: what runs, with versions. */
  description: string;
  /** Why this one: forced, or the first that initialised (and why the earlier ones did not). */
  reason: string;
}

/** What a user may ask for: a tfjs backend name, or a device (`cuda` → tensorflow-gpu). */
export interface BackendRequest {
  /** Forces exactly this backend. */
  backend?: TfjsBackendName | 'auto';
  /** `auto` (default), `cpu` (tensorflow, then the JS cpu backend), `webgpu`, `cuda`/`gpu` (tensorflow-gpu). */
  device?: string;
}

const INSTALL_HINT: Record<TfjsBackendName, string> = {
  'tensorflow-gpu': 'npm install @tensorflow/tfjs-node-gpu@4.22.0 (needs CUDA; its install script downloads libtensorflow)',
  tensorflow: 'npm install @tensorflow/tfjs-node@4.22.0 (its install script downloads libtensorflow)',
  webgpu: 'npm install @tensorflow/tfjs-backend-webgpu@4.22.0 webgpu@0.6.2 (and a GPU with Vulkan / Metal / D3D12)',
  cpu: 'npm install @tensorflow/tfjs-backend-cpu@4.22.0',
};

/** Dynamic import through a variable: the bundler leaves it alone and TypeScript needs no types. */
async function importOptional(specifier: string): Promise<Record<string, unknown>> {
  const name = specifier;
  return (await import(name)) as Record<string, unknown>;
}

function message(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return (m.split('\n')[0] ?? m).slice(0, 200);
}

/** Loads one backend's package and makes it the active tfjs backend; throws why not. */
async function activate(name: TfjsBackendName): Promise<string> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      const pkg = name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
      const mod = await importOptional(pkg);
      // Both packages register their backend under the name `tensorflow`.
      if (!(await tf.setBackend('tensorflow'))) throw new Error(`${pkg} loaded but the tensorflow backend did not initialise`);
      const version = (mod.version as Record<string, string> | undefined)?.['tfjs-node'] ?? tf.version_core;
      return `tensorflow (${pkg} ${version})`;
    }
    case 'webgpu': {
      // Node has no WebGPU: the `webgpu` package (Dawn) provides navigator.gpu and the GPU* globals.
      const g = globalThis as Record<string, unknown>;
      if (!(g.navigator as { gpu?: unknown } | undefined)?.gpu) {
        const dawn = await importOptional('webgpu');
        const create = dawn.create as (flags: string[]) => unknown;
        Object.assign(globalThis, dawn.globals as object);
        // Node ≥ 21 defines a read-only `navigator`; define the property rather than assign it.
        const nav = { ...((g.navigator as object | undefined) ?? {}), gpu: create([]) };
        Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
      }
      const gpu = (g.navigator as { gpu: { requestAdapter(): Promise<unknown> } }).gpu;
      // Check for an adapter first: tfjs would otherwise log an error and fall back silently.
      const adapter = await gpu.requestAdapter();
      if (!adapter) throw new Error('navigator.gpu.requestAdapter() found no GPU adapter');
      await importOptional('@tensorflow/tfjs-backend-webgpu');
      if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not initialise');
      return `tfjs-backend-webgpu ${tf.version_core} (Dawn)`;
    }
    case 'cpu': {
      await import('@tensorflow/tfjs-backend-cpu');
      if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend did not initialise');
      return `tfjs-backend-cpu ${tf.version_core} (JavaScript)`;
    }
  }
}

/** Backends to try, in order, for a request; `forced` when the user named one. */
export function candidates(request: BackendRequest = {}): { order: TfjsBackendName[]; forced: boolean; label: string } {
  const backend = request.backend ?? 'auto';
  if (backend !== 'auto') {
    if (!TFJS_BACKENDS.includes(backend))
      throw new InvalidArgumentError(
        'backend',
        `unknown tfjs backend ${JSON.stringify(backend)} (one of ${TFJS_BACKENDS.join(', ')}, auto)`,
      );
    return { order: [backend], forced: true, label: `backend ${backend}` };
  }
  const device = (request.device ?? 'auto').toLowerCase();
  switch (device) {
    case 'auto':
      return { order: [...TFJS_BACKENDS], forced: false, label: 'auto' };
    case 'cpu':
      return { order: ['tensorflow', 'cpu'], forced: true, label: 'device cpu' };
    case 'webgpu':
      return { order: ['webgpu'], forced: true, label: 'device webgpu' };
    case 'cuda':
    case 'gpu':
      return { order: ['tensorflow-gpu'], forced: true, label: `device ${device}` };
    default:
      throw new InvalidArgumentError('device', `unknown device ${JSON.stringify(request.device)} (auto, cpu, webgpu, cuda)`);
  }
}

/**
 * Activates the first backend of the request that initialises. Throws
 * {@link BackendUnavailableError} listing why each candidate failed when none does.
 */
export async function selectBackend(request: BackendRequest = {}): Promise<SelectedBackend> {
  const { order, forced, label } = candidates(request);
  const failures: string[] = [];
  for (const name of order) {
    try {
      const description = await activate(name);
      // Prod mode skips tfjs's debug checks and its "install tfjs-node" banner on the cpu backend.
      tf.enableProdMode();
      const skipped = failures.length > 0 ? ` (unavailable: ${failures.join('; ')})` : '';
      const reason = forced ? `forced by ${label}${skipped}` : `first backend that initialised${skipped}`;
      return { name, description, reason };
    } catch (err) {
      failures.push(`${name}: ${message(err)} — ${INSTALL_HINT[name]}`);
    }
  }
  throw new BackendUnavailableError(order.join(' / '), `none could be used for ${label}: ${failures.join('; ')}`);
}
