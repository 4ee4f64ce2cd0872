export {
  type GenerationJob,
  type GenerationOptions,
  type GenerationResult,
  type Img2ImgJob,
  type InjectedNoise,
  type StepTrace,
  img2img,
  txt2img,
} from './generate.js';
export { applyGuidance, divide, floatHWCToRgb, modelOutputToFloatHWC, rgbToModelInput, sampleLatents } from './tensor-math.js';
