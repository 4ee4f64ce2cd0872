/**
 * Charts for reports, rendered headless: a vega-lite spec is compiled to vega, rendered to SVG
 * without a browser or canvas (vega estimates text widths), and rasterised to PNG by sharp.
 */
import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';

export interface RenderedChart {
  svg: string;
  png: Uint8Array;
}

// biome-ignore lint/suspicious/noExplicitAny: vega-lite's TopLevelSpec type is deep; specs are built below.
type VlSpec = any;

export async function renderChart(spec: VlSpec): Promise<RenderedChart> {
  const compiled = vl.compile({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', ...spec }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const png = await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer();
    return { svg, png: new Uint8Array(png) };
  } finally {
    view.finalize();
  }
}

export interface SeriesPoint {
  x: number;
  y: number;
  series: string;
}

/** Line chart of several named series (training curves). */
export function lineChartSpec(points: readonly SeriesPoint[], options: { title: string; x: string; y: string }): VlSpec {
  return {
    title: options.title,
    width: 360,
    height: 220,
    data: { values: points.map((p) => ({ ...p })) },
    mark: { type: 'line', point: points.length <= 60 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: options.x },
      y: { field: 'y', type: 'quantitative', title: options.y, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null },
    },
  };
}

/** Histogram of scores with a vertical rule at the filter's cut. */
export function histogramSpec(
  values: readonly number[],
  options: { title: string; x: string; cut?: number; bins?: number },
): VlSpec {
  const layers: VlSpec[] = [
    {
      data: { values: values.map((v) => ({ v })) },
      mark: 'bar',
      encoding: {
        x: { field: 'v', type: 'quantitative', bin: { maxbins: options.bins ?? 30 }, title: options.x },
        y: { aggregate: 'count', type: 'quantitative', title: 'images' },
      },
    },
  ];
  if (options.cut !== undefined) {
    layers.push({
      data: { values: [{ cut: options.cut }] },
      mark: { type: 'rule', color: '#d62728', strokeWidth: 2, strokeDash: [4, 3] },
      encoding: { x: { field: 'cut', type: 'quantitative' } },
    });
  }
  return { title: options.title, width: 360, height: 200, layer: layers };
}

/** Horizontal bars, one per label (e.g. top-1 accuracy per method). */
export function barChartSpec(bars: readonly { label: string; value: number }[], options: { title: string; x: string }): VlSpec {
  return {
    title: options.title,
    width: 320,
    height: { step: 22 },
    data: { values: bars.map((b) => ({ ...b })) },
    mark: 'bar',
    encoding: {
      y: { field: 'label', type: 'nominal', sort: null, title: null },
      x: { field: 'value', type: 'quantitative', title: options.x },
    },
  };
}
