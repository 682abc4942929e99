/**
 * Test values for the random and tls providers' resources, for the runtime applier.
 *
 * Terraform would compute these at apply time; the applier computes equivalent values here, with
 * the same shape the providers give (PEM types, key algorithms, certificate extensions), so what a
 * container receives looks like what it gets in production:
 *   - random_password: `length` characters from the enabled classes (upper/lower/numeric/special,
 *     each default true as in the random provider), at least min_upper/min_lower/min_numeric/
 *     min_special of each.
 *   - tls_private_key: ECDSA (SEC1 "EC PRIVATE KEY"), RSA (PKCS#1 "RSA PRIVATE KEY"), ED25519 (PKCS#8),
 *     as the tls provider encodes them.
 *   - tls_self_signed_cert / tls_cert_request / tls_locally_signed_cert: made by openssl with the
 *     declared subject, SANs, allowed_uses (key usage + extended key usage) and is_ca_certificate;
 *     a locally signed cert carries the CSR's subject and SANs (copied from the CSR) and is signed by
 *     the given CA key. Validity: validity_period_hours rounded up to whole days (openssl -days).
 */
import { execFileSync } from "child_process";
import { generateKeyPairSync, randomBytes, randomInt } from "crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";

export class NotModelled extends Error {}

function only(what: string, body: Record<string, unknown>, keys: string[]): void {
  for (const k of Object.keys(body)) {
    if (k.startsWith("//")) continue;
    if (!keys.includes(k)) throw new NotModelled(`applier does not model ${k} of ${what}`);
  }
}

/** A Terraform block that cdktf may synthesise as an object or a one-element list. */
export function block(v: unknown): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) {
    if (v.length === 0) return undefined;
    if (v.length > 1) throw new NotModelled(`expected one block, got ${v.length}`);
    return v[0] as Record<string, unknown>;
  }
  return v as Record<string, unknown>;
}

const bool = (v: unknown, dflt: boolean): boolean => (v === undefined ? dflt : v === true || v === "true");
const int = (v: unknown, dflt: number): number => (v === undefined ? dflt : Number(v));

// ---------------------------------------------------------------------------------------------
// random_password

const UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const NUMERIC = "0123456789";
/** The random provider's default special characters. */
const SPECIAL = "!@#$%&*()-_=+[]{}<>:?";

export const RANDOM_PASSWORD_KEYS = [
  "length", "upper", "lower", "numeric", "number", "special", "min_upper", "min_lower", "min_numeric", "min_special",
  "override_special", "keepers", "lifecycle", "provider", "depends_on",
];

/** A value for a random_password resource's `result`, following its class settings. */
export function randomPassword(what: string, body: Record<string, unknown>): string {
  only(what, body, RANDOM_PASSWORD_KEYS);
  const length = int(body.length, NaN);
  if (!Number.isInteger(length) || length < 1) throw new NotModelled(`${what}: length must be a positive integer, got ${String(body.length)}`);
  const special = body.override_special !== undefined ? String(body.override_special) : SPECIAL;
  const classes: Array<{ chars: string; on: boolean; min: number }> = [
    { chars: UPPER, on: bool(body.upper, true), min: int(body.min_upper, 0) },
    { chars: LOWER, on: bool(body.lower, true), min: int(body.min_lower, 0) },
    { chars: NUMERIC, on: bool(body.numeric ?? body.number, true), min: int(body.min_numeric, 0) },
    { chars: special, on: bool(body.special, true), min: int(body.min_special, 0) },
  ];
  const pick = (chars: string) => chars[randomInt(chars.length)];
  const out: string[] = [];
  for (const c of classes) for (let i = 0; i < c.min; i++) out.push(pick(c.chars));
  const all = classes.filter((c) => c.on).map((c) => c.chars).join("");
  if (!all) throw new NotModelled(`${what}: every character class is disabled`);
  while (out.length < length) out.push(pick(all));
  if (out.length > length) throw new NotModelled(`${what}: the min_* counts exceed length ${length}`);
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out.join("");
}

// ---------------------------------------------------------------------------------------------
// tls_private_key

const CURVES: Record<string, string> = { P224: "secp224r1", P256: "prime256v1", P384: "secp384r1", P521: "secp521r1" };

