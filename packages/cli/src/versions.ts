import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const PACKAGES = [
  '@diffmix/cli',
  '@diffmix/core',
  '@diffmix/datasets',
  '@diffmix/onnx',
  '@diffmix/diffusion',
  '@diffmix/clip-filter',
  '@diffmix/longtail',
  '@diffmix/ort-train',
  '@diffmix/lora-finetune',
  '@diffmix/classifier',
];

/** Versions of the @diffmix packages this CLI resolves. */
export async function readPackageVersions(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of PACKAGES) {
    try {
      const file = require.resolve(`${name}/package.json`);
      out[name] = (JSON.parse(await readFile(file, 'utf8')) as { version: string }).version;
    } catch {
      out[name] = 'not installed';
    }
  }
  return out;
}
