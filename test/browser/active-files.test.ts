// An uploaded HTML or SVG file opened through its read link, in headless Chromium: it shows, and its
// scripts do not run (the embedded store answers every object with `X-Content-Type-Options: nosniff`
// and, but for a PDF, `Content-Security-Policy: sandbox`). Without that a user could hand out a link
// that runs their script in the store's origin. The same bytes from a plain server do run: the check
// can fail.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { startHost, type StartedHost } from '../support/host';

jest.setTimeout(120_000);

const HTML = '<!doctype html><title>file</title><p id="p">static</p><script>document.getElementById("p").textContent = "ran"</script>';
const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><text id="p" y="15">static</text><script>document.getElementById("p").textContent = "ran"</script></svg>';

// starts like a PDF's type; Chrome takes the last of the list, HTML (the attack pass's finding)
const PDF_THEN_HTML = 'application/pdf;x=1,text/html';

let host: StartedHost;
let browser: Browser;
let plain: http.Server;
let key: string;

beforeAll(async () => {
  host = await startHost();
  key = (await host.addUser('active-files')).user_key;
  browser = await launchChromium();
  plain = http.createServer((req, res) => {
    const svg = req.url === '/x.svg';
    res.writeHead(200, { 'Content-Type': svg ? 'image/svg+xml' : req.url === '/x.mixed' ? PDF_THEN_HTML : 'text/html' });
    res.end(svg ? SVG : HTML);
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
});

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  await new Promise((r) => plain?.close(r));
  if (host) expect(await host.stop()).toBe(0);
});

async function uploadedLink(name: string, type: string, text: string): Promise<string> {
  const res = await fetch(`${host.url}/aws-storage/user-upload/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-key': key },
    body: JSON.stringify({ name, file: `data:${type};base64,${Buffer.from(text).toString('base64')}` }),
  });
  expect(res.status).toBe(200);
  const read = await fetch(`${host.url}/aws-storage/user-read/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-key': key },
    body: JSON.stringify({ name }),
  });
  expect(read.status).toBe(200);
  return ((await read.json()) as { link: string }).link;
}

const call = async (endpoint: string, args: object) => {
  const res = await fetch(`${host.url}/aws-storage/${endpoint}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-key': key },
    body: JSON.stringify(args),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { link: string; fields?: Record<string, string> };
};

async function shownText(url: string): Promise<string> {
  const page = await browser.newPage();
  try {
    const res = await page.goto(url);
    expect(res?.status()).toBe(200);
    await page.waitForLoadState('load');
    return (await page.locator('#p').textContent()) ?? '';
  } finally {
    await page.close();
  }
}

test('the same bytes from a plain server run their scripts (the check below can fail)', async () => {
  const base = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
  expect(await shownText(`${base}/x.html`)).toBe('ran');
  expect(await shownText(`${base}/x.svg`)).toBe('ran');
  expect(await shownText(`${base}/x.mixed`)).toBe('ran');
});

test.each([
  ['page.html', 'text/html', HTML],
  ['page-under-another-name.txt', 'text/html', HTML],
  ['drawing.svg', 'image/svg+xml', SVG],
])('%s (%s) through its read link: shown, its script not run', async (name, type, text) => {
  const link = await uploadedLink(name, type, text);
  const head = await fetch(link);
  expect(head.headers.get('x-content-type-options')).toBe('nosniff');
  expect(head.headers.get('content-security-policy')).toBe('sandbox');
  expect(head.headers.get('content-type')).toBe(type);
  expect(await shownText(link)).toBe('static');
});

test('a PDF is not sandboxed (Chrome\'s viewer refuses one), but is never sniffed', async () => {
  const link = await uploadedLink('doc.pdf', 'application/pdf', '%PDF-1.4\n%%EOF\n');
  const res = await fetch(link);
  expect(res.status).toBe(200);
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('content-security-policy')).toBeNull();
});

// A link without a signed type lets its client choose any Content-Type: one that only starts like a
// PDF's is sandboxed like any other.
test.each(['PUT', 'POST'])('HTML uploaded through a %s link as "application/pdf;x=1,text/html": sandboxed, its script not run', async (method) => {
  const name = `mixed-${method}.pdf`;
  const up = await call('user-upload-link', method === 'POST' ? { name, method: 'POST' } : { name });
  let stored: Response;
  if (method === 'PUT') {
    stored = await fetch(up.link, { method: 'PUT', headers: { 'content-type': PDF_THEN_HTML }, body: HTML });
  } else {
    const form = new FormData();
    for (const [k, v] of Object.entries(up.fields ?? {})) form.append(k, v);
    form.append('Content-Type', PDF_THEN_HTML);
    form.append('file', new Blob([HTML]), name);
    stored = await fetch(up.link, { method: 'POST', body: form });
  }
  expect(stored.status).toBeLessThan(300);
  const link = (await call('user-read', { name })).link;
  const head = await fetch(link);
  expect(head.headers.get('content-type')).toBe(PDF_THEN_HTML);
  expect(head.headers.get('content-security-policy')).toBe('sandbox');
  expect(await shownText(link)).toBe('static');
});

test.each([
  ['application/pdf; name="a.pdf"', null],
  ['Application/PDF', null],
  ['application/pdf;x="1,text/html"', 'sandbox'],
  ['application/pdf,text/html', 'sandbox'],
  ['application/pdfx', 'sandbox'],
  ['application/pdf;', 'sandbox'],
])('stored as %s: Content-Security-Policy %s', async (type, csp) => {
  const name = `types/${encodeURIComponent(type)}.bin`;
  const up = await call('user-upload-link', { name });
  expect((await fetch(up.link, { method: 'PUT', headers: { 'content-type': type }, body: HTML })).status).toBe(200);
  const res = await fetch((await call('user-read', { name })).link);
  expect(res.headers.get('content-type')).toBe(type);
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('content-security-policy')).toBe(csp);
});
