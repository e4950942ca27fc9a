/** Child processes of benchmarks: spawn this same script in a mode, read one JSON line back. */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** Spawns `node --import tsx script ...args` and resolves with the first JSON line it prints;
 *  the child keeps running (an emulator) until its stdin is closed. */
export async function spawnJson<T>(
  script: string,
  args: string[],
  nodeArgs: string[] = [],
): Promise<{ child: ChildProcess; first: T }> {
  const child = spawn(process.execPath, [...nodeArgs, "--import", "tsx", script, ...args], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  for await (const line of lines) {
    if (line.startsWith("{")) return { child, first: JSON.parse(line) as T };
  }
  throw new TypeError(`${script} ${args.join(" ")} exited before printing its result`);
}

/** Runs a child to completion and returns the JSON line it printed. */
export async function runJson<T>(
  script: string,
  args: string[],
  nodeArgs: string[] = [],
): Promise<T> {
  const { child, first } = await spawnJson<T>(script, args, nodeArgs);
  child.stdin?.end();
  if (child.exitCode === null) await new Promise((resolve) => child.once("exit", resolve));
  return first;
}

/** A child's side of spawnJson for an emulator: prints its URL as the JSON line, then serves
 *  until the parent closes this process's stdin. */
export function serveUntilStdinEnds(em: { url: string; close(): Promise<void> }): void {
  process.stdout.write(`${JSON.stringify({ url: em.url })}\n`);
  process.stdin.resume();
  process.stdin.on("end", () => {
    void em.close().then(() => process.exit(0));
  });
}
