#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { describeFailure } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { createProgram } from './program.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

async function main(): Promise<void> {
  const program = createProgram(version);
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    const code = (err as { code?: string }).code;
    // --help and --version end through exitOverride with these codes: not failures.
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') {
      process.exitCode = ExitCode.OK;
      return;
    }
    const failure = describeFailure(err);
    // commander already printed its own usage message
    if (!code?.startsWith('commander.')) process.stderr.write(`diffmix: ${failure.message}\n`);
    if (process.env.DIFFMIX_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = failure.code;
  }
}

await main();
