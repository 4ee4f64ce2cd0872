import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSafetensors, ModelFormatError, parseSafetensors, Rng } from '@diffmix/core';
import { loadOnnxModel } from '@diffmix/onnx';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { createGraphSession, graphFromOnnxModel, graphToOnnxModel } from '../graph/convert.js';
import { loadState } from './state.js';
import {
  buildUnet,
  exportScope,
  SD15_UNET,
  SD15_UNET_DIFFUSERS_CONFIG,
  type UnetConfig,
  unetConfigFromDiffusers,
  unetParameterCount,
  unetSpecs,
  unetStateFromGraph,
} from './unet.js';

/** The golden tiny-sd UNet's config (diffusers reports 792,964 parameters for it). */
const TINY = {
  sample_size: 8,
  in_channels: 4,
  out_channels: 4,
  block_out_channels: [32, 64],
  layers_per_block: 1,
  down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'],
  cross_attention_dim: 32,
  attention_head_dim: 8,
  norm_num_groups: 8,
};

describe('UNet2DConditionModel config', () => {
  it('parameter counts equal diffusers’ (SD 1.5: 859,520,964; tiny-sd: 792,964)', () => {
    expect(unetParameterCount(SD15_UNET)).toBe(859_520_964);
    expect(unetParameterCount(unetConfigFromDiffusers(TINY))).toBe(792_964);
  });

  it('takes SD 2.1’s config (per-block heads, linear projections, upcast_attention) with its 865,910,724 parameters', () => {
    const sd21 = unetConfigFromDiffusers({
      ...SD15_UNET_DIFFUSERS_CONFIG,
      attention_head_dim: [5, 10, 20, 20],
      cross_attention_dim: 1024,
      sample_size: 96,
      upcast_attention: true,
      use_linear_projection: true,
    });
    expect(sd21.attentionHeads).toEqual([5, 10, 20, 20]);
    expect(unetParameterCount(sd21)).toBe(865_910_724);
  });

  it('reads attention_head_dim as the head count (diffusers’ naming), per block when a list', () => {
    expect(SD15_UNET.attentionHeads).toEqual([8, 8, 8, 8]);
    // SD 2.x style: per-block head counts and linear projections.
    const c = unetConfigFromDiffusers({ ...TINY, attention_head_dim: [4, 8], use_linear_projection: true });
    expect(c.attentionHeads).toEqual([4, 8]);
    expect(c.useLinearProjection).toBe(true);
  });

  it('rejects what the builder does not implement, naming the key and the file', () => {
    const err = (json: Record<string, unknown>) => {
      try {
        unetConfigFromDiffusers(json, '/m/unet/config.json');
      } catch (e) {
        return e;
      }
      return undefined;
    };
    for (const [json, key] of [
      [{ ...TINY, class_embed_type: 'timestep' }, 'class_embed_type'],
      [{ ...TINY, addition_embed_type: 'text_time' }, 'addition_embed_type'],
      [{ ...TINY, resnet_time_scale_shift: 'scale_shift' }, 'resnet_time_scale_shift'],
      [{ ...TINY, transformer_layers_per_block: 2 }, 'transformer_layers_per_block'],
      [{ ...TINY, down_block_types: ['CrossAttnDownBlock2D', 'AttnDownBlock2D'] }, 'AttnDownBlock2D'],
      [{ ...TINY, up_block_types: ['UpBlock2D'] }, 'up_block_types'],
      [{ ...TINY, cross_attention_dim: [32, 32] }, 'cross_attention_dim'],
      [{ ...TINY, attention_head_dim: 5 }, 'attention heads'],
      [{ ...TINY, norm_num_groups: 7 }, 'norm_num_groups'],
    ] as const) {
      const e = err(json);
      expect(e, key).toBeInstanceOf(ModelFormatError);
      expect((e as Error).message).toContain(key);
      expect((e as Error).message).toContain('/m/unet/config.json');
    }
  });

  it('exporter scopes keep list indices with their list', () => {
    expect(exportScope('down_blocks.0.attentions.1.transformer_blocks.0.attn1.to_out.0')).toBe(
      '/down_blocks.0/attentions.1/transformer_blocks.0/attn1/to_out.0',
    );
    expect(exportScope('down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj')).toBe(
      '/down_blocks.0/attentions.0/transformer_blocks.0/ff/net.0/proj',
    );
    expect(exportScope('time_embedding.linear_1')).toBe('/time_embedding/linear_1');
  });

  it('the SD 1.5 config object is what diffusers writes', () => {
    expect(unetConfigFromDiffusers(SD15_UNET_DIFFUSERS_CONFIG)).toEqual(SD15_UNET);
    expect(SD15_UNET.blockOutChannels).toEqual([320, 640, 1280, 1280]);
  });
});

