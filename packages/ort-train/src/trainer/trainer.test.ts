import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '@diffmix/core';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { crossEntropy, crossEntropyGraph } from '../losses/losses.js';
import { attr, GraphBuilder } from '../models/builder.js';
import type { TensorMap } from '../models/state.js';
import { AdamW, type Optimizer, SGD } from '../optim/optimizers.js';
import { cosineWithWarmup } from '../optim/schedules.js';
import { ortStepFunction } from './ort-step.js';
import { type StepFunction, Trainer } from './trainer.js';

// A linear softmax classifier: logits = x·Wᵀ + b, soft-target CE with official label smoothing 0.1.
const D = 6;
const C = 4;
const N = 8;
const EPS = 0.1;

interface Batch {
  x: Float32Array;
  y: Float32Array;
}

/** A batch drawn from the trainer's RNG (so resuming must restore the RNG too). */
function drawBatch(rng: Rng): Batch {
  const x = rng.fillNormal(new Float32Array(N * D));
  const y = new Float32Array(N * C);
  for (let i = 0; i < N; i++) {
    const a = rng.int(C);
    const b = rng.int(C);
    y[i * C + a] = (y[i * C + a] as number) + 0.7;
    y[i * C + b] = (y[i * C + b] as number) + 0.3;
  }
  return { x, y };
}

/** Hand-written gradient: dL/dW = dzᵀ·x, dL/db = Σ_n dz. */
const linearStep: StepFunction<Batch> = (params, { x, y }) => {
  const W = params.get('fc.weight') as Float32Array;
  const bias = params.get('fc.bias') as Float32Array;
  const z = new Float32Array(N * C);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++) {
      let s = bias[c] as number;
      for (let d = 0; d < D; d++) s += (x[n * D + d] as number) * (W[c * D + d] as number);
      z[n * C + c] = s;
    }
  const { loss, grad: dz } = crossEntropy(z, y, C, { epsilon: EPS });
  const gW = new Float32Array(C * D);
  const gb = new Float32Array(C);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++) {
      const g = dz[n * C + c] as number;
      gb[c] = (gb[c] as number) + g;
      for (let d = 0; d < D; d++) gW[c * D + d] = (gW[c * D + d] as number) + g * (x[n * D + d] as number);
    }
  return {
    loss,
    grads: new Map([
      ['fc.weight', gW],
      ['fc.bias', gb],
    ]),
  };
};

function freshParams(seed: number): TensorMap {
  const rng = Rng.fromSeed(seed);
  return new Map([
    ['fc.weight', { shape: [C, D], data: Float32Array.from({ length: C * D }, () => rng.uniformRange(-0.4, 0.4)) }],
    ['fc.bias', { shape: [C], data: Float32Array.from({ length: C }, () => rng.uniformRange(-0.4, 0.4)) }],
  ]);
}

type OptKind = 'sgd' | 'adamw';
function makeTrainer(kind: OptKind, stepFn: StepFunction<Batch>, paramSeed = 1, total = 10): Trainer<Batch> {
  const groups = [
    { params: ['fc.weight'], lr: 0.5, weightDecay: 5e-4 },
    { params: ['fc.bias'], lr: 0.1, weightDecay: 0 },
  ];
  const optimizer: Optimizer = kind === 'sgd' ? new SGD(groups, { lr: 0.5, momentum: 0.9 }) : new AdamW(groups, { lr: 0.05 });
  return new Trainer<Batch>({
    params: freshParams(paramSeed),
    optimizer,
    stepFn,
    schedule: cosineWithWarmup({ totalSteps: total, warmupSteps: 2 }),
    clip: { maxNorm: 0.5 },
    rng: 42,
  });
}

async function train(t: Trainer<Batch>, steps: number): Promise<number[]> {
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) losses.push((await t.trainStep(drawBatch(t.rng))).loss);
  return losses;
}

function bytesOf(t: Trainer<Batch>): Uint8Array[] {
  return [...t.params.values()].map((p) => new Uint8Array(p.data.buffer.slice(0)));
}

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ort-train-ckpt-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe.each(['sgd', 'adamw'] as const)('Trainer (%s, hand-written gradient)', (kind) => {
  it('learns: the loss falls', async () => {
    const t = makeTrainer(kind, linearStep, 1, 60);
    const losses = await train(t, 60);
    const first = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const last = losses.slice(-5).reduce((a, b) => a + b) / 5;
    expect(last).toBeLessThan(first);
  });

  it('train k, save, resume, continue == uninterrupted (bit-identical)', async () => {
    const whole = makeTrainer(kind, linearStep);
    const wholeLosses = await train(whole, 7);

    const first = makeTrainer(kind, linearStep);
    const a = await train(first, 3);
    first.epoch = 1;
    first.metadata = { best: 0.5 };
    const dir = await tempDir();
    await first.save(dir);

    const resumed = makeTrainer(kind, linearStep, 999); // different initial weights: must be overwritten
    await resumed.load(dir);
    expect(resumed.step).toBe(3);
    expect(resumed.epoch).toBe(1);
    expect(resumed.metadata).toEqual({ best: 0.5 });
    const b = await train(resumed, 4);
    expect([...a, ...b]).toEqual(wholeLosses);
    expect(bytesOf(resumed)).toEqual(bytesOf(whole));
    expect(resumed.optimizer.stateTensors()).toEqual(whole.optimizer.stateTensors());
  });
});

