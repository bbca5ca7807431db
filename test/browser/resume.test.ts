// The page's uploads through the client library (client/, served by the host at /client/), in
// headless Chromium: a 64 MiB generated file in 8 MiB parts (the socket's default part size, multipart
// above the library's 16 MiB threshold) paused near 30 %, the page reloaded, the unfinished upload
// offered, the same file chosen again, only the parts the store lacks sent, finished, the downloaded
// bytes equal by SHA-256; and pause, resume and cancel without a reload.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Browser, type BrowserContext, type Page, type Request } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { startHost, type StartedHost } from '../support/host';

const MIB = 1024 * 1024;

jest.setTimeout(90_000);

let host: StartedHost;
let browser: Browser;
let user: { user_key: string };
let other: { user_key: string };
let tmp: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'aws-storage-resume-'));
  host = await startHost();
  user = await host.addUser('resume-tester');
  other = await host.addUser('resume-other');
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  if (host) {
    expect(await host.stop()).toBe(0);
    fs.rmSync(host.dataDir, { recursive: true, force: true });
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

/**
 * `size` bytes of a deterministic pattern written to a temp file: a 1 MiB block from a hash chain,
 * each 4 KiB of each MiB stamped with its own offset (so no two parts, nor two blocks, are alike).
 */
function generatedFile(name: string, size: number): { file: string; sha256: string } {
  const block = Buffer.allocUnsafe(MIB);
  let h = crypto.createHash('sha256').update(name).digest();
  for (let off = 0; off < MIB; off += 32) {
    h.copy(block, off);
    h = crypto.createHash('sha256').update(h).digest();
  }
  const buf = Buffer.allocUnsafe(size);
  for (let off = 0; off < size; off += MIB) block.copy(buf, off, 0, Math.min(MIB, size - off));
  for (let off = 0; off + 8 <= size; off += 4096) buf.writeDoubleBE(off, off);
  const file = path.join(tmp, name);
  fs.writeFileSync(file, buf);
  return { file, sha256: crypto.createHash('sha256').update(buf).digest('hex') };
}

async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  return { context, page };
}

async function signIn(page: Page): Promise<void> {
  await page.goto(host.url + '/');
  await enterKey(page, user.user_key);
  await page.getByTestId('file-input').waitFor({ state: 'visible' });
}

/** Signs out whoever is signed in, then opens the files of this key (the second way in, under the sign-in form). */
async function enterKey(page: Page, key: string): Promise<void> {
  if (await page.getByTestId('signed-in').isVisible()) await page.getByTestId('key-forget').click();
  if (!(await page.getByLabel('Your user key').isVisible())) await page.getByText('Or use a user key').click();
  await page.getByLabel('Your user key').fill(key);
  await page.getByTestId('key-submit').click();
}

/** Part PUTs to the store (multipart part links carry partNumber and uploadId). */
function partPuts(page: Page): Request[] {
  const seen: Request[] = [];
  page.on('request', (r) => {
    if (r.method() === 'PUT' && /[?&]partNumber=\d+/.test(r.url()) && /[?&]uploadId=/.test(r.url())) seen.push(r);
  });
  return seen;
}

