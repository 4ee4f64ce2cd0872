/**
 * A Stable Diffusion 1.x model in the diffusers/optimum ONNX folder layout:
 *
 *   model_index.json            (optional)
 *   text_encoder/model.onnx     (+ model.onnx_data / weights.pb when the weights are external)
 *   unet/model.onnx             (+ external weights; config.json optional)
 *   vae_encoder/model.onnx      (only needed for img2img)
 *   vae_decoder/model.onnx      (config.json with scaling_factor optional; 0.18215 by default)
 *   tokenizer/vocab.json, merges.txt (or tokenizer.json)
 *   scheduler/scheduler_config.json
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, type Logger, ModelFormatError, NotFoundError, silentLogger } from '@diffmix/core';
import type { DiffusionScheduler } from '../schedulers/index.js';
import { DDIMScheduler, DPMSolverMultistepScheduler, readSchedulerConfig } from '../schedulers/index.js';
import { type ClipTokenizer, loadClipTokenizer } from '../tokenizer/index.js';
import {
  applyTextualInversionToOnnx,
  type LoraSpec,
  loadTextualInversion,
  type MergeLoraReport,
  mergeLorasIntoOnnx,
  type TextualInversionEmbedding,
  type TextualInversionResult,
  type TextualInversionSpec,
} from '../weights/index.js';
import { SdTextEncoder, Unet, VaeDecoder, VaeEncoder } from './parts.js';
import { type ModelSource, openSession, type SessionConfig } from './providers.js';

export type SchedulerName = 'dpm-solver++' | 'ddim';

/** A model part as ONNX bytes plus the external weight files it refers to (after LoRA / TI patching). */
export interface PatchedModel {
  model: Uint8Array;
  /** External data by the `location` the model refers to (e.g. `model.onnx_data`). */
  externalData?: Array<{ path: string; data: Uint8Array }>;
}

export interface LoadStableDiffusionOptions extends SessionConfig {
  /** Which scheduler the pipelines use; built from `scheduler_config.json` as `from_config` does. */
  scheduler?: SchedulerName;
  /** Skip the VAE encoder (txt2img only). */
  skipVaeEncoder?: boolean;
  /**
   * LoRA files (diffusers/peft, the official Diff-Mix attention-processor layout, kohya) merged into
   * the UNet before its session opens, each with a scale (default 1).
   */
  lora?: LoraSpec[];
  /** Merge the LoRA keys that match and report the rest instead of failing. */
  allowUnmatchedLoraKeys?: boolean;
  /**
   * Textual-inversion embeddings (safetensors, or the official `learned_embeds*.bin`): their rows are
   * appended to (or overwrite) the text encoder's token-embedding table and the tokens are added to
   * the tokenizer.
   */
  textualInversion?: TextualInversionSpec[];
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function readJsonIfExists(file: string): Promise<Record<string, unknown> | undefined> {
  if (!(await exists(file))) return undefined;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new ModelFormatError(file, `not valid JSON (${(cause as Error).message})`, { cause });
  }
}

export class StableDiffusion {
  private constructor(
    readonly root: string,
    readonly tokenizer: ClipTokenizer,
    readonly textEncoder: SdTextEncoder,
    readonly unet: Unet,
    readonly vaeEncoder: VaeEncoder | undefined,
    readonly vaeDecoder: VaeDecoder,
    readonly schedulerConfig: Record<string, unknown>,
    readonly schedulerName: SchedulerName,
    /** VAE latent scaling factor (config `scaling_factor`, 0.18215 for SD 1.x). */
    readonly scalingFactor: number,
    /** Spatial downsampling of the VAE (2^(len(block_out_channels) − 1) = 8). */
    readonly vaeScaleFactor: number,
    /** Native image size in pixels (`unet.sample_size · vaeScaleFactor`, 512 for SD 1.5). */
    readonly defaultSize: number,
    readonly device: string,
    /** What the adapters changed (token ids, merged LoRA modules). */
    readonly adapters: { textualInversion?: TextualInversionResult; lora?: MergeLoraReport },
    /** Patched model bytes and external data ORT may still reference. */
    private readonly keepAlive: PatchedModel[],
    private readonly log: Logger,
  ) {}

  /** Placeholder-looking tokens already reported, so a long run warns once per token. */
  private readonly warnedTokens = new Set<string>();

