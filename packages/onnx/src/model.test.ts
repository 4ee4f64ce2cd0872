import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { float16ToFloat32, float32ToFloat16, ModelFormatError, NotFoundError } from '@diffmix/core';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrtSession, findGatherForInput, loadOnnxModel, nodeModulePath, parseOnnxModel } from './index.js';
import { f32bytes, type TestTensor, toyModel } from './testing/build-model.js';

// The golden tiny-SD models (random weights, exported by torch.onnx.export, opset 17, weights inline)
// ship with @diffmix/diffusion; DIFFMIX_GOLDEN_DIR points at another golden folder in the same layout.
const here = dirname(fileURLToPath(import.meta.url));
const golden = process.env.DIFFMIX_GOLDEN_DIR ?? resolve(here, '../../diffusion/fixtures/golden');
const textEncoderPath = join(golden, 'tiny-sd/text_encoder/model.onnx');
const unetPath = join(golden, 'tiny-sd/unet/model.onnx');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
  return d;
}

function ids(values: number[]): ort.Tensor {
  return new ort.Tensor('int32', Int32Array.from(values), [1, values.length]);
}

const idsFeed = ids(Array.from({ length: 77 }, (_, i) => (i * 613) % 49408));

function unetFeeds(): Record<string, ort.Tensor> {
  return {
    sample: new ort.Tensor(
      'float32',
      Float32Array.from({ length: 2 * 4 * 8 * 8 }, (_, i) => Math.sin(i * 0.7)),
      [2, 4, 8, 8],
    ),
    timestep: new ort.Tensor('float32', new Float32Array([500, 500]), [2]),
    encoder_hidden_states: new ort.Tensor(
      'float32',
      Float32Array.from({ length: 2 * 77 * 32 }, (_, i) => Math.cos(i * 0.3)),
      [2, 77, 32],
    ),
  };
}

