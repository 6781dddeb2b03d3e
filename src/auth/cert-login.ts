import type { X509Certificate } from 'node:crypto';

/**
 * The user name a verified client certificate logs in as with SASL EXTERNAL, as
 * rabbitmq_auth_mechanism_ssl derives it (ssl_cert_login_from and friends).
 */
export type CertLoginFrom = 'common_name' | 'distinguished_name' | 'subject_alternative_name';
export type SanType = 'dns' | 'email' | 'uri' | 'ip';

export interface CertLoginOptions {
  readonly from: CertLoginFrom;
  /** for subject_alternative_name: which kind of SAN (RabbitMQ's ssl_cert_login_san_type) */
  readonly sanType: SanType;
  /** for subject_alternative_name: which one of that kind, 0 = the first (ssl_cert_login_san_index) */
  readonly sanIndex: number;
}

export const CERT_LOGIN_FROM: readonly CertLoginFrom[] = ['common_name', 'distinguished_name', 'subject_alternative_name'];
export const SAN_TYPES: readonly SanType[] = ['dns', 'email', 'uri', 'ip'];
export const DEFAULT_CERT_LOGIN: CertLoginOptions = { from: 'common_name', sanType: 'dns', sanIndex: 0 };

/** The subject's attributes in certificate order ([['C','US'], ['O','x'], ['CN','y']]). */
function subjectAttributes(cert: X509Certificate): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const line of cert.subject.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out.push([line.slice(0, i), line.slice(i + 1)]);
  }
  return out;
}

/** RFC 4514 escaping of an attribute value. */
function escapeDnValue(v: string): string {
  let out = v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  if (out.startsWith(' ') || out.startsWith('#')) out = `\\${out}`;
  if (out.endsWith(' ') && out.length > 1) out = `${out.slice(0, -1)}\\ `;
  return out;
}

const SAN_PREFIX: Record<SanType, string> = { dns: 'DNS', email: 'email', uri: 'URI', ip: 'IP Address' };

/** Node's subjectAltName string: "DNS:a, DNS:b, email:x@y"; values with special characters are JSON-quoted. */
function subjectAltNames(cert: X509Certificate): Array<[string, string]> {
  const text = cert.subjectAltName;
  if (text === undefined) return [];
  const out: Array<[string, string]> = [];
  const re = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (let m = re.exec(text); m !== null && m[0] !== ''; m = re.exec(text)) {
    const raw = m[2]!;
    out.push([m[1]!, raw.startsWith('"') ? (JSON.parse(raw) as string) : raw]);
  }
  return out;
}

/** The login name, or null when the certificate has none of the configured kind (login refused). */
export function certificateLoginName(cert: X509Certificate, options: CertLoginOptions): string | null {
  switch (options.from) {
    case 'common_name': {
      // RabbitMQ refuses a subject with no CN or several
      const cns = subjectAttributes(cert).filter(([k]) => k === 'CN');
      return cns.length === 1 ? cns[0]![1] : null;
    }
    case 'distinguished_name':
      // RFC 4514 order: the last RDN first, as RabbitMQ formats it ("CN=x,O=y,C=z")
      return subjectAttributes(cert)
        .reverse()
        .map(([k, v]) => `${k}=${escapeDnValue(v)}`)
        .join(',');
    case 'subject_alternative_name': {
      const prefix = SAN_PREFIX[options.sanType];
      const names = subjectAltNames(cert).filter(([k]) => k === prefix);
      return names[options.sanIndex]?.[1] ?? null;
    }
  }
}
