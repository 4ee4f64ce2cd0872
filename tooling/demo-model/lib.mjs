/**
 * Shared pieces of the toy-SD training scripts (train-vae.mjs, train-unet.mjs, assemble.mjs): toy
 * image batches drawn fresh from the procedural renderer, the encoder→decoder autoencoder graph, ONNX
 * weight swapping and resumable checkpoints. Runs against the built packages (`npm run build` first).
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatSafetensors, parseSafetensors, Rng } from '@diffmix/core';
import { renderToyImage, toFloatCHW, toyClasses, VAE_NORMALIZATION } from '@diffmix/datasets';
import { loadOnnxModel } from '@diffmix/onnx';
import { createGraphSession, graphFromOnnxModel } from '@diffmix/ort-train';

export const SIZE = 64;
/** The demo's classes (`diffmix demo` defaults to 8: red and green circles × 4 patterns). */
export const NUM_CLASSES = 8;

export const exists = (p) =>
  stat(p).then(
    () => true,
    () => false,
  );

/**
 * `n` toy images of random demo classes as [n, 3, S, S] in [-1, 1], with labels. Image k of batch `b`
 * comes from `Rng.fromSeed(seed).split(tag).split(b).split(k)`: fresh images every step (no fixed
 * training set to overfit), and a resumed run draws the same images as an uninterrupted one.
 */
export function toyBatch(seed, tag, b, n, classes = toyClasses(NUM_CLASSES)) {
  const pixels = new Float32Array(n * 3 * SIZE * SIZE);
  const labels = new Int32Array(n);
  const root = Rng.fromSeed(seed).split(tag).split(b);
  for (let k = 0; k < n; k++) {
    const r = root.split(k);
    const cls = classes[r.int(classes.length)];
    labels[k] = cls.id;
    const img = renderToyImage(cls, r.split('image'), SIZE);
    toFloatCHW(img, VAE_NORMALIZATION, pixels.subarray(k * 3 * SIZE * SIZE, (k + 1) * 3 * SIZE * SIZE));
  }
  return { pixels, labels };
}

export async function loadGraph(file) {
  return graphFromOnnxModel(await loadOnnxModel(file));
}

/**
 * Folds `Pad(x) → Conv` (constant zero padding, as diffusers' Downsample2D exports it) into the Conv's
 * own `pads`: the same function, and ort-train has no gradient rule for Pad. Only the training graph
 * changes; the shipped encoder keeps the exported structure.
 */
export function foldPads(g) {
  const consumers = g.consumers();
  const keep = [];
  const producers = g.producers();
  const constOf = (v) => {
    const t = g.initializers.get(v);
    if (t) return [...t.data].map(Number);
    const p = producers.get(v);
    if (p?.opType === 'Constant') return [...p.attrs.value.v.data].map(Number);
    return undefined;
  };
  let folded = 0;
  for (const n of g.nodes) {
    if (n.opType !== 'Pad') {
      keep.push(n);
      continue;
    }
    const mode = n.attrs.mode?.v ?? 'constant';
    const cs = consumers.get(n.outputs[0]) ?? [];
    const conv = cs.length === 1 && cs[0].node.opType === 'Conv' && cs[0].index === 0 ? cs[0].node : undefined;
    // The exporter computes the pads with a chain of shape ops on constants; diffusers' Downsample2D
    // pads (0, 1, 0, 1) (right and bottom by one). `checkFold` verifies the folded graph numerically.
    const pads = constOf(n.inputs[1]) ?? (/downsamplers/.test(n.name) ? [0, 0, 0, 0, 0, 0, 1, 1] : undefined);
    const cval = n.inputs[2] ? constOf(n.inputs[2]) : [0];
    if (!conv || mode !== 'constant' || !pads || cval?.some((x) => x !== 0))
      throw new Error(`foldPads: cannot fold ${n.name} (mode ${mode}, pads ${pads}, consumer ${conv?.opType})`);
    // pads = [n0, c0, h0, w0, n1, c1, h1, w1] (rank 4); Conv pads = [h0, w0, h1, w1].
    if (pads.length !== 8 || pads[0] || pads[1] || pads[4] || pads[5])
      throw new Error(`foldPads: ${n.name} pads ${pads} touch N/C`);
    const old = conv.attrs.pads?.v ?? [0, 0, 0, 0];
    conv.attrs.pads = { kind: 'ints', v: [old[0] + pads[2], old[1] + pads[3], old[2] + pads[6], old[3] + pads[7]] };
    conv.inputs[0] = n.inputs[0];
    folded++;
  }
  g.nodes = keep;
  return folded;
}

