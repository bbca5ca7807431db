/** What an operation answers: status, headers, and a body as text or as a range of an open file. */
import { XML_DECL } from './xml';

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** an open file to stream from (the sender closes it) */
  file?: { fd: number; start: number; end: number };
}

export const xmlReply = (status: number, xml: string, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'Content-Type': 'application/xml', ...headers },
  body: XML_DECL + xml,
});

export const emptyReply = (status: number, headers: Record<string, string> = {}): Reply => ({ status, headers });

export const httpDate = (ms: number): string => new Date(ms).toUTCString();
export const isoDate = (ms: number): string => new Date(ms).toISOString();
