/**
 * LoRA parity on the golden tiny SD UNet (golden README §1 "LoRA"): the same rank-4 LoRA in the
 * diffusers, old attention-processor and kohya (alpha 2 → scale 0.5) layouts, merged into the base
 * ONNX UNet and run on ONNX Runtime, against the torch + peft UNet outputs in `lora/check/`.
 *
 * Tolerance 1e-5 (absolute, outputs have std ≈ 0.3): the generator measured 7.2e-7 / 7.8e-7 for the
 * same ORT-vs-torch comparison; the residual comes from float32 kernel order (MLAS vs torch) and from
 * merging (W + ΔW)x versus torch's unmerged Wx + B(Ax). 1e-5 leaves ~10× headroom while every real
 * mistake (a missed module, alpha ignored, a transposed delta) moves outputs by 1e-2 or more.
 */
import { readFileSync } from 'node:fs';
import { formatSafetensors, ModelFormatError, parseSafetensors } from '@diffmix/core';
import { createOrtSession, loadOnnxModel, type OnnxModel } from '@diffmix/onnx';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { goldenPath, maxAbsDiff, readJson, readNpy } from '../test-support/golden.js';
import { indexModules, type LoraWeights, loadLora, mergeLoras, mergeLorasIntoOnnx, parseLora } from './index.js';

const TOL = 1e-5;
const unetFile = goldenPath('tiny-sd/unet/model.onnx');
const files = {
  diffusers: goldenPath('tiny-sd/lora/pytorch_lora_weights.safetensors'),
  attn_procs_old_format: goldenPath('tiny-sd/lora/variants/attn_procs_old_format.safetensors'),
  kohya_alpha2: goldenPath('tiny-sd/lora/variants/kohya_alpha2.safetensors'),
} as const;

interface MappingModule {
  module: string;
  onnx_initializer: string;
  onnx_matmul_nodes: string[];
  initializer_shape: number[];
}
const mapping = readJson<{ lora_merge: { modules: MappingModule[] } }>('tiny-sd/onnx_mapping.json').lora_merge.modules;

function feeds(): Record<string, ort.Tensor> {
  const t = (name: string) => {
    const a = readNpy('tiny-sd/lora/check', `${name}.npy`);
    return new ort.Tensor('float32', a.data as Float32Array, a.shape);
  };
  return { sample: t('sample'), timestep: t('timestep'), encoder_hidden_states: t('encoder_hidden_states') };
}

async function runUnet(model: OnnxModel): Promise<Float32Array> {
  const session = await createOrtSession(ort, model);
  const out = await session.run(feeds());
  return (out.out_sample as ort.Tensor).data as Float32Array;
}

function expected(name: string): Float32Array {
  return readNpy('tiny-sd/lora/check', `${name}.npy`).data as Float32Array;
}

const measured: Record<string, number> = {};