async function run(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, output: string): Promise<Float32Array> {
  const out = await session.run(feeds);
  return (out[output] as ort.Tensor).data as Float32Array;
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'diffmix-onnx-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('golden tiny-SD text encoder', () => {
  it('loads: inputs, outputs, opset, and the token embedding found from input_ids', async () => {
    const model = await loadOnnxModel(join(golden, 'tiny-sd/text_encoder')); // a folder → model.onnx
    expect(model.source).toBe(textEncoderPath);
    expect(model.opsetVersion()).toBe(17);
    expect(model.inputs).toEqual([{ name: 'input_ids', type: 'int32', shape: ['batch', 'sequence'] }]);
    expect(model.outputs.map((o) => o.name)).toEqual(['last_hidden_state', 'pooler_output']);
    const lookup = findGatherForInput(model, 'input_ids');
    expect(lookup?.node.name).toBe('/embeddings/token_embedding/Gather');
    expect(lookup?.initializer).toBe('embeddings.token_embedding.weight');
    const info = model.initializerInfo('embeddings.token_embedding.weight');
    expect(info).toMatchObject({ type: 'float32', dims: [49408, 32], byteLength: 49408 * 32 * 4, location: 'inline' });
    const emb = model.initializer('embeddings.token_embedding.weight');
    expect(emb.data).toBeInstanceOf(Float32Array);
    // transformers initialises token embeddings with N(0, 0.02)
    const d = emb.data as Float32Array;
    let ss = 0;
    for (const v of d) ss += v * v;
    expect(Math.sqrt(ss / d.length)).toBeGreaterThan(0.015);
    expect(Math.sqrt(ss / d.length)).toBeLessThan(0.025);
  });

  it('round-trips through in-memory external data and inline bytes with identical ORT outputs', async () => {
    const model = await loadOnnxModel(textEncoderPath);
    const reference = await ort.InferenceSession.create(textEncoderPath);
    const want = await run(reference, { input_ids: idsFeed }, 'last_hidden_state');
    const serialized = model.serialize();
    expect(serialized.externalData.length).toBeGreaterThan(0);
    expect(serialized.model.byteLength).toBeLessThan(200_000); // weights are not in the protobuf
    const fromMemory = await createOrtSession(ort, model);
    expect(maxAbsDiff(await run(fromMemory, { input_ids: idsFeed }, 'last_hidden_state'), want)).toBe(0);
    const inline = model.serialize({ externalData: 'inline' });
    expect(inline.externalData).toEqual([]);
    const fromInline = await ort.InferenceSession.create(inline.model);
    expect(maxAbsDiff(await run(fromInline, { input_ids: idsFeed }, 'last_hidden_state'), want)).toBe(0);
  });

  it('grows the token embedding: an appended row behaves like the row it copies', async () => {
    const model = await loadOnnxModel(textEncoderPath);
    const name = findGatherForInput(model, 'input_ids')?.initializer as string;
    const old = model.initializer(name).data as Float32Array;
    const grown = new Float32Array(old.length + 2 * 32);
    grown.set(old);
    grown.set(old.subarray(320 * 32, 321 * 32), old.length); // row 49408 = row 320 ("a")
    grown.set(old.subarray(1125 * 32, 1126 * 32), old.length + 32); // row 49409 = row 1125 ("photo")
    model.setInitializer(name, { data: grown, dims: [49410, 32] });
    expect(model.initializerInfo(name)).toMatchObject({ dims: [49410, 32], location: 'memory' });
    const session = await createOrtSession(ort, model);
    const base = [49406, 320, 1125, 539, 320, 2368, 49407];
    const a = await run(session, { input_ids: ids(base) }, 'last_hidden_state');
    const b = await run(session, { input_ids: ids([49406, 49408, 49409, 539, 49408, 2368, 49407]) }, 'last_hidden_state');
    expect(maxAbsDiff(a, b)).toBe(0);
  });

  it('refuses data that does not fit the declared shape', async () => {
    const model = await loadOnnxModel(textEncoderPath);
    expect(() => model.setInitializer('embeddings.token_embedding.weight', { data: new Float32Array(10) })).toThrow(
      /element count changes/,
    );
    expect(() => model.setInitializer('embeddings.token_embedding.weight', { data: new Float32Array(10), dims: [3, 3] })).toThrow(
      /needs 36 bytes, the data has 40/,
    );
    expect(() => model.setInitializer('nope', { data: new Float32Array(1) })).toThrow(/no initializer named "nope"/);
    expect(() =>
      model.setInitializer('embeddings.token_embedding.weight', { data: new Int32Array(49408 * 32), type: 'float32' }),
    ).toThrow(/Int32Array cannot hold float32/);
  });
});

