/**
 * torchvision ResNet-18 / ResNet-50 and the small CNN on tfjs-core ops. The tensor list (keys,
 * shapes, state_dict order, init rules) comes from `@diffmix/ort-train`'s classifier builders, so a
 * state moves between the two engines unchanged and the same seed gives the same initial weights.
 */
import type { Rng } from '@diffmix/core';
import { classifierSpecs, initTensor, type TensorSpec } from '@diffmix/ort-train';
import * as tf from '@tensorflow/tfjs-core';
import { batchNorm, conv2d, type ForwardContext, linear, maxPool, relu } from './layers.js';
import type { TfjsModelDef } from './types.js';

const RESNET = {
  resnet18: { bottleneck: false, layers: [2, 2, 2, 2] },
  resnet50: { bottleneck: true, layers: [3, 4, 6, 3] },
} as const;

/** Small CNN widths: ort-train's default, which the ORT engine uses too. */
export const SMALLCNN_WIDTHS = [16, 32, 64] as const;

function cbr(
  ctx: ForwardContext,
  x: tf.Tensor4D,
  conv: string,
  bn: string,
  stride: number,
  pad: number,
  act = true,
): tf.Tensor4D {
  const y = batchNorm(ctx, conv2d(ctx, x, conv, stride, pad), bn);
  return act ? relu(y) : y;
}

function head(ctx: ForwardContext, x: tf.Tensor4D): tf.Tensor2D {
  // Global average pool over H, W (NHWC), then fc.
  return linear(ctx, tf.mean(x, [1, 2]), 'fc') as tf.Tensor2D;
}

function resnetForward(arch: keyof typeof RESNET, ctx: ForwardContext, input: tf.Tensor4D): tf.Tensor2D {
  const { bottleneck, layers } = RESNET[arch];
  const expansion = bottleneck ? 4 : 1;
  let x = cbr(ctx, input, 'conv1', 'bn1', 2, 3);
  x = maxPool(x, 3, 2, 1);
  let inplanes = 64;
  layers.forEach((blocks, li) => {
    const planes = 64 * 2 ** li;
    for (let bi = 0; bi < blocks; bi++) {
      const stride = bi === 0 && li > 0 ? 2 : 1;
      const k = `layer${li + 1}.${bi}`;
      let y: tf.Tensor4D;
      if (!bottleneck) {
        y = cbr(ctx, x, `${k}.conv1`, `${k}.bn1`, stride, 1);
        y = cbr(ctx, y, `${k}.conv2`, `${k}.bn2`, 1, 1, false);
      } else {
        // torchvision Bottleneck v1.5: the stride sits on the 3×3 conv.
        y = cbr(ctx, x, `${k}.conv1`, `${k}.bn1`, 1, 0);
        y = cbr(ctx, y, `${k}.conv2`, `${k}.bn2`, stride, 1);
        y = cbr(ctx, y, `${k}.conv3`, `${k}.bn3`, 1, 0, false);
      }
      const identity =
        stride !== 1 || inplanes !== planes * expansion
          ? cbr(ctx, x, `${k}.downsample.0`, `${k}.downsample.1`, stride, 0, false)
          : x;
      x = relu(tf.add(y, identity));
      inplanes = planes * expansion;
    }
  });
  return head(ctx, x);
}

function smallCnnForward(ctx: ForwardContext, input: tf.Tensor4D): tf.Tensor2D {
  let x = input;
  SMALLCNN_WIDTHS.forEach((_, i) => {
    x = cbr(ctx, x, `conv${i + 1}`, `bn${i + 1}`, 1, 1);
    if (i < SMALLCNN_WIDTHS.length - 1) x = maxPool(x, 2, 2, 0);
  });
  return head(ctx, x);
}

function fromSpecs(
  arch: 'smallcnn' | 'resnet18' | 'resnet50',
  numClasses: number,
  imageSize: number,
  forward: TfjsModelDef['forward'],
): TfjsModelDef {
  const specs: TensorSpec[] = classifierSpecs(arch, { numClasses, widths: [...SMALLCNN_WIDTHS] });
  const byName = new Map(specs.map((s) => [s.name, s]));
  return {
    arch,
    numClasses,
    imageSize,
    tensors: specs.map((s) => ({ name: s.name, shape: [...s.shape], kind: s.kind })),
    headKeys: ['fc.weight', 'fc.bias'],
    initTensor(name: string, rng: Rng) {
      const spec = byName.get(name);
      if (!spec) throw new Error(`internal: no spec ${name}`);
      return initTensor(spec, rng);
    },
    forward,
  };
}

export function resnetDef(arch: 'resnet18' | 'resnet50', numClasses: number, imageSize: number): TfjsModelDef {
  return fromSpecs(arch, numClasses, imageSize, (ctx, x) => resnetForward(arch, ctx, x));
}

export function smallCnnDef(numClasses: number, imageSize: number): TfjsModelDef {
  return fromSpecs('smallcnn', numClasses, imageSize, smallCnnForward);
}
