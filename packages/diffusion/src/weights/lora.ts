/**
 * LoRA weights as they arrive in practice, normalised to one shape per module:
 *
 * - diffusers / peft: `unet.<module>.lora.down.weight` / `.lora.up.weight`, `…lora_A.weight` /
 *   `…lora_B.weight` (also `lora_A.<adapter>.weight`, `lora_linear_layer.{down,up}`), optional
 *   `<module>.alpha`; `text_encoder.` keys target the text encoder; alpha may also come from the
 *   `lora_adapter_metadata` safetensors metadata diffusers writes (`unet.lora_alpha`, `unet.r`,
 *   `unet.alpha_pattern`).
 * - the older diffusers attention-processor layout written by `unet.save_attn_procs` (what the
 *   official Diff-Mix code saves): `<block>.processor.to_q_lora.down.weight`, `to_out_lora` meaning
 *   `to_out.0`, no `unet.` prefix, no alpha.
 * - kohya: `lora_unet_<module path with '_' for '.'>.lora_down.weight` / `.lora_up.weight` /
 *   `.alpha`, `lora_te_…` for the text encoder. The flattened path is resolved against the model's
 *   module paths when merging (module names themselves contain '_').
 *
 * Without an alpha, alpha = rank (scale 1), as diffusers does.
 */
import { ModelFormatError, readSafetensors, type SafetensorsFile } from '@diffmix/core';

export type LoraLayout = 'diffusers' | 'peft' | 'attn-procs' | 'kohya';
export type LoraComponent = 'unet' | 'text_encoder';

export interface LoraMatrix {
  /** Key in the file. */
  key: string;
  /** Shape as stored: down [rank, in] (or [rank, in, kh, kw]); up [out, rank] (or [out, rank, 1, 1]). */
  shape: number[];
  data: Float32Array;
}

/** One adapted module. */
export interface LoraModule {
  component: LoraComponent;
  /**
   * Dotted module path (`down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q`); for kohya
   * keys the flattened name (`down_blocks_0_attentions_0_…_to_q`), see `flat`.
   */
  module: string;
  /** True when `module` is a kohya '_'-joined name still to be resolved against the model. */
  flat: boolean;
  layout: LoraLayout;
  down: LoraMatrix;
  up: LoraMatrix;
  /** alpha (scale = weight · alpha / rank); undefined means alpha = rank. */
  alpha: number | undefined;
  /** Every key of the file that belongs to this module (down, up, alpha). */
  keys: string[];
}

export interface LoraWeights {
  /** File name (or label) used in errors. */
  source: string;
  /** Layouts found (usually one). */
  layouts: LoraLayout[];
  modules: LoraModule[];
  /** Keys that are not LoRA keys of a known layout (e.g. LoCon / LoHa extras, DoRA scales). */
  unknownKeys: string[];
  /** Keys for a component this loader does not apply (e.g. SDXL's second text encoder). */
  otherComponentKeys: string[];
}

type Role = 'down' | 'up' | 'alpha';

interface ParsedKey {
  component: LoraComponent | 'other';
  module: string;
  flat: boolean;
  layout: LoraLayout;
  role: Role;
}

const ATTN_PROC = /^(?:unet\.)?(.+)\.processor\.(to_q|to_k|to_v|to_out)_lora\.(down|up)\.weight$/;
const KOHYA = /^lora_(unet|te|te1|te2)_(.+)\.(lora_down\.weight|lora_up\.weight|alpha)$/;
const SUFFIXES: [RegExp, Role, LoraLayout][] = [
  [/\.lora\.down\.weight$/, 'down', 'diffusers'],
  [/\.lora\.up\.weight$/, 'up', 'diffusers'],
  [/\.lora_linear_layer\.down\.weight$/, 'down', 'diffusers'],
  [/\.lora_linear_layer\.up\.weight$/, 'up', 'diffusers'],
  [/\.lora_A(?:\.[^.]+)?\.weight$/, 'down', 'peft'],
  [/\.lora_B(?:\.[^.]+)?\.weight$/, 'up', 'peft'],
  [/\.lora_down\.weight$/, 'down', 'diffusers'],
  [/\.lora_up\.weight$/, 'up', 'diffusers'],
  [/\.alpha$/, 'alpha', 'diffusers'],
];

/** Classifies one key; undefined when it is not a LoRA key of a known layout. */
export function parseLoraKey(key: string): ParsedKey | undefined {
  const proc = ATTN_PROC.exec(key);
  if (proc) {
    const [, block, proj, role] = proc as unknown as [string, string, string, string];
    return {
      component: 'unet',
      module: `${block}.${proj === 'to_out' ? 'to_out.0' : proj}`,
      flat: false,
      layout: 'attn-procs',
      role: role as Role,
    };
  }
  const kohya = KOHYA.exec(key);
  if (kohya) {
    const [, comp, name, suffix] = kohya as unknown as [string, string, string, string];
    const role: Role = suffix === 'alpha' ? 'alpha' : suffix.startsWith('lora_down') ? 'down' : 'up';
    const component = comp === 'unet' ? 'unet' : comp === 'te2' ? 'other' : 'text_encoder';
    return { component, module: name, flat: true, layout: 'kohya', role };
  }
  for (const [re, role, layout] of SUFFIXES) {
    const m = re.exec(key);
    if (!m) continue;
    let module = key.slice(0, m.index);
    let component: ParsedKey['component'] = 'unet';
    if (module.startsWith('base_model.model.')) module = module.slice('base_model.model.'.length);
    if (module.startsWith('unet.')) module = module.slice(5);
    else if (module.startsWith('text_encoder.')) {
      component = 'text_encoder';
      module = module.slice('text_encoder.'.length);
    } else if (module.startsWith('text_encoder_2.')) component = 'other';
    if (module === '') return undefined;
    return { component, module, flat: false, layout, role };
  }
  return undefined;
}

