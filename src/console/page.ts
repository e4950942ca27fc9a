/**
 * The web console of `serve`: one HTML document with its style and script inline and no data in
 * it. The page reads everything from the /api routes with the token the user types, so serving
 * the page itself needs no auth. The Content-Security-Policy allows exactly these two inline
 * blocks (by hash) and requests to this origin, so no other script or style can run on the page
 * even if some value from the API were ever inserted as markup.
 */
import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import { CONSOLE_SCRIPT } from "./script.js";
import { CONSOLE_STYLE } from "./style.js";

/** The CSP source expression of one inline block: hashes stay valid for a static page, where a
 *  nonce would need a new page per request. */
function sha256Source(text: string): string {
  return `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;
}

export const CONSOLE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>audience-sync</title>
<style>${CONSOLE_STYLE}</style>
</head>
<body>
<header>
  <h1><a href="#/">audience-sync</a></h1>
  <span class="grow"></span>
  <span id="updated"></span>
  <button type="button" id="refresh">Refresh</button>
  <button type="button" id="forget" hidden>Forget token</button>
</header>
<noscript><p class="empty">The console needs JavaScript. The same data is in the HTTP API (docs/serve.md).</p></noscript>
<section id="auth" hidden>
  <form id="auth-form" autocomplete="off">
    <p id="auth-why"></p>
    <label for="token">API token</label>
    <input id="token" type="password" required spellcheck="false">
    <button type="submit">Use token</button>
    <p class="small muted">Kept in this tab only (sessionStorage) and sent as <code>Authorization: Bearer</code> to this service.</p>
  </form>
</section>
<div id="notice" role="status"></div>
<main id="main"></main>
<script>${CONSOLE_SCRIPT}</script>
</body>
</html>
`;

export const CONSOLE_CSP = [
  "default-src 'none'",
  `script-src ${sha256Source(CONSOLE_SCRIPT)}`,
  `style-src ${sha256Source(CONSOLE_STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const BODY = Buffer.from(CONSOLE_HTML, "utf8");

export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "content-length": String(BODY.length),
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

export function sendConsole(res: ServerResponse): void {
  res.writeHead(200, CONSOLE_HEADERS);
  res.end(BODY);
}
