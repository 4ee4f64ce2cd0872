/**
 * A second UNet session whose graph also outputs the cross-attention probabilities, and a view of a
 * loaded {@link StableDiffusion} that runs the unchanged pipeline (img2img / txt2img) through it.
 *
 * How it stays out of the pipeline's way: the instrumented session is wrapped so that it looks like
 * the plain one to {@link Unet} (same inputs, `out_sample` as the only listed output). While a
 * listener is set ({@link AttentionCapture.record}), every `run` additionally fetches the attention
 * outputs, hands them to the listener and returns only what the caller asked for. The graph is the
 * original one plus extra graph outputs, so `out_sample` (and every image) is bit-identical — the
 * tests compare the whole golden pipeline with and without capture.
 *
 * The view is `Object.create(model)` with its own `unet`: everything else (tokenizer, text encoder,
 * VAE, scheduler) is the loaded model's. Release the capture, not the view.
 */
import { InvalidArgumentError } from '@diffmix/core';
import { loadOnnxModel } from '@diffmix/onnx';
import { tensorToFloat32 } from '../model/io.js';
import { Unet } from '../model/parts.js';
import { type SessionConfig, openSession, type ort } from '../model/providers.js';
import type { StableDiffusion } from '../model/stable-diffusion.js';
import { type LoraSpec, type MergeLoraReport, type WeightedLora, loadLora, mergeLoras } from '../weights/index.js';
import type { AttentionTensor } from './aggregate.js';
import { type CrossAttentionLayer, type FindCrossAttentionOptions, exposeCrossAttention } from './graph.js';

/** The attention of one UNet call. */
export interface AttentionCall {
  /** UNet batch rows (2·jobs with classifier-free guidance). */
  batch: number;
  /** Probabilities per layer module, in graph order. */
  layers: Map<string, AttentionTensor>;
}

export interface AttentionCaptureOptions extends SessionConfig, FindCrossAttentionOptions {
  /**
   * The LoRAs the model was loaded with (the loaded model does not keep its merged UNet bytes, so
   * they are merged again into the instrumented copy): same files, same scales.
   */
  lora?: LoraSpec[];
  allowUnmatchedLoraKeys?: boolean;
}

async function resolveLoras(specs: readonly LoraSpec[]): Promise<WeightedLora[]> {
  const out: WeightedLora[] = [];
  for (const spec of specs) {
    if (typeof spec === 'string') out.push({ lora: await loadLora(spec), scale: 1 });
    else if ('modules' in spec) out.push({ lora: spec, scale: 1 });
    else out.push({ lora: typeof spec.lora === 'string' ? await loadLora(spec.lora) : spec.lora, scale: spec.scale ?? 1 });
  }
  return out;
}

type RunArgs = Parameters<ort.InferenceSession['run']>;

export class AttentionCapture {
  private listener: ((call: AttentionCall) => void) | undefined;
  private released = false;

  private constructor(
    /** The loaded model the view shares everything but the UNet with. */
    readonly base: StableDiffusion,
    /** Cross-attention layers exposed by the instrumented graph, in graph order. */
    readonly layers: readonly CrossAttentionLayer[],
    private readonly session: ort.InferenceSession,
    /** The instrumented UNet adapter (the session as the pipeline sees it). */
    readonly unet: Unet,
    /** `base` with this UNet: pass it to img2img / txt2img. */
    readonly model: StableDiffusion,
    /** Weight buffers ORT may point into. */
    private readonly keepAlive: unknown[],
  ) {}

