/**
 * The end-to-end demo on the embedded default (the procedural toy dataset).
 *
 * Today it runs the stages whose packages exist — generate the toy dataset, read it back through
 * the ImageFolder adapter, draw a seeded few-shot subset, tabulate the Diff-Mix soft labels the
 * sampler will attach per strength — and writes a report that lists the remaining stages
 * (fine-tune, sample, CLIP-filter, train) as not implemented yet, rather than faking them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { annotate, createProgress, silentLogger } from '@diffmix/core';
import type { Logger, ProgressMode } from '@diffmix/core';
import {
  classStats,
  decodeImage,
  encodePng,
  fewShot,
  loadImageFolder,
  makeContactSheet,
  writeToyDataset,
} from '@diffmix/datasets';

export interface DemoOptions {
  out: string;
  numClasses?: number;
  imagesPerClass?: number;
  testPerClass?: number;
  size?: number;
  shots?: number;
  seed?: number;
  progress?: ProgressMode;
  logger?: Logger;
}

export interface DemoStage {
  name: string;
  status: 'done' | 'not implemented';
  detail: string;
}

export interface DemoResult {
  out: string;
  report: string;
  dataset: { classes: number; train: number; test: number; fewShotTrain: number };
  stages: DemoStage[];
}

const STRENGTHS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { out, numClasses = 8, imagesPerClass = 20, testPerClass = 10, size = 64, shots = 5, seed = 0 } = options;
  const log = options.logger ?? silentLogger;
  const root = path.resolve(out);
  const toyDir = path.join(root, 'toy');
  await mkdir(root, { recursive: true });
  const stages: DemoStage[] = [];

  log.info(`generating the toy dataset (${numClasses} classes × ${imagesPerClass + testPerClass} images, ${size}²) in ${toyDir}`);
  const progress = createProgress({
    label: 'toy dataset',
    total: numClasses * (imagesPerClass + testPerClass),
    mode: options.progress ?? 'auto',
  });
  await writeToyDataset(toyDir, { numClasses, imagesPerClass, testPerClass, size, seed, progress });
  progress.stop();
  stages.push({ name: 'toy dataset', status: 'done', detail: `written to ${path.relative(root, toyDir)}/ (ImageFolder layout)` });

  const dataset = await loadImageFolder(toyDir, { name: 'toy', metaclass: 'object' });
  const stats = classStats(dataset);
  const subset = fewShot(dataset, { shots, seed });
  stages.push({ name: 'read back + few-shot subset', status: 'done', detail: `${shots}-shot subset of ${subset.train.length} images` });

  // One training image per class, side by side.
  const firsts = dataset.classes.map((c) => dataset.train.find((r) => r.label === c.id));
  const images = await Promise.all(firsts.flatMap((r) => (r ? [decodeImage(r.path ?? (r.bytes as Uint8Array), { name: r.id })] : [])));
  const sheet = makeContactSheet(images, { columns: Math.min(8, images.length) });
  await writeFile(path.join(root, 'classes.png'), await encodePng(sheet.data, sheet.width, sheet.height));

  const labelRows = STRENGTHS.map((s) => {
    const conventional = annotate({ strength: s, gamma: 0.8, scaler: 1, sourceClass: 0, targetClass: 1 });
    const fewShotLabel = annotate({ strength: s, gamma: 0.5, scaler: 1, sourceClass: 0, targetClass: 1 });
    const weightOf = (label: typeof conventional, id: number) => label.find(([c]) => c === id)?.[1] ?? 0;
    return `| ${s.toFixed(1)} | ${weightOf(conventional, 1).toFixed(3)} | ${weightOf(fewShotLabel, 1).toFixed(3)} |`;
  });
  stages.push({ name: 'soft-label table', status: 'done', detail: 'target-class weight per strength (γ = 0.8 and 0.5)' });

  for (const [name, pkg] of [
    ['fine-tune (TI + LoRA)', '@diffmix/lora-finetune'],
    ['sample (Diff-Mix, Real-Mix / Diff-Aug)', '@diffmix/diffusion'],
    ['CLIP filter', '@diffmix/clip-filter'],
    ['train classifier without / with synthetic data', '@diffmix/classifier'],
  ] as const) {
    stages.push({ name, status: 'not implemented', detail: `needs ${pkg}, not built yet` });
  }

  const report = [
    '# diffmix demo',
    '',
    `Seed ${seed}. Everything here is recomputed by \`diffmix demo\`; nothing was downloaded.`,
    '',
    '## Stages',
    '',
    '| stage | status | detail |',
    '|---|---|---|',
    ...stages.map((s) => `| ${s.name} | ${s.status} | ${s.detail} |`),
    '',
    '## Dataset',
    '',
    `${dataset.classes.length} classes, ${stats.train.total} training and ${stats.test.total} test images of ${size}×${size} px; `
      + `the ${shots}-shot subset keeps ${subset.train.length}.`,
    '',
    '![one training image per class](classes.png)',
    '',
    '| id | class | train | test |',
    '|---|---|---|---|',
    ...stats.classes.map((c) => `| ${c.id} | ${c.name} | ${c.train} | ${c.test} |`),
    '',
    '## Diff-Mix soft labels',
    '',
    'Weight of the target class in `y = (1 − s^γ)·src + s^γ·tgt` (scaler c = 1):',
    '',
    '| strength s | γ = 0.8 (conventional) | γ = 0.5 (few-shot) |',
    '|---|---|---|',
    ...labelRows,
    '',
  ].join('\n');
  const reportPath = path.join(root, 'report.md');
  await writeFile(reportPath, report);
  log.info(`report written to ${reportPath}`);

  return {
    out: root,
    report: reportPath,
    dataset: { classes: dataset.classes.length, train: stats.train.total, test: stats.test.total, fewShotTrain: subset.train.length },
    stages,
  };
}
