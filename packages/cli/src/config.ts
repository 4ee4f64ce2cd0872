/**
 * Options of a command come from, in increasing precedence: the command's defaults, a preset
 * (`--preset cub-fewshot-5`), a config file (`--config run.yaml`, JSON or YAML, keys as the flags
 * in camelCase or kebab-case, optionally under a section named after the command), and the flags
 * typed on the command line. The merged object is validated with the command's schema, so a typo
 * or a bad value in the file is reported with the file's name and the key.
 */
import { readFile } from 'node:fs/promises';
import { NotFoundError, ValidationError, formatZodIssues } from '@diffmix/core';
import type { Command } from 'commander';
import YAML from 'yaml';
import type { z } from 'zod';
import { PRESETS, type PresetName } from './presets.js';

export function kebabToCamel(key: string): string {
  return key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function camelToKebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function normaliseKeys(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [kebabToCamel(k), v]));
}

/** Reads a JSON or YAML config file; the section for `commandName` is used when present. */
export async function readConfigFile(file: string, commandName: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new NotFoundError(file, 'config file');
  }
  let parsed: unknown;
  try {
    parsed = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (cause) {
    throw new ValidationError({ source: file, issues: [`not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(cause as Error).message.split('\n')[0]}`], cause });
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ValidationError({ source: file, issues: ['(root): expected a mapping of option names to values'] });
  const obj = parsed as Record<string, unknown>;
  const section = obj[commandName];
  if (section !== undefined) {
    if (typeof section !== 'object' || section === null || Array.isArray(section)) {
      throw new ValidationError({ source: file, issues: [`${commandName}: expected a mapping of option names to values`] });
    }
    return normaliseKeys(section as Record<string, unknown>);
  }
  return normaliseKeys(obj);
}

export interface ResolveOptionsArgs<S extends z.ZodType> {
  command: Command;
  commandName: string;
  schema: S;
  /** The raw option values commander parsed (defaults included). */
  values: Record<string, unknown>;
}

/** Merges defaults < preset < config file < command-line flags and validates the result. */
export async function resolveOptions<S extends z.ZodType>({ command, commandName, schema, values }: ResolveOptionsArgs<S>): Promise<z.output<S>> {
  const fromCli: Record<string, unknown> = {};
  const defaults: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    if (key === 'config' || key === 'preset') continue;
    if (command.getOptionValueSource(key) === 'default') defaults[key] = value;
    else fromCli[key] = value;
  }
  let preset: Record<string, unknown> = {};
  const presetName = values.preset as string | undefined;
  if (presetName !== undefined) {
    const p = PRESETS[presetName as PresetName];
    if (!p) throw new ValidationError({ source: '--preset', issues: [`unknown preset ${JSON.stringify(presetName)}; known: ${Object.keys(PRESETS).join(', ')}`] });
    preset = (p.commands as Record<string, Record<string, unknown> | undefined>)[commandName] ?? {};
  }
  const configFile = values.config as string | undefined;
  const fromFile = configFile ? await readConfigFile(configFile, commandName) : {};
  const merged = { ...defaults, ...preset, ...fromFile, ...fromCli };
  const result = schema.safeParse(merged);
  if (!result.success) {
    // Name each bad option as its flag, so the message fits both the command line and the file.
    const issues = formatZodIssues(result.error).map((issue) => {
      const key = issue.split(':')[0] ?? '';
      return /^[a-zA-Z]+$/.test(key) ? `--${camelToKebab(key)}${issue.slice(key.length)}` : issue;
    });
    throw new ValidationError({ source: configFile ?? `diffmix ${commandName}`, issues });
  }
  return result.data;
}
