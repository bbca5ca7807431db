// The page at `/` of the host, driven in headless Chromium (Debian's chromium + playwright-core):
// a real upload straight to the embedded store through an upload link, its progress reaching 100 %,
// the file listed with its size, downloaded bytes equal, opened, deleted; a wrong key's message.
// CI installs chromium (scripts/install-chromium.sh); without it this suite fails, it does not skip.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { launchChromium } from '../support/browser';
import { PROJECT_ROOT, startHost, type StartedHost } from '../support/host';

const ARTIFACTS = path.join(PROJECT_ROOT, 'test-artifacts');
const SCREENSHOT = path.join(ARTIFACTS, 'page.png');


jest.setTimeout(120_000);

let host: StartedHost;
let browser: Browser;
let user: { id: number; username: string; user_key: string };
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!fs.existsSync(path.join(PROJECT_ROOT, '.dist', 'src', 'user-list.js'))) {
    throw new Error('.dist/src is missing: run `npm run build` first (npm test does)');
  }
  host = await startHost();
  user = await host.addUser('page-tester');
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close().catch(() => undefined);
  if (host) {
    const code = await host.stop();
    expect(code).toBe(0);
    fs.rmSync(host.dataDir, { recursive: true, force: true });
  }
});

async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1000, height: 760 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  return { context, page };
}

async function enterKey(page: Page, key: string): Promise<void> {
  // the key is the second way in, under "Or use a user key"
  if (!(await page.getByLabel('Your user key').isVisible())) await page.getByText('Or use a user key').click();
  await page.getByLabel('Your user key').fill(key);
  await page.getByTestId('key-submit').click();
}

/** The human-readable size the page shows (binary units), for the check of the listed row. */
function humanSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const units = ['KB', 'MB', 'GB'];
  let n = bytes;
  let u = -1;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[u]}`;
}

test('the host serves the page, its script and its style at /', async () => {
  const html = await fetch(host.url + '/');
  expect(html.status).toBe(200);
  expect(html.headers.get('content-type')).toMatch(/^text\/html/);
  const text = await html.text();
  expect(text).toContain('app.js');
  expect(text).toContain('style.css');
  for (const [file, type] of [['app.js', /javascript/], ['style.css', /^text\/css/]] as const) {
    const res = await fetch(`${host.url}/${file}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(type);
  }
});

test('a wrong user key shows a readable message', async () => {
  const { context, page } = await newPage();
  try {
    await page.goto(host.url + '/');
    await enterKey(page, 'not-a-real-key-' + crypto.randomBytes(8).toString('hex'));
    const error = page.getByTestId('error');
    await error.waitFor({ state: 'visible' });
    expect(await error.textContent()).toMatch(/Your user key was not accepted/);
    expect(await page.getByRole('alert').textContent()).toMatch(/not accepted/);
    // nothing of the files is shown, and the key is not kept
    expect(await page.getByTestId('file-input').isVisible()).toBe(false);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  } finally {
    await context.close();
  }
});

