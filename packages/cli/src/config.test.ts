import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError, ValidationError } from '@diffmix/core';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { kebabToCamel, readConfigFile, resolveOptions } from './config.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'diffmix-config-'));
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

const schema = z.object({ steps: z.coerce.number().int().positive(), guidanceScale: z.coerce.number(), out: z.string() }).strict();

function command(argv: string[]) {
  const cmd = new Command('sample')
    .option('--steps <n>', 'steps', '10')
    .option('--guidance-scale <g>', 'cfg', '7.5')
    .option('--out <dir>', 'out', 'x')
    .option('--config <file>')
    .option('--preset <name>');
  cmd.parse(argv, { from: 'user' });
  return cmd;
}

describe('resolveOptions', () => {
  it('defaults < config file < command-line flags', async () => {
    const file = path.join(tmp, 'run.yaml');
    await writeFile(file, 'sample:\n  steps: 30\n  guidance-scale: 5\n');
    const cmd = command(['--config', file, '--steps', '12']);
    expect(await resolveOptions({ command: cmd, commandName: 'sample', schema, values: cmd.opts() })).toEqual({ steps: 12, guidanceScale: 5, out: 'x' });
  });

  it('a preset sits between the defaults and the file', async () => {
    const cmd = command(['--preset', 'cub-resnet50-448']);
    const got = await resolveOptions({ command: cmd, commandName: 'sample', schema: schema.passthrough(), values: cmd.opts() });
    expect(got).toMatchObject({ steps: 25, guidanceScale: 7.5, strategy: 'diff-mix', strengths: [0.5, 0.7, 0.9], gamma: 0.8 });
  });

  it('reports bad values and unknown keys with the file name', async () => {
    const file = path.join(tmp, 'bad.json');
    await writeFile(file, JSON.stringify({ steps: -1, stepz: 3 }));
    const cmd = command(['--config', file]);
    const err = await resolveOptions({ command: cmd, commandName: 'sample', schema, values: cmd.opts() }).catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toContain('bad.json');
    expect(err.issues.join('\n')).toMatch(/steps/);
    expect(err.issues.join('\n')).toMatch(/stepz/);
  });

  it('unknown preset and missing or malformed files are clear errors', async () => {
    const cmd = command(['--preset', 'nope']);
    await expect(resolveOptions({ command: cmd, commandName: 'sample', schema, values: cmd.opts() })).rejects.toThrow(/unknown preset "nope"/);
    await expect(readConfigFile(path.join(tmp, 'missing.yaml'), 'sample')).rejects.toBeInstanceOf(NotFoundError);
    const broken = path.join(tmp, 'broken.yaml');
    await writeFile(broken, 'a: [1, 2');
    await expect(readConfigFile(broken, 'sample')).rejects.toThrow(/broken\.yaml: .*not valid YAML/);
  });

  it('kebab-case keys become camelCase', () => {
    expect(kebabToCamel('per-class')).toBe('perClass');
    expect(kebabToCamel('guidance-scale')).toBe('guidanceScale');
  });
});
