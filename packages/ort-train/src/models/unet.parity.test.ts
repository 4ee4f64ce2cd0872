/**
 * `buildUnet` against diffusers: the golden tiny-sd UNet (`tiny-sd/unet`, a diffusers
 * UNet2DConditionModel exported with torch.onnx.export; golden README §1) is read back into
 * diffusers-keyed weights (`unetStateFromGraph`), the UNet is rebuilt from its `config.json` and those
 * weights, and both graphs run on ONNX Runtime CPU:
 * - forward at the golden README's batch / size combinations: max |Δ| ≤ 1e-5 · max |ref|. Both graphs
 *   do the same float32 ops in nearly the same order; measured 8e-7 relative. A swapped projection,
 *   wrong head split, GroupNorm ε or skip order gives ≥ 1e-2.
 * - the golden LoRA step (`grads/lora_step`: PyTorch loss, prediction, d/d encoder_hidden_states and the
 *   64 LoRA gradients) on the rebuilt graph: ≤ 1e-4 · max |ref|, the bound of the export's own parity
 *   test (lora-step.parity.test.ts), so the built graph trains as the exported one.
 * `DIFFMIX_GOLDEN_DIR` selects another golden folder.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSafetensors, Rng } from '@diffmix/core';
import { loadOnnxModel } from '@diffmix/onnx';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { createGraphSession, graphFromOnnxModel } from '../graph/convert.js';
import type { Graph } from '../graph/graph.js';
import { runGoldenUnetStep } from '../lora/golden-unet-step.js';
import { maxAbs, maxAbsDiff } from './golden-fixtures.js';
import { buildUnet, unetConfigFromDiffusers, unetStateFromGraph } from './unet.js';

const TINY_SD = process.env.DIFFMIX_GOLDEN_DIR
  ? join(process.env.DIFFMIX_GOLDEN_DIR, 'tiny-sd')
  : fileURLToPath(new URL('../../../diffusion/fixtures/golden/tiny-sd', import.meta.url));

async function exportedAndBuilt(): Promise<{ exported: Graph; built: Graph; crossDim: number; inChannels: number }> {
  const configPath = join(TINY_SD, 'unet', 'config.json');
  const config = unetConfigFromDiffusers(JSON.parse(readFileSync(configPath, 'utf8')), configPath);
  const exported = await graphFromOnnxModel(await loadOnnxModel(join(TINY_SD, 'unet', 'model.onnx')));
  const built = buildUnet(config, { state: unetStateFromGraph(exported, config, join(TINY_SD, 'unet', 'model.onnx')) }).graph;
  return { exported, built, crossDim: config.crossAttentionDim, inChannels: config.inChannels };
}

type Session = { run(f: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> };

describe('buildUnet parity with the exported diffusers UNet (golden tiny-sd)', () => {
  it('forward: same out_sample at several batch sizes and spatial sizes', async () => {
    const { exported, built, crossDim, inChannels } = await exportedAndBuilt();
    const ref = (await createGraphSession(ort, exported)) as unknown as Session;
    const ours = (await createGraphSession(ort, built)) as unknown as Session;
    const tsType = exported.inputs.find((i) => i.name === 'timestep')?.type === 'int64' ? 'int64' : 'float32';
    const rng = Rng.fromSeed('unet-parity');
    const report: string[] = [];
    for (const [b, h, w] of [
      [2, 8, 8],
      [1, 16, 16],
      [3, 8, 12],
    ] as const) {
      const x = new Float32Array(b * inChannels * h * w);
      rng.fillNormal(x, 0, 1);
      const e = new Float32Array(b * 77 * crossDim);
      rng.fillNormal(e, 0, 1);
      const t = Array.from({ length: b }, (_, i) => 37 + 311 * i);
      const feeds = {
        sample: new ort.Tensor('float32', x, [b, inChannels, h, w]),
        encoder_hidden_states: new ort.Tensor('float32', e, [b, 77, crossDim]),
      };
      const tsRef =
        tsType === 'int64'
          ? new ort.Tensor('int64', BigInt64Array.from(t, BigInt), [b])
          : new ort.Tensor('float32', Float32Array.from(t), [b]);
      const want = (await ref.run({ ...feeds, timestep: tsRef })).out_sample?.data as Float32Array;
      const got = (await ours.run({ ...feeds, timestep: new ort.Tensor('float32', Float32Array.from(t), [b]) })).out_sample
        ?.data as Float32Array;
      const r = maxAbsDiff(got, want) / maxAbs(want);
      report.push(`b${b} ${h}×${w}: ${r.toExponential(2)}`);
      expect(r, `b${b} ${h}×${w}`).toBeLessThanOrEqual(1e-5);
    }
    if (process.env.DIFFMIX_REPORT) console.log(`buildUnet vs export, max|Δ|/max|ref|: ${report.join(', ')}`);
  }, 60_000);

  it('the golden LoRA training step on the built graph', async () => {
    const { exported, built } = await exportedAndBuilt();
    const lora = parseSafetensors(new Uint8Array(readFileSync(join(TINY_SD, 'lora', 'pytorch_lora_weights.safetensors'))));
    const { step, comparisons } = await runGoldenUnetStep(built, lora);
    // The LoRA insertion finds the same modules in both graphs.
    const modules = (g: Graph) =>
      g.nodes
        .filter((n) => n.opType === 'MatMul' && /\/(to_q|to_k|to_v|to_out\.0)\/MatMul$/.test(n.name))
        .map((n) => n.name)
        .sort();
    expect(modules(built)).toEqual(modules(exported));
    expect(step.branches).toHaveLength(modules(exported).length);
    const ratios = comparisons.map(([label, got, ref]) => ({ label, r: maxAbsDiff(got, ref) / maxAbs(ref) }));
    if (process.env.DIFFMIX_REPORT) {
      const worstLora = Math.max(...ratios.filter((x) => x.label.startsWith('lora ')).map((x) => x.r));
      const head = ratios.filter((x) => !x.label.startsWith('lora ')).map((x) => `${x.label} ${x.r.toExponential(2)}`);
      console.log(
        `built UNet LoRA step vs PyTorch (·max|ref|): ${head.join(', ')}, worst LoRA grad ${worstLora.toExponential(2)}`,
      );
    }
    const failures = ratios.filter(({ r }) => !(r <= 1e-4));
    expect(failures).toEqual([]);
  }, 60_000);
});