export function privateKeyPem(what: string, body: Record<string, unknown>): string {
  only(what, body, ["algorithm", "ecdsa_curve", "rsa_bits", "lifecycle", "provider", "depends_on"]);
  const algorithm = String(body.algorithm ?? "");
  if (algorithm === "ECDSA") {
    const curve = String(body.ecdsa_curve ?? "P224");
    if (!CURVES[curve]) throw new NotModelled(`${what}: unknown ecdsa_curve ${curve}`);
    return generateKeyPairSync("ec", { namedCurve: CURVES[curve] }).privateKey.export({ type: "sec1", format: "pem" }).toString();
  }
  if (algorithm === "RSA") {
    return generateKeyPairSync("rsa", { modulusLength: int(body.rsa_bits, 2048) }).privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  }
  if (algorithm === "ED25519") {
    return generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  }
  throw new NotModelled(`${what}: unknown algorithm ${algorithm}`);
}

// ---------------------------------------------------------------------------------------------
// certificates (openssl)

const SUBJECT_FIELDS: Record<string, string> = {
  common_name: "CN",
  organization: "O",
  organizational_unit: "OU",
  locality: "L",
  province: "ST",
  country: "C",
  postal_code: "postalCode",
  serial_number: "serialNumber",
  street_address: "street",
};

function subjectArg(what: string, subject: Record<string, unknown> | undefined): string {
  if (!subject) return "/";
  only(`${what}.subject`, subject, Object.keys(SUBJECT_FIELDS));
  const esc = (s: string) => s.replace(/[\\/=+]/g, (c) => `\\${c}`);
  let out = "";
  for (const [k, short] of Object.entries(SUBJECT_FIELDS)) {
    const v = subject[k];
    for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) out += `/${short}=${esc(String(x))}`;
  }
  return out || "/";
}

const KEY_USAGES: Record<string, string> = {
  digital_signature: "digitalSignature",
  content_commitment: "nonRepudiation",
  key_encipherment: "keyEncipherment",
  data_encipherment: "dataEncipherment",
  key_agreement: "keyAgreement",
  cert_signing: "keyCertSign",
  crl_signing: "cRLSign",
  encipher_only: "encipherOnly",
  decipher_only: "decipherOnly",
};
const EXT_KEY_USAGES: Record<string, string> = {
  any_extended: "anyExtendedKeyUsage",
  server_auth: "serverAuth",
  client_auth: "clientAuth",
  code_signing: "codeSigning",
  email_protection: "emailProtection",
  timestamping: "timeStamping",
  ocsp_signing: "OCSPSigning",
  ipsec_end_system: "1.3.6.1.5.5.7.3.5",
  ipsec_tunnel: "1.3.6.1.5.5.7.3.6",
  ipsec_user: "1.3.6.1.5.5.7.3.7",
  microsoft_server_gated_crypto: "msSGC",
  netscape_server_gated_crypto: "nsSGC",
  microsoft_commercial_code_signing: "msCodeCom",
  microsoft_kernel_code_signing: "1.3.6.1.4.1.311.61.1.1",
};

/** The extension section for a certificate: basicConstraints (critical, as Go's x509 writes it), key usages, SANs. */
function extensions(what: string, body: Record<string, unknown>, withSans: boolean): string {
  const uses = (body.allowed_uses as string[] | undefined) ?? [];
  const ku: string[] = [];
  const eku: string[] = [];
  for (const u of uses) {
    if (KEY_USAGES[u]) ku.push(KEY_USAGES[u]);
    else if (EXT_KEY_USAGES[u]) eku.push(EXT_KEY_USAGES[u]);
    else throw new NotModelled(`${what}: unknown allowed_uses value ${u}`);
  }
  const lines = [`basicConstraints = critical,CA:${bool(body.is_ca_certificate, false) ? "TRUE" : "FALSE"}`, "subjectKeyIdentifier = hash"];
  if (ku.length) lines.push(`keyUsage = critical,${ku.join(",")}`);
  if (eku.length) lines.push(`extendedKeyUsage = ${eku.join(",")}`);
  if (withSans) {
    const sans = sanList(body);
    if (sans) lines.push(`subjectAltName = ${sans}`);
  }
  return lines.join("\n") + "\n";
}

