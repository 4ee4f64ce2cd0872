/**
 * Parity of the tfjs engine (cpu backend, float32) with PyTorch / torchvision on the golden fixtures
 * (`DIFFMIX_GOLDEN_DIR`, else ort-train's copies):
 * - eval logits of ResNet-18 and ResNet-50 on `resnet/input.npy` [2, 3, 64, 64]: max |Δ| ≤ 1e-4 (the
 *   issue's bound; float32 accumulation-order noise here is ~1e-6 of logits ≈ 0.5–0.9);
 * - one ResNet-18 training step (`grads/resnet18_step`): loss, the listed gradients, bn1's running
 *   statistics and the SGD update, each max |Δ| ≤ 1e-4 · max |ref| (the golden README's suggestion:
 *   ≈ 15–30× the float32-vs-float64 noise of the reference itself, see its precision table).
 */
import { describe, expect, it } from 'vitest';
import type { ModelState, StateTensor } from '../types.js';
import { createTfjsEngine } from './index.js';
import { goldenF32, goldenJson, goldenResnetState, maxAbs, maxAbsDiff } from './test-support.js';

describe.each(['resnet18', 'resnet50'] as const)('%s eval logits vs torchvision (golden resnet/)', (arch) => {
  it('max |Δ logits| ≤ 1e-4', async () => {
    const engine = await createTfjsEngine({ backend: 'cpu' });
    await engine.init(
      { arch, numClasses: 1000, imageSize: 64, seed: 0, weights: goldenResnetState(arch) },
      { kind: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0 },
    );
    const logits = await engine.predict(goldenF32('resnet', 'input.npy'), 2);
    const ref = goldenF32('resnet', `${arch}_logits.npy`);
    const d = maxAbsDiff(logits, ref);
    if (process.env.DIFFMIX_REPORT)
      console.log(`tfjs ${arch} eval: max|Δlogits| ${d.toExponential(2)} (max|ref| ${maxAbs(ref).toFixed(3)})`);
    expect(d).toBeLessThanOrEqual(1e-4);
    await engine.dispose();
  }, 120_000);
});

describe('resnet18 training step vs PyTorch (golden grads/resnet18_step)', () => {
  it('loss, gradients, bn1 running statistics and the SGD update', async () => {
    const STEP = ['grads', 'resnet18_step'] as const;
    const step = goldenJson<{ labels: { values: number[] }; sgd: { lr: number; momentum: number; weight_decay: number } }>(
      ...STEP,
      'step.json',
    );
    const { lr, momentum, weight_decay: wd } = step.sgd;
    const weights = goldenResnetState('resnet18');
    const engine = await createTfjsEngine({ backend: 'cpu' });
    await engine.init(
      { arch: 'resnet18', numClasses: 1000, imageSize: 64, seed: 0, weights },
      { kind: 'sgd', lr, momentum, weightDecay: wd },
    );
    // F.cross_entropy(label_smoothing=0.1) = soft CE against (1 − ε)·onehot + ε/C.
    const labels = step.labels.values;
    const n = labels.length;
    const targets = new Float32Array(n * 1000).fill(0.1 / 1000);
    labels.forEach((l, i) => {
      targets[i * 1000 + l] = (targets[i * 1000 + l] as number) + 0.9;
    });
    const { loss } = await engine.trainStep({ images: goldenF32(...STEP, 'input.npy'), targets, n }, lr);
    const after = await engine.getState();
    const report: string[] = [];
    const results: boolean[] = [];
    const check = (label: string, got: ArrayLike<number>, ref: Float32Array) => {
      const d = maxAbsDiff(got, ref);
      const r = d / maxAbs(ref);
      report.push(
        `${label.padEnd(32)} max|Δ| ${d.toExponential(2)}  max|ref| ${maxAbs(ref).toExponential(3)}  ratio ${r.toExponential(2)}`,
      );
      results.push(r <= 1e-4);
    };
    const t = (m: ModelState | Map<string, StateTensor>, k: string) => (m.get(k) as StateTensor).data;
    check('loss', [loss], goldenF32(...STEP, 'loss.npy'));
    // First step from an empty buffer: momentum_buffer = g + wd·p, so g = buffer − wd·p (p before the step).
    for (const k of [
      'conv1.weight',
      'bn1.weight',
      'bn1.bias',
      'layer1.0.conv1.weight',
      'layer4.1.bn2.weight',
      'fc.weight',
      'fc.bias',
    ]) {
      const p = t(weights, k);
      const buf = t(after.optimizer, `momentum_buffer/${k}`);
      check(
        `grad ${k}`,
        Float32Array.from(buf, (b, i) => b - wd * (p[i] as number)),
        goldenF32(...STEP, `grad_${k}.npy`),
      );
    }
    check('bn1 running_mean', t(after.model, 'bn1.running_mean'), goldenF32(...STEP, 'bn1_running_mean.npy'));
    check('bn1 running_var', t(after.model, 'bn1.running_var'), goldenF32(...STEP, 'bn1_running_var.npy'));
    for (const k of ['fc.weight', 'conv1.weight']) {
      const p = t(weights, k);
      const upd = Float32Array.from(t(after.model, k), (v, i) => v - (p[i] as number));
      const ref = Float32Array.from(goldenF32(...STEP, `sgd_updated_${k}.npy`), (v, i) => v - (p[i] as number));
      check(`SGD update ${k}`, upd, ref);
    }
    if (process.env.DIFFMIX_REPORT) console.log(`tfjs ResNet-18 step (cpu float32 vs PyTorch float32):\n${report.join('\n')}`);
    expect(results.every(Boolean), report.join('\n')).toBe(true);
    expect(after.step).toBe(1);
    await engine.dispose();
  }, 300_000);
});
