/**
 * Turns the `audience-sync emulator` command line into EmulatorOptions: checks ranges, takes the
 * key from ITERABLE_API_KEY when no flag names one, and keeps the emulator on loopback unless the
 * user asks otherwise (it accepts any subscriber and holds no real data; exposing it is a choice).
 */
import { isIP } from "node:net";
import { ConfigError } from "../errors.js";
import { PROJECT_TYPES, type ProjectType } from "../iterable/wire.js";
import type { EmulatorOptions } from "./index.js";

/** The flags as commander hands them over (strings; booleans for switches). */
export interface EmulatorFlags {
  host?: string;
  port?: string;
  projectType?: string;
  apiKey?: string;
  rateLimit?: string;
  faultRate?: string;
  latency?: string;
  state?: string;
  newListInvalidMs?: string;
  allowRemote?: boolean;
}

export function isLoopbackHost(host: string): boolean {
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

function number(
  raw: string | undefined,
  flag: string,
  check: (n: number) => boolean,
  rule: string,
): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(n) || !check(n)) {
    throw new ConfigError(`must be ${rule}, got "${raw}"`, flag);
  }
  return n;
}

export function emulatorOptionsFromFlags(
  flags: EmulatorFlags,
  env: NodeJS.ProcessEnv = process.env,
): EmulatorOptions {
  const host = flags.host ?? "127.0.0.1";
  if (!isLoopbackHost(host) && !flags.allowRemote) {
    throw new ConfigError(
      `${host} is not a loopback address; pass --allow-remote to listen on it`,
      "--host",
    );
  }
  const projectType = (flags.projectType ?? "hybrid") as ProjectType;
  if (!PROJECT_TYPES.includes(projectType)) {
    throw new ConfigError(
      `must be one of ${PROJECT_TYPES.join(", ")}, got "${flags.projectType}"`,
      "--project-type",
    );
  }
  const apiKey = flags.apiKey ?? env.ITERABLE_API_KEY;
  if (!apiKey) {
    throw new ConfigError("required (or set ITERABLE_API_KEY)", "--api-key");
  }
  const options: EmulatorOptions = {
    host,
    port:
      number(flags.port, "--port", (n) => Number.isInteger(n) && n >= 0 && n <= 65535, "a port") ??
      4010,
    projectType,
    apiKey,
  };
  const rateLimit = number(flags.rateLimit, "--rate-limit", (n) => n > 0, "a positive number");
  if (rateLimit !== undefined) options.rateLimit = rateLimit;
  const faultRate = number(flags.faultRate, "--fault-rate", (n) => n >= 0 && n <= 1, "in 0..1");
  if (faultRate !== undefined) options.faultRate = faultRate;
  const latency = number(flags.latency, "--latency", (n) => n >= 0, "milliseconds >= 0");
  if (latency !== undefined) options.latencyMs = latency;
  const newListInvalidMs = number(
    flags.newListInvalidMs,
    "--new-list-invalid-ms",
    (n) => n >= 0,
    "milliseconds >= 0",
  );
  if (newListInvalidMs !== undefined) options.newListInvalidMs = newListInvalidMs;
  if (flags.state !== undefined) options.statePath = flags.state;
  return options;
}

/** What the command prints on start: where it listens and the config that points at it. */
export function startBanner(url: string, options: EmulatorOptions): string {
  const extras = [
    options.rateLimit !== undefined ? `rate limit ${options.rateLimit}/s` : "",
    options.faultRate ? `fault rate ${options.faultRate}` : "",
    options.latencyMs ? `latency ${options.latencyMs} ms` : "",
    options.statePath ? `state ${options.statePath}` : "",
  ].filter(Boolean);
  return [
    `Iterable emulator (${options.projectType} project) listening on ${url}`,
    ...(extras.length ? [`  ${extras.join(", ")}`] : []),
    "",
    "Point a destination at it in audience-sync.yaml:",
    "  destinations:",
    "    iterable:",
    "      type: iterable",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${VAR} of the YAML config
    "      apiKey: ${ITERABLE_API_KEY}   # the key the emulator was started with",
    `      projectType: ${options.projectType}`,
    `      baseUrl: ${url}`,
    "",
    `Admin API under ${url}/_emulator/ (same Api-Key header). Ctrl-C stops it.`,
    "",
  ].join("\n");
}