describe('golden tiny-SD UNet', () => {
  it('finds attention MatMuls by name and maps them to module paths', async () => {
    const model = await loadOnnxModel(unetPath);
    const q = model.findNodes({ opType: 'MatMul', name: /\/attn1\/to_q\/MatMul$/ });
    expect(q.map((n) => nodeModulePath(n.name))).toEqual([
      'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q',
      'mid_block.attentions.0.transformer_blocks.0.attn1.to_q',
      'up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q',
      'up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_q',
    ]);
    const first = q[0];
    // onnx_mapping.json: the weight is the MatMul's second input, W^T of shape [in, out]
    expect(first?.inputs[1]).toBe('onnx::MatMul_1624');
    expect(model.initializerInfo('onnx::MatMul_1624').dims).toEqual([32, 32]);
    expect(model.consumers('onnx::MatMul_1624').map((c) => [c.node.name, c.index])).toEqual([[first?.name, 1]]);
    expect(model.producer(first?.outputs[0] as string)?.name).toBe(first?.name);
  });

  it('addOutput exposes an intermediate value without changing the existing output', async () => {
    const model = await loadOnnxModel(unetPath);
    const softmax = model.findNodes({ opType: 'Softmax', name: /\/attn2\/Softmax$/ });
    expect(softmax).toHaveLength(4);
    const value = softmax[0]?.outputs[0] as string;
    // The torchscript export declares no value_info: the type must be given.
    expect(() => model.addOutput(value)).toThrow(/does not declare the element type/);
    expect(model.addOutput(value, { type: 'float32', shape: ['batch', null, 'q', 77] })).toBe(true);
    expect(model.addOutput(value, { type: 'float32' })).toBe(false); // already an output: unchanged
    expect(() => model.addOutput('no such value', { type: 'float32' })).toThrow(/not a value/);
    expect(() => model.addOutput(softmax[1]?.outputs[0] as string, { type: 'float32', shape: [-1] })).toThrow(/bad dimension/);
    // an initializer takes its declared type and dims
    expect(model.addOutput('onnx::MatMul_1624')).toBe(true);
    expect(model.outputs.map((o) => [o.name, o.type, o.shape])).toEqual([
      ['out_sample', 'float32', ['batch', 4, 'height', 'width']],
      [value, 'float32', ['batch', null, 'q', 77]],
      ['onnx::MatMul_1624', 'float32', [32, 32]],
    ]);
    const plain = await ort.InferenceSession.create(unetPath);
    const probed = await createOrtSession(ort, model);
    const feeds = unetFeeds();
    const out = await probed.run(feeds);
    expect((out.out_sample as ort.Tensor).data).toEqual(await run(plain, feeds, 'out_sample'));
    const probs = out[value] as ort.Tensor;
    expect(probs.dims).toEqual([2, 8, 64, 77]); // [batch, heads, queries (8×8 latents), 77 tokens]
    const p = probs.data as Float32Array;
    for (let row = 0; row < p.length / 77; row++) {
      let s = 0;
      for (let k = 0; k < 77; k++) s += p[row * 77 + k] as number;
      expect(Math.abs(s - 1)).toBeLessThan(1e-5);
    }
    expect((out['onnx::MatMul_1624'] as ort.Tensor).data).toEqual(model.initializer('onnx::MatMul_1624').data);
    await plain.release();
    await probed.release();
  });

  it('saves with model.onnx_data; ONNX Runtime loads the files itself and we read them back', async () => {
    const model = await loadOnnxModel(unetPath);
    const dir = join(tmp, 'unet');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
    await model.save(join(dir, 'model.onnx'), { externalData: 'model.onnx_data' });
    const reference = await ort.InferenceSession.create(unetPath);
    const want = await run(reference, unetFeeds(), 'out_sample');
    const fromDisk = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    expect(maxAbsDiff(await run(fromDisk, unetFeeds(), 'out_sample'), want)).toBe(0);
    const back = await loadOnnxModel(join(dir, 'model.onnx'));
    const info = back.initializerInfo('onnx::MatMul_1624');
    expect(info.location).toBe('external');
    expect(info.external?.location).toBe('model.onnx_data');
    expect([...(back.initializer('onnx::MatMul_1624').data as Float32Array)]).toEqual([
      ...(model.initializer('onnx::MatMul_1624').data as Float32Array),
    ]);
    const fromMemory = await createOrtSession(ort, back);
    expect(maxAbsDiff(await run(fromMemory, unetFeeds(), 'out_sample'), want)).toBe(0);
    // saving over the files it was loaded from works (temporary names, then rename)
    await back.save(join(dir, 'model.onnx'), { externalData: 'model.onnx_data' });
    const again = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    expect(maxAbsDiff(await run(again, unetFeeds(), 'out_sample'), want)).toBe(0);
  });
});

