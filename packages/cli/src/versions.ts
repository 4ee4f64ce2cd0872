import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Versions of the @diffmix packages this CLI resolves. */
export async function readPackageVersions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of ['@diffmix/cli', '@diffmix/core', '@diffmix/datasets', '@diffmix/diffusion', '@diffmix/onnx', '@diffmix/longtail']) {
    try {
      const file = require.resolve(`${name}/package.json`);
      out[name] = (JSON.parse(await readFile(file, 'utf8')) as { version: string }).version;
    } catch {
      out[name] = 'not installed';
    }
  }
  return out;
}
