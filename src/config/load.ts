/**
 * Reading `audience-sync.yaml`: YAML -> `${VAR}` interpolation -> schema -> cross-section rules
 * -> paths resolved. Every problem found is reported at once, one `path: fix` line each.
 */
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError } from "../errors.js";
import { DATA_CENTER_HOSTS } from "../iterable/wire.js";
import { type Env, interpolateEnv } from "./interpolate.js";
import {
  type ConfigIssue,
  type ConfigPath,
  configError,
  errorMap,
  formatPath,
  fromZodIssues,
} from "./issues.js";
import { crossFieldIssues } from "./rules.js";
import {
  type Config,
  ConfigSchema,
  type DestinationConfig,
  type SourceConfig,
  type SyncConfig,
} from "./schema.js";

export interface ParseOptions {
  /** Where `${VAR}` values come from; process.env when absent. */
  env?: NodeJS.ProcessEnv | Env;
  /** The file the text came from: names it in messages, anchors relative DuckDB paths. */
  file?: string;
  /** Top-level sections the caller does not use: a `${VAR}` missing there is not an error
   *  (`runs` and `failures` read the warehouse only and need no API key). */
  unusedSections?: readonly string[];
}

export const DEFAULT_CONFIG_FILE = "./audience-sync.yaml";

export async function loadConfig(
  file: string,
  opts: Omit<ParseOptions, "file"> = {},
): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new ConfigError(
        `${file}: no config file there; create one with \`audience-sync init\`, or point to yours with -c FILE`,
      );
    }
    throw new ConfigError(`${file}: cannot read the config file (${code ?? String(err)})`);
  }
  return parseConfig(text, { ...opts, file });
}

export function parseConfig(text: string, opts: ParseOptions = {}): Config {
  const env = opts.env ?? process.env;
  const where = opts.file ?? "config";

  const doc = parseDocument(text, { merge: true, uniqueKeys: true });
  const [syntaxError] = doc.errors;
  if (syntaxError) {
    // The first error only: the parser's later ones are consequences of it. Only its first line,
    // without the quoted token: the rest quotes the file, which may hold a key.
    const reason = (syntaxError.message.split("\n")[0] ?? "")
      .replace(/: ".*" at line/, " at line")
      .replace(/:$/, "");
    const lineNo = syntaxError.linePos?.[0].line ?? 0;
    const line = text.split("\n")[lineNo - 1] ?? "";
    // `{ port: ${PGPORT} }`: inside a flow mapping, YAML reads the `{` of `${` as structure.
    const hint = /\{.*\$\{/.test(line) ? `; inside { } write "\${VAR}" in quotes` : "";
    throw new ConfigError(`${where}: YAML syntax error: ${reason}${hint}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (raw === null || raw === undefined) {
    throw new ConfigError(
      `${where}: the file is empty; write sources, destinations and syncs (\`audience-sync init\` does it for you)`,
    );
  }
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(`${where}: must be a mapping with the keys sources, destinations, syncs`);
  }

  const unused = new Set(opts.unusedSections ?? []);
  const interpolation = interpolateEnv(raw, env, (path) => unused.has(String(path[0])));
  const tree = interpolation.value as Record<string, unknown>;
  const issues: ConfigIssue[] = [...interpolation.issues];
  const envIssuePaths = interpolation.issues.map((i) => formatPath(i.path));
  const secrets = collectSecrets(tree, envIssuePaths);

  let parsed = ConfigSchema.safeParse(tree, { error: errorMap });
  if (!parsed.success && coerceEnvScalars(tree, parsed.error.issues, interpolation.substituted)) {
    parsed = ConfigSchema.safeParse(tree, { error: errorMap });
  }
  if (!parsed.success) {
    // A value whose ${VAR} was missing is already reported; its schema complaint would be noise.
    const schemaIssues = fromZodIssues(parsed.error.issues).filter(
      (issue) => !envIssuePaths.includes(formatPath(issue.path)),
    );
    issues.push(...schemaIssues);
  }
  issues.push(...crossFieldIssues(tree));

  if (issues.length > 0 || !parsed.success) {
    throw configError(inDocumentOrder(issues, tree), secrets, where);
  }
  return resolvePaths(parsed.data, opts.file ? dirname(resolve(opts.file)) : process.cwd());
}

/** Sorts issues the way their settings appear in the file, so the lines read top to bottom. */
function inDocumentOrder(issues: readonly ConfigIssue[], tree: unknown): ConfigIssue[] {
  const position = (path: ConfigPath): number[] => {
    const out: number[] = [];
    let node = tree;
    for (const key of path) {
      const keys = node !== null && typeof node === "object" ? Object.keys(node) : [];
      const index = keys.indexOf(String(key));
      // A missing key (a required setting) sorts after the keys that are there.
      out.push(index < 0 ? keys.length : index);
      node = index < 0 ? undefined : (node as Record<string, unknown>)[String(key)];
    }
    return out;
  };
  const compare = (a: number[], b: number[]): number => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const d = (a[i] ?? 0) - (b[i] ?? 0);
      if (d !== 0) return d;
    }
    return a.length - b.length;
  };
  return issues
    .map((issue) => ({ issue, at: position(issue.path) }))
    .sort((x, y) => compare(x.at, y.at))
    .map((x) => x.issue);
}

