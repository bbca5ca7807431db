/** Bucket CORS, as S3 applies it: preflights answered from the bucket's rules, browser requests marked. */
import { S3Error } from './errors';
import type { Bucket } from './disk';
import { childrenNamed, childText, parseXml } from './xml';

export interface CorsRule {
  origins: string[];
  methods: string[];
  headers: string[];
  expose: string[];
  maxAge?: number;
}

/** Buckets without a configuration of their own: browsers may GET/PUT/POST/HEAD through links from anywhere. */
export const DEFAULT_CORS_XML =
  '<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>' +
  '<AllowedMethod>POST</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>' +
  '<MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule></CORSConfiguration>';

const METHODS = new Set(['GET', 'PUT', 'POST', 'DELETE', 'HEAD']);

export function parseCors(xml: string): CorsRule[] {
  const root = parseXml(xml);
  if (root.name !== 'CORSConfiguration') throw new S3Error('MalformedXML', 'The XML you provided was not a CORSConfiguration');
  const rules = childrenNamed(root, 'CORSRule').map((r) => {
    const texts = (name: string) => childrenNamed(r, name).map((c) => c.text.trim());
    const maxAge = childText(r, 'MaxAgeSeconds');
    const rule: CorsRule = {
      origins: texts('AllowedOrigin'),
      methods: texts('AllowedMethod'),
      headers: texts('AllowedHeader').map((h) => h.toLowerCase()),
      expose: texts('ExposeHeader'),
      maxAge: maxAge !== undefined && /^\d{1,9}$/.test(maxAge) ? Number(maxAge) : undefined,
    };
    if (rule.origins.length === 0 || rule.methods.length === 0 || rule.methods.some((m) => !METHODS.has(m))) {
      throw new S3Error('MalformedXML', 'Each CORSRule needs AllowedOrigin and AllowedMethod (GET, PUT, POST, DELETE, HEAD)');
    }
    if ([...rule.origins, ...rule.headers].some((p) => p.split('*').length > 2)) {
      throw new S3Error('InvalidRequest', 'An AllowedOrigin or AllowedHeader can have at most one * wildcard');
    }
    return rule;
  });
  if (rules.length === 0 || rules.length > 100) throw new S3Error('MalformedXML', 'A CORSConfiguration has 1 to 100 CORSRules');
  return rules;
}

const parsed = new WeakMap<Bucket, { xml: string; rules: CorsRule[] }>();
let defaults: CorsRule[] | undefined;

export function rulesOf(bucket: Bucket): CorsRule[] {
  const xml = bucket.settings.cors;
  if (xml === undefined) return (defaults ??= parseCors(DEFAULT_CORS_XML));
  const seen = parsed.get(bucket);
  if (seen && seen.xml === xml) return seen.rules;
  const rules = parseCors(xml);
  parsed.set(bucket, { xml, rules });
  return rules;
}

function wildcard(pattern: string, value: string): boolean {
  const star = pattern.indexOf('*');
  if (star < 0) return pattern === value;
  const head = pattern.slice(0, star);
  const tail = pattern.slice(star + 1);
  return value.length >= head.length + tail.length && value.startsWith(head) && value.endsWith(tail);
}

function match(rules: CorsRule[], origin: string, method: string, requestHeaders: string[]): CorsRule | undefined {
  return rules.find(
    (r) =>
      r.origins.some((o) => wildcard(o, origin)) &&
      r.methods.includes(method) &&
      requestHeaders.every((h) => r.headers.some((p) => wildcard(p, h))),
  );
}

/** The answer to an OPTIONS preflight. */
export function preflight(bucket: Bucket | undefined, origin: string | undefined, method: string | undefined, requested: string | undefined): { status: number; headers: Record<string, string> } {
  if (!origin || !method) throw new S3Error('InvalidRequest', 'Insufficient information. Origin request header needed.');
  const headers = (requested ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean);
  const rule = bucket ? match(rulesOf(bucket), origin, method, headers) : undefined;
  if (!rule) throw new S3Error('AccessDenied', 'CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource\'s CORS spec.');
  const out: Record<string, string> = {
    'Access-Control-Allow-Origin': rule.origins.includes('*') ? '*' : origin,
    'Access-Control-Allow-Methods': rule.methods.join(', '),
    Vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
  };
  if (headers.length) out['Access-Control-Allow-Headers'] = headers.join(', ');
  if (rule.expose.length) out['Access-Control-Expose-Headers'] = rule.expose.join(', ');
  if (rule.maxAge !== undefined) out['Access-Control-Max-Age'] = String(rule.maxAge);
  return { status: 200, headers: out };
}

/** Headers for a browser's actual request (errors included, so a page can read why it failed). */
export function corsHeaders(bucket: Bucket | undefined, origin: string | undefined, method: string): Record<string, string> {
  if (!origin || !bucket) return {};
  const rule = match(rulesOf(bucket), origin, method === 'HEAD' ? 'HEAD' : method, []);
  if (!rule) return {};
  const out: Record<string, string> = {
    'Access-Control-Allow-Origin': rule.origins.includes('*') ? '*' : origin,
    'Access-Control-Allow-Methods': rule.methods.join(', '),
    Vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
  };
  if (rule.expose.length) out['Access-Control-Expose-Headers'] = rule.expose.join(', ');
  return out;
}
