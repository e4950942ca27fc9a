/**
 * Problems found in a config file, each tied to the dotted path of the setting, and their
 * rendering as one ConfigError. The API key and passwords are redacted from the rendered text.
 */
import type { z } from "zod";
import { ConfigError, redact } from "../errors.js";

export type ConfigPath = readonly PropertyKey[];

export interface ConfigIssue {
  path: ConfigPath;
  message: string;
}

export function formatPath(path: ConfigPath): string {
  // Quote a key that is not a plain name, so `sources."my.db"` is not read as two levels.
  return path
    .map((part) =>
      /^[A-Za-z0-9_-]+$/.test(String(part)) ? String(part) : JSON.stringify(String(part)),
    )
    .join(".");
}

/** Turns zod's issues into one line each, with a path and a message a data engineer can act on.
 *  Unions are resolved to the branch the input was closest to, so `{ create: {} }` reports the
 *  missing name instead of "invalid input". */
export function fromZodIssues(
  issues: readonly z.core.$ZodIssue[],
  base: ConfigPath = [],
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: [...path, key], message: issue.message });
    } else if (issue.code === "invalid_key") {
      const reason = issue.issues[0]?.message ?? issue.message;
      out.push({ path, message: `invalid name: ${reason}` });
    } else if (issue.code === "invalid_union" && issue.errors.length > 0) {
      const closest = closestBranch(issue.errors);
      if (closest) out.push(...fromZodIssues(closest, path));
      else out.push({ path, message: issue.message });
    } else {
      out.push({ path, message: issue.message });
    }
  }
  return out;
}

function closestBranch(
  branches: readonly (readonly z.core.$ZodIssue[])[],
): readonly z.core.$ZodIssue[] | undefined {
  const sizes = branches.map((b) => b.length);
  const best = Math.min(...sizes);
  // A tie means the input is as far from one form as from the other: say what the forms are.
  if (sizes.filter((s) => s === best).length > 1) return undefined;
  return branches[sizes.indexOf(best)];
}

/** Default wording for zod's built-in checks, used where a schema gives no message of its own.
 *  It never echoes the offending value, which could be a secret in the wrong place. */
export const errorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return "required";
      return `must be ${article(issue.expected)}, not ${describe(issue.input)}`;
    case "too_small":
      if (issue.origin === "string") return "must not be empty";
      return `must be ${issue.inclusive === false ? "greater than" : "at least"} ${String(issue.minimum)}`;
    case "too_big":
      if (issue.origin === "string") return `must be at most ${String(issue.maximum)} characters`;
      return `must be ${issue.inclusive === false ? "less than" : "at most"} ${String(issue.maximum)}`;
    case "invalid_value":
      return `must be ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}`;
    case "unrecognized_keys":
      return "unknown setting";
    default:
      return undefined;
  }
};

function article(expected: string): string {
  if (expected === "int") return "an integer";
  if (expected === "object" || expected === "record") return "a mapping";
  if (expected === "array") return "a list";
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function describe(input: unknown): string {
  if (input === null) return "empty";
  if (Array.isArray(input)) return "a list";
  if (typeof input === "object") return "a mapping";
  if (typeof input === "string") return "text";
  return `a ${typeof input}`;
}

/** One ConfigError for all issues, one `path: message` line each. `file` names the file for
 *  problems that have no path (the file as a whole). */
export function configError(
  issues: readonly ConfigIssue[],
  secrets: readonly string[],
  file?: string,
): ConfigError {
  const lines = issues.map((issue) => {
    const where = issue.path.length > 0 ? formatPath(issue.path) : (file ?? "config");
    return redact(`${where}: ${issue.message}`, ...secrets);
  });
  const [first] = issues;
  if (lines.length === 1 && first && first.path.length > 0) {
    const path = formatPath(first.path);
    return new ConfigError(lines[0]?.slice(path.length + 2) ?? "", path);
  }
  return new ConfigError(lines.join("\n"));
}
