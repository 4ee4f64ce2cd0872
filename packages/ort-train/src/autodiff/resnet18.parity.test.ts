/**
 * Parity with PyTorch: one ResNet-18 training step (golden `grads/resnet18_step`): the model from the
 * ResNet builder in train mode, cross-entropy with label smoothing 0.1 built here, gradients from
 * `buildGradientGraph`, run by ONNX Runtime (CPU, float32). Tolerance: max |Δ| ≤ 1e-4 · max |ref| per
 * tensor (the golden README's suggestion, ≈ 15× the float32 noise of the reference itself).
 */
import { parseSafetensors } from '@diffmix/core';
import { parseOnnxModel } from '@diffmix/onnx';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { createGraphSession, graphFromOnnxModel } from '../graph/convert.js';
import { tensorOf } from '../graph/graph.js';
import { buildClassifier, loadClassifierState } from '../models/classifier.js';
import { maxAbs, maxAbsDiff, readGoldenF32, readGoldenJson } from '../models/golden-fixtures.js';
import { buildSpecSafetensors, type WeightsSpec } from '../models/weights-spec.js';
import { buildGradientGraph } from './autodiff.js';

const STEP = ['grads', 'resnet18_step'] as const;
const CHECKED = [
  'conv1.weight',
  'bn1.weight',
  'bn1.bias',
  'layer1.0.conv1.weight',
  'layer4.1.bn2.weight',
  'fc.weight',
  'fc.bias',
];

describe('ResNet-18 training step parity (golden grads/resnet18_step)', () => {
  it('loss, gradients, bn1 running statistics and the SGD update', async () => {
    const spec = readGoldenJson<WeightsSpec>('resnet', 'weights_spec.json');
    const state = loadClassifierState('resnet18', parseSafetensors(buildSpecSafetensors(spec, 'resnet18', false)));
    const built = buildClassifier('resnet18', { state, mode: 'train' });
    // toBytes() gives a Node Buffer: parsing it directly also checks the fixed Buffer handling in @diffmix/onnx.
    const g = await graphFromOnnxModel(parseOnnxModel(built.builder.toBytes()));
    // Cross-entropy with label smoothing 0.1 (mean over the batch): −Σ_c t_c · log p_c / N.
    const labels = [901, 510, 70, 804];
    const n = labels.length;
    const target = new Float32Array(n * 1000).fill(0.1 / 1000);
    labels.forEach((l, i) => {
      target[i * 1000 + l] = (target[i * 1000 + l] as number) + 0.9;
    });
    g.addInitializer('target', tensorOf('float32', [n, 1000], target));
    const logp = g.node('LogSoftmax', [built.logits], { axis: -1 });
    const sum = g.node('ReduceSum', [g.node('Mul', [logp, 'target'])], { keepdims: 0 });
    const loss = g.node('Div', [sum, g.scalar(-n, 'float32')], {}, { output: 'loss' });
    g.addOutput(loss, 'float32', []);
    const tg = buildGradientGraph(g, { loss, wrt: built.params });
    const session = (await createGraphSession(ort, tg.graph)) as ort.InferenceSession;
    const input = readGoldenF32(...STEP, 'input.npy');
    const out = await session.run({ [built.input]: new ort.Tensor('float32', input, [4, 3, 64, 64]) });
    const f32 = (name: string) => (out[name] as ort.Tensor).data as Float32Array;
    const report: string[] = [];
    const check = (label: string, got: Float32Array, ref: Float32Array, tol = 1e-4) => {
      const d = maxAbsDiff(got, ref);
      report.push(
        `${label.padEnd(34)} max|Δ| ${d.toExponential(2)}  max|ref| ${maxAbs(ref).toExponential(3)}  ratio ${(d / maxAbs(ref)).toExponential(2)}`,
      );
      return { d, ok: d <= tol * maxAbs(ref) };
    };
    const results = [check('loss', f32(loss), readGoldenF32(...STEP, 'loss.npy'))];
    results.push(check('logits', f32(built.logits), readGoldenF32(...STEP, 'logits.npy')));
    for (const k of CHECKED)
      results.push(check(`grad ${k}`, f32(tg.gradients[k] as string), readGoldenF32(...STEP, `grad_${k}.npy`)));
    results.push(
      check(
        'bn1 running_mean',
        f32(built.bufferUpdates.get('bn1.running_mean') as string),
        readGoldenF32(...STEP, 'bn1_running_mean.npy'),
      ),
    );
    results.push(
      check(
        'bn1 running_var',
        f32(built.bufferUpdates.get('bn1.running_var') as string),
        readGoldenF32(...STEP, 'bn1_running_var.npy'),
      ),
    );
    // SGD (lr 0.1, momentum 0.9 from a zero buffer, weight decay 5e-4): p' = p − lr · (g + wd · p); the update p' − p is compared.
    for (const k of ['fc.weight', 'conv1.weight']) {
      const p = state.get(k)?.data as Float32Array;
      const gk = f32(tg.gradients[k] as string);
      const ref = readGoldenF32(...STEP, `sgd_updated_${k}.npy`);
      const upd = Float32Array.from(p, (v, i) => -0.1 * ((gk[i] as number) + 5e-4 * v));
      const refUpd = Float32Array.from(ref, (v, i) => v - (p[i] as number));
      results.push(check(`SGD update ${k}`, upd, refUpd));
    }
    if (process.env.DIFFMIX_REPORT)
      console.log(`ResNet-18 step parity (ORT CPU float32 vs PyTorch float32):\n${report.join('\n')}`);
    expect(
      results.every((r) => r.ok),
      report.join('\n'),
    ).toBe(true);
  }, 300_000);
});
