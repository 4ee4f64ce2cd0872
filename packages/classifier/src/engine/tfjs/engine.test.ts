import { InvalidArgumentError, ModelFormatError, Rng } from '@diffmix/core';
import { classifierSpecs, initClassifierState } from '@diffmix/ort-train';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import type { ClassifierEngine, ModelState, OptimizerSpec } from '../types.js';
import { BackendUnavailableError, createTfjsEngine, TFJS_BACKENDS, tfjsModelDef } from './index.js';

const C = 4;
const SIDE = 16;
const SGD: OptimizerSpec = { kind: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4 };

function batch(seed: number, n = 4) {
  const rng = Rng.fromSeed(seed);
  const images = rng.fillNormal(new Float32Array(n * 3 * SIDE * SIDE));
  const targets = new Float32Array(n * C);
  for (let i = 0; i < n; i++) targets[i * C + rng.int(C)] = 1;
  return { images, targets, n };
}

async function smallCnn(seed = 3, weights?: ModelState, optimizer: OptimizerSpec = SGD): Promise<ClassifierEngine> {
  const e = await createTfjsEngine({ backend: 'cpu' });
  await e.init({ arch: 'smallcnn', numClasses: C, imageSize: SIDE, seed, ...(weights ? { weights } : {}) }, optimizer);
  return e;
}

