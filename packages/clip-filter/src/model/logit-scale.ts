/**
 * Where the CLIP temperature comes from when the text and vision graphs are separate (they do not
 * contain it): the multiplier `logit_scale = exp(logit_scale_param)` applied to cosine similarities.
 *
 * Precedence (first found wins):
 * 1. the caller's `logitScale` option (the multiplier, e.g. 100 for OpenAI's ViT-B/32);
 * 2. `logit_scale.json` beside the graphs: `logit_scale` (the multiplier) or `logit_scale_param`
 *    (its log; exponentiated) — the trained value, written by our exporter and the golden generator;
 * 3. `config.json`'s `logit_scale_init_value`, exponentiated. This is the value the parameter is
 *    initialised with (2.6592 → 14.2857 in every transformers CLIP config), **not** a trained value:
 *    OpenAI's trained CLIP uses 4.6052 → 100. A warning says so.
 * 4. transformers' default initial value 2.6592, with the same warning.
 *
 * The kept / dropped split does not depend on it: with two captions the score is
 * σ(scale · (cos⁺ − cos⁻)), monotone in cos⁺ − cos⁻ for any positive scale; only the reported
 * probabilities do. A single-graph model (`logits_per_image`) carries its own scale.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, type Logger, silentLogger, ValidationError } from '@diffmix/core';

export type LogitScaleSource = 'option' | 'logit_scale.json' | 'config.json' | 'default' | 'graph';

export interface ResolvedLogitScale {
  /** The multiplier (exp of the parameter). */
  value: number;
  source: LogitScaleSource;
  /** File it was read from, when any. */
  file?: string;
}

/** transformers' `CLIPConfig.logit_scale_init_value` default (ln(1/0.07)). */
export const CLIP_LOGIT_SCALE_INIT = 2.6592;

async function readJsonIfExists(file: string): Promise<unknown | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ValidationError({ source: file, issues: [`not valid JSON (${(cause as Error).message})`], cause });
  }
}

function finitePositive(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

/** Resolves the logit scale of a model folder (see module doc for the precedence). */
export async function resolveLogitScale(
  dir: string,
  options: { logitScale?: number; logger?: Logger } = {},
): Promise<ResolvedLogitScale> {
  const log = options.logger ?? silentLogger;
  if (options.logitScale !== undefined) {
    if (!finitePositive(options.logitScale)) {
      throw new InvalidArgumentError(
        'logitScale',
        `must be a positive number (the multiplier, e.g. 100), got ${options.logitScale}`,
      );
    }
    return { value: options.logitScale, source: 'option' };
  }
  const lsFile = path.join(dir, 'logit_scale.json');
  const ls = await readJsonIfExists(lsFile);
  if (ls !== undefined) {
    if (typeof ls !== 'object' || ls === null) throw new ValidationError({ source: lsFile, issues: ['expected a JSON object'] });
    const o = ls as Record<string, unknown>;
    const scale = o.logit_scale;
    const param = o.logit_scale_param;
    if (scale !== undefined && !finitePositive(scale)) {
      throw new ValidationError({
        source: lsFile,
        issues: [`logit_scale: expected a positive number, got ${JSON.stringify(scale)}`],
      });
    }
    if (param !== undefined && (typeof param !== 'number' || !Number.isFinite(param))) {
      throw new ValidationError({
        source: lsFile,
        issues: [`logit_scale_param: expected a number, got ${JSON.stringify(param)}`],
      });
    }
    if (scale !== undefined && param !== undefined && Math.abs(Math.exp(param as number) - (scale as number)) > 1e-4 * scale) {
      throw new ValidationError({
        source: lsFile,
        issues: [`logit_scale ${scale} is not exp(logit_scale_param) = ${Math.exp(param as number)}`],
      });
    }
    if (scale !== undefined) return { value: scale, source: 'logit_scale.json', file: lsFile };
    if (param !== undefined) return { value: Math.exp(param as number), source: 'logit_scale.json', file: lsFile };
    throw new ValidationError({
      source: lsFile,
      issues: ['needs "logit_scale" (the multiplier) or "logit_scale_param" (its log)'],
    });
  }
  const cfgFile = path.join(dir, 'config.json');
  const cfg = await readJsonIfExists(cfgFile);
  const init = typeof cfg === 'object' && cfg !== null ? (cfg as Record<string, unknown>).logit_scale_init_value : undefined;
  if (typeof init === 'number' && Number.isFinite(init)) {
    const value = Math.exp(init);
    log.warn(
      `logit scale from config.json's logit_scale_init_value (exp(${init}) = ${value.toFixed(4)}): that is the initial value, ` +
        'not a trained one (OpenAI CLIP uses 100). Pass logitScale or add logit_scale.json for calibrated scores; ' +
        'the ranking and the filtered set do not depend on it.',
      { file: cfgFile },
    );
    return { value, source: 'config.json', file: cfgFile };
  }
  const value = Math.exp(CLIP_LOGIT_SCALE_INIT);
  log.warn(
    `no logit_scale.json and no logit_scale_init_value in ${dir}: using transformers' initial value exp(${CLIP_LOGIT_SCALE_INIT}) = ` +
      `${value.toFixed(4)}. Pass logitScale for calibrated scores; the ranking does not depend on it.`,
  );
  return { value, source: 'default' };
}
