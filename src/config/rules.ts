/**
 * Rules that span sections of the config: a sync names a source and a destination, and the
 * destination's project type decides which identifiers and options the sync may use
 * (Iterable's "Project Types and Unique Identifiers"; NOTES.md, Semantics by project type).
 *
 * They read the file leniently (a value of the wrong type counts as absent; the schema reports
 * it), so that one run of `check` lists these problems next to the schema's.
 */
import { z } from "zod";
import { PROJECT_TYPES } from "../iterable/wire.js";
import type { ConfigIssue } from "./issues.js";

const text = z.string().optional().catch(undefined);
const mapping = <T extends z.ZodType>(value: T) =>
  z.record(z.string(), value).optional().catch(undefined);

const LooseConfig = z.looseObject({
  sources: mapping(z.unknown()),
  destinations: mapping(
    z.looseObject({ projectType: z.enum(PROJECT_TYPES).optional().catch(undefined) }).catch({}),
  ),
  syncs: mapping(
    z
      .looseObject({
        source: text,
        destination: text,
        identifiers: z.looseObject({ email: text, userId: text }).optional().catch(undefined),
        updateExistingUsersOnly: z.boolean().optional().catch(undefined),
      })
      .catch({}),
  ),
});

const PROJECT_WORDING = {
  email: "an email-based",
  userId: "a userID-based",
  hybrid: "a hybrid",
} as const;

/** `tree` is the file after `${VAR}` interpolation. */
export function crossFieldIssues(tree: unknown): ConfigIssue[] {
  const parsed = LooseConfig.safeParse(tree);
  if (!parsed.success) return [];
  const sourceNames = Object.keys(parsed.data.sources ?? {});
  const destinations = parsed.data.destinations ?? {};
  const destinationNames = Object.keys(destinations);

  const issues: ConfigIssue[] = [];
  for (const [name, sync] of Object.entries(parsed.data.syncs ?? {})) {
    const at = (...rest: string[]) => ["syncs", name, ...rest];

    if (sync.source !== undefined && !sourceNames.includes(sync.source)) {
      issues.push({ path: at("source"), message: unknown("source", sync.source, sourceNames) });
    }
    if (sync.destination === undefined) continue;
    if (!destinationNames.includes(sync.destination)) {
      issues.push({
        path: at("destination"),
        message: unknown("destination", sync.destination, destinationNames),
      });
      continue;
    }

    const projectType = destinations[sync.destination]?.projectType;
    if (projectType === undefined) continue;
    const project = `destination "${sync.destination}" is ${PROJECT_WORDING[projectType]} project`;

    if (sync.updateExistingUsersOnly === true && projectType === "email") {
      issues.push({
        path: at("updateExistingUsersOnly"),
        message: `only userID-based and hybrid projects support it and ${project}; remove it or set it to false`,
      });
    }

    // A missing identifiers block is the schema's to report.
    if (!sync.identifiers) continue;
    const { email, userId } = sync.identifiers;
    switch (projectType) {
      case "email":
        if (userId !== undefined) {
          issues.push({
            path: at("identifiers", "userId"),
            message: `${project}, which identifies users by email only; remove identifiers.userId`,
          });
        }
        if (email === undefined) {
          issues.push({
            path: at("identifiers", "email"),
            message: `required: ${project}; name the column that holds the email address`,
          });
        }
        break;
      case "userId":
        if (email !== undefined) {
          issues.push({
            path: at("identifiers", "email"),
            message: `${project}, which identifies users by userId only; remove identifiers.email`,
          });
        }
        if (userId === undefined) {
          issues.push({
            path: at("identifiers", "userId"),
            message: `required: ${project}; name the column that holds the userId`,
          });
        }
        break;
      case "hybrid":
        if (email === undefined && userId === undefined) {
          issues.push({
            path: at("identifiers"),
            message: `${project}; name the email column, the userId column, or both`,
          });
        }
        break;
    }
  }
  return issues;
}

function unknown(kind: string, name: string, defined: readonly string[]): string {
  if (defined.length === 0) {
    return `unknown ${kind} "${name}"; no ${kind}s are defined: add one under ${kind}s`;
  }
  return `unknown ${kind} "${name}"; defined ${kind}s: ${defined.join(", ")}`;
}
