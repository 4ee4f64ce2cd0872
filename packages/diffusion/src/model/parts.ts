/**
 * The four networks of Stable Diffusion 1.x as small adapters over ONNX Runtime sessions. Each
 * reads its session's inputs and outputs (see io.ts) so that exports from optimum, the diffusers
 * conversion script or torch.onnx all run.
 */
import { ModelFormatError } from '@diffmix/core';
import { type SessionIO, type TensorSpec, describeSession, makeTensor, tensorToFloat32 } from './io.js';
import type { ort } from './providers.js';

function find(io: TensorSpec[], names: string[], file: string, what: string): TensorSpec {
  for (const n of names) {
    const spec = io.find((s) => s.name === n);
    if (spec) return spec;
  }
  throw new ModelFormatError(file, `${what}: none of ${names.join(' / ')} among [${io.map((s) => s.name).join(', ')}]`);
}

function staticDim(spec: TensorSpec, axis: number): number | undefined {
  const d = spec.shape[axis];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

export class SdTextEncoder {
  readonly io: SessionIO;
  private readonly ids: TensorSpec;
  private readonly hidden: TensorSpec;
  /** Width of the hidden states (cross-attention context), when the graph states it. */
  readonly hiddenSize: number | undefined;

  constructor(
    readonly session: ort.InferenceSession,
    readonly file: string,
  ) {
    this.io = describeSession(session);
    this.ids = find(this.io.inputs, ['input_ids'], file, 'text encoder input');
    this.hidden = find(this.io.outputs, ['last_hidden_state', 'text_embeds', 'hidden_states'], file, 'text encoder output');
    this.hiddenSize = staticDim(this.hidden, 2);
  }

  /** `last_hidden_state` [B, 77, H] for B rows of token ids. */
  async encode(idRows: number[][]): Promise<{ data: Float32Array; dims: number[] }> {
    const seq = idRows[0]?.length ?? 0;
    const flat = idRows.flat();
    const type = this.ids.type === 'int64' ? 'int64' : 'int32';
    const out = await this.session.run({ [this.ids.name]: makeTensor(type, flat, [idRows.length, seq]) }, [this.hidden.name]);
    const t = out[this.hidden.name] as ort.Tensor;
    return { data: tensorToFloat32(t), dims: [...t.dims] };
  }
}

export class Unet {
  readonly io: SessionIO;
  private readonly sample: TensorSpec;
  private readonly timestep: TensorSpec;
  private readonly context: TensorSpec;
  private readonly output: TensorSpec;
  readonly inChannels: number | undefined;
  readonly crossAttentionDim: number | undefined;

  constructor(
    readonly session: ort.InferenceSession,
    readonly file: string,
  ) {
    this.io = describeSession(session);
    this.sample = find(this.io.inputs, ['sample'], file, 'UNet latent input');
    this.timestep = find(this.io.inputs, ['timestep', 'timesteps', 't'], file, 'UNet timestep input');
    this.context = find(this.io.inputs, ['encoder_hidden_states'], file, 'UNet text-context input');
    this.output = find(this.io.outputs, ['out_sample', 'sample', 'noise_pred'], file, 'UNet output');
    this.inChannels = staticDim(this.sample, 1);
    this.crossAttentionDim = staticDim(this.context, 2);
  }

  /**
   * One UNet call. `timestep` is the same for every row: fed as `[B]` or a scalar, float or int64,
   * whichever the graph declares.
   */
  async predict(sample: Float32Array, sampleDims: number[], timestep: number, context: Float32Array, contextDims: number[]): Promise<Float32Array> {
    const batch = sampleDims[0] as number;
    const tScalar = this.timestep.shape.length === 0;
    const tType = this.timestep.type === 'int64' ? 'int64' : this.timestep.type === 'float16' ? 'float16' : 'float32';
    const floatType = this.sample.type === 'float16' ? 'float16' : 'float32';
    const feeds: Record<string, ort.Tensor> = {
      [this.sample.name]: makeTensor(floatType, sample, sampleDims),
      [this.timestep.name]: tScalar ? makeTensor(tType, [timestep], []) : makeTensor(tType, new Array(batch).fill(timestep), [batch]),
      [this.context.name]: makeTensor(this.context.type === 'float16' ? 'float16' : 'float32', context, contextDims),
    };
    const out = await this.session.run(feeds, [this.output.name]);
    return tensorToFloat32(out[this.output.name] as ort.Tensor);
  }
}

export class VaeEncoder {
  readonly io: SessionIO;
  private readonly input: TensorSpec;
  private readonly output: TensorSpec;
  /** `parameters`: mean ++ logvar on channels (optimum ≥ 1.23); `sample`: the graph samples itself. */
  readonly outputKind: 'parameters' | 'sample';

  constructor(
    readonly session: ort.InferenceSession,
    readonly file: string,
  ) {
    this.io = describeSession(session);
    this.input = find(this.io.inputs, ['sample', 'images', 'pixel_values'], file, 'VAE encoder input');
    this.output = find(this.io.outputs, ['latent_parameters', 'latent_sample', 'latent_dist'], file, 'VAE encoder output');
    this.outputKind = this.output.name === 'latent_sample' ? 'sample' : 'parameters';
  }

  async encode(pixels: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }> {
    const out = await this.session.run({ [this.input.name]: makeTensor(this.input.type === 'float16' ? 'float16' : 'float32', pixels, dims) }, [
      this.output.name,
    ]);
    const t = out[this.output.name] as ort.Tensor;
    return { data: tensorToFloat32(t), dims: [...t.dims] };
  }
}

export class VaeDecoder {
  readonly io: SessionIO;
  private readonly input: TensorSpec;
  private readonly output: TensorSpec;
  readonly latentChannels: number | undefined;

  constructor(
    readonly session: ort.InferenceSession,
    readonly file: string,
  ) {
    this.io = describeSession(session);
    this.input = find(this.io.inputs, ['latent_sample', 'latents', 'z'], file, 'VAE decoder input');
    this.output = find(this.io.outputs, ['sample', 'images'], file, 'VAE decoder output');
    this.latentChannels = staticDim(this.input, 1);
  }

  /** Decodes latents already divided by the scaling factor; returns pixels in about [-1, 1]. */
  async decode(latents: Float32Array, dims: number[]): Promise<{ data: Float32Array; dims: number[] }> {
    const out = await this.session.run({ [this.input.name]: makeTensor(this.input.type === 'float16' ? 'float16' : 'float32', latents, dims) }, [
      this.output.name,
    ]);
    const t = out[this.output.name] as ort.Tensor;
    return { data: tensorToFloat32(t), dims: [...t.dims] };
  }
}
