/**
 * ViT parity with torchvision (fixture `fixtures/vit`, made by tooling/fixtures/make_vit_golden.py with
 * torch 1.13 / torchvision 0.14, CPU float32; see its PROVENANCE.md): a tiny VisionTransformer (image
 * 32, patch 8, 2 layers, width 32, 4 heads, 5 classes) with seeded random weights.
 * Checked: eval logits; one training step's loss (mean cross-entropy) and gradients of 8 tensors;
 * the bicubic position-embedding interpolation to image 48 and the logits at that size.
 * Tolerances: logits / embeddings ≤ 1e-5 · max|ref| (float32 reassociation between two CPU
 * implementations gives ~1e-7 relative per op; 100× headroom over ~10 layers of ops); loss and
 * gradients ≤ 1e-4 · max|ref|, the bound of the ResNet-18 step parity test.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseNpy, parseSafetensors } from '@diffmix/core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildGradientGraph } from '../autodiff/autodiff.js';
import { createGraphSession } from '../graph/convert.js';
import { tensorOf } from '../graph/graph.js';
import { maxAbs, maxAbsDiff } from './golden-fixtures.js';
import { buildVit, interpolatePosEmbedding, loadVitState, type VitConfig } from './vit.js';

const dir = fileURLToPath(new URL('../../fixtures/vit/', import.meta.url));
const npy = (name: string) => {
  const p = `${dir}${name}`;
  return parseNpy(readFileSync(p), p);
};
const f32 = (name: string) => npy(name).data as Float32Array;
const meta = JSON.parse(readFileSync(`${dir}meta.json`, 'utf8')) as {
  config: Record<string, number>;
  grad_keys: string[];
  target: number[];
};
const c = meta.config as Record<string, number>;
const config: VitConfig = {
  imageSize: c.image_size as number,
  patchSize: c.patch_size as number,
  hiddenDim: c.hidden_dim as number,
  numLayers: c.num_layers as number,
  numHeads: c.num_heads as number,
  mlpDim: c.mlp_dim as number,
  numClasses: c.num_classes as number,
};
const file = () => parseSafetensors(readFileSync(`${dir}model.safetensors`), `${dir}model.safetensors`);

type Session = { run(f: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> };
const report: string[] = [];
function check(label: string, got: ArrayLike<number>, ref: Float32Array, tol: number) {
  const d = maxAbsDiff(got, ref);
  const r = d / maxAbs(ref);
  report.push(`${label.padEnd(70)} ${r.toExponential(2)} (tol ${tol})`);
  expect(r, label).toBeLessThanOrEqual(tol);
}

describe('ViT (torchvision VisionTransformer) parity, fixtures/vit', () => {
  it('eval logits', async () => {
    const built = buildVit(config, { state: loadVitState(config, file()) });
    const s = (await createGraphSession(ort, built.graph)) as unknown as Session;
    const out = await s.run({ [built.input]: new ort.Tensor('float32', f32('input.npy'), [3, 3, 32, 32]) });
    check('logits', out[built.logits]?.data as Float32Array, f32('logits.npy'), 1e-5);
  });

  it('training step: loss and gradients (cross-entropy, batch mean)', async () => {
    const built = buildVit(config, { state: loadVitState(config, file()), batch: 3 });
    const g = built.graph.clone();
    const target = new Float32Array(3 * config.numClasses);
    meta.target.forEach((t, i) => {
      target[i * config.numClasses + t] = 1;
    });
    g.addInitializer('target', tensorOf('float32', [3, config.numClasses], target));
    const logp = g.node('LogSoftmax', [built.logits], { axis: -1 });
    const sum = g.node('ReduceSum', [g.node('Mul', [logp, 'target'])], { keepdims: 0 });
    const loss = g.node('Div', [sum, g.scalar(-3, 'float32')], {}, { output: 'loss' });
    g.addOutput(loss, 'float32', []);
    const tg = buildGradientGraph(g, { loss, wrt: built.params });
    const s = (await createGraphSession(ort, tg.graph)) as unknown as Session;
    const out = await s.run({ [built.input]: new ort.Tensor('float32', f32('input.npy'), [3, 3, 32, 32]) });
    check('loss', out[loss]?.data as Float32Array, f32('loss.npy'), 1e-4);
    for (const k of meta.grad_keys)
      check(`grad ${k}`, out[tg.gradients[k] as string]?.data as Float32Array, f32(`grad_${k}.npy`), 1e-4);
  });

  it('other image size: bicubic position-embedding interpolation (torchvision interpolate_embeddings) and logits at 48²', async () => {
    const c48 = { ...config, imageSize: 48 };
    const state = loadVitState(c48, file());
    check('pos_embedding 32² → 48²', state.get('encoder.pos_embedding')?.data as Float32Array, f32('pos_embedding_48.npy'), 1e-5);
    const built = buildVit(c48, { state });
    const s = (await createGraphSession(ort, built.graph)) as unknown as Session;
    const out = await s.run({ [built.input]: new ort.Tensor('float32', f32('input_48.npy'), [2, 3, 48, 48]) });
    check('logits at 48²', out[built.logits]?.data as Float32Array, f32('logits_48.npy'), 1e-5);
    if (process.env.DIFFMIX_REPORT) console.log(`ViT parity (max|Δ| / max|ref|):\n${report.join('\n')}`);
  });

  it('errors name the file and the problem', () => {
    expect(() => loadVitState({ ...config, numClasses: 7 }, file())).toThrow(/model\.safetensors.*5 classes.*7/);
    expect(() => loadVitState({ ...config, hiddenDim: 48, numHeads: 4 }, file())).toThrow(/model\.safetensors.*shape/);
    expect(() => buildVit({ ...config, imageSize: 30 })).toThrow(/not a multiple of the patch size/);
    expect(() => interpolatePosEmbedding({ shape: [1, 11, 4], data: new Float32Array(44) }, 3)).toThrow(/square patch grid/);
  });
});
