/** Ctrl-C / SIGTERM: the first asks the run to stop sending and commit what was confirmed; a
 *  second one ends the process at once. */
export function cancellationSignal(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let count = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      process.stderr.write(
        `\n${sig}: stopping; committing what Iterable confirmed (again to quit at once)\n`,
      );
      controller.abort(new Error(`stopped by ${sig}`));
    } else {
      process.exit(130);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}