/** Runs the original and the folded graph on the same input: max |Δ| must be float noise. */
export async function checkFold(ort, original, folded, input, dims) {
  const feeds = { [original.inputs[0].name]: new ort.Tensor('float32', input, dims) };
  const a = await (await createGraphSession(ort, original)).run(feeds);
  const b = await (await createGraphSession(ort, folded)).run(feeds);
  const name = original.outputs[0].name;
  const x = a[name].data;
  const y = b[name].data;
  let d = 0;
  let m = 0;
  for (let i = 0; i < x.length; i++) {
    d = Math.max(d, Math.abs(x[i] - y[i]));
    m = Math.max(m, Math.abs(x[i]));
  }
  if (!(d <= 1e-5 * Math.max(1, m))) throw new Error(`foldPads changed the encoder output (max |Δ| ${d}, max |y| ${m})`);
  return d;
}

/** Float32 initializers (the trainable weights) of a graph: name → dims. */
export function floatWeights(g) {
  return [...g.initializers]
    .filter(([, t]) => t.type === 'float32' && t.data.length > 1)
    .map(([name, t]) => ({ name, dims: [...t.dims] }));
}

/**
 * Appends graph `src` into `dst` with every name prefixed (`prefix`), except the inputs in `wire`
 * (src input → existing dst value). Returns src output name → new name.
 */
export function appendGraph(dst, src, prefix, wire) {
  const rename = (v) => (!v ? v : v in wire ? wire[v] : `${prefix}${v}`);
  for (const [k, t] of src.initializers) dst.initializers.set(rename(k), t);
  for (const n of src.nodes) {
    dst.nodes.push({
      ...n,
      name: `${prefix}${n.name}`,
      inputs: n.inputs.map(rename),
      outputs: n.outputs.map(rename),
      attrs: { ...n.attrs },
    });
  }
  for (const i of src.inputs) if (!(i.name in wire)) dst.inputs.push({ ...i, name: rename(i.name) });
  return Object.fromEntries(src.outputs.map((o) => [o.name, rename(o.name)]));
}

/** Rewrites `src` (ONNX file) to `dst` with initializers replaced by `weights` (name → Float32Array). */
export async function saveWithWeights(src, dst, weights) {
  const model = await loadOnnxModel(src);
  await model.loadExternalData();
  for (const [name, data] of weights) {
    const info = model.initializerInfo(name);
    model.setInitializer(name, { data: Float32Array.from(data), dims: info.dims, type: 'float32' });
  }
  await mkdir(path.dirname(dst), { recursive: true });
  await model.save(dst, { externalData: false });
}

/** Checkpoint = params + AdamW state + JSON state, written to a temp folder and renamed (atomic). */
export async function writeCheckpoint(dir, params, optimizer, state) {
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  const tensors = (m) =>
    formatSafetensors(Object.fromEntries([...m].map(([k, v]) => [k, { dtype: 'F32', shape: [v.length], data: v }])));
  await writeFile(path.join(tmp, 'params.safetensors'), tensors(params));
  await writeFile(path.join(tmp, 'optimizer.safetensors'), tensors(optimizer.stateTensors()));
  await writeFile(path.join(tmp, 'state.json'), JSON.stringify({ ...state, optimizer: optimizer.stateJson() }));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
}

export async function readCheckpoint(dir) {
  if (!(await exists(path.join(dir, 'state.json')))) return undefined;
  const state = JSON.parse(await readFile(path.join(dir, 'state.json'), 'utf8'));
  const load = async (f) => {
    const file = path.join(dir, f);
    const st = parseSafetensors(new Uint8Array(await readFile(file)), file);
    return new Map(st.keys().map((k) => [k, st.float32(k, { copy: true }).data]));
  };
  return { state, params: await load('params.safetensors'), optimizerTensors: await load('optimizer.safetensors') };
}

export function parseArgs(argv, defaults) {
  const o = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    const key = m[1].replace(/-(\w)/g, (_, c) => c.toUpperCase());
    const val = m[2] ?? argv[++i];
    if (!(key in defaults)) throw new Error(`unknown option --${m[1]}`);
    o[key] = typeof defaults[key] === 'number' ? Number(val) : val;
  }
  return o;
}
