import os from 'node:os';
import { AUTO_ENGINE, probeTfjsBackends } from '@diffmix/classifier';
import { imageIoInfo } from '@diffmix/datasets';
import { availableProviders, ort, probeDevices } from '@diffmix/diffusion';
import type { Command } from 'commander';
import { readPackageVersions } from '../versions.js';

export interface InfoReport {
  node: string;
  platform: string;
  cpus: number;
  memoryGiB: number;
  packages: Record<string, string>;
  sharp: { version: string | null; libvips: string | null };
  onnxruntime: {
    version: string | null;
    providersListed: string[];
    devices: Array<{ device: string; usable: boolean; reason?: string }>;
  };
  /** Classifier engines: the tfjs backends that initialise here, and what `--engine auto` picks. */
  classifier: { autoEngine: string; tfjsBackends: Array<{ backend: string; usable: boolean; detail: string }> };
  gpu: { usable: boolean; devices: string[] };
}

export async function collectInfo(): Promise<InfoReport> {
  const io = imageIoInfo();
  // Each device is tried on a one-node model: listed is not the same as usable.
  const devices = await probeDevices();
  const gpus = devices.filter((d) => d.usable && d.device !== 'cpu').map((d) => d.device);
  return {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    packages: await readPackageVersions(),
    sharp: { version: io.sharp, libvips: io.libvips },
    onnxruntime: { version: ort.env.versions?.node ?? null, providersListed: availableProviders(), devices },
    classifier: { autoEngine: AUTO_ENGINE, tfjsBackends: await probeTfjsBackends() },
    gpu: { usable: gpus.length > 0, devices: gpus },
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
        `onnxruntime-node ${info.onnxruntime.version ?? '?'}: ${info.onnxruntime.devices
          .map((d) => `${d.device} ${d.usable ? 'usable' : 'not usable'}`)
          .join(', ')}`,
        ...info.onnxruntime.devices.filter((d) => !d.usable).map((d) => `  ${d.device}: ${d.reason}`),
        `classifier engine (auto): ${info.classifier.autoEngine}; tfjs backends: ${info.classifier.tfjsBackends
          .map((b) => `${b.backend} ${b.usable ? 'usable' : 'not usable'}`)
          .join(', ')}`,
        ...info.classifier.tfjsBackends.filter((b) => !b.usable).map((b) => `  ${b.backend}: ${b.detail}`),
        `gpu: ${info.gpu.usable ? info.gpu.devices.join(', ') : 'none usable'}`,
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
