/**
 * Oxford Flowers 102 (Nilsback & Zisserman, 2008) in the layout of the files on the VGG site:
 *
 * ```
 * flowers102/
 *   jpg/image_00001.jpg … image_08189.jpg   (102flowers.tgz)
 *   imagelabels.mat   variable `labels`: 1×8189 double, the 1-based class of image i in column i
 *   setid.mat         variables `trnid`, `valid`, `tstid`: 1-based image numbers (1,020 / 1,020 / 6,149)
 * ```
 *
 * Two splits:
 * - `'diffmix'` (default): the split the Diff-Mix paper's Flowers numbers use. The official Diff-Mix
 *   code (Zhicaiwww/Diff-Mix, `dataset/instance/flower.py`) ignores setid.mat: per class, in class
 *   order, it draws a permutation of the class's images (in file-name order) from
 *   `np.random.default_rng(seed=0)` and keeps the first `int(0.5 * n)` = ⌊n/2⌋ for training, the
 *   rest for testing. With the real class sizes (40–258 images) that is 4,070 train / 4,119 test.
 *   We apply the same rule with our own seeded generator, so the counts per class are identical but
 *   which images land in train differs from the Python run (numpy's PCG64 stream is not reproduced).
 *   `setid.mat` is not needed for this split.
 * - `'official'`: the dataset's own split from setid.mat: train = `trnid` (+ `valid` when
 *   `includeVal`, the default, i.e. trainval: 2,040 images), test = `tstid` (6,149 images).
 *
 * Neither file names the classes; the 102 names used by the official Diff-Mix code (the usual
 * CLIP prompt names) are built in and can be replaced with `classNames`.
 */
import path from 'node:path';
import { type ClassInfo, type Dataset, DatasetFormatError, type FileRecord, InvalidArgumentError, Rng } from '@diffmix/core';
import { matToIntegers, matVariable } from '../../mat/convert.js';
import { assertListedFilesExist, recordId, zeroBased } from '../../mat/dataset-index.js';
import { readMatFile } from '../../mat/read.js';
import { assertNoEmptyClass, requireDirectory } from '../common.js';

/**
 * The 102 class names in label order (label 1 = "pink primrose"), as listed by the official Diff-Mix
 * code (`CLASS_NAME` in dataset/instance/flower.py, two trailing spaces trimmed).
 */
export const FLOWERS102_CLASS_NAMES: readonly string[] = Object.freeze([
  'pink primrose',
  'hard-leaved pocket orchid',
  'canterbury bells',
  'sweet pea',
  'english marigold',
  'tiger lily',
  'moon orchid',
  'bird of paradise',
  'monkshood',
  'globe thistle',
  'snapdragon',
  "colt's foot",
  'king protea',
  'spear thistle',
  'yellow iris',
  'globe-flower',
  'purple coneflower',
  'peruvian lily',
  'balloon flower',
  'giant white arum lily',
  'fire lily',
  'pincushion flower',
  'fritillary',
  'red ginger',
  'grape hyacinth',
  'corn poppy',
  'prince of wales feathers',
  'stemless gentian',
  'artichoke',
  'sweet william',
  'carnation',
  'garden phlox',
  'love in the mist',
  'mexican aster',
  'alpine sea holly',
  'ruby-lipped cattleya',
  'cape flower',
  'great masterwort',
  'siam tulip',
  'lenten rose',
  'barbeton daisy',
  'daffodil',
  'sword lily',
  'poinsettia',
  'bolero deep blue',
  'wallflower',
  'marigold',
  'buttercup',
  'oxeye daisy',
  'common dandelion',
  'petunia',
  'wild pansy',
  'primula',
  'sunflower',
  'pelargonium',
  'bishop of llandaff',
  'gaura',
  'geranium',
  'orange dahlia',
  'pink-yellow dahlia',
  'cautleya spicata',
  'japanese anemone',
  'black-eyed susan',
  'silverbush',
  'californian poppy',
  'osteospermum',
  'spring crocus',
  'bearded iris',
  'windflower',
  'tree poppy',
  'gazania',
  'azalea',
  'water lily',
  'rose',
  'thorn apple',
  'morning glory',
  'passion flower',
  'lotus',
  'toad lily',
  'anthurium',
  'frangipani',
  'clematis',
  'hibiscus',
  'columbine',
  'desert-rose',
  'tree mallow',
  'magnolia',
  'cyclamen',
  'watercress',
  'canna lily',
  'hippeastrum',
  'bee balm',
  'ball moss',
  'foxglove',
  'bougainvillea',
  'camellia',
  'mallow',
  'mexican petunia',
  'bromelia',
  'blanket flower',
  'trumpet creeper',
  'blackberry lily',
]);

export type FlowersSplit = 'diffmix' | 'official';

export interface FlowersOptions {
  /** `'diffmix'` (default): per-class 50/50 split as the official Diff-Mix code; `'official'`: setid.mat. */
  split?: FlowersSplit;
  /** Seed of the `'diffmix'` split (default 0, as the Diff-Mix code). */
  seed?: number;
  /** With `split: 'official'`, add the `valid` images to train (default true: trainval / test). */
  includeVal?: boolean;
  /** Class names in label order, replacing the built-in 102; labels must lie in 1..classNames.length. */
  classNames?: readonly string[];
  /** Check that every image used exists (default true; one folder listing, see `assertListedFilesExist`). */
  checkFiles?: boolean;
}