/** Environment values are text; `port: ${PGPORT}` or `ssl: ${PG_SSL}` mean the number or the
 *  boolean. Converts only values that came from the environment and only where the schema asked
 *  for a number or a boolean. Returns whether anything changed. */
function coerceEnvScalars(
  tree: Record<string, unknown>,
  issues: readonly z.core.$ZodIssue[],
  substituted: readonly ConfigPath[],
): boolean {
  const fromEnv = new Set(substituted.map(formatPath));
  let changed = false;
  const visit = (list: readonly z.core.$ZodIssue[], base: readonly PropertyKey[]) => {
    for (const issue of list) {
      const path = [...base, ...issue.path];
      if (issue.code === "invalid_union") {
        for (const branch of issue.errors) visit(branch, path);
        continue;
      }
      if (issue.code !== "invalid_type" || !fromEnv.has(formatPath(path))) continue;
      const text = getAt(tree, path);
      const value = typeof text === "string" ? scalarFrom(text, issue.expected) : undefined;
      if (value !== undefined) {
        setAt(tree, path, value);
        changed = true;
      }
    }
  };
  visit(issues, []);
  return changed;
}

function scalarFrom(text: string, expected: string): number | boolean | undefined {
  const t = text.trim();
  if (expected === "number" && /^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  if (expected === "boolean" && (t === "true" || t === "false")) return t === "true";
  return undefined;
}

function getAt(tree: unknown, path: readonly PropertyKey[]): unknown {
  let node = tree;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function setAt(tree: unknown, path: readonly PropertyKey[], value: unknown): void {
  const parent = getAt(tree, path.slice(0, -1));
  const key = path[path.length - 1];
  if (parent !== null && typeof parent === "object" && key !== undefined) {
    (parent as Record<PropertyKey, unknown>)[key] = value;
  }
}

/** Values that must never appear in a message: API keys and database passwords, wherever they
 *  were written (also under a misspelt parent, which is exactly when an error echoes a path).
 *  A value whose ${VAR} was missing still holds the reference, which is not a secret. */
function collectSecrets(tree: unknown, unresolved: readonly string[]): string[] {
  const found: string[] = [];
  const visit = (node: unknown, path: PropertyKey[]) => {
    if (node === null || typeof node !== "object") return;
    for (const [key, value] of Object.entries(node)) {
      const at = [...path, key];
      if ((key === "apiKey" || key === "password") && typeof value === "string") {
        if (!unresolved.includes(formatPath(at))) found.push(value);
      } else {
        visit(value, at);
      }
    }
  };
  visit(tree, []);
  return found;
}

function resolvePaths(config: Config, baseDir: string): Config {
  const sources: Record<string, SourceConfig> = {};
  for (const [name, source] of Object.entries(config.sources)) {
    sources[name] =
      source.type === "duckdb" && source.path !== ":memory:" && !isAbsolute(source.path)
        ? { ...source, path: resolve(baseDir, source.path) }
        : source;
  }
  return { ...config, sources };
}

export interface ResolvedSync {
  name: string;
  sync: SyncConfig;
  source: SourceConfig;
  destination: DestinationConfig;
}

/** A sync with the source and destination it names. */
export function getSync(config: Config, name: string): ResolvedSync {
  const sync = config.syncs[name];
  if (!sync) {
    const defined = Object.keys(config.syncs);
    throw new ConfigError(
      defined.length > 0
        ? `unknown sync "${name}"; defined syncs: ${defined.join(", ")}`
        : `unknown sync "${name}"; the config defines no syncs: add one under syncs`,
    );
  }
  const source = config.sources[sync.source];
  if (!source) {
    throw new ConfigError(`unknown source "${sync.source}"`, `syncs.${name}.source`);
  }
  const destination = config.destinations[sync.destination];
  if (!destination) {
    throw new ConfigError(`unknown destination "${sync.destination}"`, `syncs.${name}.destination`);
  }
  return { name, sync, source, destination };
}

/** The API root a destination talks to: baseUrl when set, else its data centre's host. */
export function destinationBaseUrl(destination: DestinationConfig): string {
  return (destination.baseUrl ?? DATA_CENTER_HOSTS[destination.dataCenter]).replace(/\/+$/, "");
}

/** `table: marts.vip` -> { schema: "marts", name: "vip" }; `table: vip` -> { name: "vip" }. */
export function splitTableName(table: string): { schema?: string; name: string } {
  const dot = table.indexOf(".");
  return dot < 0 ? { name: table } : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}
