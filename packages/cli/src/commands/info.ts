import os from 'node:os';
import { imageIoInfo } from '@diffmix/datasets';
import type { Command } from 'commander';
import { readPackageVersions } from '../versions.js';

export interface InfoReport {
  node: string;
  platform: string;
  cpus: number;
  memoryGiB: number;
  packages: Record<string, string>;
  sharp: { version: string | null; libvips: string | null };
  onnxruntime: { installed: boolean; version: string | null; note: string };
  gpu: { usable: boolean; note: string };
}

export async function collectInfo(): Promise<InfoReport> {
  const io = imageIoInfo();
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    packages: await readPackageVersions(),
    sharp: { version: io.sharp, libvips: io.libvips },
    // The ONNX Runtime engine arrives with @diffmix/diffusion; until then say so instead of guessing.
    onnxruntime: { installed: false, version: null, note: 'not used yet: arrives with @diffmix/diffusion' },
    gpu: { usable: false, note: 'no engine that uses a GPU is installed yet' },
  };
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('versions, available engines and whether a GPU is usable')
    .option('--json', 'print the report as JSON on stdout')
    .addHelpText('after', '\nExamples:\n  $ diffmix info\n  $ diffmix info --json | jq .packages')
    .action(async (opts: { json?: boolean }) => {
      const info = await collectInfo();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
        return;
      }
      const lines = [
        `node ${info.node} on ${info.platform}, ${info.cpus} CPUs, ${info.memoryGiB} GiB`,
        ...Object.entries(info.packages).map(([n, v]) => `${n} ${v}`),
        `sharp ${info.sharp.version ?? 'missing'} (libvips ${info.sharp.libvips ?? '?'})`,
        `onnxruntime: ${info.onnxruntime.note}`,
        `gpu: ${info.gpu.note}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
