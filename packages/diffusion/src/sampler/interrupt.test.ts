import { Writable } from 'node:stream';
import { AbortedError } from '@diffmix/core';
import { afterEach, describe, expect, it } from 'vitest';
import { exitCodeForSignal, installInterruptHandler } from './interrupt.js';

function sink() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => text };
}

const handlers: Array<{ dispose(): void }> = [];
afterEach(() => {
  for (const h of handlers.splice(0)) h.dispose();
});

describe('installInterruptHandler', () => {
  it('aborts gracefully on the first signal and exits with 128 + signo on the second', () => {
    const out = sink();
    const exits: number[] = [];
    const before = process.listenerCount('SIGINT');
    const h = installInterruptHandler({ stream: out.stream, exit: (c) => exits.push(c) });
    handlers.push(h);
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    expect(h.signal.aborted).toBe(false);
    expect(h.exitCode).toBeUndefined();

    process.emit('SIGINT', 'SIGINT');
    expect(h.signal.aborted).toBe(true);
    expect(AbortedError.isInstance(h.signal.reason)).toBe(true);
    expect(h.received).toBe('SIGINT');
    expect(h.exitCode).toBe(130);
    expect(exits).toEqual([]);
    expect(out.text()).toMatch(/finishing the images in flight.*Ctrl-C again/);

    process.emit('SIGINT', 'SIGINT');
    expect(exits).toEqual([130]);
    expect(out.text()).toMatch(/stopping now/);

    h.dispose();
    expect(process.listenerCount('SIGINT')).toBe(before);
  });

  it('maps SIGTERM to 143', () => {
    expect(exitCodeForSignal('SIGINT')).toBe(130);
    expect(exitCodeForSignal('SIGTERM')).toBe(143);
    const h = installInterruptHandler({ signals: ['SIGTERM'], stream: sink().stream, exit: () => {} });
    handlers.push(h);
    process.emit('SIGTERM', 'SIGTERM');
    expect(h.exitCode).toBe(143);
  });
});