describe('LoRA layouts (golden tiny-SD)', () => {
  let loras: Record<keyof typeof files, LoraWeights>;
  beforeAll(async () => {
    loras = {
      diffusers: await loadLora(files.diffusers),
      attn_procs_old_format: await loadLora(files.attn_procs_old_format),
      kohya_alpha2: await loadLora(files.kohya_alpha2),
    };
  });

  it('parses all three layouts to the same 32 modules', () => {
    expect(loras.diffusers.layouts).toEqual(['diffusers']);
    expect(loras.attn_procs_old_format.layouts).toEqual(['attn-procs']);
    expect(loras.kohya_alpha2.layouts).toEqual(['kohya']);
    for (const l of Object.values(loras)) {
      expect(l.modules).toHaveLength(32);
      expect(l.unknownKeys).toEqual([]);
    }
    const dotted = loras.attn_procs_old_format.modules.map((m) => m.module).sort();
    expect(dotted).toEqual(loras.diffusers.modules.map((m) => m.module).sort());
    expect(dotted).toContain('mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0'); // to_out_lora → to_out.0
    expect(loras.diffusers.modules.every((m) => m.alpha === undefined && m.down.shape[0] === 4)).toBe(true);
    expect(loras.kohya_alpha2.modules.every((m) => m.flat && m.alpha === 2)).toBe(true);
  });

  it('maps every module to the MatMul and W^T initializer of onnx_mapping.json', async () => {
    const index = indexModules(await loadOnnxModel(unetFile));
    for (const m of mapping) {
      const t = index.modules.get(m.module);
      expect(t?.weight, m.module).toBe(m.onnx_initializer);
      expect(t?.layout).toBe('in_out');
      expect(t?.dims).toEqual(m.initializer_shape);
      expect(t?.readers).toEqual(m.onnx_matmul_nodes);
      // kohya's flattened names resolve back to the dotted paths
      expect(index.flat.get(m.module.replace(/\./g, '_'))).toBe(m.module);
    }
  });

  it('base UNet on ORT matches out_base.npy', async () => {
    const d = maxAbsDiff(await runUnet(await loadOnnxModel(unetFile)), expected('out_base'));
    measured.base = d;
    expect(d).toBeLessThan(TOL);
  });

  for (const layout of Object.keys(files) as (keyof typeof files)[]) {
    it(`merged ${layout} LoRA matches out_${layout}.npy within ${TOL}`, async () => {
      const model = await loadOnnxModel(unetFile);
      const report = mergeLoras(model, [loras[layout]]);
      expect(report.merged).toHaveLength(32);
      expect(report.unmatched).toEqual([]);
      expect(report.merged.every((m) => m.scale === (layout === 'kohya_alpha2' ? 0.5 : 1))).toBe(true);
      const out = await runUnet(model);
      const want = expected(`out_${layout}`);
      const d = maxAbsDiff(out, want);
      measured[layout] = d;
      expect(d).toBeLessThan(TOL);
      // and the LoRA really changed the output (README: max |Δ| vs base 0.388 / 0.160)
      expect(maxAbsDiff(out, expected('out_base'))).toBeGreaterThan(0.1);
    });
  }

  it('weights add up: diffusers·0.5 + old layout·0.5, and kohya·2, both equal the diffusers LoRA at 1', async () => {
    const a = await loadOnnxModel(unetFile);
    mergeLoras(a, [
      { lora: loras.diffusers, scale: 0.5 },
      { lora: loras.attn_procs_old_format, scale: 0.5 },
    ]);
    const b = await loadOnnxModel(unetFile);
    mergeLoras(b, [{ lora: loras.kohya_alpha2, scale: 2 }]);
    const want = expected('out_diffusers');
    measured.two_halves = maxAbsDiff(await runUnet(a), want);
    measured.kohya_x2 = maxAbsDiff(await runUnet(b), want);
    expect(measured.two_halves).toBeLessThan(TOL);
    expect(measured.kohya_x2).toBeLessThan(TOL);
  });

  it('scale 0 leaves the weights bit-identical', async () => {
    const base = await loadOnnxModel(unetFile);
    const model = await loadOnnxModel(unetFile);
    mergeLoras(model, [{ lora: loras.diffusers, scale: 0 }]);
    for (const m of mapping) {
      expect([...(model.initializer(m.onnx_initializer).data as Float32Array)]).toEqual([
        ...(base.initializer(m.onnx_initializer).data as Float32Array),
      ]);
    }
  });

  it('prints the measured parity (for the record)', () => {
    console.info(`LoRA parity, max |ORT − torch|: ${JSON.stringify(measured)}`);
    expect(Object.keys(measured).length).toBeGreaterThan(0);
  });
});

