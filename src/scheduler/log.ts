/**
 * The service's logger: pino, one JSON object a line; human-readable on a terminal. Keys that
 * could hold secrets are censored wherever they appear, as a second line of defence: what the
 * service logs is counts, statuses and messages already cleared of the API key.
 */
import { type DestinationStream, type Logger, pino } from "pino";
import pretty from "pino-pretty";

export type { Logger } from "pino";

export interface LoggerOptions {
  /** Human-readable lines instead of JSON; default: when stdout is a terminal. */
  pretty?: boolean;
  level?: string;
  /** Where lines go; default stdout. */
  destination?: DestinationStream;
}

const SECRET_KEYS = ["apiKey", "token", "authorization", "password"];

export function createLogger(opts: LoggerOptions = {}): Logger {
  const options = {
    level: opts.level ?? process.env.AUDIENCE_SYNC_LOG_LEVEL ?? "info",
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: SECRET_KEYS.flatMap((k) => [k, `*.${k}`]), censor: "[REDACTED]" },
  };
  const wantPretty = opts.pretty ?? process.stdout.isTTY === true;
  if (opts.destination) return pino(options, opts.destination);
  if (wantPretty) {
    return pino(
      options,
      pretty({
        colorize: true,
        translateTime: "UTC:yyyy-mm-dd HH:MM:ss.l'Z'",
        ignore: "pid,hostname",
      }),
    );
  }
  return pino(options);
}