  /**
   * Opens the instrumented UNet for a loaded model: reads `unet/model.onnx` again, merges the same
   * LoRAs, exposes the attn2 probabilities, opens a session with the given session settings (device
   * default: the model's).
   */
  static async open(base: StableDiffusion, options: AttentionCaptureOptions = {}): Promise<AttentionCapture> {
    const file = base.unet.file;
    const graph = await loadOnnxModel(file);
    const report = options.lora?.length
      ? mergeLoras(graph, await resolveLoras(options.lora), { allowUnmatched: options.allowUnmatchedLoraKeys ?? false })
      : undefined;
    // The instrumented UNet must carry the same weights as the model's, or the images would differ.
    const merged = (r: MergeLoraReport | undefined) =>
      (r?.merged ?? [])
        .map((m) => `${m.module}·${m.scale}`)
        .sort()
        .join('\n');
    if (merged(report) !== merged(base.adapters.lora)) {
      throw new InvalidArgumentError(
        'lora',
        `the instrumented UNet would not match the loaded one: the model merged ${base.adapters.lora?.merged.length ?? 0} LoRA modules, these options ${report?.merged.length ?? 0}; pass the LoRAs the model was loaded with`,
      );
    }
    const layers = exposeCrossAttention(graph, options);
    const serialized = graph.serialize();
    const config: SessionConfig = {
      device: options.device ?? (base.device as SessionConfig['device']),
      ...(options.intraOpNumThreads !== undefined ? { intraOpNumThreads: options.intraOpNumThreads } : {}),
      ...(options.interOpNumThreads !== undefined ? { interOpNumThreads: options.interOpNumThreads } : {}),
      ...(options.graphOptimizationLevel ? { graphOptimizationLevel: options.graphOptimizationLevel } : {}),
      ...(options.freeDimensionOverrides ? { freeDimensionOverrides: options.freeDimensionOverrides } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
      ...(serialized.externalData.length ? { externalData: serialized.externalData } : {}),
    };
    const { session } = await openSession(serialized.model, config);
    const holder: { capture?: AttentionCapture } = {};
    const wrapped = wrapSession(session, layers, () => holder.capture?.listener);
    const unet = new Unet(wrapped, file);
    const view = Object.create(base) as StableDiffusion;
    Object.defineProperty(view, 'unet', { value: unet, enumerable: true });
    const capture = new AttentionCapture(base, layers, session, unet, view, [serialized]);
    holder.capture = capture;
    return capture;
  }

  /** Whether a listener is set (capture on). */
  get recording(): boolean {
    return this.listener !== undefined;
  }

  /**
   * Runs `fn` (e.g. `img2img(capture.model, …)`) with every UNet call's attention sent to
   * `listener`. One recording at a time.
   */
  async record<T>(listener: (call: AttentionCall) => void, fn: () => Promise<T>): Promise<T> {
    if (this.released) throw new InvalidArgumentError('capture', 'the attention capture was released');
    if (this.listener) throw new InvalidArgumentError('capture', 'a recording is already running on this capture');
    this.listener = listener;
    try {
      return await fn();
    } finally {
      this.listener = undefined;
    }
  }

  /** Releases the instrumented session (the base model stays open). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
    this.keepAlive.length = 0;
  }
}

/** The session as the plain UNet looks, fetching the attention outputs too while a listener is set. */
function wrapSession(
  inner: ort.InferenceSession,
  layers: readonly CrossAttentionLayer[],
  listener: () => ((call: AttentionCall) => void) | undefined,
): ort.InferenceSession {
  const extra = new Set(layers.map((l) => l.output));
  const names = layers.map((l) => l.output);
  const sampleName = inner.inputNames.includes('sample') ? 'sample' : inner.inputNames[0];
  const run = async (...args: RunArgs) => {
    const [feeds, second, third] = args;
    const sink = listener();
    let out: Awaited<ReturnType<ort.InferenceSession['run']>>;
    if (Array.isArray(second)) {
      const fetches = sink
        ? [...(second as string[]), ...names.filter((n) => !(second as string[]).includes(n))]
        : (second as string[]);
      out = await (third === undefined
        ? inner.run(feeds, fetches)
        : inner.run(feeds, fetches, third as ort.InferenceSession.RunOptions));
    } else {
      out = await inner.run(...args);
    }
    if (sink && names.every((n) => out[n] !== undefined)) {
      const sample = sampleName === undefined ? undefined : (feeds as Record<string, ort.Tensor>)[sampleName];
      const batch = sample?.dims[0] ?? 1;
      const captured = new Map<string, AttentionTensor>();
      for (const l of layers) {
        const t = out[l.output] as ort.Tensor;
        captured.set(l.module, { data: tensorToFloat32(t), dims: [...t.dims] });
      }
      sink({ batch, layers: captured });
    }
    const requested = Array.isArray(second) ? new Set(second as string[]) : undefined;
    if (!Object.keys(out).some((n) => extra.has(n) && !requested?.has(n))) return out;
    // Only what the caller asked for (the plain session's answer).
    return Object.fromEntries(Object.entries(out).filter(([n]) => !extra.has(n) || requested?.has(n))) as typeof out;
  };
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === 'run') return run;
      if (prop === 'outputNames') return target.outputNames.filter((n) => !extra.has(n));
      const value = Reflect.get(target, prop, target);
      if (prop === 'outputMetadata' && Array.isArray(value))
        return value.filter((m: { name?: string }) => !extra.has(m.name ?? ''));
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