/** In the page: click the row's Pause as soon as its bar reaches `percent` (no round trip to the test). */
async function pauseAt(page: Page, name: string, percent: number): Promise<void> {
  await page.evaluate(
    ([n, p]) => {
      const observer = new MutationObserver(() => {
        const item = document.querySelector(`[data-testid="upload-item"][data-name="${n}"]`);
        const now = Number(item?.querySelector('[role="progressbar"]')?.getAttribute('aria-valuenow') ?? 0);
        if (item && now >= p && item.getAttribute('data-state') === 'uploading') {
          observer.disconnect();
          (item.querySelector('[data-testid="upload-pause"]') as HTMLButtonElement).click();
        }
      });
      observer.observe(document.body, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow', 'data-state'] });
    },
    [name, percent] as const,
  );
}

const itemState = (page: Page, name: string) =>
  page.locator(`[data-testid="upload-item"][data-name="${name}"]`).first().getAttribute('data-state');

async function waitState(page: Page, name: string, state: string, timeout = 30_000): Promise<void> {
  await page.waitForFunction(
    ([n, s]) => document.querySelector(`[data-testid="upload-item"][data-name="${n}"]`)?.getAttribute('data-state') === s,
    [name, state] as const,
    { timeout },
  );
}

const savedStates = (page: Page) =>
  page.evaluate(() =>
    Object.keys(localStorage)
      .filter((k) => k.startsWith('aws-storage-upload:'))
      .map((k) => JSON.parse(localStorage.getItem(k)!) as { name: string; uploadId: string; partCount: number; parts: Record<string, string> }),
  );

test('the host serves the client library at /client/: its .js modules only, nothing outside client/dist', async () => {
  const ok = await fetch(`${host.url}/client/index.js`);
  expect(ok.status).toBe(200);
  expect(ok.headers.get('content-type')).toMatch(/javascript/);
  expect(await ok.text()).toContain('createClient');
  expect((await fetch(`${host.url}/client/upload.js`)).status).toBe(200);
  for (const p of ['/client/index.d.ts', '/client/index.js.map', '/client/', '/client/../package.json', '/client/..%2fpackage.json',
    '/client/%2e%2e/%2e%2e/package.json', '/client/%2e%2e/src/index.ts', '/client/..%2f..%2fscripts%2fhost%2fserver.ts', '/client/index.js%00',
    '/client/%2e%2e%2f%2e%2e%2f.dist%2fsrc%2fuser-list.js', '/client/..%5cindex.js']) {
    const r = await fetch(host.url + p);
    expect([p, r.status]).toEqual([p, 404]);
  }
});

test('64 MiB paused near 30 %, the page reloaded, the same file chosen again: only the missing parts sent, bytes equal', async () => {
  const started = Date.now();
  const name = 'big-64mib.bin';
  const { file, sha256 } = generatedFile(name, 64 * MIB);
  const { context, page } = await newPage();
  try {
    await signIn(page);
    const t0 = Date.now();
    const before = partPuts(page);
    await page.getByTestId('file-input').setInputFiles(file);
    await pauseAt(page, name, 30);
    await page.getByTestId('upload-button').click();
    await waitState(page, name, 'paused');
    const item = page.locator(`[data-testid="upload-item"][data-name="${name}"]`);
    expect(await item.getByTestId('upload-resume').isVisible()).toBe(true);
    expect(await item.getByTestId('upload-pause').isVisible()).toBe(false);
    const pausedAt = Number(await item.getByRole('progressbar').getAttribute('aria-valuenow'));
    expect(pausedAt).toBeGreaterThanOrEqual(30);
    expect(pausedAt).toBeLessThan(100);
    // paused: no new part starts
    const sentBeforeWait = before.length;
    await page.waitForTimeout(400);
    expect(before.length).toBe(sentBeforeWait);

    const [saved] = await savedStates(page);
    expect(saved.name).toBe(name);
    expect(saved.partCount).toBe(8);
    const doneBefore = Object.keys(saved.parts).length;
    expect(doneBefore).toBeGreaterThanOrEqual(3);
    expect(doneBefore).toBeLessThan(8);

    // Reload: the key is kept for the tab, the unfinished upload is offered.
    const tPaused = Date.now();
    await page.reload();
    const offered = page.locator(`[data-testid="resumable-item"][data-name="${name}"]`);
    await offered.waitFor({ state: 'visible' });
    expect(await offered.getByTestId('resumable-status').textContent()).toContain(`${doneBefore} of 8 parts`);

    // Another user signing in on the same browser is not offered this user's unfinished upload.
    await enterKey(page, other.user_key);
    await page.locator('#files-section').waitFor({ state: 'visible' });
    await page.waitForTimeout(200);
    expect(await page.locator('[data-testid="resumable-item"]').count()).toBe(0);
    await enterKey(page, user.user_key);
    await offered.waitFor({ state: 'visible' });

    // The user chooses the same file again: it resumes, sending only what the store lacks.
    const after = partPuts(page);
    await page.getByTestId('file-input').setInputFiles(file);
    await page.getByTestId('upload-button').click();
    await waitState(page, name, 'done', 45_000);
    const tDone = Date.now();
    expect(await item.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('100');
    expect(await offered.count()).toBe(0);
    expect(after.length).toBeGreaterThan(0);
    expect(after.length).toBeLessThanOrEqual(8 - doneBefore);
    // the same multipart upload on the store as before the reload (the part links' S3 upload id)
    const s3Ids = (reqs: Request[]) => new Set(reqs.map((r) => new URL(r.url()).searchParams.get('uploadId')));
    expect(s3Ids(before).size).toBe(1);
    expect(s3Ids(after)).toEqual(s3Ids(before));
    expect(await savedStates(page)).toEqual([]);

    // Download through the page's link; the bytes are the file's.
    const row = page.locator(`[data-testid="file-row"][data-name="${name}"]`);
    await row.waitFor();
    expect(await row.getByTestId('file-size').getAttribute('data-bytes')).toBe(String(64 * MIB));
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByTestId('file-download').click()]);
    const got = await download.path();
    const hash = crypto.createHash('sha256');
    for await (const chunk of fs.createReadStream(got)) hash.update(chunk as Buffer);
    expect(hash.digest('hex')).toBe(sha256);
    console.log(`resume after reload: paused at ${pausedAt} % (${doneBefore}/8 parts saved), ${after.length} parts sent after the reload; ` +
        `generate ${t0 - started} ms, to pause ${tPaused - t0} ms, reload to done ${tDone - tPaused} ms, download ${Date.now() - tDone} ms`);
  } finally {
    await context.close();
  }
  expect(pageErrors).toEqual([]);
});

