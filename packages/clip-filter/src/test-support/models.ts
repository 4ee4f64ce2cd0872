/**
 * Test models derived from the golden tiny CLIP with `@diffmix/onnx` (test-only, not exported):
 * a single graph with `logits_per_image` (optimum's CLIPModel layout), a vision graph with a
 * narrower projection, a vision graph without its projection — and folders holding them.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatSafetensors } from '@diffmix/core';
import { loadOnnxModel, type OnnxModel, type OnnxProto, onnx } from '@diffmix/onnx';
import { TINY_CLIP } from './golden.js';

type Graph = OnnxProto.GraphProto;
type Node = OnnxProto.NodeProto;

const CONFIG_FILES = [
  'vocab.json',
  'merges.txt',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'preprocessor_config.json',
  'config.json',
];

/** Copies the tokenizer and configs of tiny-clip (and logit_scale.json unless told not to) into `dir`. */
export async function copyClipConfigs(dir: string, options: { logitScaleJson?: boolean } = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const f of CONFIG_FILES) await copyFile(path.join(TINY_CLIP, f), path.join(dir, f));
  if (options.logitScaleJson !== false)
    await copyFile(path.join(TINY_CLIP, 'logit_scale.json'), path.join(dir, 'logit_scale.json'));
}

function inline(model: OnnxModel): Uint8Array {
  return model.serialize({ externalData: 'inline' }).model;
}

/** Renames every value, node and initializer of a graph with `prefix`, except graph inputs/outputs; symbolic dims too. */
function prefixGraph(g: Graph, prefix: string): void {
  const keep = new Set([...g.input.map((v) => v.name as string), ...g.output.map((v) => v.name as string)]);
  const map = (n: string | null | undefined) => (!n || keep.has(n) ? (n ?? '') : `${prefix}${n}`);
  for (const node of g.node as Node[]) {
    node.name = `${prefix}${node.name ?? ''}`;
    node.input = node.input.map(map);
    node.output = node.output.map(map);
  }
  for (const t of g.initializer) t.name = map(t.name);
  g.valueInfo = [];
  for (const v of [...g.input, ...g.output]) {
    for (const d of v.type?.tensorType?.shape?.dim ?? []) if (d.dimParam) d.dimParam = `${prefix}${d.dimParam}`;
  }
}

/**
 * One graph computing what transformers' `CLIPModel.forward` returns: `logits_per_image` =
 * exp(logit_scale) · normalize(image_embeds) · normalize(text_embeds)ᵀ, plus `logits_per_text`.
 */
export async function buildSingleGraphClip(logitScaleParam: number): Promise<Uint8Array> {
  const text = (await loadOnnxModel(path.join(TINY_CLIP, 'text_model.onnx'))).proto;
  const vision = (await loadOnnxModel(path.join(TINY_CLIP, 'vision_model.onnx'))).proto;
  const tg = text.graph as Graph;
  const vg = vision.graph as Graph;
  prefixGraph(tg, 't:');
  prefixGraph(vg, 'v:');
  const n = (opType: string, input: string[], output: string[], attribute: Array<Record<string, unknown>> = []) =>
    onnx.NodeProto.create({
      opType,
      input,
      output,
      name: `clip/${output[0]}`,
      attribute: attribute.map((a) => onnx.AttributeProto.create(a)),
    });
  const INTS = onnx.AttributeProto.AttributeType.INTS;
  const INT = onnx.AttributeProto.AttributeType.INT;
  const nodes = [
    n(
      'ReduceL2',
      ['text_embeds'],
      ['t_norm'],
      [
        { name: 'axes', ints: [1], type: INTS },
        { name: 'keepdims', i: 1, type: INT },
      ],
    ),
    n('Div', ['text_embeds', 't_norm'], ['t_unit']),
    n(
      'ReduceL2',
      ['image_embeds'],
      ['v_norm'],
      [
        { name: 'axes', ints: [1], type: INTS },
        { name: 'keepdims', i: 1, type: INT },
      ],
    ),
    n('Div', ['image_embeds', 'v_norm'], ['v_unit']),
    n('Transpose', ['t_unit'], ['t_unit_T'], [{ name: 'perm', ints: [1, 0], type: INTS }]),
    n('MatMul', ['v_unit', 't_unit_T'], ['cos']),
    n('Exp', ['logit_scale'], ['scale']),
    n('Mul', ['cos', 'scale'], ['logits_per_image']),
    n('Transpose', ['logits_per_image'], ['logits_per_text'], [{ name: 'perm', ints: [1, 0], type: INTS }]),
  ];
  const logitScale = onnx.TensorProto.create({
    name: 'logit_scale',
    dataType: onnx.TensorProto.DataType.FLOAT,
    dims: [],
    rawData: new Uint8Array(Float32Array.of(logitScaleParam).buffer),
  });
  const out = (name: string, dims: string[]) =>
    onnx.ValueInfoProto.create({
      name,
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimParam: d })) } } },
    });
  const graph = onnx.GraphProto.create({
    name: 'clip',
    node: [...(tg.node as Node[]), ...(vg.node as Node[]), ...nodes],
    initializer: [...tg.initializer, ...vg.initializer, logitScale],
    input: [...tg.input, ...vg.input],
    output: [
      out('logits_per_image', ['image_batch', 'text_batch']),
      out('logits_per_text', ['text_batch', 'image_batch']),
      ...tg.output,
      ...vg.output,
    ],
  });
  const model = onnx.ModelProto.create({
    irVersion: text.irVersion,
    opsetImport: text.opsetImport,
    producerName: 'diffmix-test',
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/** The vision graph with its projection cut to the first `width` columns (a model that does not match the text graph). */
export async function buildNarrowVision(width: number, options: { symbolic?: boolean } = {}): Promise<Uint8Array> {
  const m = await loadOnnxModel(path.join(TINY_CLIP, 'vision_model.onnx'));
  const out = m.outputs[0]?.name as string;
  const mm = m.producer(out);
  const wName = mm?.inputs[1] as string;
  const w = m.initializerFloat32(wName);
  const [rows = 0, cols = 0] = w.dims;
  const data = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) data[r * width + c] = w.data[r * cols + c] as number;
  m.setInitializer(wName, { data, dims: [rows, width] });
  const o = (m.proto.graph?.output ?? []).find((v) => v.name === out);
  const dims = o?.type?.tensorType?.shape?.dim;
  if (dims?.[1]) dims[1] = options.symbolic ? { dimParam: 'projection' } : { dimValue: width };
  return inline(m);
}

/** The vision graph ending before its projection, exposing `pooler_output` (a CLIPVisionModel export). */
export async function buildUnprojectedVision(): Promise<Uint8Array> {
  const m = await loadOnnxModel(path.join(TINY_CLIP, 'vision_model.onnx'));
  const out = m.outputs[0]?.name as string;
  const mm = m.producer(out);
  const pooled = mm?.inputs[0] as string;
  const g = m.proto.graph as Graph;
  g.node = (g.node as Node[]).filter((node) => node !== mm?.proto);
  g.output = [
    onnx.ValueInfoProto.create({
      name: 'pooler_output',
      type: {
        tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 32 }] } },
      },
    }),
  ];
  // Rename the pooled value to the exported name.
  for (const node of g.node as Node[]) node.output = node.output.map((v) => (v === pooled ? 'pooler_output' : v));
  for (const node of g.node as Node[]) node.input = node.input.map((v) => (v === pooled ? 'pooler_output' : v));
  g.initializer = g.initializer.filter((t) => t.name !== mm?.inputs[1]);
  return onnx.ModelProto.encode(m.proto).finish();
}

