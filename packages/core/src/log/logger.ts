/** A minimal structured logger interface; packages accept one and default to `silentLogger`. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export interface ConsoleLoggerOptions {
  level?: LogLevel;
  /** JSON lines (`{"level","msg",...fields}`) instead of text. */
  json?: boolean;
  stream?: NodeJS.WritableStream;
  /** Clock for timestamps (tests). */
  now?: () => Date;
}

/** Writes to stderr by default so stdout stays free for `--json` results. */
export function createConsoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const { level = 'info', json = false, stream = process.stderr, now = () => new Date() } = options;
  const emit = (lvl: LogLevel, message: string, fields?: LogFields) => {
    if (ORDER[lvl] < ORDER[level]) return;
    if (json) {
      stream.write(`${JSON.stringify({ time: now().toISOString(), level: lvl, msg: message, ...fields })}\n`);
      return;
    }
    const extra = fields && Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : '';
    stream.write(`${lvl === 'info' ? '' : `${lvl}: `}${message}${extra}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
