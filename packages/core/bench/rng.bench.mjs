// Throughput of the counter-based RNG for latent noise (SD 1.x: 4×64×64 = 16,384 normals per image),
// as a ratio against a Box–Muller over Math.random measured in the same run.
// Writes bench-results/core.json. Run after `npm run build`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Rng } from '../dist/index.js';

const N = 4 * 64 * 64;
const REPS = 300;

function time(fn) {
  fn(0); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < REPS; i++) fn(i);
  return (performance.now() - t0) / REPS;
}

const buf = new Float32Array(N);
const baselineMs = time(() => {
  for (let i = 0; i < N; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - Math.random()));
    const th = 2 * Math.PI * Math.random();
    buf[i] = r * Math.cos(th);
    buf[i + 1] = r * Math.sin(th);
  }
});
const philoxMs = time((i) => Rng.fromSeed(i).fillNormal(buf));
const uniformMs = time((i) => {
  const r = Rng.fromSeed(i);
  for (let k = 0; k < N; k++) buf[k] = r.uniform();
});
const splitUs = (() => {
  const root = Rng.fromSeed(0);
  const t0 = performance.now();
  for (let i = 0; i < 20000; i++) root.split(i);
  return ((performance.now() - t0) / 20000) * 1000;
})();

const result = {
  bench: '@diffmix/core rng',
  date: new Date().toISOString(),
  node: process.version,
  normalsPerImage: N,
  baseline: { name: 'Box–Muller over Math.random', msPerImage: +baselineMs.toFixed(3) },
  philoxFillNormal: { msPerImage: +philoxMs.toFixed(3), ratioVsBaseline: +(philoxMs / baselineMs).toFixed(2) },
  philoxUniform: { msPerImage: +uniformMs.toFixed(3), ratioVsBaseline: +(uniformMs / baselineMs).toFixed(2) },
  splitMicroseconds: +splitUs.toFixed(2),
};
mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
writeFileSync(new URL('../bench-results/core.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result, null, 2));
