/**
 * Micro-benchmark of the per-row identifier checks: validations per second over a mix of typical
 * addresses and the conformance vectors. Prints numbers only; nothing is asserted.
 * Run: node --import tsx bench/email-validator.ts
 */
import { readFileSync } from "node:fs";
import { isValidEmail, normalizeEmail } from "../src/identity/email.js";
import { validateRow } from "../src/identity/rules.js";

const vectors: { valid: string[]; invalid: string[] } = JSON.parse(
  readFileSync(new URL("../test/fixtures/email-vectors.json", import.meta.url), "utf8"),
);

const ASCII_DOMAINS = ["gmail.com", "example.org", "mail.co.uk", "company.io"];
const asciiTypical = Array.from(
  { length: 1000 },
  (_, i) => `First.Last+${i}@${ASCII_DOMAINS[i % ASCII_DOMAINS.length]}`,
);
// Every fifth address on an IDN domain, which goes through IDN conversion.
const typical = asciiTypical.map((s, i) => (i % 5 === 4 ? s.replace(/@.*/, "@b\u00fccher.ch") : s));

function measure(label: string, inputs: readonly string[], check: (s: string) => unknown): void {
  const minMs = 1000;
  let runs = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  let elapsedMs = 0;
  while (elapsedMs < minMs) {
    for (const input of inputs) if (check(input)) sink++;
    runs += inputs.length;
    elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
  }
  const perSecond = Math.round((runs / elapsedMs) * 1000);
  console.log(
    `${label.padEnd(44)} ${perSecond.toLocaleString("en-US").padStart(14)} /s  (${sink})`,
  );
}

// More distinct domains than the validator remembers, so every check does the full domain work.
const uniqueDomains = Array.from({ length: 25_000 }, (_, i) => `first.last@host${i}.example.com`);
const everyVector = [...vectors.valid, ...vectors.invalid];

// Warm-up so the JIT has compiled the paths being measured.
for (let i = 0; i < 20; i++) for (const s of everyVector) isValidEmail(s);

console.log(`node ${process.version}, ${process.platform}/${process.arch}`);
measure("isValidEmail, typical ASCII addresses", asciiTypical, isValidEmail);
measure("isValidEmail, typical incl. 20% IDN domains", typical, isValidEmail);
measure("isValidEmail, all-distinct domains", uniqueDomains, isValidEmail);
measure("isValidEmail, the 316 conformance vectors", everyVector, isValidEmail);
measure("normalizeEmail + isValidEmail, typical", typical, (s) => {
  const email = normalizeEmail(s);
  return email !== null && isValidEmail(email);
});
measure(
  "validateRow(hybrid), typical",
  typical,
  (s) => validateRow("hybrid", { email: s, userId: s.slice(0, 20) }).ok,
);
