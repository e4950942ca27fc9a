/**
 * `${VAR}` substitution from the environment. It walks the tree the YAML parser produced, so an
 * environment value is always one string value and can never add keys or structure to the file.
 */
import type { ConfigIssue, ConfigPath } from "./issues.js";

export type Env = Readonly<Record<string, string | undefined>>;

export interface Interpolation {
  value: unknown;
  issues: ConfigIssue[];
  /** Paths of string values that took text from the environment; an env var is text, so a
   *  number or boolean setting written as `${PGPORT}` is converted at those paths only. */
  substituted: ConfigPath[];
}

// `$${` is a literal `${`; `${NAME}` a reference; anything else after `${` is a mistake.
const TOKEN = /\$\$\{|\$\{([^}]*)(\}?)/g;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `unneeded(path)` marks values the caller will not use (e.g. `runs` reads only the warehouse, so
 * it needs no API key): a missing variable there is left as its `${NAME}` text, not an error.
 */
export function interpolateEnv(
  tree: unknown,
  env: Env,
  unneeded: (path: readonly PropertyKey[]) => boolean = () => false,
): Interpolation {
  const issues: ConfigIssue[] = [];
  const substituted: ConfigPath[] = [];

  const visit = (node: unknown, path: PropertyKey[]): unknown => {
    if (typeof node === "string") {
      const result = interpolateString(node, env);
      const lenient = result.problems.length > 0 && result.onlyMissing && unneeded(path);
      if (!lenient) for (const message of result.problems) issues.push({ path, message });
      if (result.substituted) substituted.push(path);
      return result.text;
    }
    if (Array.isArray(node)) return node.map((item, i) => visit(item, [...path, i]));
    if (node !== null && typeof node === "object") {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(node)) out[key] = visit(value, [...path, key]);
      return out;
    }
    return node;
  };

  return { value: visit(tree, []), issues, substituted };
}

function interpolateString(
  text: string,
  env: Env,
): { text: string; problems: string[]; substituted: boolean; onlyMissing: boolean } {
  const problems: string[] = [];
  let onlyMissing = true;
  let substituted = false;
  const out = text.replace(TOKEN, (token, name: string | undefined, close: string | undefined) => {
    if (token === "$${") return "${";
    if (close !== "}" || name === undefined || !VAR_NAME.test(name)) {
      onlyMissing = false;
      const shown = token.length > 40 ? `${token.slice(0, 40)}...` : token;
      problems.push(
        `malformed reference ${JSON.stringify(shown)}; write \${NAME} (letters, digits and _) for an environment variable, or $\${ for a literal \${`,
      );
      return token;
    }
    const value = env[name];
    if (value === undefined) {
      problems.push(
        `environment variable ${name} is not set (used here as \${${name}}); export it, or write $\${${name}} for the literal text`,
      );
      return token;
    }
    substituted = true;
    return value;
  });
  return { text: out, problems, substituted, onlyMissing };
}
