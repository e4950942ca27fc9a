/** `serve`: run every schedule of the config, with the HTTP API, until SIGTERM or SIGINT. */
import { isIP } from "node:net";
import type { Command } from "commander";
import { ConfigError } from "../errors.js";
import { createLogger } from "../scheduler/log.js";
import { startService } from "../scheduler/service.js";

/** Hosts only this machine can reach: the API may then run without a token. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  return h.startsWith("::ffff:127.");
}

function parsePort(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) {
    throw new ConfigError(`--port must be a port number (0 to 65535), got "${text}"`);
  }
  return Number(text);
}

function parseSeconds(text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text) || Number(text) <= 0) {
    throw new ConfigError(`--stop-timeout must be a number of seconds, got "${text}"`);
  }
  return Number(text) * 1000;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run every scheduled sync until stopped, with an HTTP API and /metrics")
    .option("--port <port>", "port of the HTTP API (0: any free port)", "8080")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option(
      "--stop-timeout <seconds>",
      "on SIGTERM/SIGINT, how long running syncs get to stop sending and commit",
      "25",
    )
    .action(async (opts: { port: string; host: string; stopTimeout: string }) => {
      const port = parsePort(opts.port);
      const stopTimeoutMs = parseSeconds(opts.stopTimeout);
      const token = process.env.AUDIENCE_SYNC_TOKEN?.trim() || null;
      if (token === null && !isLoopback(opts.host)) {
        throw new ConfigError(
          `refusing to serve on ${opts.host} without a token: set AUDIENCE_SYNC_TOKEN (the /api routes then require "Authorization: Bearer <token>"), or listen on 127.0.0.1`,
        );
      }
      const logger = createLogger();
      if (token === null) {
        logger.warn(
          { host: opts.host },
          "AUDIENCE_SYNC_TOKEN is not set: the /api routes answer without a token (loopback only)",
        );
      }
      const service = await startService({
        configFile: program.opts<{ config: string }>().config,
        host: opts.host,
        port,
        token,
        logger,
      });

      const stopped = new Promise<string[]>((resolve) => {
        let stopping = false;
        const onStop = (sig: NodeJS.Signals) => {
          if (stopping) {
            logger.warn({ signal: sig }, "second signal: exiting now");
            logger.flush();
            process.exit(130);
          }
          stopping = true;
          logger.info({ signal: sig }, "stop requested");
          service.stop({ timeoutMs: stopTimeoutMs }).then(resolve, (err: unknown) => {
            logger.error(
              { error: err instanceof Error ? err.message : String(err) },
              "stop failed",
            );
            resolve(["(unknown)"]);
          });
        };
        const onHup = () => {
          logger.info({}, "SIGHUP: reloading the config");
          service.reload().catch(() => undefined);
        };
        process.on("SIGTERM", onStop);
        process.on("SIGINT", onStop);
        process.on("SIGHUP", onHup);
      });

      const left = await stopped;
      process.exitCode = left.length > 0 ? 1 : 0;
      logger.flush();
      // Whatever a library left open (a pool's idle socket) must not keep the process past the
      // bound an orchestrator allows; unref'd, so a clean exit does not wait for it.
      setTimeout(() => process.exit(), 2000).unref();
    });
}