describe('checkpoint safety', () => {
  it('refuses a checkpoint whose files do not match trainer.json, or another model', async () => {
    const t = makeTrainer('sgd', linearStep);
    await train(t, 2);
    const dir = await tempDir();
    await t.save(dir);
    const other = makeTrainer('adamw', linearStep);
    await expect(other.load(dir)).rejects.toThrow(/sgd/);
    const bytes = new Uint8Array(await readFile(join(dir, 'model.safetensors')));
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    await writeFile(join(dir, 'model.safetensors'), bytes);
    await expect(makeTrainer('sgd', linearStep).load(dir)).rejects.toThrow(/sha256/);
  });

  it('reports the lr of each group and the gradient norm', async () => {
    const t = makeTrainer('sgd', linearStep);
    const r0 = await t.trainStep(drawBatch(t.rng));
    expect(r0.lr).toEqual([0, 0]); // warmup starts at 0
    const r1 = await t.trainStep(drawBatch(t.rng));
    expect(r1.lr[0]).toBeCloseTo(0.25, 12);
    expect(r1.lr[1]).toBeCloseTo(0.05, 12);
    expect(r1.gradNorm).toBeGreaterThan(0);
  });
});

/** The same model as an ONNX graph with loss and a hand-written backward (Softmax, Gemm, ReduceSum). */
function linearGradGraph(): Uint8Array {
  const g = new GraphBuilder();
  const x = g.input('x', [N, D]);
  const y = g.input('y', [N, C]);
  const W = g.input('fc.weight', [C, D]);
  const b = g.input('fc.bias', [C]);
  const z = g.op('Gemm', [x, W, b], { transB: attr.int(1) });
  const loss = crossEntropyGraph(g, z, y, C, { epsilon: EPS });
  g.output(loss, []);
  // dz = (softmax(z)·Σt − t) / N, t = ε/(C−1) + (1−ε)·y
  const t = g.op('Add', [g.op('Mul', [y, g.constF32('keep', [1 - EPS], [])]), g.constF32('floor', [EPS / (C - 1)], [])]);
  const tsum = g.op('ReduceSum', [t, g.constI64('ax1', [1])], { keepdims: attr.int(1) });
  const p = g.op('Softmax', [z], { axis: attr.int(1) });
  const dz = g.op('Div', [g.op('Sub', [g.op('Mul', [p, tsum]), t]), g.constF32('n', [N], [])]);
  g.node('Gemm', [dz, x], { transA: attr.int(1) }, { outputs: ['grad_fc.weight'] });
  g.node('ReduceSum', [dz, g.constI64('ax0', [0])], { keepdims: attr.int(0) }, { outputs: ['grad_fc.bias'] });
  g.output('grad_fc.weight', [C, D]);
  g.output('grad_fc.bias', [C]);
  return g.toBytes();
}

describe('Trainer with an ONNX Runtime step function', () => {
  it('matches the hand-written TypeScript gradient, and resumes bit-identically', async () => {
    const session = await ort.InferenceSession.create(linearGradGraph());
    const stepFn = ortStepFunction<Batch>({
      session,
      Tensor: ort.Tensor,
      shapes: new Map([
        ['fc.weight', [C, D]],
        ['fc.bias', [C]],
      ]),
      feeds: (batch) => ({ x: new ort.Tensor('float32', batch.x, [N, D]), y: new ort.Tensor('float32', batch.y, [N, C]) }),
      loss: 'loss',
      grads: new Map([
        ['fc.weight', 'grad_fc.weight'],
        ['fc.bias', 'grad_fc.bias'],
      ]),
    });
    const viaOrt = makeTrainer('sgd', stepFn);
    const viaTs = makeTrainer('sgd', linearStep);
    const lo = await train(viaOrt, 5);
    const lt = await train(viaTs, 5);
    for (const [i, l] of lo.entries()) expect(Math.abs(l - (lt[i] as number))).toBeLessThan(1e-5);
    const [wo, wt] = [viaOrt.params.get('fc.weight')?.data, viaTs.params.get('fc.weight')?.data];
    for (let i = 0; i < C * D; i++) expect(Math.abs((wo?.[i] ?? 0) - (wt?.[i] ?? 0))).toBeLessThan(1e-5);

    const dir = await tempDir();
    await viaOrt.save(dir);
    const more = await train(viaOrt, 3);
    const resumed = makeTrainer('sgd', stepFn, 7);
    await resumed.load(dir);
    expect(await train(resumed, 3)).toEqual(more);
    expect(bytesOf(resumed)).toEqual(bytesOf(viaOrt));
    await session.release();
  });
});
