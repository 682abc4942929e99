/**
 * What becomes reachable, or reachable more weakly: published ports, pg_hba rules, TLS settings,
 * bucket policy and IAM statements, principals (IAM users, access keys, age recipients of logical
 * backups) and the bucket's public access block.
 */
import { ContainerView, HbaRow, parseHba, parseIni, parsePostgresqlConf, PATHS } from "./files";
import { Plan, Resource } from "./terraform";
import { ExposureChange } from "./types";

interface Port {
  internal?: number;
  external?: number;
  ip?: string;
  protocol?: string;
}

const portText = (p: Port) => `${p.ip || "0.0.0.0"}:${p.external ?? p.internal}/${p.protocol ?? "tcp"}`;

function ports(base: Map<string, ContainerView>, head: Map<string, ContainerView>): ExposureChange[] {
  const out: ExposureChange[] = [];
  for (const address of new Set([...base.keys(), ...head.keys()])) {
    const [b, h] = [base.get(address), head.get(address)];
    const list = (v?: ContainerView) => new Map(((v?.config.ports as Port[] | undefined) ?? []).map((p) => [portText(p), p]));
    const [bp, hp] = [list(b), list(h)];
    for (const [text, p] of hp) {
      if (bp.has(text)) continue;
      const wildcard = !p.ip || p.ip === "0.0.0.0" || p.ip === "::";
      out.push({ kind: "port", loosened: true, resource: address, what: `${h!.name} newly publishes ${text.replace(/\/tcp$/, "")} → container port ${p.internal}${wildcard ? " on EVERY interface of the host" : ""}` });
    }
    for (const text of bp.keys()) if (!hp.has(text) && h) out.push({ kind: "port", loosened: false, resource: address, what: `${h.name} no longer publishes ${text.replace(/\/tcp$/, "")}` });
  }
  return out;
}

const hbaLoosens = (r: HbaRow) => r.method !== "reject";

type Found = [ExposureChange, string];

/** One item per distinct change, naming the containers it happens in. */
function grouped(found: Found[]): ExposureChange[] {
  const by = new Map<string, ExposureChange & { containers: string[] }>();
  for (const [c, container] of found) {
    const key = JSON.stringify([c.kind, c.what, c.loosened]);
    const cur = by.get(key) ?? { ...c, containers: [] };
    if (!cur.containers.includes(container)) cur.containers.push(container);
    by.set(key, cur);
  }
  return [...by.values()].map(({ containers, ...c }) => ({ ...c, what: `${c.what} (${containers.join(", ")})` }));
}

function hba(base: Map<string, ContainerView>, head: Map<string, ContainerView>): ExposureChange[] {
  const found: Found[] = [];
  for (const [address, h] of head) {
    const b = base.get(address);
    const [bt, ht] = [b?.files.get(PATHS.hbaConf), h.files.get(PATHS.hbaConf)];
    if (bt === undefined || ht === undefined || bt === ht) continue;
    const [br, hr] = [parseHba(bt), parseHba(ht)];
    const [bs, hs] = [new Set(br.map((r) => r.text)), new Set(hr.map((r) => r.text))];
    for (const r of hr) if (!bs.has(r.text)) found.push([{ kind: "pg_hba", loosened: hbaLoosens(r), resource: address, what: `pg_hba rule added: ${r.text}` }, h.short]);
    for (const r of br) if (!hs.has(r.text)) found.push([{ kind: "pg_hba", loosened: !hbaLoosens(r), resource: address, what: `pg_hba rule removed: ${r.text}` }, h.short]);
    const common = (rows: HbaRow[], other: Set<string>) => rows.filter((r) => other.has(r.text)).map((r) => r.text);
    if (common(br, hs).join("\n") !== common(hr, bs).join("\n")) found.push([{ kind: "pg_hba", loosened: true, resource: address, what: "pg_hba rules reordered (the first matching rule wins)" }, h.short]);
  }
  return grouped(found);
}

const SSLMODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
const TLS_VERSIONS = ["", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];
const lowestProtocol = (v: string) => Math.min(...v.toLowerCase().split(",").map((p) => ["tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3"].indexOf(p.trim())).filter((i) => i >= 0));

/** sslmode=… in a container's environment, command and uploaded files, by where it is. */
function sslmodes(v: ContainerView): Map<string, string> {
  const out = new Map<string, string>();
  const mode = (t: string) => /sslmode=([a-z-]+)/.exec(t)?.[1];
  for (const e of (v.config.env as string[] | undefined) ?? []) {
    const m = mode(e);
    if (m) out.set(`env ${e.split("=")[0]}`, m);
  }
  for (const a of (v.config.command as string[] | undefined) ?? []) {
    const m = mode(a);
    if (m) out.set(`argument ${a.split("=")[0]}`, m);
  }
  for (const [path, text] of v.files) {
    for (const line of text.split("\n")) {
      const m = mode(line);
      if (m) out.set(`${path.slice(path.lastIndexOf("/") + 1)} ${line.split(/\s*=/)[0].trim()}`, m);
    }
  }
  return out;
}

function tls(base: Map<string, ContainerView>, head: Map<string, ContainerView>): ExposureChange[] {
  const found: Found[] = [];
  for (const [address, h] of head) {
    const b = base.get(address);
    if (!b) continue;
    const pc = (v: ContainerView) => {
      const t = v.files.get(PATHS.postgresqlConf);
      return t === undefined ? undefined : parsePostgresqlConf(t).params;
    };
    const [bp, hp] = [pc(b), pc(h)];
    if (bp && hp) {
      const get = (m: Map<string, [string, string]>, k: string) => m.get(k)?.[1] ?? "";
      if (get(bp, "ssl") === "on" && get(hp, "ssl") !== "on") found.push([{ kind: "tls", loosened: true, resource: address, what: "ssl turned off" }, h.short]);
      for (const k of ["ssl_min_protocol_version"]) {
        const [o, n] = [TLS_VERSIONS.indexOf(get(bp, k)), TLS_VERSIONS.indexOf(get(hp, k))];
        if (o !== n) found.push([{ kind: "tls", loosened: n < o, resource: address, what: `${k} ${get(bp, k) || "unset"} → ${get(hp, k) || "unset"}` }, h.short]);
      }
      for (const k of ["ssl_ciphers", "ssl_max_protocol_version", "password_encryption"]) {
        if (get(bp, k) !== get(hp, k)) found.push([{ kind: k === "password_encryption" ? "pg_hba" : "tls", loosened: true, resource: address, what: `${k} ${get(bp, k) || "unset"} → ${get(hp, k) || "unset"}` }, h.short]);
      }
    }
    const ini = (v: ContainerView) => {
      const t = v.files.get(PATHS.pgbouncerIni);
      return t === undefined ? undefined : (parseIni(t).get("pgbouncer") ?? new Map<string, string>());
    };
    const [bi, hi] = [ini(b), ini(h)];
    if (bi && hi) {
      for (const k of ["client_tls_sslmode", "server_tls_sslmode"]) {
        const [o, n] = [SSLMODES.indexOf(bi.get(k) ?? "disable"), SSLMODES.indexOf(hi.get(k) ?? "disable")];
        if (o !== n) found.push([{ kind: "tls", loosened: n < o, resource: address, what: `${k} ${bi.get(k) ?? "unset"} → ${hi.get(k) ?? "unset"}` }, h.short]);
      }
      for (const k of ["client_tls_protocols", "server_tls_protocols"]) {
        const [o, n] = [bi.get(k) ?? "secure", hi.get(k) ?? "secure"];
        if (o !== n) found.push([{ kind: "tls", loosened: lowestProtocol(n) < lowestProtocol(o), resource: address, what: `${k} ${o} → ${n}` }, h.short]);
      }
      if ((bi.get("auth_type") ?? "") !== (hi.get("auth_type") ?? "")) found.push([{ kind: "pg_hba", loosened: true, resource: address, what: `auth_type ${bi.get("auth_type")} → ${hi.get("auth_type")}` }, h.short]);
    }
    const verify = (v: ContainerView) => parseIni(v.files.get(PATHS.pgbackrestConf) ?? "").get("global")?.get("repo1-storage-verify-tls");
    if (verify(b) === "y" && verify(h) !== "y") found.push([{ kind: "tls", loosened: true, resource: address, what: `pgBackRest no longer verifies the bucket's TLS certificate (repo1-storage-verify-tls ${verify(h) ?? "unset"})` }, h.short]);
    const [bm, hm] = [sslmodes(b), sslmodes(h)];
    for (const [where, n] of hm) {
      const o = bm.get(where);
      if (o !== undefined && o !== n) found.push([{ kind: "tls", loosened: SSLMODES.indexOf(n) < SSLMODES.indexOf(o), resource: address, what: `${where} sslmode ${o} → ${n}` }, h.short]);
    }
  }
  return grouped(found);
}

