/**
 * torchvision `vit_b_16` on tfjs-core ops, with torchvision's state_dict keys and layouts
 * (`conv_proj.weight [768, 3, 16, 16]`, `encoder.layers.encoder_layer_<i>.self_attention.in_proj_weight
 * [2304, 768]`, `heads.head.weight [C, 768]`, …) and torchvision's initialisation. Dropout is 0 in
 * torchvision's ViT-B/16, so train and eval forwards are the same.
 */
import { InvalidArgumentError, type Rng } from '@diffmix/core';
import * as tf from '@tensorflow/tfjs-core';
import type { StateTensor } from '../../types.js';
import { type ForwardContext, gelu, layerNorm, linear, param } from './layers.js';
import type { TensorDef, TfjsModelDef } from './types.js';

export interface VitConfig {
  patchSize: number;
  hidden: number;
  layers: number;
  heads: number;
  mlp: number;
}

export const VIT_B_16: VitConfig = { patchSize: 16, hidden: 768, layers: 12, heads: 12, mlp: 3072 };

const LN_EPS = 1e-6;

type Init =
  | { kind: 'zeros' }
  | { kind: 'ones' }
  | { kind: 'normal'; std: number }
  | { kind: 'trunc_normal'; std: number }
  | { kind: 'uniform'; bound: number };

function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function draw(init: Init, shape: number[], rng: Rng): StateTensor {
  const n = numel(shape);
  const data = new Float32Array(n);
  switch (init.kind) {
    case 'zeros':
      break;
    case 'ones':
      data.fill(1);
      break;
    case 'normal':
      rng.fillNormal(data, 0, init.std);
      break;
    case 'trunc_normal':
      // torch.nn.init.trunc_normal_(std) with its default absolute bounds [−2, 2]: redraw outside.
      for (let i = 0; i < n; i++) {
        let v: number;
        do v = rng.normal() * init.std;
        while (v < -2 || v > 2);
        data[i] = v;
      }
      break;
    case 'uniform':
      for (let i = 0; i < n; i++) data[i] = rng.uniformRange(-init.bound, init.bound);
      break;
  }
  return { shape: [...shape], data };
}