test('upload with progress, list, open, download with equal bytes, delete', async () => {
  const { context, page } = await newPage();
  try {
    await page.goto(host.url + '/');
    await enterKey(page, user.user_key);
    await page.getByTestId('empty').waitFor({ state: 'visible' });
    expect(await page.getByTestId('error').isVisible()).toBe(false);

    // Two files at once: random bytes (a few hundred KB) and a small text file.
    const bytes = crypto.randomBytes(300 * 1024 + 123);
    const binName = `random-${crypto.randomBytes(3).toString('hex')}.bin`;
    const text = 'hello from the page test\n';
    const txtName = 'notes.txt';
    await page.getByTestId('file-input').setInputFiles([
      { name: binName, mimeType: 'application/octet-stream', buffer: bytes },
      { name: txtName, mimeType: 'text/plain', buffer: Buffer.from(text) },
    ]);
    // Record every value each progress bar takes, to see it move forward only and end at 100.
    await page.evaluate(() => {
      const seen: Record<string, number[]> = ((window as any).__progress = {});
      new MutationObserver((records) => {
        for (const r of records) {
          const bar = r.target as Element;
          if (r.attributeName !== 'aria-valuenow' || bar.getAttribute('role') !== 'progressbar') continue;
          const name = bar.closest('[data-testid="upload-item"]')?.getAttribute('data-name') ?? '?';
          (seen[name] ??= []).push(Number(bar.getAttribute('aria-valuenow')));
        }
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
    });
    await page.getByTestId('upload-button').click();

    // Each file has its own progress bar; both reach 100 % and say so.
    for (const name of [binName, txtName]) {
      const item = page.locator(`[data-testid="upload-item"][data-name="${name}"]`);
      await item.waitFor();
      await page.waitForFunction(
        (n) => document.querySelector(`[data-testid="upload-item"][data-name="${n}"]`)?.getAttribute('data-state') === 'done',
        name,
        { timeout: 30_000 },
      );
      const bar = item.getByRole('progressbar');
      expect(await bar.getAttribute('aria-valuenow')).toBe('100');
      expect(await bar.getAttribute('aria-valuemin')).toBe('0');
      expect(await bar.getAttribute('aria-valuemax')).toBe('100');
      expect(await item.getByTestId('upload-status').textContent()).toBe('Uploaded');
    }

    const progress: Record<string, number[]> = await page.evaluate(() => (window as any).__progress);
    for (const name of [binName, txtName]) {
      const values = progress[name] ?? [];
      expect(values.at(-1)).toBe(100);
      expect(values.every((v, i) => i === 0 || v >= values[i - 1])).toBe(true);
    }

    // Listed with the right size (exact bytes, and human-readable).
    const row = page.locator(`[data-testid="file-row"][data-name="${binName}"]`);
    await row.waitFor();
    const size = row.getByTestId('file-size');
    expect(await size.getAttribute('data-bytes')).toBe(String(bytes.length));
    expect((await size.textContent())?.trim()).toBe(humanSize(bytes.length));
    expect((await size.textContent())?.trim()).toBe('300 KB');
    const txtRow = page.locator(`[data-testid="file-row"][data-name="${txtName}"]`);
    expect(await txtRow.getByTestId('file-size').getAttribute('data-bytes')).toBe(String(Buffer.byteLength(text)));
    expect((await row.locator('time').getAttribute('datetime')) ?? '').toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await page.getByTestId('file-row').count()).toBe(2);

    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // Download: the link's Content-Disposition makes it a download with the file's name; bytes equal.
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByTestId('file-download').click()]);
    expect(download.suggestedFilename()).toBe(binName);
    const saved = await download.path();
    expect(saved).toBeTruthy();
    const got = fs.readFileSync(saved!);
    expect(got.length).toBe(bytes.length);
    expect(got.equals(bytes)).toBe(true);

    // Open: a new tab on the read link shows the file.
    const [popup] = await Promise.all([context.waitForEvent('page'), txtRow.getByTestId('file-open').click()]);
    await popup.waitForURL((u) => u.href.startsWith(host.s3Endpoint ?? 'http'), { timeout: 20_000 });
    await popup.waitForLoadState();
    expect(popup.url()).toContain('X-Amz-Signature=');
    expect((await popup.textContent('body'))?.trim()).toBe(text.trim());
    await popup.close();

    // The key is kept for the tab: a reload lists the files without entering it again.
    await page.reload();
    await row.waitFor();
    expect(await page.getByLabel('Your user key').inputValue()).toBe(user.user_key);

    // Delete, after a confirmation naming the file; cancelling keeps it.
    const dialogs: string[] = [];
    page.once('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await row.getByTestId('file-delete').click();
    await page.waitForTimeout(300);
    expect(dialogs).toHaveLength(1);
    expect(await row.count()).toBe(1);

    page.once('dialog', (d) => {
      dialogs.push(d.message());
      void d.accept();
    });
    await row.getByTestId('file-delete').click();
    await row.waitFor({ state: 'detached' });
    expect(dialogs[1]).toContain(binName);
    expect(await page.getByTestId('notice').textContent()).toContain(`Deleted ${binName}`);
    expect(await page.getByTestId('file-row').count()).toBe(1);

    // Gone on the server too.
    const list = await fetch(`${host.url}/aws-storage/user-list/`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-user-key': user.user_key },
      body: '{}',
    }).then((r) => r.json());
    expect(list.files.map((f: { name: string }) => f.name)).toEqual([txtName]);

    // Refresh shows the same; deleting the last one shows the empty state.
    await page.getByTestId('refresh').click();
    await txtRow.waitFor();
    page.once('dialog', (d) => void d.accept());
    await txtRow.getByTestId('file-delete').click();
    await page.getByTestId('empty').waitFor({ state: 'visible' });
    expect(await page.getByTestId('error').isVisible()).toBe(false);
  } finally {
    await context.close();
  }
  expect(pageErrors).toEqual([]);
});