interface Statement {
  sid?: string;
  effect?: string;
  actions?: string[];
  resources?: string[];
  principals?: Array<{ type: string; identifiers: string[] }>;
  condition?: unknown[];
}

/** Who a policy document is for: "IAM user <name>" or "the bucket policy". */
function documentOwner(doc: Resource, resources: Map<string, Resource>): string {
  const name = doc.address.replace(/^data\.aws_iam_policy_document\./, "");
  const ref = `data.aws_iam_policy_document.${name}.json`;
  for (const r of resources.values()) {
    if (typeof r.config.policy !== "string" || !r.config.policy.includes(ref)) continue;
    if (r.type === "aws_s3_bucket_policy") return "the bucket policy";
    const user = /aws_iam_user\.([^.]+)\.name/.exec(String(r.config.user ?? ""))?.[1];
    const userName = user ? resources.get(`aws_iam_user.${user}`)?.config.name : undefined;
    return `IAM user ${userName ?? user ?? r.address}`;
  }
  return doc.path;
}

function iam(plan: Plan): ExposureChange[] {
  const out: ExposureChange[] = [];
  const docs = (side: Map<string, Resource>) => [...side.values()].filter((r) => r.type === "aws_iam_policy_document" && r.mode === "data");
  const key = (s: Statement, i: number) => s.sid ?? `#${i}`;
  for (const doc of new Set([...docs(plan.base), ...docs(plan.head)].map((d) => d.address))) {
    const [b, h] = [plan.base.get(doc), plan.head.get(doc)];
    const owner = documentOwner((h ?? b)!, h ? plan.head : plan.base);
    const st = (r?: Resource) => new Map(((r?.config.statement as Statement[] | undefined) ?? []).map((s, i) => [key(s, i), s]));
    const [bs, hs] = [st(b), st(h)];
    for (const [sid, s] of hs) {
      const o = bs.get(sid);
      const allow = (s.effect ?? "Allow") === "Allow";
      const newActions = (s.actions ?? []).filter((a) => !(o?.actions ?? []).includes(a));
      if (!o) {
        out.push({ kind: owner === "the bucket policy" ? "bucket-policy" : "iam", loosened: allow, resource: doc, what: `${owner}: new ${allow ? "Allow" : "Deny"} statement ${sid}: ${(s.actions ?? []).join(", ")} on ${(s.resources ?? []).join(", ")}` });
        continue;
      }
      if (newActions.length) out.push({ kind: owner === "the bucket policy" ? "bucket-policy" : "iam", loosened: allow, resource: doc, what: `${owner} ${allow ? "may now" : "now also denies"} ${newActions.join(", ")} (${sid})` });
      const gone = (o.actions ?? []).filter((a) => !(s.actions ?? []).includes(a));
      if (gone.length) out.push({ kind: owner === "the bucket policy" ? "bucket-policy" : "iam", loosened: !allow, resource: doc, what: `${owner} ${allow ? "may no longer" : "no longer denies"} ${gone.join(", ")} (${sid})` });
      if (JSON.stringify(o.resources ?? []) !== JSON.stringify(s.resources ?? [])) out.push({ kind: "iam", loosened: true, resource: doc, what: `${owner}: resources of ${sid} ${JSON.stringify(o.resources ?? [])} → ${JSON.stringify(s.resources ?? [])}` });
      if (JSON.stringify(o.condition ?? []) !== JSON.stringify(s.condition ?? [])) out.push({ kind: "iam", loosened: true, resource: doc, what: `${owner}: conditions of ${sid} changed` });
      const ids = (x: Statement) => new Set((x.principals ?? []).flatMap((p) => p.identifiers.map((i) => `${p.type}:${i}`)));
      const newPrincipals = [...ids(s)].filter((i) => !ids(o).has(i));
      if (newPrincipals.length) out.push({ kind: "principal", loosened: allow, resource: doc, what: `${owner}: new principals in ${sid}: ${newPrincipals.join(", ")}` });
    }
    for (const [sid, o] of bs) {
      if (hs.has(sid)) continue;
      const allow = (o.effect ?? "Allow") === "Allow";
      out.push({ kind: owner === "the bucket policy" ? "bucket-policy" : "iam", loosened: !allow, resource: doc, what: `${owner}: ${allow ? "Allow" : "Deny"} statement ${sid} removed (${(o.actions ?? []).join(", ")})` });
    }
  }
  for (const c of plan.changes.values()) {
    const r = plan.head.get(c.address) ?? plan.base.get(c.address);
    if (!r) continue;
    if (r.type === "aws_iam_user" && c.action === "create") out.push({ kind: "principal", loosened: true, resource: c.address, what: `new IAM user ${String(r.config.name)}` });
    if (r.type === "aws_iam_access_key" && c.action === "create") out.push({ kind: "principal", loosened: true, resource: c.address, what: `new access key (${r.path})` });
    if (r.type === "aws_s3_bucket_public_access_block" && plan.base.has(c.address)) {
      for (const f of ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]) {
        const [o, n] = [plan.base.get(c.address)!.config[f], plan.head.get(c.address)?.config[f]];
        if (o === true && n !== true) out.push({ kind: "public-access", loosened: true, resource: c.address, what: `bucket public access block: ${f} turned off` });
      }
    }
  }
  return out;
}

