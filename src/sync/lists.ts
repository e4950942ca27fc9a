/**
 * Which Iterable list a sync writes to. `list: { id }` must exist; `list: { create }` is looked up
 * by name first, created only if absent, and its id remembered in the state schema, so a list is
 * never created twice (Iterable does not refuse duplicate names, NOTES.md).
 */
import type { SyncConfig } from "../config/index.js";
import { FatalError } from "../errors.js";
import type { ListDetails } from "../iterable/wire.js";
import type { Source } from "../sources/source.js";
import { getMetadata, putMetadata } from "../state/store.js";

export interface ListApi {
  getLists(): Promise<ListDetails[]>;
  createList(name: string, description?: string): Promise<number>;
}

export interface ResolvedList {
  id: number;
  name: string;
  created: boolean;
}

/** Finds (or, with `create`, creates) the list. `dryRun` never creates: it answers id -1. */
export async function resolveList(
  api: ListApi,
  source: Source,
  syncName: string,
  list: SyncConfig["list"],
  opts: { dryRun?: boolean } = {},
): Promise<ResolvedList> {
  const lists = await api.getLists();
  if ("id" in list) {
    const found = lists.find((l) => l.id === list.id);
    if (!found) {
      throw new FatalError(
        `sync "${syncName}": list ${list.id} does not exist in this Iterable project; check syncs.${syncName}.list.id (audience-sync lists shows the project's lists)`,
        "list_not_found",
      );
    }
    return { id: found.id, name: found.name, created: false };
  }
  const { name, description } = list.create;
  const meta = await getMetadata(source, syncName);
  if (meta?.listId != null) {
    const remembered = lists.find((l) => l.id === meta.listId);
    if (remembered) return { id: remembered.id, name: remembered.name, created: false };
  }
  // Standard lists only: a dynamic or suppression list of the same name is not ours to fill.
  const byName = lists
    .filter((l) => l.name === name && (l.listType === undefined || l.listType === "Standard"))
    .sort((a, b) => a.id - b.id)[0];
  if (byName) {
    if (!opts.dryRun)
      await putMetadata(source, syncName, { listId: byName.id, listName: byName.name });
    return { id: byName.id, name: byName.name, created: false };
  }
  if (opts.dryRun) return { id: -1, name, created: true };
  const id = await api.createList(name, description);
  await putMetadata(source, syncName, { listId: id, listName: name });
  return { id, name, created: true };
}
