/** Addresses: IP literals, DNS names, and which goes where in a certificate. */
import { isIP } from "net";

export const isIpAddress = (s: unknown): boolean => typeof s === "string" && isIP(s) !== 0;

/** A DNS host name (RFC 1123 labels); a name whose last label is all digits is a mistyped IP, not a name. */
export function isDnsName(s: unknown): s is string {
  if (typeof s !== "string" || s.length === 0 || s.length > 253) return false;
  const labels = s.replace(/\.$/, "").split(".");
  if (!labels.every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l))) return false;
  return !/^\d+$/.test(labels[labels.length - 1]);
}

/** True for loopback IP addresses (127.0.0.0/8, ::1). */
export const isLoopback = (s: string) => /^127\./.test(s) || s === "::1";

/** True for the addresses that mean "every interface". */
export const isWildcard = (s: string) => s === "0.0.0.0" || s === "::" || s === "[::]";

/** Certificate subject alternative names for the addresses clients connect to: DNS names and IPs apart. */
export function subjectAltNames(addresses: Array<string | undefined>): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const a of addresses) {
    if (a === undefined) continue;
    if (isIpAddress(a)) {
      if (!ipAddresses.includes(a)) ipAddresses.push(a);
    } else if (isDnsName(a) && !dnsNames.includes(a.toLowerCase())) dnsNames.push(a.toLowerCase());
  }
  return { dnsNames, ipAddresses };
}

/** A host in a URL: IPv6 literals in brackets. */
export const urlHost = (a: string) => (isIP(a) === 6 ? `[${a}]` : a);

/** Why `dockerHost` is not a Docker daemon address pgharbor can use safely, or undefined. */
export function dockerHostProblem(dockerHost: string): { problem: string; fix: string; plainTcp?: boolean } | undefined {
  const fix = 'use "unix:///var/run/docker.sock" for the local daemon or "ssh://user@host[:port]" for a remote one';
  if (/[\s\u0000-\u001f]/.test(dockerHost)) return { problem: "holds whitespace or a control character", fix };
  let m = /^unix:\/\/(\/[^?#]*)$/.exec(dockerHost);
  if (m) return m[1].includes("/../") || m[1].endsWith("/..") ? { problem: "is not a plain socket path", fix } : undefined;
  m = /^ssh:\/\/(?:([^@/]*)@)?(\[[^\]]*\]|[^:/@]*)(?::(\d*))?$/.exec(dockerHost);
  if (m) {
    const [, user, host, port] = m;
    if (user !== undefined && !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/.test(user)) return { problem: `has user "${user}", which is not a user name${user.startsWith("-") ? " (a leading - would be read by ssh as an option)" : ""}`, fix };
    const bare = host.replace(/^\[(.*)\]$/, "$1");
    if (!(isDnsName(bare) || (isIP(bare) === 4 && bare === host) || (isIP(bare) === 6 && host.startsWith("[")))) return { problem: `has host "${host}", which is not a DNS name or IP address${host.startsWith("-") ? " (a leading - would be read by ssh as an option)" : ""}`, fix };
    if (port !== undefined && !(/^\d{1,5}$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) return { problem: `has port "${port}", which is not a TCP port`, fix };
    return undefined;
  }
  if (/^tcp:\/\//.test(dockerHost)) {
    return {
      problem: "is a plain TCP Docker daemon: no TLS and no authentication, so whoever reaches that port is root on the host (and sees every secret pgharbor passes to containers)",
      fix: `reach it over ssh:// instead, or acknowledge the risk with acknowledgeRisk: { dockerHost: "<why, in a sentence>" } on the host`,
      plainTcp: true,
    };
  }
  return { problem: "is not a Docker daemon address", fix };
}

/** tcp://host:port, checked once a plain TCP daemon is acknowledged. */
export function tcpAddressProblem(dockerHost: string): string | undefined {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d{1,5})$/.exec(dockerHost);
  if (!m) return "is not tcp://host:port";
  const host = m[1].replace(/^\[(.*)\]$/, "$1");
  if (!(isDnsName(host) || isIpAddress(host))) return `has host "${m[1]}", which is not a DNS name or IP address`;
  if (Number(m[2]) < 1 || Number(m[2]) > 65535) return `has port ${m[2]}, which is not a TCP port`;
  return undefined;
}
