/**
 * XML in and out, for the few documents S3 clients send (CreateBucketConfiguration, CORSConfiguration,
 * LifecycleConfiguration, CompleteMultipartUpload). The parser is small on purpose: elements, text
 * and entities; no attributes we read, no DTDs, no entity definitions (so nothing to expand), and a
 * bound on depth. Anything else is MalformedXML.
 */
import { S3Error } from './errors';

export const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';
export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

// Characters XML 1.0 cannot carry literally (and control characters) become character references.
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
const NEEDS_ESCAPE = /[&<>"'\u0000-\u001f\u007f\ufffe\uffff]/g;
export function xmlEscape(s: string): string {
  return s.replace(NEEDS_ESCAPE, (c) => ESCAPES[c] ?? `&#x${c.charCodeAt(0).toString(16)};`);
}

export interface XmlNode {
  name: string;
  children: XmlNode[];
  text: string;
}

const MAX_DEPTH = 16;
const MAX_NODES = 50_000;
const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function malformed(why: string): never {
  throw new S3Error('MalformedXML', `The XML you provided was not well-formed or did not validate against our published schema: ${why}`);
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-z]+);?/g, (m, e: string) => {
    if (!m.endsWith(';')) malformed('bare &');
    if (e[0] === '#') {
      const cp = e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      if (!(cp >= 0 && cp <= 0x10ffff) || (cp >= 0xd800 && cp <= 0xdfff)) malformed('bad character reference');
      return String.fromCodePoint(cp);
    }
    const v = NAMED[e];
    if (v === undefined) malformed(`unknown entity &${e};`);
    return v;
  });
}

/** Parses one document into its root element. */
export function parseXml(doc: string): XmlNode {
  let i = 0;
  const n = doc.length;
  let nodes = 0;
  const skipMisc = () => {
    for (;;) {
      while (i < n && /\s/.test(doc[i])) i++;
      if (doc.startsWith('<?', i)) {
        const end = doc.indexOf('?>', i);
        if (end < 0) malformed('unterminated declaration');
        i = end + 2;
      } else if (doc.startsWith('<!--', i)) {
        const end = doc.indexOf('-->', i);
        if (end < 0) malformed('unterminated comment');
        i = end + 3;
      } else if (doc.startsWith('<!', i)) {
        malformed('DTDs are not accepted');
      } else return;
    }
  };
  const element = (depth: number): XmlNode => {
    if (depth > MAX_DEPTH) malformed('too deep');
    if (++nodes > MAX_NODES) malformed('too many elements');
    if (doc[i] !== '<') malformed('expected an element');
    const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[\w.:-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/.exec(doc.slice(i, i + 2048));
    if (!m) malformed('bad start tag');
    i += m[0].length;
    const name = m[1].includes(':') ? m[1].slice(m[1].indexOf(':') + 1) : m[1];
    const node: XmlNode = { name, children: [], text: '' };
    if (m[3] === '/') return node;
    let text = '';
    for (;;) {
      if (i >= n) malformed(`unterminated <${m[1]}>`);
      if (doc.startsWith('</', i)) {
        const close = /^<\/([A-Za-z_][\w.:-]*)\s*>/.exec(doc.slice(i, i + 512));
        if (!close || close[1] !== m[1]) malformed(`mismatched </${close?.[1] ?? '?'}>`);
        i += close[0].length;
        node.text = decodeEntities(text);
        return node;
      }
      if (doc.startsWith('<!--', i)) {
        const end = doc.indexOf('-->', i);
        if (end < 0) malformed('unterminated comment');
        i = end + 3;
      } else if (doc.startsWith('<![CDATA[', i)) {
        const end = doc.indexOf(']]>', i);
        if (end < 0) malformed('unterminated CDATA');
        text += doc.slice(i + 9, end).replace(/&/g, '&amp;').replace(/</g, '&lt;');
        i = end + 3;
      } else if (doc[i] === '<') {
        node.children.push(element(depth + 1));
      } else {
        const next = doc.indexOf('<', i);
        const end = next < 0 ? n : next;
        text += doc.slice(i, end);
        i = end;
      }
    }
  };
  skipMisc();
  const root = element(0);
  skipMisc();
  if (i !== n) malformed('content after the root element');
  return root;
}

export const childrenNamed = (node: XmlNode, name: string): XmlNode[] => node.children.filter((c) => c.name === name);
export const childText = (node: XmlNode, name: string): string | undefined => node.children.find((c) => c.name === name)?.text.trim();
/** The text as sent, for keys and prefixes: a key may begin or end with spaces, and `a ` is not `a`. */
export const childExactText = (node: XmlNode, name: string): string | undefined => node.children.find((c) => c.name === name)?.text;