describe('tfjs engine', () => {
  it('reports the backend and why', async () => {
    const e = await createTfjsEngine({ backend: 'cpu' });
    expect(e.info).toMatchObject({ name: 'tfjs', reason: 'forced by backend cpu' });
    expect(e.info.backend).toMatch(/^tfjs-backend-cpu 4\.22\.0/);
    const auto = await createTfjsEngine();
    expect(auto.info.reason).toMatch(/^first backend that initialised/);
    // Put the suite back on the cpu backend whatever auto found.
    await createTfjsEngine({ backend: 'cpu' });
  });

  it('a forced backend that cannot run is a BackendUnavailableError with the install hint', async () => {
    let tfjsNode = true;
    try {
      const name = '@tensorflow/tfjs-node';
      await import(name);
    } catch {
      tfjsNode = false;
    }
    if (!tfjsNode) {
      const err = await createTfjsEngine({ backend: 'tensorflow' }).catch((e: unknown) => e);
      expect(BackendUnavailableError.isInstance(err)).toBe(true);
      expect(String(err)).toMatch(/npm install @tensorflow\/tfjs-node@4\.22\.0/);
    }
    await expect(createTfjsEngine({ backend: 'tpu' as never })).rejects.toThrow(InvalidArgumentError);
    await expect(createTfjsEngine({ device: 'quantum' })).rejects.toThrow(/unknown device/);
    expect(TFJS_BACKENDS).toEqual(['tensorflow-gpu', 'tensorflow', 'webgpu', 'cpu']);
    await createTfjsEngine({ backend: 'cpu' });
  });

  it('initialises from the seed exactly as ort-train / the ORT engine do (Rng.fromSeed(seed).split("init"))', async () => {
    const e = await smallCnn(7);
    const got = (await e.getState()).model;
    const ref = initClassifierState('smallcnn', Rng.fromSeed(7).split('init'), { numClasses: C });
    expect([...got.keys()]).toEqual([...ref.keys()]);
    for (const [k, t] of ref) {
      expect(got.get(k)?.shape, k).toEqual(t.shape);
      expect(got.get(k)?.data, k).toEqual(t.data);
    }
    await e.dispose();
  });

  it('does not leak tensors across train steps and predictions', async () => {
    const e = await smallCnn();
    const b = batch(1);
    await e.trainStep(b, 0.1);
    await e.predict(b.images, b.n);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      await e.trainStep(batch(i + 2), 0.1);
      await e.predict(b.images, b.n);
      await e.getState();
    }
    expect(tf.memory().numTensors).toBe(before);
    await e.dispose();
    expect(tf.memory().numTensors).toBeLessThan(before);
  });

  it('getState / setState round-trips: the next step is identical (checkpoint resume)', async () => {
    for (const opt of [SGD, { kind: 'adamw', lr: 1e-3, weightDecay: 0.05 } as OptimizerSpec]) {
      const a = await smallCnn(5, undefined, opt);
      await a.trainStep(batch(1), 0.05);
      await a.trainStep(batch(2), 0.05);
      const saved = await a.getState();
      expect(saved.step).toBe(2);
      const b = await smallCnn(99, undefined, opt); // other seed: everything must come from the state
      await b.setState(saved);
      const la = await a.trainStep(batch(3), 0.04);
      const lb = await b.trainStep(batch(3), 0.04);
      expect(lb.loss).toBe(la.loss);
      const sa = await a.getState();
      const sb = await b.getState();
      for (const [k, t] of sa.model) expect(sb.model.get(k)?.data, k).toEqual(t.data);
      for (const [k, t] of sa.optimizer) expect(sb.optimizer.get(k)?.data, k).toEqual(t.data);
      await a.dispose();
      await b.dispose();
    }
  });

  it('learns a separable toy problem (loss falls, predictions follow the labels)', async () => {
    const e = await smallCnn(1, undefined, { kind: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0 });
    // Class c = a bright square in quadrant c.
    const n = 8;
    const images = new Float32Array(n * 3 * SIDE * SIDE);
    const targets = new Float32Array(n * C);
    for (let i = 0; i < n; i++) {
      const c = i % C;
      targets[i * C + c] = 1;
      for (let ch = 0; ch < 3; ch++)
        for (let y = 0; y < SIDE / 2; y++)
          for (let x = 0; x < SIDE / 2; x++) {
            const yy = y + (c >> 1) * (SIDE / 2);
            const xx = x + (c & 1) * (SIDE / 2);
            images[((i * 3 + ch) * SIDE + yy) * SIDE + xx] = 2;
          }
    }
    const first = (await e.trainStep({ images, targets, n }, 0.1)).loss;
    let last = first;
    for (let s = 0; s < 14; s++) last = (await e.trainStep({ images, targets, n }, 0.1)).loss;
    expect(last).toBeLessThan(first * 0.5);
    const logits = await e.predict(images, n);
    let correct = 0;
    for (let i = 0; i < n; i++) {
      const row = Array.from(logits.subarray(i * C, (i + 1) * C));
      if (row.indexOf(Math.max(...row)) === i % C) correct++;
    }
    expect(correct).toBe(n);
    await e.dispose();
  });

  it('replaces the head when the class count differs; other mismatches are ModelFormatErrors naming the key', async () => {
    const thousand = initClassifierState('smallcnn', Rng.fromSeed(2), { numClasses: 1000 });
    const e = await smallCnn(3, thousand);
    const st = (await e.getState()).model;
    expect(st.get('fc.weight')?.shape).toEqual([C, 64]);
    expect(st.get('conv2.weight')?.data).toEqual(thousand.get('conv2.weight')?.data);
    await e.dispose();

    const bad = new Map(thousand);
    bad.set('conv2.weight', { shape: [32, 16, 5, 5], data: new Float32Array(32 * 16 * 25) });
    await expect(smallCnn(3, bad)).rejects.toThrow(/conv2\.weight.*\[32, 16, 5, 5\]/);
    const missing = new Map(thousand);
    missing.delete('bn2.running_var');
    const err = await smallCnn(3, missing).catch((x: unknown) => x);
    expect(ModelFormatError.isInstance(err)).toBe(true);
    expect(String(err)).toMatch(/missing keys: bn2\.running_var/);
  });

  it('rejects bad inputs and states with named errors', async () => {
    const e = await smallCnn();
    await expect(e.predict(new Float32Array(10), 1)).rejects.toThrow(/expected 1×3×16×16/);
    await expect(e.trainStep({ ...batch(1), targets: new Float32Array(3) }, 0.1)).rejects.toThrow(InvalidArgumentError);
    const st = await e.getState();
    st.optimizer.set('exp_avg/fc.weight', { shape: [C, 64], data: new Float32Array(C * 64) });
    await expect(e.setState(st)).rejects.toThrow(/unexpected slot "exp_avg\/fc.weight" for sgd/);
    await e.dispose();
  });

  it('parameter counts match torchvision (resnet18 11,689,512; resnet50 25,557,032; vit_b_16 86,567,656)', () => {
    const count = (arch: 'resnet18' | 'resnet50' | 'vit_b_16', side: number) =>
      tfjsModelDef(arch, 1000, side)
        .tensors.filter((t) => t.kind === 'param')
        .reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    expect(count('resnet18', 224)).toBe(11_689_512);
    expect(count('resnet50', 224)).toBe(25_557_032);
    expect(count('vit_b_16', 224)).toBe(86_567_656);
    // The same keys, shapes and order as ort-train's builders (so states move between engines).
    const spec = classifierSpecs('resnet18', { numClasses: 1000 });
    expect(tfjsModelDef('resnet18', 1000, 224).tensors.map((t) => [t.name, t.shape])).toEqual(spec.map((s) => [s.name, s.shape]));
  });
});
