import type { Rng } from '@diffmix/core';
import type * as tf from '@tensorflow/tfjs-core';
import type { ClassifierArchName, StateTensor } from '../../types.js';
import type { ForwardContext } from './layers.js';

/** One tensor of a model: torchvision key, torchvision shape, trained (`param`) or a BatchNorm `buffer`. */
export interface TensorDef {
  name: string;
  shape: number[];
  kind: 'param' | 'buffer';
}

/** An architecture on tfjs: its tensors (state_dict order) and its forward. */
export interface TfjsModelDef {
  arch: ClassifierArchName;
  numClasses: number;
  imageSize: number;
  tensors: TensorDef[];
  /** Classification-head keys, re-initialised when loaded weights have another class count. */
  headKeys: string[];
  /** A fresh tensor as torchvision initialises it. */
  initTensor(name: string, rng: Rng): StateTensor;
  /** NHWC images → logits `[n, numClasses]`. */
  forward(ctx: ForwardContext, x: tf.Tensor4D): tf.Tensor2D;
}
