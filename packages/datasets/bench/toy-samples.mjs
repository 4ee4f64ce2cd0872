// Writes the toy-dataset contact sheets shown in the package README (docs/toy-*.png).
// Run after `npm run build`: node bench/toy-samples.mjs. Palette PNGs keep them small.
import { mkdirSync, writeFileSync } from 'node:fs';
import { encodePng, makeContactSheet, renderToyImage, toyClasses, toyImageRng } from '../dist/index.js';

const out = new URL('../docs/', import.meta.url);
mkdirSync(out, { recursive: true });
const classes = toyClasses(192);

/** `cells`: [class id, image index] pairs, `columns` per row. */
async function sheet(file, cells, columns) {
  const images = cells.map(([id, i]) => renderToyImage(classes[id], toyImageRng(0, 'train', id, i), 64));
  const s = makeContactSheet(images, { columns, gap: 2 });
  const png = await encodePng(s.data, s.width, s.height, { palette: true, compressionLevel: 9 });
  writeFileSync(new URL(file, out), png);
  const names = [...new Set(cells.map(([id]) => classes[id].name))];
  console.log(file, `${s.width}×${s.height}`, `${(png.length / 1024).toFixed(1)} KB`, names.join(' | '));
  return png.length;
}

const rows = (ids, perRow) => ids.flatMap((id) => Array.from({ length: perRow }, (_, i) => [id, i]));
let total = 0;
// One row per class, across shapes, colours and patterns.
total += await sheet('toy-classes.png', rows([1, 38, 71, 102, 139, 170], 6), 6);
// One class, 16 images: what varies within a class.
total += await sheet('toy-variation.png', rows([1], 16), 8);
// Classes of the 10-class set that differ in one detail: red-striped vs green-striped vs red-dotted circle.
total += await sheet('toy-confusable.png', rows([1, 5, 2], 6), 6);
console.log(`total ${(total / 1024).toFixed(1)} KB`);
