/**
 * Cross-attention capture on the golden tiny SD (random weights; golden LoRA at scale 1 and both
 * textual-inversion tokens loaded): the graph surgery, bit-identical images with and without
 * capture, the softmax property of every captured map, and the layer shapes for a 64-px image.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type RgbImage, decodeImage } from '@diffmix/datasets';
import { loadOnnxModel } from '@diffmix/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StableDiffusion } from '../model/stable-diffusion.js';
import { type GenerationResult, type Img2ImgJob, type StepTrace, img2img } from '../pipeline/generate.js';
import { goldenPath, listCases } from '../test-support/golden.js';
import { loadGoldenAdapters } from '../test-support/golden-model.js';
import type { LoraSpec } from '../weights/index.js';
import { AttentionAccumulator, averageLayers } from './aggregate.js';
import { type AttentionCall, AttentionCapture } from './capture.js';
import { exposeCrossAttention, findCrossAttention } from './graph.js';
import { computeAttentionMaps, renderAttentionMaps, renderAttentionSheet } from './render.js';

const unetFile = goldenPath('tiny-sd', 'unet', 'model.onnx');
const MODULES = [
  'down_blocks.0.attentions.0.transformer_blocks.0.attn2',
  'mid_block.attentions.0.transformer_blocks.0.attn2',
  'up_blocks.1.attentions.0.transformer_blocks.0.attn2',
  'up_blocks.1.attentions.1.transformer_blocks.0.attn2',
];

function rowSumError(data: Float32Array, keys: number): number {
  let worst = 0;
  for (let r = 0; r < data.length / keys; r++) {
    let s = 0;
    for (let k = 0; k < keys; k++) s += data[r * keys + k] as number;
    worst = Math.max(worst, Math.abs(s - 1));
  }
  return worst;
}

describe('graph surgery on the exported UNet', () => {
  it('finds the four attn2 Softmax nodes by structure (keys projected from encoder_hidden_states), not attn1', async () => {
    const model = await loadOnnxModel(unetFile);
    expect(model.findNodes({ opType: 'Softmax' })).toHaveLength(8); // 4 self + 4 cross
    const layers = findCrossAttention(model);
    expect(layers.map((l) => l.module)).toEqual(MODULES);
    expect(layers.map((l) => l.node)).toEqual(
      MODULES.map(
        (m) =>
          `/${m.replaceAll('.attentions', '/attentions').replaceAll('.transformer_blocks', '/transformer_blocks').replace('.attn2', '/attn2')}/Softmax`,
      ),
    );
    expect(layers.every((l) => l.rank === 4)).toBe(true);
    expect(findCrossAttention(model, { match: /^up_blocks/ }).map((l) => l.module)).toEqual(MODULES.slice(2));
  });

  it('adds graph outputs with symbolic dims and leaves out_sample first and unchanged', async () => {
    const model = await loadOnnxModel(unetFile);
    const layers = exposeCrossAttention(model);
    expect(model.outputs.map((o) => o.name)).toEqual(['out_sample', ...layers.map((l) => l.output)]);
    expect(model.outputs[0]?.shape).toEqual(['batch', 4, 'height', 'width']);
    expect(model.outputs[1]).toEqual({
      name: '/down_blocks.0/attentions.0/transformer_blocks.0/attn2/Softmax_output_0',
      type: 'float32',
      shape: ['attn2_0_batch', 'attn2_0_heads', 'attn2_0_queries', 'sequence'],
    });
    // Node count and every node untouched: only outputs were added.
    const plain = await loadOnnxModel(unetFile);
    expect(model.nodes.length).toBe(plain.nodes.length);
  });
});

describe('capture on the golden pipeline (LoRA + textual inversion)', () => {
  let model: StableDiffusion;
  let capture: AttentionCapture;
  let images: RgbImage[];
  let lora: LoraSpec[];
  const prompts = ['a photo of a <class_1> bird', 'a photo of a <class_0> bird'];
  const strength = 0.7;
  const steps = 25;

  beforeAll(async () => {
    const adapters = await loadGoldenAdapters();
    lora = adapters.lora ?? [];
    model = await StableDiffusion.load(goldenPath('tiny-sd'), adapters);
    capture = await AttentionCapture.open(model, { lora });
    images = [];
    for (const c of listCases('img2img')) images.push(await decodeImage(await readFile(goldenPath('img2img', c, 'input.png'))));
  });
  afterAll(async () => {
    await capture?.release();
    await model?.release();
  });

  const jobs = (): Img2ImgJob[] =>
    prompts.map((prompt, i) => ({ image: images[i % images.length] as RgbImage, prompt, seed: 7 + i }));

  async function run(m: StableDiffusion): Promise<{ result: GenerationResult; steps: StepTrace[] }> {
    const trace: StepTrace[] = [];
    const result = await img2img(m, jobs(), strength, {
      steps,
      guidanceScale: 7.5,
      size: 64,
      trace: true,
      onStep: (s) => trace.push(s),
    });
    return { result, steps: trace };
  }

  it('refuses a capture whose LoRA differs from the model’s', async () => {
    await expect(AttentionCapture.open(model)).rejects.toThrow(/pass the LoRAs the model was loaded with/);
  });

  it('leaves the images bit-identical: every UNet output, latent and pixel', async () => {
    const plain = await run(model);
    const calls: AttentionCall[] = [];
    const captured = await capture.record(
      (c) => calls.push(c),
      () => run(capture.model),
    );
    const idle = await run(capture.model); // instrumented session, capture off
    expect(calls).toHaveLength(Math.trunc(steps * strength)); // 17 UNet calls
    for (const other of [captured, idle]) {
      expect(other.steps).toHaveLength(plain.steps.length);
      other.steps.forEach((s, i) => {
        expect(s.unetOut).toEqual(plain.steps[i]?.unetOut);
        expect(s.latents).toEqual(plain.steps[i]?.latents);
      });
      expect(other.result.floatImages).toEqual(plain.result.floatImages);
      other.result.images.forEach((img, n) => {
        expect(Buffer.from(img.data).equals(Buffer.from(plain.result.images[n]?.data ?? []))).toBe(true);
      });
    }
  });

  it('captures [2·jobs, 8 heads, Q, 77] per layer: Q = 8×8 (down, up ×2) and 4×4 (mid); each row sums to 1', async () => {
    const calls: AttentionCall[] = [];
    await capture.record(
      (c) => calls.push(c),
      () => run(capture.model),
    );
    expect(calls.length).toBe(17);
    for (const call of calls) {
      expect(call.batch).toBe(4);
      expect([...call.layers.keys()]).toEqual(MODULES);
      expect([...call.layers.values()].map((t) => t.dims)).toEqual([
        [4, 8, 64, 77],
        [4, 8, 16, 77],
        [4, 8, 64, 77],
        [4, 8, 64, 77],
      ]);
      for (const t of call.layers.values()) expect(rowSumError(t.data, 77)).toBeLessThan(1e-5);
    }
    // Aggregated maps are means of distributions: still 1 per position.
    const acc = new AttentionAccumulator(2, true);
    for (const c of calls) acc.add(c.layers, c.batch);
    for (const job of [0, 1]) {
      const layers = acc.layers(job, 8, 8);
      expect(layers.map((l) => [l.module, `${l.height}×${l.width}`, l.heads, l.steps])).toEqual([
        [MODULES[0], '8×8', 8, 17],
        [MODULES[1], '4×4', 8, 17],
        [MODULES[2], '8×8', 8, 17],
        [MODULES[3], '8×8', 8, 17],
      ]);
      for (const l of layers) expect(rowSumError(l.map, 77)).toBeLessThan(1e-5);
      for (const r of ['auto', 4, 'all'] as const) expect(rowSumError(averageLayers(layers, r, 8).map, 77)).toBeLessThan(1e-5);
      expect(averageLayers(layers, 'auto', 8).modules).toEqual([MODULES[0], MODULES[2], MODULES[3]]);
    }
  });

  it('maps per token for jobs of several strengths, outputs as the plain pipeline makes them', async () => {
    const image = images[0] as RgbImage;
    const results = await computeAttentionMaps(
      capture,
      [
        { image, prompt: prompts[0] as string, strength: 0.5, seed: 3 },
        { image, prompt: prompts[0] as string, strength: 0.9, seed: 3 },
      ],
      { steps: 10, size: 64, tokens: ['<class_1>', 'bird', 'eot', 'cat'] },
    );
    expect(results.map((r) => r.steps)).toEqual([5, 9]);
    for (const r of results) {
      expect(r.tokens.map((t) => [t.label, t.positions])).toEqual([
        ['<class_1>', [5]],
        ['bird', [6]],
        ['<eot>', [7]],
      ]);
      expect(r.missingTokens).toEqual(['cat']);
      expect({ h: r.height, w: r.width }).toEqual({ h: 8, w: 8 });
      for (const t of r.tokens) {
        expect(t.grid).toHaveLength(64);
        expect(t.share).toBeGreaterThan(0);
        expect(t.share).toBeLessThan(1);
      }
    }
    const plain = await img2img(model, [{ image, prompt: prompts[0] as string, seed: 3 }], 0.9, { steps: 10, size: 64 });
    expect(Buffer.from(results[1]?.output.data ?? []).equals(Buffer.from(plain.images[0]?.data ?? []))).toBe(true);
    const defaults = await computeAttentionMaps(capture, [{ image, prompt: prompts[0] as string, strength: 0.3 }], {
      steps: 10,
      size: 64,
    });
    expect(defaults[0]?.tokens.map((t) => t.label)).toEqual(['a', 'photo', 'of', 'a', '<class_1>', 'bird', '<eot>']);
    const sheet = await renderAttentionSheet([...results, ...defaults], { cellSize: 32, gap: 2 });
    expect(sheet.image.width).toBe(9 * 32 + 10 * 2); // source, output, 7 tokens
    expect(sheet.image.height).toBe(3 * 32 + 4 * 2);
    expect(sheet.columns[0]).toEqual(['source', 'output (strength 0.5)', '<class_1>', 'bird', '<eot>']);
  });
});

describe('renderAttentionMaps (the CLI entry point)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'diffmix-attention-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the PNG grid and a JSON summary for images × prompts × strengths', async () => {
    const adapters = await loadGoldenAdapters();
    const input = goldenPath('img2img', listCases('img2img')[0] as string, 'input.png');
    const out = path.join(dir, 'maps', 'attention.png');
    const result = await renderAttentionMaps({
      modelDir: goldenPath('tiny-sd'),
      ...(adapters.lora ? { lora: adapters.lora } : {}),
      ...(adapters.textualInversion ? { textualInversion: adapters.textualInversion } : {}),
      image: input,
      prompt: ['a photo of a <class_0> bird', 'a photo of a <class_1> bird'],
      strength: [0.5, 0.8],
      steps: 10,
      size: 64,
      tokens: ['<class_0>', '<class_1>', 'bird', 'eot'],
      cellSize: 64,
      out,
    });
    expect(result.out).toBe(out);
    expect(result.rows.map((r) => [r.prompt, r.strength, r.steps, r.tokens.map((t) => t.label)])).toEqual([
      ['a photo of a <class_0> bird', 0.5, 5, ['<class_0>', 'bird', '<eot>']],
      ['a photo of a <class_0> bird', 0.8, 8, ['<class_0>', 'bird', '<eot>']],
      ['a photo of a <class_1> bird', 0.5, 5, ['<class_1>', 'bird', '<eot>']],
      ['a photo of a <class_1> bird', 0.8, 8, ['<class_1>', 'bird', '<eot>']],
    ]);
    expect(result.rows[0]?.missingTokens).toEqual(['<class_1>']);
    expect(result.layers.map((l) => [l.module, l.height, l.width, l.heads])).toEqual([
      [MODULES[0], 8, 8, 8],
      [MODULES[1], 4, 4, 8],
      [MODULES[2], 8, 8, 8],
      [MODULES[3], 8, 8, 8],
    ]);
    const png = await decodeImage(out);
    expect({ w: png.width, h: png.height }).toEqual({ w: result.width, h: result.height });
    expect(result.width).toBe(5 * 64 + 6 * 2);
    const json = JSON.parse(await readFile(result.json as string, 'utf8'));
    expect(json.rows[0].tokens[0].grid).toHaveLength(64);
  });
});
