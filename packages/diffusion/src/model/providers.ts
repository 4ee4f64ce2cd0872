/**
 * ONNX Runtime sessions with a choice of execution provider.
 *
 * `cpu` is always present in onnxruntime-node; `webgpu` runs through Dawn (Vulkan on Linux) inside
 * the npm binary; `cuda` exists only where the CUDA provider was installed (onnxruntime-node's
 * install script downloads it on a normal machine). `auto` tries cuda → webgpu → cpu and reports
 * which one it got.
 */
import { InvalidArgumentError, type Logger, silentLogger } from '@diffmix/core';
import { onnx } from '@diffmix/onnx';
import * as ort from 'onnxruntime-node';

export type Device = 'cpu' | 'webgpu' | 'cuda' | 'auto';
export const DEVICES: readonly Device[] = ['cpu', 'webgpu', 'cuda', 'auto'];

export interface SessionConfig {
  device?: Device;
  /** Threads inside one operator (ORT's intra-op pool); default: ORT's choice (all cores). */
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Fix symbolic input dimensions (e.g. `{ batch: 2, height: 64, width: 64 }`): static shapes let
   * the WebGPU provider plan once (measured: nearly halves the SD UNet time on an H100).
   */
  freeDimensionOverrides?: Record<string, number>;
  logger?: Logger;
  /** Weight files a model given as bytes refers to (`location` → bytes), handed to ORT from memory. */
  externalData?: Array<{ path: string; data: Uint8Array }>;
}

export type ModelSource = string | Uint8Array;

export interface OpenedSession {
  session: ort.InferenceSession;
  device: Exclude<Device, 'auto'>;
}

function sessionOptions(config: SessionConfig, provider: Exclude<Device, 'auto'>): ort.InferenceSession.SessionOptions {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: config.graphOptimizationLevel ?? 'all',
  };
  if (config.intraOpNumThreads !== undefined) options.intraOpNumThreads = config.intraOpNumThreads;
  if (config.interOpNumThreads !== undefined) options.interOpNumThreads = config.interOpNumThreads;
  if (config.freeDimensionOverrides) options.freeDimensionOverrides = config.freeDimensionOverrides;
  if (config.externalData) (options as { externalData?: unknown }).externalData = config.externalData;
  return options;
}

async function create(source: ModelSource, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  return typeof source === 'string' ? ort.InferenceSession.create(source, options) : ort.InferenceSession.create(source, options);
}

/** Opens a session on the requested device; `auto` falls back in order and logs what it chose. */
export async function openSession(source: ModelSource, config: SessionConfig = {}): Promise<OpenedSession> {
  const device = config.device ?? 'cpu';
  if (!DEVICES.includes(device)) throw new InvalidArgumentError('device', `must be one of ${DEVICES.join(', ')}, got ${device}`);
  const log = config.logger ?? silentLogger;
  if (device !== 'auto') return { session: await create(source, sessionOptions(config, device)), device };
  const failures: string[] = [];
  for (const candidate of ['cuda', 'webgpu', 'cpu'] as const) {
    try {
      const session = await create(source, sessionOptions(config, candidate));
      log.info(`device auto → ${candidate}`, failures.length ? { skipped: failures } : undefined);
      return { session, device: candidate };
    } catch (err) {
      failures.push(`${candidate}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  throw new InvalidArgumentError('device', `no execution provider could open the model (${failures.join('; ')})`);
}

/** Providers this onnxruntime-node build reports (not a guarantee that a device is present). */
export function availableProviders(): string[] {
  const list = (ort as unknown as { listSupportedBackends?: () => Array<{ name: string }> }).listSupportedBackends?.();
  return list ? list.map((b) => b.name) : ['cpu'];
}

export { ort };

export interface DeviceProbe {
  device: Exclude<Device, 'auto'>;
  usable: boolean;
  /** Why not, when not usable (the runtime's first error line). */
  reason?: string;
}

/** A one-node model (y = x + x) used to check that a provider really runs, not just that it is listed. */
function probeModel(): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'probe',
      node: [{ opType: 'Add', input: ['x', 'x'], output: ['y'], name: 'add' }],
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/**
 * Opens and runs a tiny model on each device to tell which ones work here (for `diffmix info`).
 * A listed provider can still fail (no GPU, no driver); this reports what actually ran.
 */
export async function probeDevices(
  devices: ReadonlyArray<Exclude<Device, 'auto'>> = ['cpu', 'webgpu', 'cuda'],
): Promise<DeviceProbe[]> {
  const bytes = probeModel();
  const out: DeviceProbe[] = [];
  // The provider bridge logs through the process-wide default logger: quiet it while probing.
  const previous = ort.env.logLevel;
  ort.env.logLevel = 'fatal';
  try {
    for (const device of devices) {
      try {
        // logSeverityLevel 4 (fatal only): a missing provider is an expected answer, not an error to print
        const session = await ort.InferenceSession.create(bytes, { executionProviders: [device], logSeverityLevel: 4 });
        const r = await session.run({ x: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [4]) });
        const y = Array.from((r.y as ort.Tensor).data as Float32Array);
        await session.release();
        out.push(y.join(',') === '2,4,6,8' ? { device, usable: true } : { device, usable: false, reason: `wrong result ${y}` });
      } catch (err) {
        out.push({ device, usable: false, reason: (err as Error).message.split('\n')[0] ?? String(err) });
      }
    }
  } finally {
    // onnxruntime-common leaves logLevel undefined until set; its effective default is 'warning'.
    ort.env.logLevel = previous ?? 'warning';
  }
  return out;
}
