export { createConsoleLogger, silentLogger } from './logger.js';
export type { ConsoleLoggerOptions, LogFields, LogLevel, Logger } from './logger.js';
