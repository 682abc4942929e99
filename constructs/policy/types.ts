/** Policy rules run on a stack's synthesised Terraform JSON, like checkov runs on a plan. */
export type Level = "error" | "warning";
export type Status = "compliant" | "non-compliant" | "not-applicable";

export interface Finding {
  readonly status: Status;
  /** Terraform address or file the finding is about. */
  readonly subject?: string;
  readonly detail?: string;
}

export interface PolicyRule {
  readonly id: string;
  readonly level: Level;
  readonly title: string;
  readonly explanation: string;
  /** The matching checkov check, where one exists. */
  readonly checkov?: string;
  evaluate(stack: StackJson): Finding[];
}

export interface StackJson {
  resource?: Record<string, Record<string, Record<string, unknown>>>;
  data?: Record<string, Record<string, Record<string, unknown>>>;
  [k: string]: unknown;
}

export interface UploadedFile {
  /** docker_container.<name> */
  readonly container: string;
  readonly path: string;
  readonly content: string;
}

export function resources(stack: StackJson, type: string): Array<[string, Record<string, unknown>]> {
  return Object.entries(stack.resource?.[type] ?? {});
}

/** Every file uploaded into a container, with its container's Terraform address. */
export function uploadedFiles(stack: StackJson): UploadedFile[] {
  return resources(stack, "docker_container").flatMap(([name, c]) =>
    ((c.upload as Array<{ file: string; content?: string }>) ?? []).map((u) => ({ container: `docker_container.${name}`, path: u.file, content: u.content ?? "" })),
  );
}

export function filesNamed(stack: StackJson, basename: string): UploadedFile[] {
  return uploadedFiles(stack).filter((f) => f.path.endsWith(`/${basename}`));
}

/** True when `value` (a Terraform expression string) references `aws_s3_bucket.<name>`. */
export function refersTo(value: unknown, type: string, name: string): boolean {
  return typeof value === "string" && value.includes(`${type}.${name}.`);
}

/** Settings of an ini-like file (`key = value` or `key=value`), quotes stripped. */
export function settings(content: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of content.split("\n")) {
    const m = /^\s*([A-Za-z0-9_.-]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trim().startsWith("#") || line.trim().startsWith(";")) continue;
    out.set(m[1], m[2].replace(/^'(.*)'$/, "$1"));
  }
  return out;
}

export const ok = (subject: string): Finding => ({ status: "compliant", subject });
export const bad = (subject: string, detail: string): Finding => ({ status: "non-compliant", subject, detail });
export const na = (detail: string): Finding[] => [{ status: "not-applicable", detail }];

/** The statements of the bucket policy attached to aws_s3_bucket.<bucketName> (through an aws_iam_policy_document). */
export function bucketPolicyStatements<T>(stack: StackJson, bucketName: string): T[] {
  const policy = resources(stack, "aws_s3_bucket_policy").find(([, r]) => refersTo(r.bucket, "aws_s3_bucket", bucketName));
  const docName = typeof policy?.[1].policy === "string" ? /data\.aws_iam_policy_document\.([^.]+)\.json/.exec(policy[1].policy)?.[1] : undefined;
  return ((stack.data?.aws_iam_policy_document?.[docName ?? ""]?.statement as T[]) ?? []);
}

/** The backup containers' crontabs (/etc/cron.d/pgharbor); empty when the stack has none. */
export function backupCrontabs(stack: StackJson): UploadedFile[] {
  return filesNamed(stack, "pgharbor").filter((f) => f.path === "/etc/cron.d/pgharbor");
}

/** True when a crontab schedules `backup-job.sh <job>` on an uncommented line. */
export function schedulesJob(crontab: string, job: string): boolean {
  return new RegExp(`^[^#].*backup-job\\.sh ${job}\\b`, "m").test(crontab);
}
