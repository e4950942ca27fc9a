/** The console's stylesheet, inlined in the page and allowed by its hash in the CSP. */
export const CONSOLE_STYLE = `
:root {
  color-scheme: light dark;
  --bg: #fff; --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --head: #f6f7f9;
  --link: #1f5fbf; --ok: #1a7f37; --warn: #9a6700; --bad: #c0262d; --run: #1f5fbf; --off: #667085;
  --ok-bg: #dafbe1; --warn-bg: #fff3c4; --bad-bg: #ffe1e1; --run-bg: #ddeaff; --off-bg: #eceef2;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #14171c; --fg: #e6e8eb; --muted: #98a2b3; --line: #2c313a; --head: #1b1f26;
    --link: #7aa7f0; --ok: #5fd17a; --warn: #e3b341; --bad: #ff7b72; --run: #7aa7f0; --off: #98a2b3;
    --ok-bg: #12321d; --warn-bg: #3a2e0a; --bad-bg: #3d1416; --run-bg: #14284a; --off-bg: #262b33;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; align-items: center; gap: 16px; padding: 10px 24px;
  border-bottom: 1px solid var(--line); background: var(--head); }
header h1 { font-size: 16px; margin: 0; }
header h1 a { color: inherit; text-decoration: none; }
header .grow { flex: 1; }
#updated { color: var(--muted); font-size: 12px; }
main, #auth, #notice { max-width: 1200px; margin: 0 auto; padding: 0 24px; }
main { padding-bottom: 40px; }
h2 { font-size: 18px; margin: 20px 0 4px; }
h3 { font-size: 15px; margin: 24px 0 8px; }
a { color: var(--link); }
.muted { color: var(--muted); }
.small { font-size: 12px; }
.crumbs { margin-top: 16px; color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin-top: 8px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 12px; font-weight: 600; color: var(--muted); background: var(--head); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.err { max-width: 420px; overflow-wrap: anywhere; }
tr.row-link { cursor: pointer; }
tr.row-link:hover td { background: var(--head); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; white-space: nowrap; background: var(--off-bg); color: var(--off); }
.s-succeeded { background: var(--ok-bg); color: var(--ok); }
.s-completed_with_failures { background: var(--warn-bg); color: var(--warn); }
.s-failed { background: var(--bad-bg); color: var(--bad); }
.s-running { background: var(--run-bg); color: var(--run); }
.bad { color: var(--bad); font-weight: 600; }
button, select, input { font: inherit; color: inherit; }
button { padding: 3px 10px; border: 1px solid var(--line); border-radius: 6px;
  background: var(--bg); cursor: pointer; }
button:hover { border-color: var(--muted); }
button:disabled { opacity: 0.5; cursor: default; }
button.link { border: 0; padding: 0; background: none; color: var(--link); text-decoration: underline; }
select, input { padding: 3px 6px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); }
.empty { margin: 16px 0; padding: 24px; border: 1px dashed var(--line); border-radius: 8px;
  text-align: center; color: var(--muted); }
.msg { margin: 12px 0 0; padding: 8px 12px; border-radius: 6px; display: flex; gap: 12px; align-items: baseline; }
.msg span { flex: 1; overflow-wrap: anywhere; }
.msg-ok { background: var(--ok-bg); color: var(--ok); }
.msg-warn { background: var(--warn-bg); color: var(--warn); }
.msg-error { background: var(--bad-bg); color: var(--bad); }
#auth form { margin: 24px 0; padding: 16px; border: 1px solid var(--line); border-radius: 8px;
  display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
#auth input { min-width: 320px; }
#auth p { width: 100%; margin: 0 0 4px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 4px 16px; margin: 12px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
pre.error { white-space: pre-wrap; overflow-wrap: anywhere; padding: 8px 12px; border-radius: 6px;
  background: var(--bad-bg); color: var(--bad); }
.toolbar { display: flex; gap: 12px; align-items: center; margin-top: 8px; }
[hidden] { display: none !important; }
`;
