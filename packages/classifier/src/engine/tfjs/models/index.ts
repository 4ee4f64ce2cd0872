import { InvalidArgumentError } from '@diffmix/core';
import type { ClassifierArchName } from '../../types.js';
import { resnetDef, smallCnnDef } from './resnet.js';
import type { TfjsModelDef } from './types.js';
import { type VitConfig, vitDef } from './vit.js';

export type { BatchStats, ForwardContext } from './layers.js';
export { SMALLCNN_WIDTHS } from './resnet.js';
export type { TensorDef, TfjsModelDef } from './types.js';
export { VIT_B_16, type VitConfig } from './vit.js';

export interface ModelDefOptions {
  /** ViT only: another size than B/16 (tests use a tiny one). */
  vit?: VitConfig;
}

/** The tfjs definition of an architecture. */
export function modelDef(
  arch: ClassifierArchName,
  numClasses: number,
  imageSize: number,
  options: ModelDefOptions = {},
): TfjsModelDef {
  if (!Number.isInteger(numClasses) || numClasses < 1)
    throw new InvalidArgumentError('numClasses', `must be a positive integer, got ${numClasses}`);
  if (!Number.isInteger(imageSize) || imageSize < 1)
    throw new InvalidArgumentError('imageSize', `must be a positive integer, got ${imageSize}`);
  switch (arch) {
    case 'smallcnn':
      return smallCnnDef(numClasses, imageSize);
    case 'resnet18':
    case 'resnet50':
      return resnetDef(arch, numClasses, imageSize);
    case 'vit_b_16':
      return vitDef(numClasses, imageSize, options.vit);
    default:
      throw new InvalidArgumentError(
        'arch',
        `unknown architecture ${JSON.stringify(arch)} (smallcnn, resnet18, resnet50, vit_b_16)`,
      );
  }
}
