import { parseSafetensors, Rng } from '@diffmix/core';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildClassifier, classifierSpecs, initClassifierState, loadClassifierState } from './classifier.js';
import { counterFill, counterUniform } from './counter.js';
import { goldenPath, maxAbs, maxAbsDiff, readGoldenF32, readGoldenJson } from './golden-fixtures.js';
import type { TensorMap } from './state.js';
import { buildSpecSafetensors, type WeightsSpec, type WeightsSpecArch } from './weights-spec.js';

const spec = readGoldenJson<WeightsSpec>('resnet', 'weights_spec.json');

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run(feeds);
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

describe('counter generator', () => {
  it('reproduces the golden input and the spec first values', () => {
    const input = counterFill(spec.input.seed, 2 * 3 * 64 * 64, spec.input.lo, spec.input.hi);
    expect(maxAbsDiff(input, readGoldenF32('resnet', 'input.npy'))).toBe(0);
    const labels = Array.from(counterUniform(7102, 4), (u) => Math.floor(1000 * u));
    expect(labels).toEqual([901, 510, 70, 804]); // grads/resnet18_step/step.json
  });
});

describe.each(['resnet18', 'resnet50'] as const)('%s golden parity (eval)', (arch) => {
  let state: TensorMap;
  beforeAll(() => {
    // Every tensor's sha256 and the whole file's sha256 are checked inside.
    const file = parseSafetensors(buildSpecSafetensors(spec, arch), `${arch}.safetensors`);
    state = loadClassifierState(arch, file);
  });

  it('lists the torchvision state_dict keys in order', () => {
    const expected = (spec[arch] as WeightsSpecArch).tensors.filter((t) => !t.name.endsWith('num_batches_tracked'));
    const specs = classifierSpecs(arch);
    expect(specs.map((s) => s.name)).toEqual(expected.map((t) => t.name));
    expect(specs.map((s) => s.shape)).toEqual(expected.map((t) => t.shape));
  });

  it('eval logits and features match torchvision ≤ 1e-4', async () => {
    const built = buildClassifier(arch, { state });
    const input = readGoldenF32('resnet', 'input.npy');
    const out = await run(built.builder.toBytes(), { input: new ort.Tensor('float32', input, [2, 3, 64, 64]) });
    const logits = readGoldenF32('resnet', `${arch}_logits.npy`);
    const features = readGoldenF32('resnet', `${arch}_features.npy`);
    const dl = maxAbsDiff(out.logits as Float32Array, logits);
    const df = maxAbsDiff(out.features as Float32Array, features);
    console.log(
      `${arch} eval: max|Δlogits| ${dl.toExponential(2)} (max ${maxAbs(logits).toFixed(3)}), max|Δfeatures| ${df.toExponential(2)}`,
    );
    expect(dl).toBeLessThanOrEqual(1e-4);
    expect(df).toBeLessThanOrEqual(1e-4);
  });
});

describe('resnet18 train-mode graph (golden grads/resnet18_step forward)', () => {
  it('logits with batch statistics and the updated bn1 running statistics', async () => {
    const file = parseSafetensors(buildSpecSafetensors(spec, 'resnet18', false));
    const state = loadClassifierState('resnet18', file);
    const built = buildClassifier('resnet18', { state, mode: 'train' });
    const input = readGoldenF32('grads', 'resnet18_step', 'input.npy');
    const out = await run(built.builder.toBytes(), { input: new ort.Tensor('float32', input, [4, 3, 64, 64]) });
    const logits = readGoldenF32('grads', 'resnet18_step', 'logits.npy');
    const rm = readGoldenF32('grads', 'resnet18_step', 'bn1_running_mean.npy');
    const rv = readGoldenF32('grads', 'resnet18_step', 'bn1_running_var.npy');
    const dl = maxAbsDiff(out.logits as Float32Array, logits);
    const dm = maxAbsDiff(out['bn1.running_mean__updated'] as Float32Array, rm);
    const dv = maxAbsDiff(out['bn1.running_var__updated'] as Float32Array, rv);
    console.log(
      `resnet18 train: max|Δlogits| ${dl.toExponential(2)} (max ${maxAbs(logits).toFixed(3)}), running mean ${dm.toExponential(2)}, var ${dv.toExponential(2)}`,
    );
    expect(dl).toBeLessThanOrEqual(1e-4 * maxAbs(logits));
    expect(dm).toBeLessThanOrEqual(1e-4 * maxAbs(rm));
    expect(dv).toBeLessThanOrEqual(1e-4 * maxAbs(rv));
    expect(built.bufferUpdates.size).toBe(2 * 20);
  });
});

