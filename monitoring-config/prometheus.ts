/** prometheus.yml rendered from the stack: one scrape job per kind of exporter, the generated rules loaded. */
export interface ScrapeTarget {
  job: string;
  /** host:port */
  target: string;
  instance: string;
}

/**
 * One scrape config per job name (Prometheus refuses to start on two configs with the same
 * job_name), each target a static config of its own so it keeps its `instance` label.
 */
export function renderPrometheusConfig(environment: string, targets: ScrapeTarget[], rulesFile: string): string {
  const out = [
    "# prometheus.yml rendered by pgharbor.",
    "global:",
    "  scrape_interval: 15s",
    "  evaluation_interval: 15s",
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
    }
  }
  return out.join("\n") + "\n";
}
