import { stringify } from "yaml";
import { type Config, parseConfig } from "../../src/config/index.js";
import { ConfigError } from "../../src/errors.js";

export const API_KEY = "0123456789abcdef0123456789abcdef";
export const ENV = { ITERABLE_API_KEY: API_KEY };
export const CONFIG_FILE = "/etc/audience-sync/audience-sync.yaml";

type Patch = Record<string, unknown>;

/** `${NAME}` as it is written in a config file. */
export const ref = (name: string) => `\${${name}}`;

/** A valid config with one source, one destination and one sync (vip-users), each changed by
 *  its patch; a patch value of undefined removes that setting. */
export function build(patches: { source?: Patch; destination?: Patch; sync?: Patch } = {}) {
  const merge = (base: Patch, patch: Patch = {}) => {
    const out: Patch = { ...base, ...patch };
    for (const [key, value] of Object.entries(out)) if (value === undefined) delete out[key];
    return out;
  };
  return {
    sources: { warehouse: merge({ type: "duckdb" }, patches.source) },
    destinations: {
      iterable: merge(
        { type: "iterable", apiKey: ref("ITERABLE_API_KEY"), projectType: "hybrid" },
        patches.destination,
      ),
    },
    syncs: {
      "vip-users": merge(
        {
          source: "warehouse",
          destination: "iterable",
          model: "select email, user_id from vip_customers",
          list: { id: 123 },
          identifiers: { email: "email", userId: "user_id" },
        },
        patches.sync,
      ),
    },
  };
}

export function parseObject(
  config: unknown,
  env: Record<string, string> = ENV,
  file = CONFIG_FILE,
): Config {
  return parseConfig(stringify(config), { env, file });
}

/** The ConfigError a call throws; fails the test when it throws nothing or something else. */
export function configErrorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError, but the call succeeded");
}

/** The message with which a config (as an object) is refused. */
export function refusal(config: unknown, env: Record<string, string> = ENV): string {
  return configErrorOf(() => parseObject(config, env)).message;
}
