/**
 * The bucket-side RPO probe is images/monitoring/rpo_probe.py: with the archive's read-only
 * credentials it reads, through pgBackRest, the newest WAL segment in the bucket and exports
 * `pgharbor_rpo_seconds` (now minus that segment's upload time, computed at scrape time), the last
 * completed backup per type, restore-drill and logical-backup evidence, and certificate expiries.
 */
export const PROBE_PORT = 9188;
