// Timing helpers shared by the packages' bench scripts (`npm run bench`).

/** The median (upper median for even lengths) of a list of numbers. */
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Runs `fn` `warmup` times untimed (first runs allocate, compile kernels, grow arenas), then `reps`
 * times timed; returns the median and every timed run in ms.
 */
export async function timeRuns(fn, { reps, warmup = 2 }) {
  for (let i = 0; i < warmup; i++) await fn();
  const all = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    all.push(performance.now() - t0);
  }
  return { median: median(all), all };
}
