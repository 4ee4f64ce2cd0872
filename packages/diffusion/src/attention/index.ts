/**
 * Cross-attention maps: the attn2 Softmax of the exported UNet exposed as extra graph outputs,
 * aggregated per prompt token over heads, layers of one resolution and denoising steps, and drawn
 * as heat-map overlays (Diff-Mix supplementary Fig. 9).
 */
export {
  type AggregatedAttention,
  AttentionAccumulator,
  type AttentionTensor,
  type LayerAttention,
  type ResolutionChoice,
  accumulateHeadSums,
  attentionLayout,
  averageLayers,
  layerGrid,
  layerResolutions,
  normalizeMap,
  tokenPlane,
  upsampleBilinear,
} from './aggregate.js';
export { type AttentionCall, AttentionCapture, type AttentionCaptureOptions } from './capture.js';
export { type ColormapName, blendImages, colormap, heatmapImage } from './colormap.js';
export { type CrossAttentionLayer, type FindCrossAttentionOptions, exposeCrossAttention, findCrossAttention } from './graph.js';
export {
  type AttentionJob,
  type AttentionMapOptions,
  type AttentionMapResult,
  type AttentionSheetOptions,
  type RenderAttentionMapsOptions,
  type RenderAttentionMapsResult,
  type TokenAttentionMap,
  computeAttentionMaps,
  renderAttentionMaps,
  renderAttentionSheet,
  tokenHeatmap,
} from './render.js';
export { type SelectedToken, type TokenSelector, type TokenText, selectTokens } from './tokens.js';
