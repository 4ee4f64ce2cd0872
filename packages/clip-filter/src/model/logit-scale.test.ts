import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LogFields, Logger } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../test-support/golden.js';
import { CLIP_LOGIT_SCALE_INIT, resolveLogitScale } from './logit-scale.js';

function recorder(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const noop = (_m: string, _f?: LogFields) => {};
  return { warnings, debug: noop, info: noop, error: noop, warn: (m) => warnings.push(m) };
}

describe('resolveLogitScale precedence: option > logit_scale.json > config.json > default', () => {
  it('walks the chain', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const log = recorder();
      expect(await resolveLogitScale(dir, { logger: log })).toMatchObject({
        value: Math.exp(CLIP_LOGIT_SCALE_INIT),
        source: 'default',
      });
      expect(log.warnings[0]).toMatch(/no logit_scale\.json/);

      await writeFile(path.join(dir, 'config.json'), JSON.stringify({ logit_scale_init_value: 4.6052 }));
      const fromConfig = await resolveLogitScale(dir, { logger: log });
      expect(fromConfig.source).toBe('config.json');
      expect(fromConfig.value).toBe(Math.exp(4.6052));
      expect(log.warnings[1]).toMatch(/initial value, not a trained one/);

      await writeFile(path.join(dir, 'logit_scale.json'), JSON.stringify({ logit_scale_param: Math.log(50) }));
      expect((await resolveLogitScale(dir)).value).toBeCloseTo(50, 10);
      await writeFile(path.join(dir, 'logit_scale.json'), JSON.stringify({ logit_scale: 42 }));
      expect(await resolveLogitScale(dir)).toMatchObject({ value: 42, source: 'logit_scale.json' });

      expect(await resolveLogitScale(dir, { logitScale: 7 })).toEqual({ value: 7, source: 'option' });
    } finally {
      await cleanup();
    }
  });

  it('rejects inconsistent or malformed values, naming the file', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      await expect(resolveLogitScale(dir, { logitScale: -1 })).rejects.toThrow(/logitScale: must be a positive number/);
      const file = path.join(dir, 'logit_scale.json');
      await writeFile(file, JSON.stringify({ logit_scale: 10, logit_scale_param: 1 }));
      await expect(resolveLogitScale(dir)).rejects.toThrow(/logit_scale\.json.*is not exp\(logit_scale_param\)/);
      await writeFile(file, JSON.stringify({ note: 'x' }));
      await expect(resolveLogitScale(dir)).rejects.toThrow(/needs "logit_scale"/);
      await writeFile(file, '{oops');
      await expect(resolveLogitScale(dir)).rejects.toThrow(/not valid JSON/);
    } finally {
      await cleanup();
    }
  });
});
