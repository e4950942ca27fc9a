/** Human-readable renderings of reports for the terminal. */
import type { PlanReport } from "../sync/dry-run.js";
import type { RunReport } from "../sync/run.js";

const n = (x: number) => x.toLocaleString("en-US");

export function duration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

function codes(byCode: Partial<Record<string, number>>): string[] {
  return Object.entries(byCode)
    .filter(([, v]) => (v ?? 0) > 0)
    .sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0))
    .map(([code, v]) => `    ${code.padEnd(20)} ${n(v ?? 0)}`);
}

export function renderRunReport(r: RunReport): string {
  const lines: string[] = [];
  const status = {
    succeeded: "succeeded",
    completed_with_failures: "completed with failures",
    failed: "FAILED",
    cancelled: "cancelled",
  }[r.status];
  lines.push(`sync ${r.sync}: run ${r.runId ?? "-"} ${status} in ${duration(r.durationMs)}`);
  if (r.list)
    lines.push(
      `  list         ${r.list.name} (id ${r.list.id})${r.list.created ? ", created by this run" : ""}`,
    );
  if (r.error) lines.push(`  error        ${r.error.message}`);
  lines.push(
    `  rows read    ${n(r.rowsRead)} (${n(r.members)} members, ${n(r.invalidRows)} invalid, ${n(r.duplicateRows)} conflicting duplicates)`,
  );
  lines.push(
    `  subscribe    ${n(r.succeeded.subscribe)} succeeded, ${n(r.failed.subscribe)} failed (planned ${n(r.planned.subscribe)})`,
  );
  lines.push(
    `  unsubscribe  ${n(r.succeeded.unsubscribe)} succeeded, ${n(r.failed.unsubscribe)} failed (planned ${n(r.planned.unsubscribe)}${r.planned.skippedUnsubscribe ? `, ${n(r.planned.skippedUnsubscribe)} not sent: subscribed again under a new identity` : ""})`,
  );
  lines.push(`  unchanged    ${n(r.planned.unchanged)}`);
  if (r.warnings > 0)
    lines.push(`  warnings     ${n(r.warnings)} rows sent without an invalid identifier`);
  const c = codes(r.failuresByCode);
  if (c.length > 0) lines.push("  failures by code", ...c);
  if (r.sampleFailures.length > 0) {
    lines.push("  sample failures");
    for (const f of r.sampleFailures.slice(0, 5)) {
      lines.push(
        `    ${f.op} ${f.email ?? f.userId ?? f.key}: ${f.code} ${f.message ?? ""}`.trimEnd(),
      );
    }
    lines.push(`  all failures: audience-sync failures ${r.sync} --run ${r.runId}`);
  }
  for (const note of r.notes) lines.push(`  note: ${note}`);
  return `${lines.join("\n")}\n`;
}

export function renderPlanReport(p: PlanReport): string {
  const lines: string[] = [];
  const list = p.list.willBeCreated
    ? `${p.list.name} (will be created)`
    : `${p.list.name ?? "?"} (id ${p.list.id ?? "?"})`;
  lines.push(`plan for sync ${p.sync} (dry run: nothing is sent)`);
  lines.push(`  list            ${list}`);
  lines.push(
    `  rows read       ${n(p.rowsRead)} (${n(p.validRows)} valid, ${n(p.invalidRows)} invalid)`,
  );
  lines.push(`  members         ${n(p.members)}`);
  lines.push(
    `  to subscribe    ${n(p.toSubscribe)} (${n(p.toSubscribeAdded)} new, ${n(p.toSubscribeChanged)} changed identifiers)`,
  );
  lines.push(
    `  to unsubscribe  ${n(p.toUnsubscribe)}${p.skippedUnsubscribe ? ` (+${n(p.skippedUnsubscribe)} not sent: subscribed again under a new identity)` : ""}`,
  );
  lines.push(`  unchanged       ${n(p.unchanged)}`);
  lines.push(
    `  requests        ${n(p.requests.total)} (${n(p.requests.subscribe)} subscribe, ${n(p.requests.unsubscribe)} unsubscribe)` +
      (p.estimatedSeconds !== null
        ? `, about ${duration(p.estimatedSeconds * 1000)} at the configured rate`
        : ""),
  );
  const c = codes(p.invalidByCode);
  if (c.length > 0) lines.push("  invalid rows by code", ...c);
  const sample = (title: string, rows: { email: string | null; userId: string | null }[]) => {
    if (rows.length === 0) return;
    lines.push(`  sample ${title}`);
    for (const r of rows)
      lines.push(`    ${[r.email, r.userId].filter((v) => v !== null).join("  ")}`);
  };
  sample("subscribes", p.samples.subscribe);
  sample("unsubscribes", p.samples.unsubscribe);
  if (p.samples.invalid.length > 0) {
    lines.push("  sample invalid rows");
    for (const r of p.samples.invalid) lines.push(`    ${r.code}: ${r.message}`);
  }
  for (const note of p.notes) lines.push(`  note: ${note}`);
  return `${lines.join("\n")}\n`;
}
