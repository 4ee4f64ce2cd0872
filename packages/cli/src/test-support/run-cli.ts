// Runs the built `diffmix` binary (turbo builds it before `test`) for the CLI's end-to-end tests.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

export const bin = path.resolve(import.meta.dirname, '../../dist/bin.js');
/** The tiny golden SD model @diffmix/diffusion ships for its parity tests. */
export const tinySd = path.resolve(import.meta.dirname, '../../../diffusion/fixtures/golden/tiny-sd');

export interface CliResult {
  /** Exit code (null when killed by a signal). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `diffmix <args>`; `onStderr` sees the stderr so far after every chunk (and the child, to interrupt
 * it). DIFFMIX_DEBUG is cleared so error output is what users see.
 */
export function diffmix(args: string[], onStderr?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<CliResult> {
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run \`npm run build\` (npm test does it)`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DIFFMIX_DEBUG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child);
    });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