test('without a reload: pause and resume finish the upload; cancel aborts it and keeps no state', async () => {
  const name = 'pause-24mib.bin';
  const { file, sha256 } = generatedFile(name, 24 * MIB);
  const { context, page } = await newPage();
  try {
    await signIn(page);
    const puts = partPuts(page);
    await page.getByTestId('file-input').setInputFiles(file);
    await pauseAt(page, name, 30);
    await page.getByTestId('upload-button').click();
    await waitState(page, name, 'paused');
    const item = page.locator(`[data-testid="upload-item"][data-name="${name}"]`);
    expect((await item.getByTestId('upload-status').textContent()) ?? '').toMatch(/^Paused at \d+ %$/);
    await item.getByTestId('upload-resume').click();
    await waitState(page, name, 'done');
    expect(await item.getByTestId('upload-status').textContent()).toBe('Uploaded');
    expect(puts.length).toBeGreaterThanOrEqual(3); // 3 parts of 8 MiB, and the ones pause cut, again
    const { link } = await fetch(`${host.url}/aws-storage/user-read/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-key': user.user_key },
      body: JSON.stringify({ name }),
    }).then((r) => r.json());
    const bytes = Buffer.from(await (await fetch(link)).arrayBuffer());
    expect(crypto.createHash('sha256').update(bytes).digest('hex')).toBe(sha256);

    // Cancel: a paused upload canceled is aborted on the store, and the page keeps no state for it.
    const other = 'cancel-24mib.bin';
    const { file: otherFile } = generatedFile(other, 24 * MIB);
    await page.getByTestId('file-input').setInputFiles(otherFile);
    await pauseAt(page, other, 1);
    await page.getByTestId('upload-button').click();
    await waitState(page, other, 'paused');
    const uploadId = (await savedStates(page)).find((s) => s.name === other)?.uploadId;
    expect(uploadId).toBeTruthy();
    await page.locator(`[data-testid="upload-item"][data-name="${other}"]`).getByTestId('upload-cancel').click();
    await waitState(page, other, 'canceled');
    expect(await itemState(page, name)).toBe('done');
    expect(await savedStates(page)).toEqual([]);
    const links = await fetch(`${host.url}/aws-storage/user-multipart-links/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-key': user.user_key },
      body: JSON.stringify({ name: other, uploadId }),
    });
    // (once seen 200 under a loaded full run: the host's multipart lines then say what the abort got)
    if (![400, 404].includes(links.status)) {
      const multipartLog = host.logs().split('\n').filter((l) => /multipart/.test(l)).slice(-12);
      throw new Error(`multipart-links after cancel answered ${links.status}; the host's multipart lines:\n${multipartLog.join('\n')}`);
    }
    await page.getByTestId('refresh').click();
    await page.locator(`[data-testid="file-row"][data-name="${name}"]`).waitFor();
    expect(await page.locator(`[data-testid="file-row"][data-name="${other}"]`).count()).toBe(0);
  } finally {
    await context.close();
  }
  expect(pageErrors).toEqual([]);
});

