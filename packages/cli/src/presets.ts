/**
 * The paper's settings as presets (`--preset <name>`): per command, the option values the official
 * Diff-Mix code used (see shared reference notes: sampling 25 DPM-Solver++ steps, guidance 7.5,
 * strengths {0.5, 0.7, 0.9}, 5× multiplier; γ 0.5 few-shot / 0.8 conventional; c 0.9; training
 * learning rates per dataset). Commands that do not exist yet simply ignore their section.
 */
export interface Preset {
  description: string;
  commands: {
    demo?: Record<string, unknown>;
    sample?: Record<string, unknown>;
    filter?: Record<string, unknown>;
    train?: Record<string, unknown>;
    finetune?: Record<string, unknown>;
  };
}

const diffMixSampling = { strategy: 'diff-mix', strengths: [0.5, 0.7, 0.9], multiplier: 5, steps: 25, guidanceScale: 7.5, size: 512 };
const fineTune = { mode: 'ti+db', rank: 10, lr: 5e-5, weightDecay: 1e-2, maxSteps: 35000, batchSize: 8, resolution: 512 };

export const PRESETS = {
  'cub-resnet50-448': {
    description: 'CUB-200-2011, conventional setting: ResNet-50 @448, Diff-Mix with γ = 0.8, c = 0.9, p = 0.1',
    commands: {
      finetune: fineTune,
      sample: { ...diffMixSampling, gamma: 0.8, scaler: 0.9 },
      filter: { dropFraction: 0.1 },
      train: { arch: 'resnet50', resolution: 448, lr: 0.025, batchSize: 64, epochs: 128, weightDecay: 5e-4, syntheticProbability: 0.1 },
    },
  },
  'cub-vitb16-384': {
    description: 'CUB-200-2011, conventional setting: ViT-B/16 @384',
    commands: {
      finetune: fineTune,
      sample: { ...diffMixSampling, gamma: 0.8, scaler: 0.9 },
      filter: { dropFraction: 0.1 },
      train: { arch: 'vit_b_16', resolution: 384, lr: 1e-3, batchSize: 32, epochs: 100, weightDecay: 5e-4, syntheticProbability: 0.1 },
    },
  },
  'cub-fewshot-5': {
    description: 'CUB-200-2011, 5-shot: ResNet-50 @224, γ = 0.5, p = 0.3',
    commands: {
      finetune: { ...fineTune, shots: 5 },
      sample: { ...diffMixSampling, gamma: 0.5, scaler: 0.9, shots: 5 },
      filter: { dropFraction: 0.1 },
      train: { arch: 'resnet50', resolution: 224, lr: 0.05, batchSize: 256, shots: 5, syntheticProbability: 0.3 },
    },
  },
  'cub-lt-100': {
    description: 'CUB-LT, imbalance factor 100: 10× multiplier, c = 1.0, re-weighted replacement 0.5',
    commands: {
      finetune: fineTune,
      sample: { ...diffMixSampling, multiplier: 10, gamma: 0.8, scaler: 1 },
      filter: { dropFraction: 0.1 },
      train: { arch: 'resnet50', resolution: 224, lr: 0.005, batchSize: 128, epochs: 200, weightDecay: 2e-4, syntheticProbability: 0.5, imbalanceFactor: 100 },
    },
  },
} satisfies Record<string, Preset>;

export type PresetName = keyof typeof PRESETS;
