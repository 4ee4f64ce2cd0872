/**
 * Parity with PyTorch: one DreamBooth-LoRA + textual-inversion step on tiny-sd (golden
 * `grads/lora_step`, README §7). The UNet graph gets LoRA branches (r 4, alpha 4, the values of
 * `tiny-sd/lora/pytorch_lora_weights.safetensors`) on to_q/k/v/out.0 of attn1 and attn2; loss =
 * mean((unet_out − noise)²); gradients from `buildGradientGraph` w.r.t. the 64 LoRA matrices and
 * `encoder_hidden_states`. The text encoder gets the two TI rows appended as a trainable tensor; the
 * golden d loss / d encoder_hidden_states is backpropagated into them (grad_ti). ONNX Runtime CPU,
 * float32. Tolerance: max |Δ| ≤ 1e-4 · max |ref| per tensor — the golden README's suggestion, ≈ 15×
 * the float32 noise of the reference itself (≤ 7e-6 of max|ref| vs float64); a wrong transposition,
 * scale or reduction gives ≥ 1e-2.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSafetensors } from '@diffmix/core';
import { loadOnnxModel } from '@diffmix/onnx';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { createGraphSession, graphFromOnnxModel } from '../graph/convert.js';
import { maxAbs, maxAbsDiff, readGoldenF32, readGoldenNpy } from '../models/golden-fixtures.js';
import { runGoldenUnetStep } from './golden-unet-step.js';
import { buildEmbeddingRowsStep } from './step.js';

const STEP = ['grads', 'lora_step'] as const;
/** tiny-sd: `$DIFFMIX_GOLDEN_DIR/tiny-sd` when set, else the copy in @diffmix/diffusion's fixtures. */
const TINY_SD = process.env.DIFFMIX_GOLDEN_DIR
  ? join(process.env.DIFFMIX_GOLDEN_DIR, 'tiny-sd')
  : fileURLToPath(new URL('../../../diffusion/fixtures/golden/tiny-sd', import.meta.url));

describe('LoRA + textual-inversion step parity (golden grads/lora_step)', () => {
  it('loss, unet_out, 64 LoRA gradients, d/d encoder_hidden_states and grad_ti', async () => {
    const lora = parseSafetensors(new Uint8Array(readFileSync(join(TINY_SD, 'lora', 'pytorch_lora_weights.safetensors'))));
    const report: string[] = [];
    const results: { label: string; ok: boolean }[] = [];
    const check = (label: string, got: Float32Array, ref: Float32Array, tol = 1e-4) => {
      const d = maxAbsDiff(got, ref);
      const m = maxAbs(ref);
      report.push(
        `${label.padEnd(96)} max|Δ| ${d.toExponential(2)}  max|ref| ${m.toExponential(3)}  ratio ${(d / m).toExponential(2)}`,
      );
      results.push({ label, ok: d <= tol * m });
    };

    // UNet step.
    const unet = await graphFromOnnxModel(await loadOnnxModel(join(TINY_SD, 'unet', 'model.onnx')));
    const { step, index, gradEncoderHiddenStates, comparisons } = await runGoldenUnetStep(unet, lora);
    expect(new Set(step.branches.flatMap((b) => [b.down, b.up]))).toEqual(new Set(Object.keys(index.lora)));
    let worst = 0;
    for (const [label, got, ref] of comparisons) {
      check(label, got, ref);
      if (label.startsWith('lora ')) worst = Math.max(worst, maxAbsDiff(got, ref) / maxAbs(ref));
    }
    report.push(`worst LoRA ratio ${worst.toExponential(2)}`);
    const f32 = (name: string, dims: number[]) => new ort.Tensor('float32', readGoldenF32(...STEP, name), dims);

    // Text encoder with the two TI rows trainable, fed the golden d loss / d encoder_hidden_states.
    const te = await graphFromOnnxModel(await loadOnnxModel(join(TINY_SD, 'text_encoder', 'model.onnx')));
    const ti = parseSafetensors(new Uint8Array(readFileSync(join(TINY_SD, 'ti', 'learned_embeds.safetensors'))));
    const tokens = Object.entries(index.ti).sort((a, b) => a[1].row - b[1].row);
    // Shapes from the golden arrays, so any golden folder works: ids [B, S], hidden states [B, S, H].
    const ids = readGoldenNpy(...STEP, 'input_ids.npy');
    const ehsShape = readGoldenNpy(...STEP, 'encoder_hidden_states.npy').shape;
    const hidden = ehsShape[2] as number;
    const rows = new Float32Array(tokens.length * hidden);
    for (const [i, [tok]] of tokens.entries()) rows.set(ti.float32(tok).data, i * hidden);
    const teStep = buildEmbeddingRowsStep(te, {
      input: 'input_ids',
      append: rows,
      name: 'ti.rows',
      inputShapes: { input_ids: ids.shape },
    });
    expect(teStep.rows.firstId).toBe(tokens[0]?.[1].token_id);
    const teSession = (await createGraphSession(ort, teStep.graph)) as ort.InferenceSession;
    const idsInput = te.inputs.find((i) => i.name === 'input_ids');
    const idsData =
      idsInput?.type === 'int64'
        ? BigInt64Array.from(ids.data as ArrayLike<number | bigint>, (v) => BigInt(v))
        : Int32Array.from(ids.data as ArrayLike<number | bigint>, Number);
    const idsTensor = new ort.Tensor(idsInput?.type === 'int64' ? 'int64' : 'int32', idsData, ids.shape);
    // Chained: our own d loss / d encoder_hidden_states from the UNet step (the training pipeline)…
    const ours = new ort.Tensor('float32', gradEncoderHiddenStates, ehsShape);
    const teOut = await teSession.run({ input_ids: idsTensor, [teStep.gradOutput]: ours });
    check(
      'encoder_hidden_states (text encoder + TI rows)',
      (teOut[teStep.output] as ort.Tensor).data as Float32Array,
      readGoldenF32(...STEP, 'encoder_hidden_states.npy'),
    );
    check(
      'grad_ti (chained from our grad_encoder_hidden_states)',
      (teOut[teStep.gradient] as ort.Tensor).data as Float32Array,
      readGoldenF32(...STEP, 'grad_ti.npy'),
    );
    // …and isolated: the golden one, so a failure is localised to the text-encoder backward.
    const teGolden = await teSession.run({
      input_ids: idsTensor,
      [teStep.gradOutput]: f32('grad_encoder_hidden_states.npy', ehsShape),
    });
    check(
      'grad_ti (from the golden grad_encoder_hidden_states)',
      (teGolden[teStep.gradient] as ort.Tensor).data as Float32Array,
      readGoldenF32(...STEP, 'grad_ti.npy'),
    );

    if (process.env.DIFFMIX_REPORT)
      console.log(`LoRA + TI step parity (ORT CPU float32 vs PyTorch float32):\n${report.join('\n')}`);
    expect(
      results.filter((r) => !r.ok).map((r) => r.label),
      report.join('\n'),
    ).toEqual([]);
  }, 120_000);
});