/** Age recipients of logical backups: a new one can decrypt every future dump. */
function recipients(base: Map<string, ContainerView>, head: Map<string, ContainerView>): ExposureChange[] {
  const out: ExposureChange[] = [];
  for (const [address, h] of head) {
    const list = (v?: ContainerView) => {
      const t = v?.files.get(PATHS.opsConf);
      if (!t) return undefined;
      try {
        return ((JSON.parse(t) as { logical?: { recipients?: string[] } | null }).logical?.recipients ?? []) as string[];
      } catch {
        return undefined;
      }
    };
    const [bl, hl] = [list(base.get(address)), list(h)];
    if (!bl || !hl) continue;
    for (const r of hl) if (!bl.includes(r)) out.push({ kind: "principal", loosened: true, resource: address, what: `logical backups are now also encrypted to ${r}: its holder can read every future dump` });
    for (const r of bl) if (!hl.includes(r)) out.push({ kind: "principal", loosened: false, resource: address, what: `logical backups no longer encrypted to ${r} (it still reads the dumps already made)` });
  }
  return out;
}

export function exposureChanges(plan: Plan, base: Map<string, ContainerView>, head: Map<string, ContainerView>): ExposureChange[] {
  const all = [...ports(base, head), ...hba(base, head), ...tls(base, head), ...iam(plan), ...recipients(base, head)];
  const seen = new Set<string>();
  return all.filter((e) => (seen.has(e.what) ? false : (seen.add(e.what), true))).sort((a, b) => Number(b.loosened) - Number(a.loosened));
}