test('a refused file name shows the server\'s message; a network failure reads as one', async () => {
  const { context, page } = await newPage();
  try {
    await page.goto(host.url + '/');
    await enterKey(page, user.user_key);
    await page.getByTestId('empty').waitFor({ state: 'visible' });
    // A backslash is not allowed in a name (SPEC §3): the upload link is refused with 400.
    await page.getByTestId('file-input').setInputFiles([{ name: 'bad\\name.txt', mimeType: 'text/plain', buffer: Buffer.from('x') }]);
    await page.getByTestId('upload-button').click();
    const item = page.getByTestId('upload-item').first();
    await page.waitForFunction(() => document.querySelector('[data-testid="upload-item"]')?.getAttribute('data-state') === 'failed');
    const status = (await item.getByTestId('upload-status').textContent()) ?? '';
    expect(status).toMatch(/^Failed: /);
    expect(status).toMatch(/backslash/i); // the server's own message
    await page.getByTestId('error').waitFor({ state: 'visible' });
    expect(await page.getByTestId('error').textContent()).toMatch(/1 of 1 upload failed/);

    // A network failure reads as one, not as a stack trace or a status code.
    await page.route('**/aws-storage/user-list/**', (route) => route.abort('connectionrefused'));
    await page.getByTestId('refresh').click();
    await page.waitForFunction(() => /Could not reach the server/.test(document.querySelector('[data-testid="error"]')?.textContent ?? ''));
    await page.unroute('**/aws-storage/user-list/**');
  } finally {
    await context.close();
  }
});

test('sign in with a username and password, see your files, sign out: the key is forgotten; a wrong password says so', async () => {
  const password = 'page sign-in password';
  const made = await fetch(`${host.url}/v2/instances/local/users/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': host.adminKey },
    body: JSON.stringify({ username: 'page-signer', password }),
  });
  expect(made.status).toBe(201);
  const signer = await made.json();
  const up = await fetch(`${host.url}/aws-storage/user-upload/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-user-key': signer.user_key },
    body: JSON.stringify({ name: 'signed-in-file.txt', file: Buffer.from('mine').toString('base64') }),
  });
  expect(up.status).toBe(200);

  const { context, page } = await newPage();
  try {
    await page.goto(host.url + '/');
    await page.getByLabel('Username').fill('page-signer');
    await page.getByLabel('Password').fill('not the password');
    await page.getByTestId('sign-in').click();
    await page.getByTestId('error').waitFor({ state: 'visible' });
    expect(await page.getByTestId('error').textContent()).toBe('Wrong username or password.');
    expect(await page.getByTestId('file-table').isVisible()).toBe(false);

    await page.getByLabel('Password').fill(password);
    await page.getByTestId('sign-in').click();
    await page.getByTestId('signed-in').waitFor({ state: 'visible' });
    expect(await page.getByTestId('who-name').textContent()).toBe(' as page-signer');
    await page.getByText('signed-in-file.txt').waitFor({ state: 'visible' });
    expect(await page.getByTestId('sign-in-form').isVisible()).toBe(false);
    expect(await page.getByLabel('Password').inputValue()).toBe('');
    const kept = await page.evaluate(() => sessionStorage.getItem('aws-storage:user-key'));
    expect(kept).toMatch(/^[0-9a-f]{40}$/);

    // a reload keeps the sign-in for the tab
    await page.reload();
    await page.getByText('signed-in-file.txt').waitFor({ state: 'visible' });

    await page.getByTestId('key-forget').click();
    await page.getByTestId('sign-in-form').waitFor({ state: 'visible' });
    expect(await page.evaluate(() => [sessionStorage.getItem('aws-storage:user-key'), sessionStorage.getItem('aws-storage:username')])).toEqual([null, null]);
    expect(await page.getByTestId('file-table').isVisible()).toBe(false);
    expect(await page.getByTestId('notice').textContent()).toContain('Signed out');
    await page.reload();
    await page.getByTestId('sign-in-form').waitFor({ state: 'visible' });
    expect(await page.locator('#files-section').isVisible()).toBe(false);
    expect(pageErrors).toEqual([]);
  } finally {
    await context.close();
  }
});
