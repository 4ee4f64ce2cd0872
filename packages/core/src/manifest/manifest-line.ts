/**
 * One line of a synthetic set's `manifest.jsonl`: a finished image, everything needed to
 * regenerate it, its soft label and the SHA-256 of the file. Appended only after the image file
 * has been renamed into place, so every line points at a complete file.
 */
import { z } from 'zod';
import { parseJsonWith } from '../config/validate.js';
import type { ValidateContext } from '../config/validate.js';
import { JOB_ID_LENGTH } from '../job/index.js';
import { canonicalSoftLabel } from '../labels/index.js';

const JsonValueSchema: z.ZodType<unknown> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(JsonValueSchema), z.record(z.string(), JsonValueSchema)]),
);

const classId = z.number().int().nonnegative();

export const ManifestLineSchema = z
  .object({
    /** Schema version. */
    v: z.literal(1),
    id: z.string().regex(new RegExp(`^[0-9a-f]{${JOB_ID_LENGTH}}$`), `a ${JOB_ID_LENGTH}-hex job id`),
    strategy: z.string().min(1),
    sourceRecordId: z.string().optional(),
    sourceClass: classId,
    targetClass: classId,
    sourceClassName: z.string().optional(),
    targetClassName: z.string().optional(),
    strength: z.number().min(0).max(1),
    prompt: z.string(),
    seed: z.number().int().nonnegative(),
    params: z.record(z.string(), JsonValueSchema).optional(),
    /** Path of the image relative to the set's root, with `/` separators. */
    path: z
      .string()
      .min(1)
      .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'must be relative and stay inside the set'),
    /** The running number in the file name (`<tgt>-<index>-<s>.png`). */
    index: z.number().int().nonnegative(),
    /** Sparse soft label `[[classId, weight], …]`. */
    label: z.array(z.tuple([classId, z.number().finite()])).min(1),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 hex digest'),
    width: z.number().int().positive().optional(),
    height: z.number().int().positive().optional(),
    /** CLIP positive-caption probability, added by the filter. */
    clipScore: z.number().min(0).max(1).optional(),
    createdAt: z.string().optional(),
  })
  .strict();

export type ManifestLine = z.output<typeof ManifestLineSchema>;

/** Parses one manifest line; errors name `ctx.source:ctx.line`. */
export function parseManifestLine(text: string, ctx: ValidateContext = {}): ManifestLine {
  const line = parseJsonWith(ManifestLineSchema, text, ctx);
  return { ...line, label: canonicalSoftLabel(line.label) };
}

/** The line as written to `manifest.jsonl` (one JSON object and a newline). */
export function serializeManifestLine(line: ManifestLine): string {
  return `${JSON.stringify(line)}\n`;
}
