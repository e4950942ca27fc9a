import { ConfigError } from "../errors.js";

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000 } as const;

// Units in descending order, each at most once: "1d", "6h", "1h30m", "90m".
const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$/;

/** Milliseconds of a schedule interval such as "30m", "6h", "1d" or "1h30m". Seconds are not
 *  accepted: nothing in a schedule runs more often than every few minutes. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text.trim());
  if (!match || text.trim() === "") {
    throw new ConfigError(
      `"${text}" is not a duration; write a number and a unit m, h or d, e.g. "30m", "6h", "1d" or "1h30m"`,
    );
  }
  const [, d, h, m] = match;
  return Number(d ?? 0) * UNIT_MS.d + Number(h ?? 0) * UNIT_MS.h + Number(m ?? 0) * UNIT_MS.m;
}

/** True when `text` is a duration parseDuration accepts. */
export function isDuration(text: string): boolean {
  return text.trim() !== "" && DURATION.test(text.trim());
}
