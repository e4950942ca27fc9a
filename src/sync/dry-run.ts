/**
 * `plan SYNC`: what a run would do, sending nothing. Counts, samples, invalid rows by code, the
 * number of API requests and how long they would take at the configured rate. The only trace it
 * leaves in the state schema is the state tables themselves; its work tables are dropped again.
 */
import type { ResolvedSync } from "../config/index.js";
import type { FailureCode } from "../errors.js";
import { validateRow } from "../identity/rules.js";
import type { ProjectType } from "../iterable/wire.js";
import {
  dropWorkTables,
  duplicateRows,
  invalidRows,
  type Plan,
  planRecords,
  preparePlan,
} from "../planner/planner.js";
import { modelSql, type Source } from "../sources/source.js";
import { ensureState, getMetadata } from "../state/store.js";
import { type ListApi, resolveList } from "./lists.js";
import { acquireLock, chooseBaseline, configFingerprint } from "./run.js";

/** Run id of dry runs' work tables; real runs count from 1. */
const DRY_RUN_ID = 0;
const SAMPLE_SIZE = 5;

export interface SampleRecord {
  email: string | null;
  userId: string | null;
}

export interface PlanReport {
  sync: string;
  list: { id: number | null; name: string | null; willBeCreated: boolean };
  firstRun: boolean;
  notes: string[];
  rowsRead: number;
  members: number;
  validRows: number;
  invalidRows: number;
  invalidByCode: Partial<Record<FailureCode, number>>;
  duplicateRows: number;
  toSubscribe: number;
  toSubscribeAdded: number;
  toSubscribeChanged: number;
  toUnsubscribe: number;
  skippedUnsubscribe: number;
  unchanged: number;
  samples: {
    subscribe: SampleRecord[];
    unsubscribe: SampleRecord[];
    invalid: (SampleRecord & { code: FailureCode; message: string })[];
  };
  requests: { subscribe: number; unsubscribe: number; total: number };
  /** at the configured maxRequestsPerSecond and concurrency; null when no cap bounds it */
  estimatedSeconds: number | null;
}

export async function dryRun(
  resolved: ResolvedSync,
  deps: { api: ListApi | null; source: Source },
): Promise<PlanReport> {
  const { source, api } = deps;
  const { sync, destination, name } = resolved;
  const projectType: ProjectType = destination.projectType;
  await ensureState(source);
  const release = await acquireLock(source, resolved);
  let plan: Plan | null = null;
  try {
    const notes: string[] = [];
    let listId: number | null = null;
    let listName: string | null = null;
    let willBeCreated = false;
    if (api) {
      const list = await resolveList(api, source, name, sync.list, { dryRun: true });
      listId = list.id >= 0 ? list.id : null;
      listName = list.name;
      willBeCreated = list.created;
    } else {
      const meta = await getMetadata(source, name);
      listId = "id" in sync.list ? sync.list.id : (meta?.listId ?? null);
      listName = "create" in sync.list ? sync.list.create.name : null;
      notes.push(
        "Iterable was not asked (offline plan): the list is taken from the config and the state schema",
      );
    }
    const chosen =
      listId === null
        ? {
            baseline: null,
            note: "first run: the list will be created and every valid row subscribed",
          }
        : await chooseBaseline(source, name, configFingerprint(resolved, listId), false);
    if (chosen.note) notes.push(chosen.note);

    plan = await preparePlan({
      source,
      syncName: name,
      projectType,
      modelSql: modelSql(sync, source.dialect),
      identifiers: sync.identifiers,
      runId: DRY_RUN_ID,
      baseline: chosen.baseline,
    });

    const invalidByCode: Partial<Record<FailureCode, number>> = {};
    const invalidSamples: PlanReport["samples"]["invalid"] = [];
    const countInvalid = (code: FailureCode, rec: SampleRecord, message: string) => {
      invalidByCode[code] = (invalidByCode[code] ?? 0) + 1;
      if (invalidSamples.length < SAMPLE_SIZE) invalidSamples.push({ ...rec, code, message });
    };
    for await (const batch of invalidRows(source, plan)) {
      for (const row of batch) {
        const v = validateRow(projectType, { email: row.email, userId: row.userId });
        countInvalid(
          v.ok ? "missing_identifier" : v.code,
          row,
          v.ok ? "no usable identifier" : v.message,
        );
      }
    }
    for await (const batch of duplicateRows(source, plan)) {
      for (const row of batch)
        countInvalid("duplicate_identity", row, `another row has identity ${row.identity}`);
    }
    // Emails are judged in TypeScript (Iterable's validator), so only new or changed rows need it.
    let subscribable = 0;
    const validByKind = { added: 0, changed: 0 };
    const subSamples: SampleRecord[] = [];
    for await (const batch of planRecords(source, plan, "subscribe")) {
      for (const rec of batch) {
        const v = validateRow(projectType, { email: rec.email, userId: rec.userId });
        if (!v.ok) {
          countInvalid(v.code, rec, v.message);
          continue;
        }
        subscribable++;
        if (rec.kind === "changed") validByKind.changed++;
        else validByKind.added++;
        if (subSamples.length < SAMPLE_SIZE)
          subSamples.push({ email: rec.email, userId: rec.userId });
      }
    }
    const unsubSamples: SampleRecord[] = [];
    for await (const batch of planRecords(source, plan, "unsubscribe")) {
      for (const rec of batch) {
        if (unsubSamples.length < SAMPLE_SIZE)
          unsubSamples.push({ email: rec.email, userId: rec.userId });
      }
      if (unsubSamples.length >= SAMPLE_SIZE) break;
    }

    const invalidTotal = Object.values(invalidByCode).reduce((a, b) => a + (b ?? 0), 0);
    const reqSub = Math.ceil(subscribable / destination.batchSize);
    const reqUnsub = Math.ceil(plan.unsubscribe / destination.batchSize);
    const total = reqSub + reqUnsub;
    const rate = destination.maxRequestsPerSecond;
    return {
      sync: name,
      list: { id: listId, name: listName, willBeCreated },
      firstRun: plan.firstRun,
      notes,
      rowsRead: plan.rowsRead,
      members: plan.members,
      validRows: plan.rowsRead - invalidTotal,
      invalidRows: invalidTotal,
      invalidByCode,
      duplicateRows: plan.duplicateRows,
      toSubscribe: subscribable,
      toSubscribeAdded: validByKind.added,
      toSubscribeChanged: validByKind.changed,
      toUnsubscribe: plan.unsubscribe,
      skippedUnsubscribe: plan.skippedUnsubscribe,
      unchanged: plan.unchanged,
      samples: { subscribe: subSamples, unsubscribe: unsubSamples, invalid: invalidSamples },
      requests: { subscribe: reqSub, unsubscribe: reqUnsub, total },
      estimatedSeconds: rate ? Math.ceil(total / rate) : null,
    };
  } finally {
    try {
      if (plan) await dropWorkTables(source, plan);
    } finally {
      await release();
    }
  }
}
