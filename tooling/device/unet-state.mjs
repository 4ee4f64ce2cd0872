// Writes the diffusers-keyed weights of an exported UNet ONNX as safetensors (ort-train's
// unetStateFromGraph), e.g. to load them into tooling/device/torch_sd_unet.py for a cross-check:
//   node tooling/device/unet-state.mjs <unet/model.onnx> <unet/config.json> <out.safetensors>
// Run from the repository root after `npm run build`.
import { readFileSync, writeFileSync } from 'node:fs';
import { formatSafetensors } from '@diffmix/core';
import { loadOnnxModel } from '@diffmix/onnx';
import { graphFromOnnxModel, unetConfigFromDiffusers, unetStateFromGraph } from '@diffmix/ort-train';

const [model, configPath, out] = process.argv.slice(2);
if (!out) {
  console.error('usage: node tooling/device/unet-state.mjs <unet/model.onnx> <unet/config.json> <out.safetensors>');
  process.exit(2);
}
const config = unetConfigFromDiffusers(JSON.parse(readFileSync(configPath, 'utf8')), configPath);
const state = unetStateFromGraph(await graphFromOnnxModel(await loadOnnxModel(model)), config, model);
writeFileSync(out, formatSafetensors(new Map([...state].map(([k, t]) => [k, { data: t.data, shape: t.shape }]))));
console.log(`${state.size} tensors → ${out}`);
