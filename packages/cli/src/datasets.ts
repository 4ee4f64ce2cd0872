/** `--data <root> --format <name>`: every dataset layout @diffmix/datasets reads, by name. */
import { InvalidArgumentError, type Dataset } from '@diffmix/core';
import {
  fewShot,
  loadAircraft,
  loadCars,
  loadCub,
  loadDogs,
  loadFlowers,
  loadImageFolder,
  loadParquet,
  loadVoc,
} from '@diffmix/datasets';

export const DATASET_FORMATS = ['imagefolder', 'cub', 'aircraft', 'flowers', 'cars', 'dogs', 'parquet', 'voc'] as const;
export type DatasetFormat = (typeof DATASET_FORMATS)[number];

export async function loadDataset(format: string, root: string, options: { shots?: number; seed?: number; metaclass?: string } = {}): Promise<Dataset> {
  let dataset: Dataset;
  switch (format as DatasetFormat) {
    case 'imagefolder':
      dataset = await loadImageFolder(root, options.metaclass ? { metaclass: options.metaclass } : {});
      break;
    case 'cub':
      dataset = await loadCub(root);
      break;
    case 'aircraft':
      dataset = await loadAircraft(root);
      break;
    case 'flowers':
      dataset = await loadFlowers(root);
      break;
    case 'cars':
      dataset = await loadCars(root);
      break;
    case 'dogs':
      dataset = await loadDogs(root);
      break;
    case 'parquet':
      dataset = await loadParquet(root, options.metaclass ? { metaclass: options.metaclass } : {});
      break;
    case 'voc':
      dataset = await loadVoc(root);
      break;
    default:
      throw new InvalidArgumentError('--format', `unknown dataset format ${JSON.stringify(format)}; one of ${DATASET_FORMATS.join(', ')}`);
  }
  // The official few-shot subset for classifier training is drawn with seed 0.
  return options.shots ? fewShot(dataset, { shots: options.shots, seed: options.seed ?? 0 }) : dataset;
}