  static async load(dir: string, options: LoadStableDiffusionOptions = {}): Promise<StableDiffusion> {
    const root = path.resolve(dir);
    if (!(await exists(root))) throw new NotFoundError(root, 'Stable Diffusion folder');
    const part = (name: string) => path.join(root, name, 'model.onnx');
    const required = ['text_encoder', 'unet', 'vae_decoder', ...(options.skipVaeEncoder ? [] : ['vae_encoder'])];
    const missing: string[] = [];
    for (const p of required) if (!(await exists(part(p)))) missing.push(`${p}/model.onnx`);
    if (!(await exists(path.join(root, 'tokenizer')))) missing.push('tokenizer/');
    if (!(await exists(path.join(root, 'scheduler', 'scheduler_config.json')))) missing.push('scheduler/scheduler_config.json');
    if (missing.length) {
      throw new ModelFormatError(root, `not a complete Stable Diffusion ONNX folder; missing ${missing.join(', ')}`);
    }

    const tokenizer = await loadClipTokenizer(path.join(root, 'tokenizer'));
    const schedulerConfig = await readSchedulerConfig(path.join(root, 'scheduler'));
    const schedulerName = options.scheduler ?? 'dpm-solver++';
    if (schedulerName !== 'dpm-solver++' && schedulerName !== 'ddim') {
      throw new InvalidArgumentError('scheduler', `must be 'dpm-solver++' or 'ddim', got ${String(schedulerName)}`);
    }
    const vaeConfig =
      (await readJsonIfExists(path.join(root, 'vae_decoder', 'config.json'))) ??
      (await readJsonIfExists(path.join(root, 'vae_encoder', 'config.json'))) ??
      {};
    const unetConfig = (await readJsonIfExists(path.join(root, 'unet', 'config.json'))) ?? {};
    const scalingFactor = typeof vaeConfig.scaling_factor === 'number' ? vaeConfig.scaling_factor : 0.18215;
    const blocks = Array.isArray(vaeConfig.block_out_channels) ? vaeConfig.block_out_channels.length : 4;
    const vaeScaleFactor = 2 ** (blocks - 1);
    const sampleSize = typeof unetConfig.sample_size === 'number' ? unetConfig.sample_size : 64;

    // Textual inversion: new rows in the text encoder, new tokens in the tokenizer (same ids).
    let ti: TextualInversionResult | undefined;
    let patchText: ((file: string) => Promise<PatchedModel>) | undefined;
    if (options.textualInversion?.length) {
      const embeddings: TextualInversionEmbedding[] = [];
      for (const spec of options.textualInversion)
        embeddings.push(...(typeof spec === 'string' ? await loadTextualInversion(spec) : spec));
      const vocab = new Map<string, number>();
      for (const e of embeddings) {
        const id = tokenizer.tokenToId(e.token);
        if (id !== undefined) vocab.set(e.token, id);
      }
      patchText = async (file) => {
        const patched = await applyTextualInversionToOnnx(file, [embeddings], { vocab });
        ti = patched.result;
        return patched;
      };
    }
    let loraReport: MergeLoraReport | undefined;
    const patchUnet = options.lora?.length
      ? async (file: string) => {
          const patched = await mergeLorasIntoOnnx(file, options.lora ?? [], {
            allowUnmatched: options.allowUnmatchedLoraKeys ?? false,
          });
          loraReport = patched.report;
          return patched;
        }
      : undefined;
    const keepAlive: PatchedModel[] = [];

    const open = async (
      name: 'text_encoder' | 'unet' | 'vae_encoder' | 'vae_decoder',
      patch?: (file: string) => Promise<PatchedModel>,
    ) => {
      const file = part(name);
      let source: ModelSource = file;
      let externalData: PatchedModel['externalData'];
      if (patch) {
        const patched = await patch(file);
        keepAlive.push(patched); // ORT may keep pointing into external-data buffers: hold them
        source = patched.model;
        externalData = patched.externalData;
      }
      try {
        return await openSession(source, { ...options, ...(externalData ? { externalData } : {}) });
      } catch (cause) {
        throw new ModelFormatError(file, `ONNX Runtime cannot load it: ${(cause as Error).message.split('\n')[0]}`, { cause });
      }
    };

    const te = await open('text_encoder', patchText);
    const un = await open('unet', patchUnet);
    const tiResult = ti as TextualInversionResult | undefined;
    if (tiResult) {
      const ids = tokenizer.addTokens(tiResult.added);
      tiResult.added.forEach((token, i) => {
        if (ids[i] !== tiResult.tokens.get(token)) {
          throw new ModelFormatError(
            path.join(root, 'tokenizer'),
            `token ${token} got id ${ids[i]} in the tokenizer but row ${tiResult.tokens.get(token)} in the text encoder: the tokenizer and the embedding table disagree on the vocabulary size`,
          );
        }
      });
    }
    const dec = await open('vae_decoder');
    const enc = options.skipVaeEncoder ? undefined : await open('vae_encoder');

    const textEncoder = new SdTextEncoder(te.session, part('text_encoder'));
    const unet = new Unet(un.session, part('unet'));
    const vaeDecoder = new VaeDecoder(dec.session, part('vae_decoder'));
    const vaeEncoder = enc ? new VaeEncoder(enc.session, part('vae_encoder')) : undefined;

    // Shapes that must agree between parts: catch a mismatched mix of models before sampling.
    if (
      textEncoder.hiddenSize !== undefined &&
      unet.crossAttentionDim !== undefined &&
      textEncoder.hiddenSize !== unet.crossAttentionDim
    ) {
      throw new ModelFormatError(
        part('unet'),
        `cross-attention width ${unet.crossAttentionDim} does not match the text encoder's hidden size ${textEncoder.hiddenSize} (${part('text_encoder')})`,
      );
    }
    if (
      vaeDecoder.latentChannels !== undefined &&
      unet.inChannels !== undefined &&
      vaeDecoder.latentChannels !== unet.inChannels
    ) {
      throw new ModelFormatError(
        part('unet'),
        `UNet takes ${unet.inChannels} latent channels but the VAE decoder takes ${vaeDecoder.latentChannels} (${part('vae_decoder')})`,
      );
    }

    return new StableDiffusion(
      root,
      tokenizer,
      textEncoder,
      unet,
      vaeEncoder,
      vaeDecoder,
      schedulerConfig,
      schedulerName,
      scalingFactor,
      vaeScaleFactor,
      sampleSize * vaeScaleFactor,
      te.device,
      { textualInversion: tiResult, lora: loraReport as MergeLoraReport | undefined },
      keepAlive,
      options.logger ?? silentLogger,
    );
  }

