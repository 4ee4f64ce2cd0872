/** Exit codes of the `diffmix` command; scripts can rely on them. */
export const ExitCode = {
  OK: 0,
  /** A bug or an unexpected failure (stack trace printed with DIFFMIX_DEBUG=1). */
  INTERNAL: 1,
  /** Bad flags or config file. */
  USAGE: 2,
  /** Bad input data: missing folder, corrupt image, malformed index file, unsafe name. */
  DATA: 3,
  /** Interrupted (Ctrl-C); finished work is kept and the command can be re-run to resume. */
  INTERRUPTED: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