test('a file dropped on the drop zone is uploaded at once', async () => {
  const { context, page } = await newPage();
  try {
    await signIn(page);
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped bytes\n'], 'dropped.txt', { type: 'text/plain' }));
      const zone = document.querySelector('[data-testid="drop-zone"]')!;
      zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await waitState(page, 'dropped.txt', 'done');
    const row = page.locator('[data-testid="file-row"][data-name="dropped.txt"]');
    await row.waitFor();
    expect(await row.getByTestId('file-size').getAttribute('data-bytes')).toBe('14');
  } finally {
    await context.close();
  }
  expect(pageErrors).toEqual([]);
});

test('a page without crypto.subtle (plain http, not localhost) still keeps each user\'s unfinished uploads apart', async () => {
  const { context, page } = await newPage();
  // as on http://files.example.com: Web Crypto is only in secure contexts
  await context.addInitScript(() => Object.defineProperty(globalThis.crypto, 'subtle', { value: undefined, configurable: true }));
  try {
    await page.goto(host.url + '/');
    expect(await page.evaluate(() => globalThis.crypto.subtle)).toBeUndefined();
    // the tags the page keys saved uploads by: its own ownerTag, from the library it serves
    // (a string: ts-jest would turn a dynamic import() inside a function into require())
    const [mine, theirs] = (await page.evaluate(
      `import('/client/index.js').then(({ ownerTag }) => Promise.all(${JSON.stringify([user.user_key, other.user_key])}.map(ownerTag)))`,
    )) as string[];
    expect(mine).toMatch(/^[0-9a-f]{16}$/);
    expect(theirs).toMatch(/^[0-9a-f]{16}$/);
    expect(mine).not.toBe(theirs);
    await page.evaluate((tag) => {
      const state = { v: 1, uploadId: 'u', key: 'k', name: 'mine.bin', size: 24 * 1024 * 1024, partSize: 8 * 1024 * 1024, partCount: 3, parts: { 1: '"e"' }, updatedAt: new Date().toISOString() };
      localStorage.setItem(`aws-storage-upload:${tag}\nmine.bin\n${state.size}\n1`, JSON.stringify(state));
    }, mine);
    // its owner is offered it (with '' for every user, nobody was), the other user is not
    await enterKey(page, user.user_key);
    const offered = page.locator('[data-testid="resumable-item"][data-name="mine.bin"]');
    await offered.waitFor({ state: 'visible' });
    expect(await offered.getByTestId('resumable-status').textContent()).toContain('1 of 3 parts');
    await enterKey(page, other.user_key);
    await page.locator('#files-section').waitFor({ state: 'visible' });
    await page.waitForTimeout(200);
    expect(await page.locator('[data-testid="resumable-item"]').count()).toBe(0);
  } finally {
    await context.close();
  }
  expect(pageErrors).toEqual([]);
});
