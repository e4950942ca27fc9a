/**
 * Peak resident memory of this Node process: RSS sampled every 50 ms (native memory such as
 * DuckDB's buffer pool included), and the kernel's own high-water mark (`maxRSS`, lifetime of the
 * process, so it only means something for a process that does one thing).
 */
export interface RssSampler {
  /** highest sampled RSS since start() or the last reset(), in bytes */
  peak(): number;
  reset(): void;
  stop(): void;
}

export function sampleRss(intervalMs = 50): RssSampler {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    const rss = process.memoryUsage.rss();
    if (rss > peak) peak = rss;
  }, intervalMs);
  timer.unref();
  return {
    peak: () => Math.max(peak, process.memoryUsage.rss()),
    reset: () => {
      peak = process.memoryUsage.rss();
    },
    stop: () => clearInterval(timer),
  };
}

/** The kernel's peak RSS of this process, in bytes (resourceUsage reports kilobytes). */
export function maxRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}
