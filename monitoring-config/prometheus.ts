/** prometheus.yml rendered from the stack: one scrape job per kind of exporter, the generated rules loaded. */
export interface ScrapeTarget {
  job: string;
  /** host:port */
  target: string;
  instance: string;
  /** Further labels on every series of the target (the Patroni job's `member`). */
  labels?: Record<string, string>;
}

/** How often Prometheus scrapes and evaluates the rules; alerts that must outlast one scrape read it. */
export const SCRAPE_INTERVAL_SECONDS = 15;

/**
 * One scrape config per job name (Prometheus refuses to start on two configs with the same
 * job_name), each target a static config of its own so it keeps its `instance` label.
 */
export function renderPrometheusConfig(environment: string, targets: ScrapeTarget[], rulesFile: string): string {
  const out = [
    "# prometheus.yml rendered by pgharbor.",
    "global:",
    `  scrape_interval: ${SCRAPE_INTERVAL_SECONDS}s`,
    `  evaluation_interval: ${SCRAPE_INTERVAL_SECONDS}s`,
    "  external_labels:",
    `    environment: ${environment}`,
    "rule_files:",
    `  - ${rulesFile}`,
    "scrape_configs:",
  ];
  const jobs = [...new Set(targets.map((t) => t.job))];
  for (const job of jobs) {
    out.push(`  - job_name: ${JSON.stringify(job)}`, "    static_configs:");
    for (const t of targets.filter((x) => x.job === job)) {
      out.push(`      - targets: [${JSON.stringify(t.target)}]`, "        labels:", `          instance: ${JSON.stringify(t.instance)}`);
      for (const [k, v] of Object.entries(t.labels ?? {})) out.push(`          ${k}: ${JSON.stringify(v)}`);
    }
  }
  return out.join("\n") + "\n";
}
