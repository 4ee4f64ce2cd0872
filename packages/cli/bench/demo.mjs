// The README's main job, timed: `diffmix demo` with its default sizes, from an empty folder (every
// stage computed) and again over the finished folder (the resume path: nothing recomputed), in the
// same run. Issue #9 asks the demo to finish in about 10 minutes on 2 cores; this records how long it
// takes here, per stage. Writes bench-results/demo.json. Run after `npm run build`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { runDemo } from '../dist/index.js';

const out = mkdtempSync(join(tmpdir(), 'diffmix-demo-bench-'));
try {
  const t0 = performance.now();
  const first = await runDemo({ out, progress: 'silent' });
  const fresh = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  await runDemo({ out, progress: 'silent' });
  const resumed = (performance.now() - t1) / 1000;
  const result = {
    machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), loadAverage: loadavg() },
    demo: { classes: first.dataset.classes, train: first.dataset.train, test: first.dataset.test },
    freshSeconds: +fresh.toFixed(1),
    resumedSeconds: +resumed.toFixed(1),
    resumedOverFresh: +(resumed / fresh).toFixed(3),
    stages: first.stages.map((s) => ({ name: s.name, seconds: s.seconds })),
    runs: first.runs,
  };
  mkdirSync(new URL('../bench-results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../bench-results/demo.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} finally {
  rmSync(out, { recursive: true, force: true });
}