  /** A fresh scheduler (schedulers keep per-run state, so every run gets its own). */
  createScheduler(): DiffusionScheduler {
    return this.schedulerName === 'ddim'
      ? DDIMScheduler.fromConfig(this.schedulerConfig)
      : DPMSolverMultistepScheduler.fromConfig(this.schedulerConfig);
  }

  /**
   * Token ids padded / truncated to 77, as the diffusers pipeline tokenises prompts. A multi-vector
   * textual-inversion token expands to its parts first (`<t>` → `<t> <t>_1 …`, as diffusers does).
   */
  tokenize(prompts: readonly string[]): number[][] {
    const multi = this.adapters.textualInversion?.multiVector;
    return prompts.map((p) => {
      let text = p;
      if (multi) for (const [token, parts] of multi) if (parts.length > 1) text = text.split(token).join(parts.join(' '));
      this.warnUnknownPlaceholders(text);
      return this.tokenizer.encode(text, { padding: 'max_length', truncation: true }).inputIds;
    });
  }

  /**
   * A `<…>` word that is neither an added token nor in the vocabulary is almost always a textual-
   * inversion placeholder whose embeddings were not loaded: the tokenizer would BPE-split it into
   * `<`, `class`, `_3`, `>` silently (diffusers does the same), and the images would ignore the class.
   */
  private warnUnknownPlaceholders(text: string): void {
    for (const m of text.matchAll(/<[^<>\s]+>/g)) {
      const token = m[0];
      if (this.warnedTokens.has(token) || this.tokenizer.tokenToId(token) !== undefined) continue;
      this.warnedTokens.add(token);
      this.log.warn(
        `prompt token ${token} is not in the tokenizer's vocabulary: it will be split into sub-words. ` +
          'If it is a textual-inversion placeholder, load its embeddings (textualInversion option / --ti).',
      );
    }
  }

  /** Text-encoder hidden states [B, 77, H] for B prompts. */
  async encodePrompts(prompts: readonly string[]): Promise<{ data: Float32Array; dims: number[]; ids: number[][] }> {
    const ids = this.tokenize(prompts);
    return { ...(await this.textEncoder.encode(ids)), ids };
  }

  async release(): Promise<void> {
    await Promise.all([this.textEncoder, this.unet, this.vaeEncoder, this.vaeDecoder].map((p) => p?.session.release()));
    this.keepAlive.length = 0;
  }
}
