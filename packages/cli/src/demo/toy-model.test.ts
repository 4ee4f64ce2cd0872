// The shipped toy-SD model (assets/toy-sd, trained by tooling/demo-model/) through the project's own
// StableDiffusion: txt2img samples of a class must look like that class (patch colour, measured against
// real toy images of the classes), and img2img toward another class must move toward it as the
// strength grows. Nothing here is hard-coded from a previous run: the reference is the toy renderer.
import { renderToyImage, toyClasses, toyImageRng } from '@diffmix/datasets';
import { img2img, type StableDiffusion, txt2img } from '@diffmix/diffusion';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadToySd, PATCH_COLOURS, patchColourFeatures, TOY_SD_CLASSES, toySdDir, toySdPrompt } from './toy-model.js';

const classes = toyClasses(TOY_SD_CLASSES);
const colourIndex = (c: number) => (PATCH_COLOURS as string[]).indexOf(classes[c]?.colour as string);
const real = (c: number, i: number) => renderToyImage(classes[c] as (typeof classes)[number], toyImageRng(99, 'test', c, i), 64);
const mean = (vs: number[][]) => (vs[0] as number[]).map((_, k) => vs.reduce((a, v) => a + (v[k] as number), 0) / vs.length);
const dist = (a: number[], b: number[]) => Math.sqrt(a.reduce((s, x, k) => s + (x - (b[k] as number)) ** 2, 0));
// Sampling as the figures script and the MODEL_CARD do: 20 DPM-Solver++ steps, guidance 3.
const GEN = { steps: 20, guidanceScale: 3 };

let sd: StableDiffusion;
beforeAll(async () => {
  sd = await loadToySd();
});

describe('toy-sd model', () => {
  it('ships the diffusers/optimum folder with one <class_i> embedding per demo class', () => {
    expect(toySdDir()).toMatch(/assets[\\/]toy-sd$/);
    expect(sd.defaultSize).toBe(64);
    for (let c = 0; c < TOY_SD_CLASSES; c++) expect(sd.tokenizer.encode(`<class_${c}>`).inputIds).toHaveLength(3);
  });

  // Red-plain circle, red-dotted circle, green-plain circle, green-checkered circle.
  const tested = [0, 2, 4, 7];
  it('txt2img: samples of each class are nearer (patch colour) to their class than to the other colour', async () => {
    const centroids = new Map(
      tested.map((c) => [c, mean(Array.from({ length: 24 }, (_, i) => patchColourFeatures(real(c, i))))]),
    );
    for (const c of tested) {
      const jobs = Array.from({ length: 8 }, (_, i) => ({ prompt: toySdPrompt(c), seed: 500 + 10 * c + i }));
      const { images } = await txt2img(sd, jobs, GEN);
      const f = mean(images.map(patchColourFeatures));
      const own = dist(f, centroids.get(c) as number[]);
      for (const other of tested.filter((o) => classes[o]?.colour !== classes[c]?.colour)) {
        expect(own, `${classes[c]?.name} samples vs ${classes[other]?.name}`).toBeLessThan(
          dist(f, centroids.get(other) as number[]),
        );
      }
      // And the class's own patch colour dominates the other one in the samples.
      const mine = f[colourIndex(c)] as number;
      const theirs = f[colourIndex(c < 4 ? 4 : 0)] as number;
      expect(mine, `${classes[c]?.name}: own colour fraction ${mine} vs ${theirs}`).toBeGreaterThan(theirs);
    }
  });

  it('img2img: a red circle prompted as a green class gains green and loses red as the strength grows', async () => {
    const red = colourIndex(0);
    const green = colourIndex(4);
    const sources = [real(0, 3), real(0, 4), real(2, 5)];
    const at = async (s: number) => {
      const jobs = sources.map((image, i) => ({ image, prompt: toySdPrompt(4), seed: 900 + i }));
      return mean((await img2img(sd, jobs, s, GEN)).images.map(patchColourFeatures));
    };
    const low = await at(0.1);
    const high = await at(0.9);
    expect(high[green] as number).toBeGreaterThan(low[green] as number);
    expect(high[green] as number).toBeGreaterThan(high[red] as number);
  });
});