export function vitDef(numClasses: number, imageSize: number, config: VitConfig = VIT_B_16): TfjsModelDef {
  const { patchSize: p, hidden: d, layers, heads, mlp } = config;
  if (imageSize % p !== 0)
    throw new InvalidArgumentError('imageSize', `ViT needs a multiple of the patch size ${p}, got ${imageSize}`);
  if (d % heads !== 0) throw new InvalidArgumentError('heads', `hidden ${d} is not divisible by ${heads} heads`);
  const seq = (imageSize / p) ** 2 + 1;
  const defs: Array<TensorDef & { init: Init }> = [];
  const add = (name: string, shape: number[], init: Init) => defs.push({ name, shape, kind: 'param', init });
  const xavier = (fanOut: number, fanIn: number): Init => ({ kind: 'uniform', bound: Math.sqrt(6 / (fanIn + fanOut)) });
  // state_dict order of torchvision.models.VisionTransformer.
  add('class_token', [1, 1, d], { kind: 'zeros' });
  add('conv_proj.weight', [d, 3, p, p], { kind: 'trunc_normal', std: Math.sqrt(1 / (3 * p * p)) });
  add('conv_proj.bias', [d], { kind: 'zeros' });
  add('encoder.pos_embedding', [1, seq, d], { kind: 'normal', std: 0.02 });
  for (let i = 0; i < layers; i++) {
    const k = `encoder.layers.encoder_layer_${i}`;
    add(`${k}.ln_1.weight`, [d], { kind: 'ones' });
    add(`${k}.ln_1.bias`, [d], { kind: 'zeros' });
    // nn.MultiheadAttention._reset_parameters: xavier in_proj, zero biases; out_proj keeps Linear's U(±1/√in).
    add(`${k}.self_attention.in_proj_weight`, [3 * d, d], xavier(3 * d, d));
    add(`${k}.self_attention.in_proj_bias`, [3 * d], { kind: 'zeros' });
    add(`${k}.self_attention.out_proj.weight`, [d, d], { kind: 'uniform', bound: 1 / Math.sqrt(d) });
    add(`${k}.self_attention.out_proj.bias`, [d], { kind: 'zeros' });
    add(`${k}.ln_2.weight`, [d], { kind: 'ones' });
    add(`${k}.ln_2.bias`, [d], { kind: 'zeros' });
    // MLPBlock: xavier_uniform weights, N(0, 1e-6) biases.
    add(`${k}.mlp.0.weight`, [mlp, d], xavier(mlp, d));
    add(`${k}.mlp.0.bias`, [mlp], { kind: 'normal', std: 1e-6 });
    add(`${k}.mlp.3.weight`, [d, mlp], xavier(d, mlp));
    add(`${k}.mlp.3.bias`, [d], { kind: 'normal', std: 1e-6 });
  }
  add('encoder.ln.weight', [d], { kind: 'ones' });
  add('encoder.ln.bias', [d], { kind: 'zeros' });
  // No pre-logits layer: torchvision zero-initialises the head.
  add('heads.head.weight', [numClasses, d], { kind: 'zeros' });
  add('heads.head.bias', [numClasses], { kind: 'zeros' });
  const byName = new Map(defs.map((t) => [t.name, t]));
  const hd = d / heads;

  const attention = (ctx: ForwardContext, x: tf.Tensor3D, k: string): tf.Tensor3D => {
    const [n, s] = x.shape;
    // in_proj_weight / in_proj_bias (underscore keys, not a Linear submodule): x · Wᵀ + b, then q | k | v.
    const x2 = tf.reshape(x, [n * s, d]) as tf.Tensor2D;
    const w = param(ctx, `${k}.in_proj_weight`) as tf.Tensor2D;
    const qkv = tf.reshape(tf.add(tf.matMul(x2, w, false, true), param(ctx, `${k}.in_proj_bias`)), [n, s, 3 * d]) as tf.Tensor3D;
    const [q, kk, v] = tf.split(qkv, 3, 2).map((t) => tf.transpose(tf.reshape(t, [n, s, heads, hd]), [0, 2, 1, 3])) as [
      tf.Tensor4D,
      tf.Tensor4D,
      tf.Tensor4D,
    ];
    const scores = tf.mul(tf.matMul(q, kk, false, true), 1 / Math.sqrt(hd));
    const out = tf.matMul(tf.softmax(scores, -1), v);
    const merged = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [n, s, d]);
    return linear(ctx, merged, `${k}.out_proj`) as tf.Tensor3D;
  };

  return {
    arch: 'vit_b_16',
    numClasses,
    imageSize,
    tensors: defs.map(({ name, shape, kind }) => ({ name, shape, kind })),
    headKeys: ['heads.head.weight', 'heads.head.bias'],
    initTensor(name: string, rng: Rng) {
      const t = byName.get(name);
      if (!t) throw new Error(`internal: no spec ${name}`);
      return draw(t.init, t.shape, rng);
    },
    forward(ctx: ForwardContext, input: tf.Tensor4D): tf.Tensor2D {
      const n = input.shape[0];
      const w = param(ctx, 'conv_proj.weight') as tf.Tensor4D; // HWIO inside the engine
      // Patchify: NHWC [n, h, w, d] flattens row-major to the same token order as torchvision's NCHW reshape.
      const patches = tf.add(tf.conv2d(input, w, p, 'valid'), param(ctx, 'conv_proj.bias'));
      let x = tf.reshape(patches, [n, seq - 1, d]) as tf.Tensor3D;
      const cls = tf.tile(param(ctx, 'class_token'), [n, 1, 1]) as tf.Tensor3D;
      x = tf.add(tf.concat([cls, x], 1), param(ctx, 'encoder.pos_embedding'));
      for (let i = 0; i < layers; i++) {
        const k = `encoder.layers.encoder_layer_${i}`;
        x = tf.add(x, attention(ctx, layerNorm(ctx, x, `${k}.ln_1`, LN_EPS) as tf.Tensor3D, `${k}.self_attention`));
        const h = linear(ctx, gelu(linear(ctx, layerNorm(ctx, x, `${k}.ln_2`, LN_EPS), `${k}.mlp.0`)), `${k}.mlp.3`);
        x = tf.add(x, h);
      }
      x = layerNorm(ctx, x, 'encoder.ln', LN_EPS) as tf.Tensor3D;
      const clsOut = tf.reshape(tf.slice(x, [0, 0, 0], [n, 1, d]), [n, d]);
      return linear(ctx, clsOut, 'heads.head') as tf.Tensor2D;
    },
  };
}