describe('external data in a model built by hand (weights.pb with offsets, typed fields, float16)', () => {
  const table = Array.from({ length: 6 * 4 }, (_, i) => (i % 7) * 0.25 - 0.5);
  const weight = Array.from({ length: 4 * 3 }, (_, i) => i * 0.1 - 0.6);
  const weight16 = float32ToFloat16(weight.map((v) => v * 2));
  function expected(id: number, w: number[]): number[] {
    return [0, 1, 2].map((j) =>
      [0, 1, 2, 3].reduce((acc, k) => acc + (table[id * 4 + k] as number) * (w[k * 3 + j] as number), 0),
    );
  }

  async function writeToy(dir: string, opts: { truncate?: boolean; location?: string } = {}) {
    // weights.pb = [16 bytes padding][table][weight][weight16]
    const tableBytes = f32bytes(table);
    const weightBytes = f32bytes(weight);
    const w16 = new Uint8Array(weight16.buffer);
    const file = new Uint8Array(16 + tableBytes.length + weightBytes.length + w16.length);
    file.set(tableBytes, 16);
    file.set(weightBytes, 16 + tableBytes.length);
    file.set(w16, 16 + tableBytes.length + weightBytes.length);
    const location = opts.location ?? 'weights.pb';
    const tensors: Record<string, TestTensor> = {
      table: { name: 'table', dataType: 1, dims: [6, 4], external: { location, offset: 16, length: tableBytes.length } },
      weight: { name: 'W', dataType: 1, dims: [4, 3], external: { location, offset: 16 + tableBytes.length } },
      bias: { name: 'bias', dataType: 1, dims: [3], floatData: [1, 2, 3] }, // typed field, not raw_data
      weight16: {
        name: 'W16',
        dataType: 10,
        dims: [4, 3],
        external: { location, offset: 16 + tableBytes.length + weightBytes.length },
      },
    };
    await writeFile(join(dir, 'model.onnx'), toyModel(tensors as never));
    await writeFile(join(dir, 'weights.pb'), opts.truncate ? file.subarray(0, file.length - 10) : file);
  }

  it('reads external tensors at their offsets, typed fields and float16, and runs on ORT from memory', async () => {
    const dir = await mkdtemp(join(tmp, 'toy-'));
    await writeToy(dir);
    const model = await loadOnnxModel(join(dir, 'model.onnx'));
    expect(model.initializerInfo('table')).toMatchObject({
      location: 'external',
      external: { location: 'weights.pb', offset: 16, length: 96 },
    });
    expect([...(model.initializer('table').data as Float32Array)]).toEqual(table.map(Math.fround));
    expect([...(model.initializer('bias').data as Float32Array)]).toEqual([1, 2, 3]);
    const w16 = model.initializer('W16');
    expect(w16.type).toBe('float16');
    expect([...(w16.data as Uint16Array)]).toEqual([...weight16]);
    expect([...model.initializerFloat32('W16').data]).toEqual([...float16ToFloat32(weight16)]);
    expect(findGatherForInput(model, 'input_ids')?.initializer).toBe('table'); // through the Cast

    const session = await createOrtSession(ort, model);
    const out = await session.run({ input_ids: ids([2, 5]) });
    const got = (out.out as ort.Tensor).data as Float32Array;
    const want = [...expected(2, weight).map((v, j) => v + j + 1), ...expected(5, weight).map((v, j) => v + j + 1)];
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-6);
    // and ORT reading the same files from disk agrees
    const disk = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    const got16 = (await disk.run({ input_ids: ids([2, 5]) })).out16 as ort.Tensor;
    const fromMem16 = (out.out16 as ort.Tensor).data as Float32Array;
    expect(maxAbsDiff(fromMem16, got16.data as Float32Array)).toBe(0);
  });

  it('replaces an external initializer and writes a new external file that ORT reads', async () => {
    const dir = await mkdtemp(join(tmp, 'toy-'));
    await writeToy(dir);
    const model = await loadOnnxModel(join(dir, 'model.onnx'));
    const w2 = Float32Array.from(weight, (v) => -v);
    model.setInitializer('W', { data: w2 });
    const out = join(dir, 'out');
    await import('node:fs/promises').then((fs) => fs.mkdir(out));
    await model.save(join(out, 'model.onnx'), { externalData: 'model.onnx_data', threshold: 16 });
    const session = await ort.InferenceSession.create(join(out, 'model.onnx'));
    const got = ((await session.run({ input_ids: ids([3]) })).out as ort.Tensor).data as Float32Array;
    expect(
      maxAbsDiff(
        got,
        expected(3, [...w2]).map((v, j) => v + j + 1),
      ),
    ).toBeLessThan(1e-6);
    // the bias (12 bytes) stayed inline; the rest went to the data file
    const back = await loadOnnxModel(join(out, 'model.onnx'));
    expect(back.initializerInfo('bias').location).toBe('inline');
    expect(back.initializerInfo('W').external?.location).toBe('model.onnx_data');
  });

  it('errors name the file: truncated data, escaping location, missing file, not ONNX', async () => {
    const dir = await mkdtemp(join(tmp, 'toy-'));
    await writeToy(dir, { truncate: true });
    const err = await loadOnnxModel(join(dir, 'model.onnx')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as ModelFormatError).file).toBe(join(dir, 'weights.pb'));
    expect((err as Error).message).toMatch(/initializer "W16" needs bytes \[160, 184\) but the file has 174 bytes/);

    const dir2 = await mkdtemp(join(tmp, 'toy-'));
    await writeToy(dir2, { location: '../secret.bin' });
    await expect(loadOnnxModel(join(dir2, 'model.onnx'))).rejects.toThrow(
      /external data location "..\/secret.bin" escapes the model folder/,
    );

    const dir3 = await mkdtemp(join(tmp, 'toy-'));
    await writeToy(dir3, { location: 'missing.bin' });
    await expect(loadOnnxModel(join(dir3, 'model.onnx'))).rejects.toThrow(/missing\.bin cannot be opened/);

    await writeFile(join(dir3, 'junk.onnx'), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]));
    await expect(loadOnnxModel(join(dir3, 'junk.onnx'))).rejects.toThrow(/junk\.onnx: not a valid ONNX model/);
    await expect(loadOnnxModel(join(dir3, 'nothing.onnx'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('parses from bytes with the external files given in memory', async () => {
    const dir = await mkdtemp(join(tmp, 'toy-'));
    await writeToy(dir);
    const bytes = await readFile(join(dir, 'model.onnx'));
    const weights = await readFile(join(dir, 'weights.pb'));
    expect(() => parseOnnxModel(bytes)).toThrow(/neither given in memory nor findable on disk/);
    const model = parseOnnxModel(bytes, { externalData: { 'weights.pb': weights } });
    expect([...(model.initializer('W').data as Float32Array)]).toEqual(weight.map(Math.fround));
    await model.loadExternalData();
    expect(model.initializerInfo('W').location).toBe('memory');
  });
});

describe('parseOnnxModel on a Node Buffer', () => {
  it('reads initializers correctly from a Buffer that is a misaligned view into a larger pool', async () => {
    const { readFileSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const file = fileURLToPath(new URL('../../diffusion/fixtures/golden/tiny-sd/text_encoder/model.onnx', import.meta.url));
    const bytes = readFileSync(file);
    const reference = parseOnnxModel(Uint8Array.from(bytes));
    // A Buffer at an odd offset inside a bigger allocation, as Buffer.concat / pools produce.
    const pooled = Buffer.concat([Buffer.alloc(3), bytes]).subarray(3);
    const model = parseOnnxModel(pooled);
    const name = reference.initializerNames().find((n) => {
      const info = reference.initializerInfo(n);
      return info.type === 'float32' && info.dims.length === 2;
    }) as string;
    expect(name).toBeDefined();
    expect(Array.from(model.initializerFloat32(name).data.subarray(0, 64))).toEqual(Array.from(reference.initializerFloat32(name).data.subarray(0, 64)));
  });
});