describe('weights loading', () => {
  const file = () => parseSafetensors(buildSpecSafetensors(spec, 'resnet18', false), 'r18.safetensors');

  it('replaces the head for numClasses, deterministically from the rng', () => {
    const a = loadClassifierState('resnet18', file(), { numClasses: 10, rng: Rng.fromSeed(3) });
    const b = loadClassifierState('resnet18', file(), { numClasses: 10, rng: Rng.fromSeed(3) });
    const w = a.get('fc.weight');
    expect(w?.shape).toEqual([10, 512]);
    expect(a.get('fc.bias')?.shape).toEqual([10]);
    expect(w?.data).toEqual(b.get('fc.weight')?.data);
    expect(maxAbs(w?.data ?? [])).toBeLessThanOrEqual(1 / Math.sqrt(512));
    expect(maxAbs(w?.data ?? [])).toBeGreaterThan(0.9 / Math.sqrt(512));
    expect(a.get('conv1.weight')?.data).toEqual(file().float32('conv1.weight').data);
    expect(() => loadClassifierState('resnet18', file(), { numClasses: 10 })).toThrow(/rng/);
  });

  it('names missing, unexpected and mis-shaped keys', () => {
    const base = loadClassifierState('resnet18', file());
    const missing = new Map(base);
    missing.delete('layer2.1.bn2.running_var');
    expect(() => loadClassifierState('resnet18', missing)).toThrow(/missing keys: layer2\.1\.bn2\.running_var/);
    const extra = new Map(base);
    extra.set('layer5.0.conv1.weight', { shape: [1], data: new Float32Array(1) });
    expect(() => loadClassifierState('resnet18', extra)).toThrow(/unexpected keys: layer5\.0\.conv1\.weight/);
    const bad = new Map(base);
    bad.set('layer3.0.conv2.weight', { shape: [256, 256, 1, 1], data: new Float32Array(256 * 256) });
    expect(() => loadClassifierState('resnet18', bad)).toThrow(
      /layer3\.0\.conv2\.weight.*\[256, 256, 1, 1\].*\[256, 256, 3, 3\]/,
    );
    expect(() => loadClassifierState('resnet50', file())).toThrow(/missing keys: .*layer1\.0\.conv3\.weight/);
  });
});

describe('small CNN', () => {
  it('builds, initialises and runs in eval and train mode, weights as inputs', async () => {
    const state = initClassifierState('smallcnn', Rng.fromSeed(1), { numClasses: 5 });
    const built = buildClassifier('smallcnn', { numClasses: 5, weights: 'inputs', mode: 'train' });
    expect(built.weightInputs).toEqual(built.specs.map((s) => s.name));
    const x = counterFill(9, 2 * 3 * 16 * 16, -1, 1);
    const feeds: Record<string, ort.Tensor> = { input: new ort.Tensor('float32', x, [2, 3, 16, 16]) };
    for (const [k, t] of state) feeds[k] = new ort.Tensor('float32', t.data, t.shape);
    const out = await run(built.builder.toBytes(), feeds);
    expect(out.logits?.length).toBe(10);
    expect(out.features?.length).toBe(2 * 64);
    // bn1 running mean after one step from 0: 0.1 · batch mean
    expect(out['bn1.running_mean__updated']?.length).toBe(16);
    const evalBuilt = buildClassifier('smallcnn', { numClasses: 5, state });
    const evalOut = await run(evalBuilt.builder.toBytes(), { input: feeds.input as ort.Tensor });
    expect(Array.from(evalOut.logits ?? []).every(Number.isFinite)).toBe(true);
    expect(goldenPath('resnet')).toMatch(/resnet$/);
  });
});
