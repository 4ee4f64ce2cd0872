/**
 * Textual-inversion parity: the golden img2img cases were computed by diffusers with TI (+ LoRA)
 * loaded; the text encoder carries no LoRA, so the base ONNX text encoder with the TI rows appended,
 * run on each case's `prompt_input_ids.npy` / `negative_input_ids.npy`, must reproduce
 * `prompt_embeds.npy` / `negative_prompt_embeds.npy`.
 *
 * Tolerance 1e-5 (absolute; the embeddings are layer-normed, |x| ≈ 1): the golden README measured
 * 1.19e-6–1.31e-6 for ORT vs torch on this encoder (float32 kernel order); 1e-5 leaves ~8× headroom,
 * while a wrong or missing row changes the outputs by ~1e-1.
 */
import { fileURLToPath } from 'node:url';
import { ModelFormatError } from '@diffmix/core';
import { createOrtSession, loadOnnxModel, type OnnxModel } from '@diffmix/onnx';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { goldenPath, listCases, maxAbsDiff, readNpy } from '../test-support/golden.js';
import {
  applyTextualInversion,
  applyTextualInversionToOnnx,
  findTokenEmbedding,
  loadTextualInversion,
  type TextualInversionEmbedding,
} from './index.js';

const TOL = 1e-5;
const textEncoderFile = goldenPath('tiny-sd/text_encoder/model.onnx');
const tiFile = goldenPath('tiny-sd/ti/learned_embeds.safetensors');
const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/weights/${name}`, import.meta.url));
const cases = listCases('img2img');

async function encode(model: OnnxModel, ids: Int32Array, quiet = false): Promise<Float32Array> {
  const session = await createOrtSession(ort, model, quiet ? { sessionOptions: { logSeverityLevel: 4 } } : {});
  const out = await session.run({ input_ids: new ort.Tensor('int32', ids, [1, ids.length]) });
  return (out.last_hidden_state as ort.Tensor).data as Float32Array;
}

const measured: Record<string, number> = {};

async function checkCases(embeddings: TextualInversionEmbedding[], label: string) {
  const model = await loadOnnxModel(textEncoderFile);
  const result = applyTextualInversion(model, embeddings);
  expect([...result.tokens]).toEqual([
    ['<class_0>', 49408],
    ['<class_1>', 49409],
  ]);
  expect(result.added).toEqual(['<class_0>', '<class_1>']);
  expect(result.rows).toBe(49410);
  expect(result.initializer).toBe('embeddings.token_embedding.weight');
  for (const c of cases) {
    for (const [ids, embeds] of [
      ['prompt_input_ids', 'prompt_embeds'],
      ['negative_input_ids', 'negative_prompt_embeds'],
    ] as const) {
      const input = readNpy('img2img', c, `${ids}.npy`).data as Int32Array;
      const d = maxAbsDiff(await encode(model, input), readNpy('img2img', c, `${embeds}.npy`).data as Float32Array);
      measured[`${label}/${c}/${embeds}`] = d;
      expect(d, `${c} ${embeds}`).toBeLessThan(TOL);
    }
  }
}

describe.skipIf(cases.length === 0)('textual inversion (golden img2img prompt embeddings)', () => {
  it('the prompts use the placeholder tokens', () => {
    const used = cases.flatMap((c) =>
      [...(readNpy('img2img', c, 'prompt_input_ids.npy').data as Int32Array)].filter((id) => id >= 49408),
    );
    expect(new Set(used)).toEqual(new Set([49408, 49409]));
  });

  it('safetensors embeddings appended to the ONNX text encoder reproduce prompt_embeds.npy', async () => {
    const embeddings = await loadTextualInversion(tiFile);
    expect(embeddings.map((e) => [e.token, e.count, e.width])).toEqual([
      ['<class_0>', 1, 32],
      ['<class_1>', 1, 32],
    ]);
    await checkCases(embeddings, 'safetensors');
  });

  it('the official Diff-Mix learned_embeds*.bin (torch pickle) gives the same vectors and outputs', async () => {
    const fromBin = await loadTextualInversion(fixture('learned_embeds-steps-last.bin'));
    const fromSt = await loadTextualInversion(tiFile);
    expect(fromBin.map((e) => [e.token, e.className])).toEqual([
      ['<class_0>', 'Black footed Albatross'],
      ['<class_1>', 'Laysan Albatross'],
    ]);
    for (let i = 0; i < 2; i++) expect([...(fromBin[i]?.vectors ?? [])]).toEqual([...(fromSt[i]?.vectors ?? [])]);
    await checkCases(fromBin, 'bin');
  });

  it('applyTextualInversionToOnnx returns bytes + external data and the token map (the patch hook shape)', async () => {
    const patched = await applyTextualInversionToOnnx(textEncoderFile, [tiFile]);
    expect([...patched.result.tokens]).toEqual([
      ['<class_0>', 49408],
      ['<class_1>', 49409],
    ]);
    const session = await createOrtSession(ort, patched);
    const c = cases[0] as string;
    const ids = readNpy('img2img', c, 'prompt_input_ids.npy').data as Int32Array;
    const out = await session.run({ input_ids: new ort.Tensor('int32', ids, [1, 77]) });
    const got = (out.last_hidden_state as ort.Tensor).data as Float32Array;
    expect(maxAbsDiff(got, readNpy('img2img', c, 'prompt_embeds.npy').data as Float32Array)).toBeLessThan(TOL);
  });

  it('without the TI rows the placeholder ids are out of range (the test is not vacuous)', async () => {
    const model = await loadOnnxModel(textEncoderFile);
    const ids = readNpy('img2img', cases[0] as string, 'prompt_input_ids.npy').data as Int32Array;
    await expect(encode(model, ids, true)).rejects.toThrow(/out of bounds|indices/i);
  });

  it('prints the measured parity (for the record)', () => {
    console.info(`TI parity, max |ORT − torch| on prompt embeddings: ${JSON.stringify(measured)}`);
    expect(Object.keys(measured).length).toBeGreaterThan(0);
  });
});

describe('textual inversion: other layouts and errors', () => {
  it('reads an AUTOMATIC1111 .pt (string_to_param, float16, 2 vectors) as a multi-vector token', async () => {
    const [e] = await loadTextualInversion(fixture('a1111_embedding.pt'));
    expect(e).toMatchObject({ token: 'mytoken', count: 2, width: 32 });
    const golden = await loadTextualInversion(tiFile);
    const { float16ToFloat32, float32ToFloat16 } = await import('@diffmix/core');
    const want = float16ToFloat32(
      float32ToFloat16([...(golden[0]?.vectors ?? [])].concat([...(golden[1]?.vectors ?? [])]).map((v) => v * 0.5)),
    );
    expect([...(e?.vectors ?? [])]).toEqual([...want]);
    const model = await loadOnnxModel(textEncoderFile);
    const result = applyTextualInversion(model, [e as TextualInversionEmbedding]);
    expect([...result.tokens]).toEqual([
      ['mytoken', 49408],
      ['mytoken_1', 49409],
    ]);
    expect(result.multiVector.get('mytoken')).toEqual(['mytoken', 'mytoken_1']);
    const table = model.initializer(result.initializer).data as Float32Array;
    expect([...table.subarray(49409 * 32, 49410 * 32)]).toEqual([...want.subarray(32, 64)]);
  });

  it('overwrites the row of a token the tokenizer already has, and appends the others', async () => {
    const model = await loadOnnxModel(textEncoderFile);
    const embeddings = await loadTextualInversion(tiFile);
    const result = applyTextualInversion(model, embeddings, { vocab: { '<class_0>': 42170 } });
    expect([...result.tokens]).toEqual([
      ['<class_0>', 42170],
      ['<class_1>', 49408],
    ]);
    expect(result.added).toEqual(['<class_1>']);
    const table = model.initializer(result.initializer).data as Float32Array;
    expect(model.initializerInfo(result.initializer).dims).toEqual([49409, 32]);
    expect([...table.subarray(42170 * 32, 42171 * 32)]).toEqual([...(embeddings[0]?.vectors ?? [])]);
  });

  it('refuses an embedding whose width is not the text encoder’s, naming the embeddings file', async () => {
    const model = await loadOnnxModel(textEncoderFile);
    const bad = { token: '<x>', vectors: new Float32Array(768), count: 1, width: 768, source: 'sd15-embedding.safetensors' };
    let err: unknown;
    try {
      applyTextualInversion(model, [bad]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toBe(
      `sd15-embedding.safetensors: embedding "<x>" has width 768 but the text encoder's token embedding embeddings.token_embedding.weight in ${textEncoderFile} is [49408, 32]`,
    );
  });

  it('finds the token embedding from input_ids through Reshape', async () => {
    const model = await loadOnnxModel(textEncoderFile);
    expect(findTokenEmbedding(model)).toEqual({ initializer: 'embeddings.token_embedding.weight', rows: 49408, width: 32 });
  });
});