function sanList(body: Record<string, unknown>): string {
  const dns = ((body.dns_names as string[] | undefined) ?? []).map((d) => `DNS:${d}`);
  const ips = ((body.ip_addresses as string[] | undefined) ?? []).map((ip) => `IP:${ip}`);
  const uris = ((body.uris as string[] | undefined) ?? []).map((u) => `URI:${u}`);
  return [...dns, ...ips, ...uris].join(",");
}

function days(body: Record<string, unknown>): string {
  return String(Math.max(1, Math.ceil(int(body.validity_period_hours, 24) / 24)));
}

function serial(): string {
  // Like the tls provider: a random 128-bit serial (top bit cleared so it stays positive).
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return `0x${b.toString("hex")}`;
}

function withTmp<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "pgharbor-pki-"));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): void {
  try {
    execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr?.toString() || err.message}`);
  }
}

/** openssl picks the digest for ED25519 keys itself (it refuses one); SHA-256 otherwise. */
const digest = (keyPem: string) => (keyPem.includes("BEGIN PRIVATE KEY") && !keyPem.includes("RSA") ? [] : ["-sha256"]);

const CERT_COMMON = ["validity_period_hours", "early_renewal_hours", "allowed_uses", "is_ca_certificate", "set_subject_key_id", "lifecycle", "provider", "depends_on"];

export function selfSignedCertPem(what: string, body: Record<string, unknown>, keyPem: string): string {
  only(what, body, [...CERT_COMMON, "private_key_pem", "subject", "dns_names", "ip_addresses", "uris"]);
  return withTmp((dir) => {
    writeFileSync(join(dir, "key.pem"), keyPem, { mode: 0o600 });
    writeFileSync(join(dir, "req.cnf"), `[req]\ndistinguished_name = dn\n[dn]\n[ext]\n${extensions(what, body, true)}`);
    openssl(["req", "-x509", "-new", "-key", join(dir, "key.pem"), "-subj", subjectArg(what, block(body.subject)), "-days", days(body), "-set_serial", serial(), "-config", join(dir, "req.cnf"), "-extensions", "ext", ...digest(keyPem), "-out", join(dir, "cert.pem")]);
    return readFileSync(join(dir, "cert.pem"), "utf8");
  });
}

export function certRequestPem(what: string, body: Record<string, unknown>, keyPem: string): string {
  only(what, body, ["private_key_pem", "subject", "dns_names", "ip_addresses", "uris", "lifecycle", "provider", "depends_on"]);
  return withTmp((dir) => {
    writeFileSync(join(dir, "key.pem"), keyPem, { mode: 0o600 });
    writeFileSync(join(dir, "req.cnf"), "[req]\ndistinguished_name = dn\n[dn]\n");
    const sans = sanList(body);
    openssl(["req", "-new", "-key", join(dir, "key.pem"), "-subj", subjectArg(what, block(body.subject)), "-config", join(dir, "req.cnf"), ...(sans ? ["-addext", `subjectAltName = ${sans}`] : []), ...digest(keyPem), "-out", join(dir, "csr.pem")]);
    return readFileSync(join(dir, "csr.pem"), "utf8");
  });
}

/** Signs the CSR with the CA: the CSR's subject and SANs (copied from the CSR), the declared usages. */
export function locallySignedCertPem(what: string, body: Record<string, unknown>, csrPem: string, caCertPem: string, caKeyPem: string): string {
  only(what, body, [...CERT_COMMON, "cert_request_pem", "ca_cert_pem", "ca_private_key_pem"]);
  return withTmp((dir) => {
    writeFileSync(join(dir, "csr.pem"), csrPem);
    writeFileSync(join(dir, "ca.pem"), caCertPem);
    writeFileSync(join(dir, "ca.key"), caKeyPem, { mode: 0o600 });
    writeFileSync(join(dir, "ext.cnf"), `[ext]\n${extensions(what, body, false)}authorityKeyIdentifier = keyid\n`);
    openssl(["x509", "-req", "-in", join(dir, "csr.pem"), "-CA", join(dir, "ca.pem"), "-CAkey", join(dir, "ca.key"), "-set_serial", serial(), "-days", days(body), "-extfile", join(dir, "ext.cnf"), "-extensions", "ext", "-copy_extensions", "copy", ...digest(caKeyPem), "-out", join(dir, "cert.pem")]);
    return readFileSync(join(dir, "cert.pem"), "utf8");
  });
}
