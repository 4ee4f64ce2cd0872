import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createConsoleLogger } from '../log/index.js';
import { createProgress } from './progress.js';

function sink() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(String(chunk));
      cb();
    },
  });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean) };
}

describe('createProgress (JSON lines when not a TTY)', () => {
  it('reports count, rate and ETA, throttled to the interval', () => {
    let t = 0;
    const { stream, lines } = sink();
    const p = createProgress({ label: 'sample', total: 100, stream, now: () => t, intervalMs: 1000 });
    t = 2000;
    p.tick(10); // 10 items in 2 s: 5/s, 90 left → 18 s
    p.tick(1); // throttled (same instant)
    t = 4000;
    p.tick(9); // 20 in 4 s
    const end = p.stop({ failures: 0 });
    const events = lines().map((l) => JSON.parse(l));
    expect(events.map((e) => e.event)).toEqual(['start', 'progress', 'progress', 'end']);
    expect(events[1]).toMatchObject({ label: 'sample', done: 10, total: 100, rate: 5, etaSeconds: 18 });
    expect(events[2]).toMatchObject({ done: 20, rate: 5, etaSeconds: 16 });
    expect(events[3]).toMatchObject({ done: 20, failures: 0 });
    expect(end.done).toBe(20);
  });

  it('does not count resumed work in the rate', () => {
    let t = 0;
    const { stream } = sink();
    const p = createProgress({ label: 'x', total: 10, initial: 6, stream, now: () => t });
    t = 1000;
    p.tick(2);
    expect(p.snapshot()).toMatchObject({ done: 8, rate: 2, etaSeconds: 1 });
  });

  it('silent mode writes nothing', () => {
    const { stream, lines } = sink();
    const p = createProgress({ label: 'x', total: 3, stream, mode: 'silent' });
    p.tick(3);
    p.stop();
    expect(lines()).toEqual([]);
  });
});

describe('createConsoleLogger', () => {
  it('filters by level and writes JSON lines', () => {
    const { stream, lines } = sink();
    const log = createConsoleLogger({ level: 'info', json: true, stream, now: () => new Date(0) });
    log.debug('hidden');
    log.warn('careful', { file: 'a.png' });
    expect(lines().map((l) => JSON.parse(l))).toEqual([{ time: '1970-01-01T00:00:00.000Z', level: 'warn', msg: 'careful', file: 'a.png' }]);
  });
});
