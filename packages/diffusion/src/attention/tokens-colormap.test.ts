/** Token selection on a hand-made vocabulary, and the colormaps. */
import { describe, expect, it } from 'vitest';
import { blendImages, colormap, heatmapImage } from './colormap.js';
import { type TokenText, selectTokens } from './tokens.js';

// 0 = <sot>, 1 = <eot>; "a photo of a <class_1> humming bird" with "humming" + "bird" as two pieces
const vocab = ['<sot>', '<eot>', 'a', 'photo', 'of', '<class_1>', 'humming', 'bird'];
const prompt = [0, 2, 3, 4, 2, 5, 6, 7, 1, 1, 1];
const text: TokenText = {
  ids: prompt,
  bos: 0,
  eos: 1,
  idsOf: (t) => t.split(/\s+/).flatMap((w) => (w === 'hummingbird' ? [6, 7] : vocab.indexOf(w) >= 0 ? [vocab.indexOf(w)] : [99])),
  text: (id) => vocab[id] ?? '?',
};

describe('selectTokens', () => {
  it('defaults to every prompt token and the first end-of-text token', () => {
    const { tokens, missing } = selectTokens(text);
    expect(tokens.map((t) => [t.label, t.positions])).toEqual([
      ['a', [1]],
      ['photo', [2]],
      ['of', [3]],
      ['a', [4]],
      ['<class_1>', [5]],
      ['humming', [6]],
      ['bird', [7]],
      ['<eot>', [8]],
    ]);
    expect(missing).toEqual([]);
  });

  it('takes text (first occurrence; several pieces summed), positions, sot / eot', () => {
    const { tokens, missing } = selectTokens(text, ['<class_1>', 'hummingbird', 'a', 'eot', 'sot', 2, 'cat']);
    expect(tokens.map((t) => [t.label, t.positions])).toEqual([
      ['<class_1>', [5]],
      ['hummingbird', [6, 7]],
      ['a', [1]],
      ['<eot>', [8]],
      ['<sot>', [0]],
      ['2:photo', [2]],
    ]);
    expect(missing).toEqual(['cat']);
    expect(() => selectTokens(text, [77])).toThrow(/outside/);
  });
});

describe('colormaps', () => {
  it('jet runs dark blue → cyan → yellow → dark red; viridis from purple to yellow', () => {
    expect(colormap('jet', 0)).toEqual([0, 0, 128]);
    expect(colormap('jet', 0.5)).toEqual([128, 255, 128]);
    expect(colormap('jet', 1)).toEqual([128, 0, 0]);
    expect(colormap('jet', 2)).toEqual([128, 0, 0]); // clamped
    expect(colormap('viridis', 0)).toEqual([0x44, 0x01, 0x54]);
    expect(colormap('viridis', 0.5)).toEqual([0x21, 0x91, 0x8c]);
    expect(colormap('viridis', 1)).toEqual([0xfd, 0xe7, 0x25]);
    expect(colormap('gray', 0.5)).toEqual([128, 128, 128]);
  });

  it('draws a heat map and blends it over an image', () => {
    const heat = heatmapImage([0, 1], 2, 1, 'gray');
    expect([...heat.data]).toEqual([0, 0, 0, 255, 255, 255]);
    const img = { data: new Uint8Array([100, 100, 100, 100, 100, 100]), width: 2, height: 1, channels: 3 as const };
    expect([...blendImages(img, heat, 0.5).data]).toEqual([50, 50, 50, 178, 178, 178]);
    expect(() => blendImages(img, heatmapImage([0], 1, 1), 0.5)).toThrow(/the image 2×1/);
  });
});