/** The text graph ending before its projection, exposing `pooler_output` (a CLIPTextModel export). */
export async function buildUnprojectedText(): Promise<Uint8Array> {
  const m = await loadOnnxModel(path.join(TINY_CLIP, 'text_model.onnx'));
  const out = m.outputs[0]?.name as string;
  const mm = m.producer(out);
  const pooled = mm?.inputs[0] as string;
  const g = m.proto.graph as Graph;
  g.node = (g.node as Node[]).filter((node) => node !== mm?.proto);
  for (const node of g.node as Node[]) node.output = node.output.map((v) => (v === pooled ? 'pooler_output' : v));
  for (const node of g.node as Node[]) node.input = node.input.map((v) => (v === pooled ? 'pooler_output' : v));
  g.output = [
    onnx.ValueInfoProto.create({
      name: 'pooler_output',
      type: {
        tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 32 }] } },
      },
    }),
  ];
  g.initializer = g.initializer.filter((t) => t.name !== mm?.inputs[1]);
  return onnx.ModelProto.encode(m.proto).finish();
}

/**
 * The two projection matrices of tiny-clip in transformers' layout (`text_projection.weight`,
 * `visual_projection.weight`, [projection_dim, hidden]), read back from the graphs' MatMul weights
 * (stored transposed, [hidden, projection_dim]); `prefix` is prepended to the keys.
 */
export async function projectionSafetensors(prefix = ''): Promise<Uint8Array> {
  const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [file, key] of [
    ['text_model.onnx', 'text_projection.weight'],
    ['vision_model.onnx', 'visual_projection.weight'],
  ] as const) {
    const m = await loadOnnxModel(path.join(TINY_CLIP, file));
    const mm = m.producer(m.outputs[0]?.name as string);
    const wt = m.initializerFloat32(mm?.inputs[1] as string);
    const [hidden = 0, proj = 0] = wt.dims;
    const w = new Float32Array(proj * hidden);
    for (let i = 0; i < hidden; i++) for (let o = 0; o < proj; o++) w[o * hidden + i] = wt.data[i * proj + o] as number;
    tensors[`${prefix}${key}`] = { shape: [proj, hidden], data: w };
  }
  return formatSafetensors(tensors);
}

/** A CLIP folder in `dir`: tiny-clip's configs plus the given graphs (bytes) or copies of the originals. */
export async function makeClipFolder(
  dir: string,
  graphs: { text?: Uint8Array; vision?: Uint8Array; single?: Uint8Array },
  options: { logitScaleJson?: boolean } = {},
): Promise<string> {
  await copyClipConfigs(dir, options);
  if (graphs.single) {
    await writeFile(path.join(dir, 'model.onnx'), graphs.single);
    return dir;
  }
  if (graphs.text) await writeFile(path.join(dir, 'text_model.onnx'), graphs.text);
  else await copyFile(path.join(TINY_CLIP, 'text_model.onnx'), path.join(dir, 'text_model.onnx'));
  if (graphs.vision) await writeFile(path.join(dir, 'vision_model.onnx'), graphs.vision);
  else await copyFile(path.join(TINY_CLIP, 'vision_model.onnx'), path.join(dir, 'vision_model.onnx'));
  return dir;
}
