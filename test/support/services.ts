/**
 * Reachability of the database servers integration tests use. In CI (CI=true) an unreachable
 * server is a failure; elsewhere the tests that need it are skipped with a message.
 */
import net from "node:net";

export const POSTGRES_URL =
  process.env.TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const MYSQL_URL = process.env.TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";

function reachable(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

async function available(name: string, host: string, port: number): Promise<boolean> {
  const ok = await reachable(host, port);
  if (ok) return true;
  if (process.env.CI === "true") {
    throw new Error(`${name} at ${host}:${port} is unreachable; CI requires it`);
  }
  console.warn(`skipping ${name} tests: nothing listens on ${host}:${port}`);
  return false;
}

/** Top-level await in a test file: `const hasPg = await postgresAvailable(); describe.skipIf(!hasPg)` */
export const postgresAvailable = () => available("PostgreSQL", "127.0.0.1", 5432);
export const mysqlAvailable = () => available("MariaDB/MySQL", "127.0.0.1", 3306);
