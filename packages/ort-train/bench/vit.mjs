// ViT training throughput (used by bench/run.mjs): a tiny ViT (image 32, patch 8, 2 layers, width 32,
// 4 heads; batch 16) and ViT-B/16 at 224² (batch 2; skipped with DIFFMIX_BENCH_QUICK). One training
// step = forward + mean cross-entropy + every gradient (autodiff graph, weights as initializers,
// static batch); baseline in the same run, interleaved: the forward alone on the same batch.

import { Rng } from '@diffmix/core';
import * as ort from 'onnxruntime-node';

function addLoss(lib, g, logits, batch, classes) {
  const target = new Float32Array(batch * classes);
  for (let i = 0; i < batch; i++) target[i * classes + (i % classes)] = 1;
  g.addInitializer('target', lib.tensorOf('float32', [batch, classes], target));
  const logp = g.node('LogSoftmax', [logits], { axis: -1 });
  const sum = g.node('ReduceSum', [g.node('Mul', [logp, 'target'])], { keepdims: 0 });
  const loss = g.node('Div', [sum, g.scalar(-batch, 'float32')], {}, { output: 'loss' });
  g.addOutput(loss, 'float32', []);
  return loss;
}

export async function vitBench(lib, { quick, timeInterleaved, cpuOf, sessionOptions }) {
  const configs = [
    {
      label: 'vit-tiny',
      batch: 16,
      reps: 8,
      config: { imageSize: 32, patchSize: 8, hiddenDim: 32, numLayers: 2, numHeads: 4, mlpDim: 64, numClasses: 10 },
    },
  ];
  if (!quick) configs.push({ label: 'vit_b_16', batch: 2, reps: 2, config: { ...lib.VIT_B_16, numClasses: 200 } });
  const out = [];
  for (const { label, batch, reps, config } of configs) {
    const state = lib.initVitState(config, Rng.fromSeed(0));
    const built = lib.buildVit(config, { state, batch });
    const g = built.graph.clone();
    const loss = addLoss(lib, g, built.logits, batch, config.numClasses);
    const tg = lib.buildGradientGraph(g, { loss, wrt: built.params });
    const opts = { sessionOptions };
    const train = await lib.createGraphSession(ort, tg.graph, opts);
    const fwd = await lib.createGraphSession(ort, built.graph, opts);
    const s = config.imageSize;
    const x = new ort.Tensor('float32', Rng.fromSeed(1).fillNormal(new Float32Array(batch * 3 * s * s)), [batch, 3, s, s]);
    const wall = await timeInterleaved(
      [
        { session: train, feeds: { [built.input]: x } },
        { session: fwd, feeds: { [built.input]: x } },
      ],
      reps,
    );
    const [stepMs, fwdMs] = wall;
    const [stepCpu, fwdCpu] = cpuOf(wall);
    out.push({
      model: label,
      size: s,
      batch,
      trainStepMs: +stepMs.toFixed(1),
      trainImagesPerSecond: +((batch * 1000) / stepMs).toFixed(2),
      evalForwardMs: +fwdMs.toFixed(1),
      stepOverForwardRatio: +(stepMs / fwdMs).toFixed(2),
      trainStepCpuMs: +stepCpu.toFixed(1),
      evalForwardCpuMs: +fwdCpu.toFixed(1),
      stepOverForwardCpuRatio: +(stepCpu / fwdCpu).toFixed(2),
      trainGraphNodes: tg.graph.nodes.length,
    });
    await train.release?.();
    await fwd.release?.();
  }
  return out;
}
