/**
 * Secrets Terraform generates anew (or for the first time, or never again): passwords, the pgBackRest
 * cipher passphrase, access keys, TLS keys and certificates, the CA; and who must pick up the new ones.
 */
import { PASSWORD_ENV, ROLE_NAMES } from "../postgres-config/roles";
import { PGBACKREST_SECRET_ENV } from "../postgres-config/pgbackrest-conf";
import { ContainerView } from "./files";
import { Plan, Resource, referencesIn, shortPath } from "./terraform";
import { SecretChange, StackJson } from "./types";

const SECRET_TYPES = new Set(["random_password", "aws_iam_access_key", "tls_private_key", "tls_locally_signed_cert", "tls_self_signed_cert"]);

/** Environment variable → whose secret it carries. */
const ENV_MEANING: Record<string, string> = {
  [PASSWORD_ENV.app]: "the application role's password",
  [PASSWORD_ENV.appReadOnly]: "the read-only role's password",
  [PASSWORD_ENV.replication]: `the replication role's password (${ROLE_NAMES.replication})`,
  [PASSWORD_ENV.pooler]: `PgBouncer's lookup role's password (${ROLE_NAMES.pooler})`,
  [PASSWORD_ENV.monitor]: `the monitoring role's password (${ROLE_NAMES.monitor})`,
  [PGBACKREST_SECRET_ENV.cipherPass]: "the pgBackRest cipher passphrase (repo1-cipher-pass)",
  [PGBACKREST_SECRET_ENV.s3Key]: "an S3 access key",
  S3_WRITER_ACCESS_KEY: "the dev S3 server's writer access key",
  S3_WRITER_SECRET_KEY: "the dev S3 server's writer secret key",
  S3_READER_ACCESS_KEY: "the dev S3 server's reader access key",
  S3_READER_SECRET_KEY: "the dev S3 server's reader secret key",
  S3_EXPIRER_ACCESS_KEY: "the dev S3 server's expirer access key",
  S3_EXPIRER_SECRET_KEY: "the dev S3 server's expirer secret key",
  DATA_SOURCE_PASS: "the monitoring role's password",
  PGPASSWORD: "the monitoring role's password",
};

/** Environment variable names (and upload paths) through which containers use `address`. */
function uses(address: string, containers: Map<string, ContainerView>): Array<{ container: string; via: string }> {
  const out: Array<{ container: string; via: string }> = [];
  for (const c of containers.values()) {
    for (const e of (c.config.env as string[] | undefined) ?? []) {
      if (referencesIn(e).some((r) => r.target === address)) out.push({ container: c.short, via: e.split("=")[0] });
    }
    for (const [path, content] of c.files) {
      if (referencesIn(content).some((r) => r.target === address)) out.push({ container: c.short, via: path });
    }
  }
  return out;
}

/** Outputs whose value uses `address`. */
function outputsUsing(address: string, stack: StackJson | undefined): string[] {
  return Object.entries(stack?.output ?? {})
    .filter(([, o]) => referencesIn(o.value).some((r) => r.target === address))
    .map(([name]) => name);
}

/** True when `r` is the archive's cipher passphrase. */
export function isCipherPassphrase(r: Resource, containers: Map<string, ContainerView>): boolean {
  return r.type === "random_password" && (uses(r.address, containers).some((u) => u.via === PGBACKREST_SECRET_ENV.cipherPass) || /cipher-pass$/.test(r.path));
}

export function secretChanges(plan: Plan, base: Map<string, ContainerView>, head: Map<string, ContainerView>, stacks: { base?: StackJson; head?: StackJson }): SecretChange[] {
  const out: SecretChange[] = [];
  for (const c of plan.changes.values()) {
    const r = plan.head.get(c.address) ?? plan.base.get(c.address);
    if (!r || r.mode !== "managed" || !SECRET_TYPES.has(r.type) || c.action === "update") continue;
    // A new server's own key and certificate are part of the new server, not news for any client.
    if (c.action === "create" && r.type.startsWith("tls_")) continue;
    const side = c.action === "delete" ? base : head;
    const used = uses(c.address, side);
    const outputs = outputsUsing(c.address, c.action === "delete" ? stacks.base : stacks.head);
    const action = c.action === "create" ? "new" : c.action === "delete" ? "removed" : "regenerated";
    const where = shortPath(r, c.address);
    const vars = [...new Set(used.map((u) => u.via).filter((v) => !v.startsWith("/")))];
    const containers = [...new Set(used.map((u) => u.container))];
    let kind: SecretChange["kind"];
    let what: string;
    const fresh = new Set([...plan.changes.values()].filter((x) => x.action === "create").map((x) => (side.get(x.address)?.short ?? "")));
    const clients = [...containers.map((n) => (c.action === "delete" ? `container ${n} (no longer given it)` : fresh.has(n) ? `container ${n} (new)` : `container ${n} (replaced to take it)`))];
    switch (r.type) {
      case "random_password": {
        const cipher = isCipherPassphrase(r, side);
        kind = cipher ? "cipher-passphrase" : "password";
        what = vars.length ? `${ENV_MEANING[vars[0]] ?? where} (${vars.join(", ")})` : `password ${where}`;
        if (vars.includes(PASSWORD_ENV.app) || vars.includes(PASSWORD_ENV.appReadOnly)) clients.push("the backup container sets it with ALTER ROLE when it starts; applications must switch to the new DATABASE_URL / DATABASE_READ_URL right after the apply");
        if (cipher) clients.push("every existing backup and WAL segment was encrypted with the old passphrase");
        break;
      }
      case "aws_iam_access_key":
        kind = "access-key";
        what = `access key of ${String(plan.head.get(String(/aws_iam_user\.[^.]+/.exec(String(r.config.user))?.[0]))?.config.name ?? where)}`;
        break;
      case "tls_private_key":
        kind = "private-key";
        what = where === "ca/key" || /^tls_private_key\.ca_key_/.test(c.address) ? "the environment CA's private key: every certificate is reissued" : `private key ${where}`;
        break;
      case "tls_self_signed_cert":
        kind = "ca";
        what = "the environment's CA certificate";
        clients.push("every application verifying with ca_cert_pem (root.crt or clientCaFile) must trust the new CA before the apply, or verify-full fails");
        break;
      default:
        kind = "certificate";
        what = `server certificate ${where}`;
    }
    for (const o of outputs) clients.push(`output ${o}`);
    out.push({ resource: c.address, kind, action, what, clients });
  }
  const rank = { "cipher-passphrase": 0, ca: 1, password: 2, "access-key": 3, "private-key": 4, certificate: 5 };
  return out.sort((a, b) => rank[a.kind] - rank[b.kind] || a.what.localeCompare(b.what));
}