describe('LoRA errors and edge cases', () => {
  /** The diffusers file with extra / changed tensors. */
  function variant(edit: (tensors: Map<string, { dtype?: 'F32'; shape: number[]; data: Float32Array }>) => void): LoraWeights {
    const file = parseSafetensors(readFileSync(files.diffusers), 'base.safetensors');
    const tensors = new Map(
      file.keys().map((k) => [k, { shape: file.entry(k).shape, data: file.float32(k, { copy: true }).data }]),
    );
    edit(tensors);
    return parseLora(parseSafetensors(formatSafetensors(tensors), 'edited.safetensors'));
  }

  it('lists keys that match no module, naming the file; allowUnmatched merges the rest and reports them', async () => {
    const lora = variant((t) => {
      t.set('unet.down_blocks.7.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight', {
        shape: [4, 32],
        data: new Float32Array(128),
      });
      t.set('unet.down_blocks.7.attentions.0.transformer_blocks.0.attn1.to_q.lora.up.weight', {
        shape: [32, 4],
        data: new Float32Array(128),
      });
      t.set('unet.some.hada_w1_a', { shape: [1], data: new Float32Array(1) });
    });
    expect(lora.unknownKeys).toEqual(['unet.some.hada_w1_a']);
    const model = await loadOnnxModel(unetFile);
    let err: unknown;
    try {
      mergeLoras(model, [lora]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as ModelFormatError).file).toBe('edited.safetensors');
    expect((err as Error).message).toMatch(/3 LoRA key\(s\) match no unet module/);
    expect((err as Error).message).toContain('unet.down_blocks.7.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight');
    expect((err as Error).message).toContain('unet.some.hada_w1_a');
    const report = mergeLoras(model, [lora], { allowUnmatched: true });
    expect(report.merged).toHaveLength(32);
    expect(report.unmatched).toHaveLength(3);
  });

  it('names the key and both shapes on a shape mismatch', async () => {
    const lora = variant((t) => {
      t.set('unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora.down.weight', {
        shape: [4, 64],
        data: new Float32Array(256),
      });
    });
    const model = await loadOnnxModel(unetFile);
    expect(() => mergeLoras(model, [lora])).toThrow(
      /edited\.safetensors: unet\.mid_block\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k\.lora\.down\.weight \/ .*: shapes down \[4, 64\], up \[64, 4\] do not fit module mid_block\.attentions\.0\.transformer_blocks\.0\.attn2\.to_k \(ONNX initializer onnx::MatMul_1670, Wᵀ \[in, out\] = \[32, 64\]\): expected down \[rank, 32\] and up \[64, rank\]/,
    );
  });

  it('skips (and reports) text-encoder keys when merging into the UNet', async () => {
    const lora = variant((t) => {
      t.set('text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora.down.weight', {
        shape: [4, 32],
        data: new Float32Array(128),
      });
      t.set('text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora.up.weight', {
        shape: [32, 4],
        data: new Float32Array(128),
      });
    });
    const report = mergeLoras(await loadOnnxModel(unetFile), [lora]);
    expect(report.skipped).toHaveLength(2);
    expect(report.merged).toHaveLength(32);
  });

  it('merges kohya text-encoder LoRA (lora_te_text_model_…) into a transformers-5 export without the text_model prefix', async () => {
    const te = await loadOnnxModel(goldenPath('tiny-sd/text_encoder/model.onnx'));
    const down = Float32Array.from({ length: 2 * 32 }, (_, i) => Math.sin(i));
    const up = Float32Array.from({ length: 32 * 2 }, (_, i) => Math.cos(i));
    const lora = parseLora(
      parseSafetensors(
        formatSafetensors({
          'lora_te_text_model_encoder_layers_1_mlp_fc1.lora_down.weight': { shape: [2, 32], data: down },
          'lora_te_text_model_encoder_layers_1_mlp_fc1.lora_up.weight': {
            shape: [64, 2],
            data: Float32Array.from({ length: 128 }, (_, i) => up[i % 64] as number),
          },
          'lora_te_text_model_encoder_layers_1_mlp_fc1.alpha': { shape: [], data: new Float32Array([1]) },
        }),
        'te.safetensors',
      ),
    );
    const target = indexModules(te).modules.get('encoder.layers.1.mlp.fc1');
    expect(target).toMatchObject({ layout: 'in_out', dims: [32, 64] });
    const before = Float32Array.from(te.initializer(target?.weight as string).data as Float32Array);
    const report = mergeLoras(te, [{ lora, scale: 3 }], { component: 'text_encoder' });
    expect(report.merged.map((m) => [m.module, m.scale])).toEqual([['encoder.layers.1.mlp.fc1', 1.5]]);
    const after = te.initializer(target?.weight as string).data as Float32Array;
    const upM = (o: number, k: number) => up[(o * 2 + k) % 64] as number;
    let worst = 0;
    for (let i = 0; i < 32; i++) {
      for (let o = 0; o < 64; o++) {
        const delta = 1.5 * (down[i] as number) * upM(o, 0) + 1.5 * (down[32 + i] as number) * upM(o, 1);
        worst = Math.max(worst, Math.abs((after[i * 64 + o] as number) - ((before[i * 64 + o] as number) + delta)));
      }
    }
    expect(worst).toBeLessThan(1e-6);
  });

  it('merges into float16 weights (rounded once) and clones a weight shared with another module', async () => {
    const model = await loadOnnxModel(unetFile);
    const lora = await loadLora(files.diffusers);
    const name = 'onnx::MatMul_1624'; // down_blocks.0…attn1.to_q
    const w32 = Float32Array.from(model.initializer(name).data as Float32Array);
    const { float32ToFloat16, float16ToFloat32 } = await import('@diffmix/core');
    model.setInitializer(name, { data: float32ToFloat16(w32), type: 'float16' });
    // make to_k read to_q's weight too, so the merge must not change it for to_k
    const toK = model.node('/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_k/MatMul');
    if (!toK) throw new Error('to_k MatMul missing');
    model.setNodeInput(toK, 1, name);
    const only = {
      ...lora,
      modules: lora.modules.filter((m) => m.module.endsWith('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q')),
    };
    mergeLoras(model, [only]);
    expect(model.initializerInfo(name).type).toBe('float16');
    expect([...(model.initializer(name).data as Uint16Array)]).toEqual([...float32ToFloat16(w32)]); // shared original untouched
    const clone = model.node('/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul')?.inputs[1] as string;
    expect(clone).toBe(`${name}::lora`);
    const reference = await loadOnnxModel(unetFile);
    mergeLoras(reference, [only]);
    const merged32 = reference.initializer(name).data as Float32Array;
    const got = float16ToFloat32(model.initializer(clone).data as Uint16Array);
    expect(maxAbsDiff(got, merged32)).toBeLessThan(2e-3); // one float16 rounding of values ~0.1–1
  });

  it('merges kohya LoRA into Conv (3×3 LoCon and 1×1) and Gemm weights', async () => {
    const model = await loadOnnxModel(unetFile);
    const index = indexModules(model);
    const cases = [
      { name: 'conv_in', down: [2, 4, 3, 3], up: [32, 2, 1, 1] },
      { name: 'down_blocks_0_attentions_0_proj_in', down: [2, 32, 1, 1], up: [32, 2, 1, 1] },
      { name: 'down_blocks_0_resnets_0_time_emb_proj', down: [2, 128], up: [32, 2] },
    ];
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    for (const c of cases) {
      const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
      tensors[`lora_unet_${c.name}.lora_down.weight`] = {
        shape: c.down,
        data: Float32Array.from({ length: size(c.down) }, (_, i) => Math.sin(i + 1)),
      };
      tensors[`lora_unet_${c.name}.lora_up.weight`] = {
        shape: c.up,
        data: Float32Array.from({ length: size(c.up) }, (_, i) => Math.cos(i)),
      };
    }
    const lora = parseLora(parseSafetensors(formatSafetensors(tensors), 'locon.safetensors'));
    const targets = cases.map((c) => index.modules.get(index.flat.get(c.name) as string));
    expect(targets.map((t) => t?.layout)).toEqual(['conv', 'conv', 'out_in']);
    const before = targets.map((t) => Float32Array.from(model.initializer(t?.weight as string).data as Float32Array));
    mergeLoras(model, [{ lora, scale: 0.25 }]);
    cases.forEach((c, n) => {
      const t = targets[n];
      const w0 = before[n] as Float32Array;
      const w1 = model.initializer(t?.weight as string).data as Float32Array;
      const down = tensors[`lora_unet_${c.name}.lora_down.weight`]?.data as Float32Array;
      const up = tensors[`lora_unet_${c.name}.lora_up.weight`]?.data as Float32Array;
      const nOut = c.up[0] as number;
      const inner = down.length / 2;
      expect(w1.length).toBe(nOut * inner);
      let worst = 0;
      for (let o = 0; o < nOut; o++) {
        for (let j = 0; j < inner; j++) {
          // no alpha → alpha = rank → factor = scale
          const delta =
            0.25 * ((up[o * 2] as number) * (down[j] as number) + (up[o * 2 + 1] as number) * (down[inner + j] as number));
          worst = Math.max(worst, Math.abs((w1[o * inner + j] as number) - ((w0[o * inner + j] as number) + delta)));
        }
      }
      expect(worst, c.name).toBeLessThan(1e-6);
    });
  });

  it('mergeLorasIntoOnnx returns bytes + external data that ORT runs (the StableDiffusion patch hook shape)', async () => {
    const patched = await mergeLorasIntoOnnx(unetFile, [{ lora: files.kohya_alpha2, scale: 2 }]);
    expect(patched.report.merged).toHaveLength(32);
    expect(patched.externalData.length).toBeGreaterThan(0);
    const session = await createOrtSession(ort, patched);
    const out = ((await session.run(feeds())).out_sample as ort.Tensor).data as Float32Array;
    expect(maxAbsDiff(out, expected('out_diffusers'))).toBeLessThan(TOL);
  });
});
