/** prometheus.yml rendered from the stack: one job per exporter, the generated rules loaded. */
export interface ScrapeTarget {
  job: string;
  /** host:port */
  target: string;
  instance: string;
}

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
  for (const t of targets) {
    out.push(`  - job_name: ${JSON.stringify(t.job)}`, "    static_configs:", `      - targets: [${JSON.stringify(t.target)}]`, "        labels:", `          instance: ${JSON.stringify(t.instance)}`);
  }
  return out.join("\n") + "\n";
}
