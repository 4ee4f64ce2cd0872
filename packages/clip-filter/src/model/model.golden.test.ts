/**
 * CLIP parity over DIFFMIX_GOLDEN_DIR's `tiny-clip/` and `clip_filter/` (reference: transformers'
 * CLIPModel + CLIPProcessor, torch CPU float32).
 *
 * Tolerances and why:
 * - text / image embeddings ≤ 1e-5: ONNX Runtime vs torch on the same graph; the reference folder
 *   measured 9.2e-7 (ORT CPU vs torch); we see the same numbers (same ORT version and graphs).
 * - scores and logits given the reference pixel_values ≤ 1e-4; measured 3.1e-7 (scores) and
 *   1.8e-6 (logits, |logits| ≈ 5): float32 noise of the embeddings plus our float64 normalise /
 *   softmax (the reference runs those in float32). The single graph: 5.4e-7.
 * - scores from the image files with the matching resampler: same bound, since preprocessing is
 *   bit-exact (see processor.golden.test.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClipScorer } from '../score/scorer.js';
import { CLIP_FILTER, hasNpy, intRows, maxAbsDiff, npy, reference, TINY_CLIP, tempDir } from '../test-support/golden.js';
import { writeFile } from 'node:fs/promises';
import {
  buildSingleGraphClip,
  buildUnprojectedText,
  buildUnprojectedVision,
  makeClipFolder,
  projectionSafetensors,
} from '../test-support/models.js';
import { ClipModel } from './clip-model.js';

const ref = reference();
const model = await ClipModel.load(TINY_CLIP);
const scorer = new ClipScorer(model, { captions: ref.captions });
afterAll(() => model.release());

describe('tiny-clip text embeddings', () => {
  for (const suffix of ['', '_pad77']) {
    const label = suffix === '' ? 'padding=True (longest)' : "padding='max_length' (77)";
    it.runIf(hasNpy(`input_ids${suffix}.npy`))(`${label}: our tokenizer gives the reference ids, embeddings ≤ 1e-5`, async () => {
      const ids = intRows(npy(`input_ids${suffix}.npy`));
      const mask = intRows(npy(`attention_mask${suffix}.npy`));
      const ours = model.tokenize(ref.captions, suffix === '' ? 'longest' : 'max_length');
      expect(ours.inputIds).toEqual(ids);
      expect(ours.attentionMask).toEqual(mask);
      const e = await model.encodeTokens(ids, mask);
      const expected = npy(`text_embeds${suffix}.npy`);
      expect([e.rows, e.dim]).toEqual(expected.shape);
      expect(maxAbsDiff(e.data, expected.data as Float32Array)).toBeLessThanOrEqual(1e-5);
    });
  }

  it('both paddings give the same embeddings', async () => {
    const a = await model.encodeText(ref.captions, 'longest');
    const b = await model.encodeText(ref.captions, 'max_length');
    expect(maxAbsDiff(a.data, b.data)).toBeLessThanOrEqual(1e-5);
  });
});

describe('tiny-clip scores given the reference pixel_values', () => {
  const pv = npy('pixel_values.npy');
  const count = pv.shape[0] ?? 0;

  it('image embeddings ≤ 1e-5', async () => {
    const e = await model.encodeImages(pv.data as Float32Array, count);
    expect(maxAbsDiff(e.data, npy('image_embeds.npy').data as Float32Array)).toBeLessThanOrEqual(1e-5);
  });

  it(`scores and logits_per_image of ${ref.images.join(', ')} ≤ 1e-4`, async () => {
    const scores = await scorer.scorePixelValues(pv.data as Float32Array, count);
    expect(
      maxAbsDiff(
        scores.map((s) => s.score),
        npy('scores.npy').data as Float32Array,
      ),
    ).toBeLessThanOrEqual(1e-4);
    expect(
      maxAbsDiff(
        scores.flatMap((s) => s.logits),
        npy('logits_per_image.npy').data as Float32Array,
      ),
    ).toBeLessThanOrEqual(1e-4);
  });

  it('batch size does not change the scores', async () => {
    const one = await new ClipScorer(model, { captions: ref.captions, batchSize: 1 }).scoreSources(
      ref.images.map((f) => ({ id: f, path: path.join(CLIP_FILTER, f) })),
      { progress: 'silent' },
    );
    const a: number[] = [];
    for await (const b of one) a.push(...b.map((x) => x.score));
    const all = await scorer.scorePixelValues(pv.data as Float32Array, count);
    expect(
      maxAbsDiff(
        a,
        all.map((s) => s.score),
      ),
    ).toBeLessThanOrEqual(1e-6);
  });
});

describe('tiny-clip scores from the image files', () => {
  const backends = [ref.primary, ...['torchvision', 'pil'].filter((b) => b !== ref.primary && hasNpy(`scores_${b}.npy`))];
  for (const backend of backends) {
    const expectedFile = backend === ref.primary ? 'scores.npy' : `scores_${backend}.npy`;
    it.runIf(hasNpy(expectedFile))(`resampler '${backend}' matches ${expectedFile} ≤ 1e-4`, async () => {
      const s = new ClipScorer(model, { captions: ref.captions, resampler: backend as 'torchvision' | 'pil', batchSize: 4 });
      const got: number[] = [];
      for await (const batch of s.scoreSources(
        ref.images.map((f) => ({ id: f, path: path.join(CLIP_FILTER, f) })),
        { progress: 'silent' },
      )) {
        got.push(...batch.map((b) => b.score));
      }
      expect(maxAbsDiff(got, npy(expectedFile).data as Float32Array)).toBeLessThanOrEqual(1e-4);
    });
  }

  it('sharp resampling stays within the documented score distance (≤ 5e-3)', async () => {
    const s = new ClipScorer(model, { captions: ref.captions, resampler: 'sharp' });
    const got: number[] = [];
    for await (const batch of s.scoreSources(
      ref.images.map((f) => ({ id: f, path: path.join(CLIP_FILTER, f) })),
      { progress: 'silent' },
    )) {
      got.push(...batch.map((b) => b.score));
    }
    expect(maxAbsDiff(got, npy('scores.npy').data as Float32Array)).toBeLessThanOrEqual(5e-3);
  });
});

describe('single-graph CLIP (logits_per_image)', () => {
  it('built from the golden graphs, scores the reference pixel_values ≤ 1e-4', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const param = JSON.parse(readFileSync(path.join(TINY_CLIP, 'logit_scale.json'), 'utf8')).logit_scale_param as number;
      const folder = await makeClipFolder(path.join(dir, 'clip'), { single: await buildSingleGraphClip(param) });
      const single = await ClipModel.load(folder);
      try {
        expect(single.kind).toBe('single');
        expect(single.logitScale.source).toBe('graph');
        const pv = npy('pixel_values.npy');
        const scores = await new ClipScorer(single, { captions: ref.captions }).scorePixelValues(
          pv.data as Float32Array,
          pv.shape[0] ?? 0,
        );
        expect(
          maxAbsDiff(
            scores.map((s) => s.score),
            npy('scores.npy').data as Float32Array,
          ),
        ).toBeLessThanOrEqual(1e-4);
        await expect(single.encodeText(['x'])).rejects.toThrow(/single-graph/);
      } finally {
        await single.release();
      }
    } finally {
      await cleanup();
    }
  });
});

describe('graphs exported without their projection (pooler_output) + projection weights', () => {
  it('model.safetensors beside the graphs is found and applied; scores ≤ 1e-4', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const folder = await makeClipFolder(path.join(dir, 'clip'), {
        text: await buildUnprojectedText(),
        vision: await buildUnprojectedVision(),
      });
      await writeFile(path.join(folder, 'model.safetensors'), await projectionSafetensors());
      const m = await ClipModel.load(folder);
      try {
        expect(m.embedDim).toBe(16);
        expect(m.describe().projections).toEqual([
          'model.safetensors: text_projection.weight',
          'model.safetensors: visual_projection.weight',
        ]);
        const e = await m.encodeTokens(intRows(npy('input_ids.npy')), intRows(npy('attention_mask.npy')));
        expect(maxAbsDiff(e.data, npy('text_embeds.npy').data as Float32Array)).toBeLessThanOrEqual(1e-5);
        const pv = npy('pixel_values.npy');
        const scores = await new ClipScorer(m, { captions: ref.captions }).scorePixelValues(
          pv.data as Float32Array,
          pv.shape[0] ?? 0,
        );
        expect(
          maxAbsDiff(
            scores.map((s) => s.score),
            npy('scores.npy').data as Float32Array,
          ),
        ).toBeLessThanOrEqual(1e-4);
      } finally {
        await m.release();
      }
    } finally {
      await cleanup();
    }
  });

  it('an explicit projections file with prefixed keys, only the vision graph unprojected', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const folder = await makeClipFolder(path.join(dir, 'clip'), { vision: await buildUnprojectedVision() });
      await writeFile(path.join(dir, 'weights.safetensors'), await projectionSafetensors('clip.'));
      const m = await ClipModel.load(folder, { projections: '../weights.safetensors' });
      try {
        expect(m.describe().projections).toEqual(['weights.safetensors: clip.visual_projection.weight']);
        const e = await m.encodeImages(npy('pixel_values.npy').data as Float32Array, npy('pixel_values.npy').shape[0] ?? 0);
        expect(maxAbsDiff(e.data, npy('image_embeds.npy').data as Float32Array)).toBeLessThanOrEqual(1e-5);
      } finally {
        await m.release();
      }
    } finally {
      await cleanup();
    }
  });
});
