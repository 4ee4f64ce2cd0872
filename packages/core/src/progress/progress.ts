/**
 * Progress reporting for long jobs: a bar with count, rate and ETA on a terminal (cli-progress),
 * JSON lines (`{"event":"progress",...}`) when the stream is not a TTY, so logs of CI runs and
 * scripts stay machine-readable.
 */
import cliProgress from 'cli-progress';

export interface ProgressSnapshot {
  label: string;
  done: number;
  total: number | undefined;
  /** Items per second since start. */
  rate: number;
  /** Seconds left at the current rate, or undefined if unknown. */
  etaSeconds: number | undefined;
  elapsedSeconds: number;
}

export interface ProgressReporter {
  /** Adds `n` finished items. */
  tick(n?: number): void;
  /** Sets the finished count (e.g. when resuming with work already done). */
  update(done: number): void;
  setTotal(total: number): void;
  snapshot(): ProgressSnapshot;
  /** Ends the bar; `summary` fields go into the final JSON line. */
  stop(summary?: Record<string, unknown>): ProgressSnapshot;
}

export type ProgressMode = 'auto' | 'tty' | 'json' | 'silent';

export interface ProgressOptions {
  label: string;
  total?: number;
  /** Where to draw; stderr by default. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** 'auto' picks 'tty' for a terminal and 'json' otherwise. */
  mode?: ProgressMode;
  /** Minimum milliseconds between JSON lines (default 1000). */
  intervalMs?: number;
  /** Already finished when starting (resumed work); not counted in the rate. */
  initial?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

export function createProgress(options: ProgressOptions): ProgressReporter {
  const { label, stream = process.stderr, intervalMs = 1000, initial = 0, now = () => performance.now() } = options;
  let total = options.total;
  const mode: ProgressMode = options.mode === undefined || options.mode === 'auto' ? (stream.isTTY ? 'tty' : 'json') : options.mode;
  const start = now();
  let done = initial;
  let lastEmit = -Infinity;
  let stopped = false;

  const snapshot = (): ProgressSnapshot => {
    const elapsedSeconds = (now() - start) / 1000;
    const rate = elapsedSeconds > 0 ? (done - initial) / elapsedSeconds : 0;
    const etaSeconds = total !== undefined && rate > 0 ? Math.max(0, (total - done) / rate) : undefined;
    return { label, done, total, rate, etaSeconds, elapsedSeconds };
  };

  let bar: cliProgress.SingleBar | undefined;
  if (mode === 'tty') {
    bar = new cliProgress.SingleBar(
      {
        stream: stream as NodeJS.WritableStream as never,
        format: `${label} [{bar}] {value}/{total} | {speed}/s | ETA {eta_formatted} | {duration_formatted}`,
        hideCursor: true,
        etaBuffer: 50,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total ?? 0, done, { speed: '0.0' });
  }

  const writeJson = (event: string, extra?: Record<string, unknown>) => {
    const s = snapshot();
    stream.write(
      `${JSON.stringify({
        event,
        label,
        done: s.done,
        total: s.total ?? null,
        rate: Number(s.rate.toFixed(3)),
        etaSeconds: s.etaSeconds === undefined ? null : Math.round(s.etaSeconds),
        elapsedSeconds: Number(s.elapsedSeconds.toFixed(3)),
        ...extra,
      })}\n`,
    );
  };

  const render = (force = false) => {
    if (stopped) return;
    if (bar) {
      bar.update(done, { speed: snapshot().rate.toFixed(1) });
    } else if (mode === 'json') {
      const t = now();
      if (force || t - lastEmit >= intervalMs) {
        lastEmit = t;
        writeJson('progress');
      }
    }
  };

  if (mode === 'json') writeJson('start');

  return {
    tick(n = 1) {
      done += n;
      render();
    },
    update(value) {
      done = value;
      render();
    },
    setTotal(value) {
      total = value;
      bar?.setTotal(value);
      render();
    },
    snapshot,
    stop(summary) {
      if (!stopped) {
        if (bar) {
          bar.update(done, { speed: snapshot().rate.toFixed(1) });
          bar.stop();
        } else if (mode === 'json') {
          writeJson('end', summary);
        }
        stopped = true;
      }
      return snapshot();
    },
  };
}
