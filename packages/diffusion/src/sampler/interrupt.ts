/**
 * Ctrl-C for long runs: the first SIGINT (or SIGTERM) aborts `signal`, so the sampler finishes the
 * batch in flight, writes it, closes the set and says how to resume; a second one exits at once with
 * 128 + the signal number (130 for SIGINT) — safe too, since the set's writer is crash-safe: the next
 * run cleans up and redoes at most the jobs that were in flight.
 */
import { constants } from 'node:os';
import { AbortedError } from '@diffmix/core';

export interface InterruptHandler {
  /** Aborted (reason: an `AbortedError`) on the first signal. */
  readonly signal: AbortSignal;
  /** The first signal received, if any. */
  readonly received: NodeJS.Signals | undefined;
  /** 128 + the signal number of the first signal (130 for SIGINT), or undefined. */
  readonly exitCode: number | undefined;
  /** Removes the listeners (the default behaviour of the signals comes back). */
  dispose(): void;
}

export interface InterruptHandlerOptions {
  /** Default SIGINT and SIGTERM. */
  signals?: NodeJS.Signals[];
  /** Where the notices go (default stderr). */
  stream?: NodeJS.WritableStream;
  /** Called on the second signal (default `process.exit`). */
  exit?: (code: number) => void;
  /** The notice on the first signal. */
  message?: string;
}

export function exitCodeForSignal(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 2);
}

export function installInterruptHandler(options: InterruptHandlerOptions = {}): InterruptHandler {
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  const stream = options.stream ?? process.stderr;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const listener = (sig: NodeJS.Signals) => {
    if (received === undefined) {
      received = sig;
      stream.write(
        `\n${options.message ?? `${sig}: finishing the images in flight, then closing the set (press Ctrl-C again to stop at once)`}\n`,
      );
      controller.abort(new AbortedError(`interrupted by ${sig}`));
      return;
    }
    stream.write(`\n${sig} again: stopping now; the next run redoes the images that were in flight\n`);
    exit(exitCodeForSignal(received));
  };
  for (const s of signals) process.on(s, listener);
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    get exitCode() {
      return received === undefined ? undefined : exitCodeForSignal(received);
    },
    dispose() {
      for (const s of signals) process.off(s, listener);
    },
  };
}
