import { z } from 'zod';

/** How synthetic images are labelled (DESIGN: γ 0.5 few-shot / 0.8 conventional; c 0.9 or 1.0). */
export const AnnotationConfigSchema = z
  .object({
    gamma: z.number().positive().finite().default(0.8),
    scaler: z.number().gt(0).lte(1).default(1),
  })
  .strict();

export type AnnotationConfig = z.output<typeof AnnotationConfigSchema>;
