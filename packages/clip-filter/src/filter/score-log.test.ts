import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/golden.js';
import { openScoreLog, SCORE_LOG_KIND, type ScoreLogHeader } from './score-log.js';

const header: ScoreLogHeader = {
  kind: SCORE_LOG_KIND,
  v: 1,
  captions: ['a', 'b'],
  resampler: 'torchvision',
  model: { files: ['m'] },
};
const line = (id: string, score: number) => ({ id, path: `data/${id}.png`, score, logits: [1, 2] });

describe('score log', () => {
  it('starts, appends, resumes; later lines win', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const file = path.join(dir, 'scores.jsonl');
      const a = await openScoreLog(file, header);
      expect(a.resumed).toBe(false);
      await a.append([line('x', 0.1), line('y', 0.2)]);
      await a.append([line('x', 0.3)]);
      const b = await openScoreLog(file, header);
      expect(b.resumed).toBe(true);
      expect(b.existing.get('x')?.score).toBe(0.3);
      expect(b.existing.size).toBe(2);
    } finally {
      await cleanup();
    }
  });

  it('drops a torn final line and completes an unterminated one', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const file = path.join(dir, 'scores.jsonl');
      const ok = `${JSON.stringify(header)}\n${JSON.stringify(line('x', 0.1))}\n`;
      await writeFile(file, `${ok}{"id":"y","pa`);
      const log = await openScoreLog(file, header);
      expect([...log.existing.keys()]).toEqual(['x']);
      expect(await readFile(file, 'utf8')).toBe(ok);

      await writeFile(file, `${ok}${JSON.stringify(line('z', 0.5))}`);
      const log2 = await openScoreLog(file, header);
      await log2.append([line('w', 0.9)]);
      const lines = (await readFile(file, 'utf8')).trim().split('\n');
      expect(lines.map((l) => JSON.parse(l).id)).toEqual([undefined, 'x', 'z', 'w']);
    } finally {
      await cleanup();
    }
  });

  it('refuses a log made with other settings unless rescoring; names a corrupt middle line', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const file = path.join(dir, 'scores.jsonl');
      await (await openScoreLog(file, header)).append([line('x', 0.1)]);
      await expect(openScoreLog(file, { ...header, captions: ['c', 'd'] })).rejects.toThrow(/other settings.*rescore: true/);
      const fresh = await openScoreLog(file, { ...header, captions: ['c', 'd'] }, { rescore: true });
      expect(fresh.existing.size).toBe(0);
      expect((await readFile(file, 'utf8')).trim().split('\n').length).toBe(1);

      await writeFile(file, `${JSON.stringify(header)}\nnot json\n${JSON.stringify(line('x', 0.1))}\n`);
      await expect(openScoreLog(file, header)).rejects.toThrow(/scores\.jsonl:2: .*not valid JSON/);
      await writeFile(file, '{"kind":"something else"}\n');
      await expect(openScoreLog(file, header)).rejects.toThrow(/not a diffmix CLIP score log/);
    } finally {
      await cleanup();
    }
  });
});
