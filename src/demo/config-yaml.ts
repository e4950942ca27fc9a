/**
 * audience-sync.yaml text from a plain config object, for the files `demo` and `init` write.
 */
import { isScalar, parseDocument, Scalar, stringify, visit } from "yaml";

/** YAML 1.1 readers take an unquoted 06:30 for a number (base 60) and a cron line full of `*`
 *  is hard to read bare: such values are written in double quotes. */
const NEEDS_QUOTES = /^\d{1,2}:\d\d$|\*/;

export function configYaml(config: Record<string, unknown>, header = ""): string {
  // No anchors: a file someone edits reads better with each sync's settings spelt out.
  const doc = parseDocument(stringify(config, { aliasDuplicateObjects: false }));
  visit(doc, {
    Scalar(_key, node) {
      if (isScalar(node) && typeof node.value === "string" && NEEDS_QUOTES.test(node.value)) {
        node.type = Scalar.QUOTE_DOUBLE;
      }
    },
  });
  const comment = header
    .trimEnd()
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => `# ${l}`.trimEnd())
    .join("\n");
  return `${comment ? `${comment}\n` : ""}${doc.toString({ lineWidth: 0 })}`;
}