interface AdapterMetadata {
  alpha?: number;
  rank?: number;
  alphaPattern?: Record<string, number>;
}

/** Reads diffusers' `lora_adapter_metadata` (a JSON string of the peft LoraConfig, keys prefixed by component). */
function adapterMetadata(file: SafetensorsFile): Partial<Record<LoraComponent, AdapterMetadata>> {
  const raw = file.metadata.lora_adapter_metadata;
  if (!raw) return {};
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(raw) as Record<string, unknown>;
  } catch (cause) {
    throw new ModelFormatError(file.source, `__metadata__.lora_adapter_metadata is not valid JSON`, { cause });
  }
  const out: Partial<Record<LoraComponent, AdapterMetadata>> = {};
  for (const comp of ['unet', 'text_encoder'] as const) {
    const alpha = parsed[`${comp}.lora_alpha`];
    const rank = parsed[`${comp}.r`];
    const pattern = parsed[`${comp}.alpha_pattern`];
    if (alpha === undefined && pattern === undefined) continue;
    out[comp] = {
      alpha: typeof alpha === 'number' ? alpha : undefined,
      rank: typeof rank === 'number' ? rank : undefined,
      alphaPattern: typeof pattern === 'object' && pattern !== null ? (pattern as Record<string, number>) : undefined,
    };
  }
  return out;
}

function metadataAlpha(meta: AdapterMetadata | undefined, module: string): number | undefined {
  if (!meta) return undefined;
  for (const [pattern, alpha] of Object.entries(meta.alphaPattern ?? {})) {
    if (module === pattern || module.endsWith(`.${pattern}`)) return alpha;
  }
  return meta.alpha;
}

/** Normalises a LoRA safetensors file (any of the layouts above). */
export function parseLora(file: SafetensorsFile): LoraWeights {
  const groups = new Map<string, { parsed: ParsedKey; down?: string; up?: string; alpha?: string }>();
  const unknownKeys: string[] = [];
  const otherComponentKeys: string[] = [];
  const layouts = new Set<LoraLayout>();
  for (const key of file.keys()) {
    const p = parseLoraKey(key);
    if (!p) {
      unknownKeys.push(key);
      continue;
    }
    if (p.component === 'other') {
      otherComponentKeys.push(key);
      continue;
    }
    const id = `${p.component}|${p.flat ? 'flat' : 'dot'}|${p.module}`;
    let g = groups.get(id);
    if (!g) {
      g = { parsed: p };
      groups.set(id, g);
    }
    if (p.role !== 'alpha') g.parsed = p;
    if (g[p.role] !== undefined)
      throw new ModelFormatError(file.source, `two ${p.role} tensors for module ${p.module}: ${g[p.role]} and ${key}`);
    g[p.role] = key;
  }
  const meta = adapterMetadata(file);
  const modules: LoraModule[] = [];
  for (const g of groups.values()) {
    const { parsed } = g;
    const keys = [g.down, g.up, g.alpha].filter((k): k is string => k !== undefined);
    if (g.down === undefined || g.up === undefined) {
      const missing = g.down === undefined ? 'down (lora_A)' : 'up (lora_B)';
      throw new ModelFormatError(file.source, `module ${parsed.module}: ${keys.join(', ')} present but no ${missing} matrix`);
    }
    const down = file.float32(g.down);
    const up = file.float32(g.up);
    const rank = down.shape[0] as number;
    if (down.shape.length < 2 || up.shape.length < 2 || up.shape[1] !== rank) {
      throw new ModelFormatError(
        file.source,
        `module ${parsed.module}: down ${g.down} [${down.shape.join(', ')}] and up ${g.up} [${up.shape.join(', ')}] do not share a rank`,
      );
    }
    let alpha: number | undefined;
    if (g.alpha !== undefined) {
      const a = file.float32(g.alpha);
      if (a.data.length !== 1)
        throw new ModelFormatError(file.source, `${g.alpha}: alpha must be a scalar, has shape [${a.shape.join(', ')}]`);
      alpha = a.data[0];
    } else {
      alpha = metadataAlpha(meta[parsed.component as LoraComponent], parsed.module);
    }
    layouts.add(parsed.layout);
    modules.push({
      component: parsed.component as LoraComponent,
      module: parsed.module,
      flat: parsed.flat,
      layout: parsed.layout,
      down: { key: g.down, shape: down.shape, data: down.data },
      up: { key: g.up, shape: up.shape, data: up.data },
      alpha,
      keys,
    });
  }
  return { source: file.source, layouts: [...layouts], modules, unknownKeys, otherComponentKeys };
}

/** Reads and normalises a LoRA `.safetensors` file. */
export async function loadLora(path: string): Promise<LoraWeights> {
  return parseLora(await readSafetensors(path));
}