describe('buildUnet', () => {
  const run = async (config: UnetConfig, graph: ReturnType<typeof buildUnet>['graph'], b: number, h: number, w: number) => {
    const s = (await createGraphSession(ort, graph)) as ort.InferenceSession;
    const rng = Rng.fromSeed('inputs');
    const x = new Float32Array(b * config.inChannels * h * w);
    rng.fillNormal(x, 0, 1);
    const e = new Float32Array(b * 7 * config.crossAttentionDim);
    rng.fillNormal(e, 0, 1);
    const out = await s.run({
      sample: new ort.Tensor('float32', x, [b, config.inChannels, h, w]),
      timestep: new ort.Tensor(
        'float32',
        Float32Array.from({ length: b }, (_, i) => 10 + 100 * i),
        [b],
      ),
      encoder_hidden_states: new ort.Tensor('float32', e, [b, 7, config.crossAttentionDim]),
    });
    return out.out_sample as ort.Tensor;
  };

  it('random weights are seeded per tensor: same seed, same graph output; another seed, another', async () => {
    const config = unetConfigFromDiffusers(TINY);
    const a = await run(config, buildUnet(config, { rng: Rng.fromSeed(3) }).graph, 2, 8, 8);
    const b = await run(config, buildUnet(config, { rng: Rng.fromSeed(3) }).graph, 2, 8, 8);
    const c = await run(config, buildUnet(config, { rng: Rng.fromSeed(4) }).graph, 2, 8, 8);
    expect(a.dims).toEqual([2, 4, 8, 8]);
    expect(Array.from(a.data as Float32Array)).toEqual(Array.from(b.data as Float32Array));
    expect(Array.from(a.data as Float32Array)).not.toEqual(Array.from(c.data as Float32Array));
    expect(Array.from(a.data as Float32Array).every(Number.isFinite)).toBe(true);
  });

  it('state → graph → state is the identity, with conv and with linear projections (SD 2.x)', async () => {
    for (const linear of [false, true]) {
      const config = unetConfigFromDiffusers({ ...TINY, attention_head_dim: [4, 8], use_linear_projection: linear });
      const built = buildUnet(config, { rng: Rng.fromSeed(5) });
      const state = unetStateFromGraph(built.graph, config);
      expect([...state.keys()].sort()).toEqual(
        unetSpecs(config)
          .map((s) => s.name)
          .sort(),
      );
      const again = buildUnet(config, { state });
      const back = unetStateFromGraph(again.graph, config);
      for (const [k, t] of state) expect(Array.from(back.get(k)?.data ?? []), k).toEqual(Array.from(t.data));
      // Spatial sizes that are multiples of 2^(blocks − 1), batch 1.
      expect((await run(config, again.graph, 1, 6, 10)).dims).toEqual([1, 4, 6, 10]);
    }
  });

  it('reading weights out of a graph of another config names the module it cannot find', () => {
    const config = unetConfigFromDiffusers(TINY);
    const graph = buildUnet(config, { rng: Rng.fromSeed(1) }).graph;
    const deeper = unetConfigFromDiffusers({ ...TINY, layers_per_block: 2 });
    expect(() => unetStateFromGraph(graph, deeper, '/m/unet/model.onnx')).toThrow(ModelFormatError);
    expect(() => unetStateFromGraph(graph, deeper, '/m/unet/model.onnx')).toThrow(
      /\/m\/unet\/model\.onnx.*no \w+ node \/down_blocks\.0\/(attentions|resnets)\.1\//,
    );
  });

  it('a state with a missing or misshaped tensor is an error naming the key', () => {
    const config = unetConfigFromDiffusers(TINY);
    const state = unetStateFromGraph(buildUnet(config, { rng: Rng.fromSeed(1) }).graph, config);
    const missing = new Map(state);
    missing.delete('mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight');
    expect(() => buildUnet(config, { state: missing })).toThrow(
      /mid_block\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k\.weight/,
    );
    const wrong = new Map(state);
    wrong.set('conv_in.weight', { shape: [32, 3, 3, 3], data: new Float32Array(32 * 27) });
    expect(() => buildUnet(config, { state: wrong })).toThrow(/conv_in\.weight.*\[32, 3, 3, 3\].*\[32, 4, 3, 3\]/);
    expect(() => buildUnet(config)).toThrow(/state/);
  });

  it('the docs recipe: diffusers config.json + safetensors → buildUnet → a saved ONNX UNet that loads and runs the same', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unet-recipe-'));
    const config0 = unetConfigFromDiffusers(TINY);
    const weights = unetStateFromGraph(buildUnet(config0, { rng: Rng.fromSeed(9) }).graph, config0);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(TINY));
    writeFileSync(
      join(dir, 'diffusion_pytorch_model.safetensors'),
      formatSafetensors(new Map([...weights].map(([k, t]) => [k, { data: t.data, shape: t.shape }]))),
    );
    // The recipe of docs/bring-your-own-sd.md:
    const config = unetConfigFromDiffusers(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')), join(dir, 'config.json'));
    const file = join(dir, 'diffusion_pytorch_model.safetensors');
    const state = loadState(unetSpecs(config), parseSafetensors(readFileSync(file), file));
    const built = buildUnet(config, { state });
    await graphToOnnxModel(built.graph).save(join(dir, 'model.onnx'));
    const loaded = await graphFromOnnxModel(await loadOnnxModel(join(dir, 'model.onnx')));
    const a = await run(config, built.graph, 2, 8, 8);
    const b = await run(config, loaded, 2, 8, 8);
    expect(Array.from(b.data as Float32Array)).toEqual(Array.from(a.data as Float32Array));
    // A state dict with a key the config does not have is named.
    const extra = new Map(weights);
    extra.set('add_embedding.linear_1.weight', { shape: [1], data: new Float32Array(1) });
    expect(() => loadState(unetSpecs(config), extra)).toThrow(/unexpected keys: add_embedding\.linear_1\.weight/);
  });
});