function imageName(index: number): string {
  return `image_${String(index + 1).padStart(5, '0')}.jpg`;
}

/** Loads Oxford Flowers 102 from the folder holding `jpg/` and `imagelabels.mat`. Metaclass 'flower'. */
export async function loadFlowers(root: string, options: FlowersOptions = {}): Promise<Dataset> {
  const split = options.split ?? 'diffmix';
  if (split !== 'diffmix' && split !== 'official') {
    throw new InvalidArgumentError('split', `must be 'diffmix' or 'official', got ${JSON.stringify(split)}`);
  }
  const names = options.classNames ?? FLOWERS102_CLASS_NAMES;
  if (names.length === 0 || names.some((n) => typeof n !== 'string' || n.trim() === '')) {
    throw new InvalidArgumentError('classNames', 'must be a non-empty list of non-empty names');
  }
  const classes: ClassInfo[] = names.map((n, id) => ({ id, name: n.trim() }));

  await requireDirectory(root, 'Oxford Flowers 102 folder');
  const labelsFile = path.join(root, 'imagelabels.mat');
  const labelsMat = await readMatFile(labelsFile, 'Oxford Flowers label file imagelabels.mat');
  const labelsWhere = { file: labelsFile, name: 'labels' };
  const labels = zeroBased(
    matToIntegers(matVariable(labelsMat, 'labels'), labelsWhere),
    classes.length,
    labelsWhere,
    `${classes.length} classes`,
  );
  if (labels.length === 0) throw new DatasetFormatError(labelsFile, 'labels is empty');
  const jpgDir = path.join(root, 'jpg');
  await requireDirectory(jpgDir, 'Oxford Flowers images folder (jpg/)');

  const record = (index: number): FileRecord => {
    const file = path.join(jpgDir, imageName(index));
    return { id: recordId(root, file), label: labels[index] as number, path: file };
  };

  let trainIdx: number[];
  let testIdx: number[];
  let listedIn: (index: number) => string;
  let splitFile: string;
  if (split === 'official') {
    splitFile = path.join(root, 'setid.mat');
    const setid = await readMatFile(splitFile, 'Oxford Flowers split file setid.mat');
    const ids = (name: string) => {
      const where = { file: splitFile, name };
      return zeroBased(
        matToIntegers(matVariable(setid, name), where),
        labels.length,
        where,
        `${labels.length} images in imagelabels.mat`,
      );
    };
    const sets: Array<[string, number[]]> = [
      ['trnid', ids('trnid')],
      ['valid', ids('valid')],
      ['tstid', ids('tstid')],
    ];
    // An image in two sets (or twice in one) would leak test images into training.
    const seen = new Map<number, string>();
    for (const [name, list] of sets) {
      list.forEach((idx, i) => {
        const prev = seen.get(idx);
        if (prev !== undefined) {
          throw new DatasetFormatError(
            splitFile,
            `${name}(${i + 1}) = ${idx + 1}: image ${idx + 1} is already listed as ${prev}`,
          );
        }
        seen.set(idx, `${name}(${i + 1})`);
      });
    }
    const [trn, val, tst] = sets.map(([, list]) => list) as [number[], number[], number[]];
    trainIdx = (options.includeVal ?? true) ? [...trn, ...val] : trn;
    testIdx = tst;
    listedIn = (index) => `${seen.get(index)} in ${splitFile}`;
  } else {
    splitFile = labelsFile;
    // Images of each class in file-name order, as the Diff-Mix code's sorted glob gives them.
    const byClass: number[][] = classes.map(() => []);
    labels.forEach((label, index) => {
      (byClass[label] as number[]).push(index);
    });
    assertNoEmptyClass(
      labelsFile,
      classes.map((c) => c.name),
      labels,
    );
    const tooSmall = byClass.flatMap((list, c) => (list.length < 2 ? [classes[c]?.name as string] : []));
    if (tooSmall.length) {
      throw new DatasetFormatError(
        labelsFile,
        `class(es) with fewer than 2 images cannot be split 50/50: ${tooSmall.slice(0, 5).join(', ')}`,
      );
    }
    const rng = Rng.fromSeed(options.seed ?? 0);
    trainIdx = [];
    testIdx = [];
    // One generator drawn through the classes in order, like the official code's single default_rng.
    for (const list of byClass) {
      const order = rng.shuffle(list);
      const nTrain = Math.floor(order.length / 2);
      trainIdx.push(...order.slice(0, nTrain));
      testIdx.push(...order.slice(nTrain));
    }
    listedIn = (index) => `labels(${index + 1}) in ${labelsFile}`;
  }

  const train = trainIdx.map(record);
  const test = testIdx.map(record);
  assertNoEmptyClass(
    splitFile,
    classes.map((c) => c.name),
    train.map((r) => r.label),
  );
  if (options.checkFiles ?? true) {
    // In image-number order, so the first missing image reported is the lowest-numbered one.
    const used = [...trainIdx, ...testIdx].sort((x, y) => x - y);
    await assertListedFilesExist(used.map((index) => ({ path: record(index).path, listedAs: () => listedIn(index) })));
  }
  return { name: 'flower', metaclass: 'flower', classes, train, test, root };
}
