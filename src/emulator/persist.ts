/**
 * The --state file: the emulator's users, lists and forgotten identifiers as JSON, so a sandbox
 * survives restarts. Written to a temporary file and renamed, so a crash never leaves half a file.
 */
import { readFile, rename, writeFile } from "node:fs/promises";
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { PROJECT_TYPES } from "../iterable/wire.js";
import type { StateSnapshot } from "./state.js";

const StateFile = z.object({
  version: z.literal(1),
  projectType: z.enum(PROJECT_TYPES),
  nextListId: z.number().int(),
  lists: z.array(
    z.object({
      id: z.number().int(),
      name: z.string(),
      description: z.string().optional(),
      createdAt: z.number(),
      listType: z.literal("Standard"),
      members: z.array(z.number().int()),
    }),
  ),
  users: z.array(
    z.object({
      key: z.number().int(),
      email: z.string().optional(),
      userId: z.string().optional(),
    }),
  ),
  forgotten: z.object({ emails: z.array(z.string()), userIds: z.array(z.string()) }),
});

/** Reads a state file; undefined when there is none yet. A malformed file is a ConfigError. */
export async function loadStateFile(path: string): Promise<StateSnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfigError(`cannot read emulator state file: ${(err as Error).message}`, path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError("emulator state file is not valid JSON", path);
  }
  const parsed = StateFile.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(`not an emulator state file: ${z.prettifyError(parsed.error)}`, path);
  }
  return parsed.data;
}

export async function saveStateFile(path: string, snapshot: StateSnapshot): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(snapshot)}\n`, "utf8");
  await rename(tmp, path);
}
