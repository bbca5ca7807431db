// aws-storage page: a user's own files, through the socket's endpoints and presigned links.
// Plain modern JS, no build step; an ES module. Uploads go through the client library (client/, served
// by the host at /client/): one PUT for a small file, parts in parallel for a large one, with pause,
// resume, cancel, and resume after a reload from the state the library keeps in localStorage.
// Every name from the server goes into the page as text, never HTML.
import { createClient, isStorageApiError, ownerTag } from './client/index.js';

(() => {
  'use strict';

  const KEY_STORAGE = 'aws-storage:user-key';
  const NAME_STORAGE = 'aws-storage:username';
  const PAGE_SIZE = 100;
  const PARALLEL_UPLOADS = 3;
  const socket = document.querySelector('meta[name="aws-storage-socket"]')?.content || 'aws-storage';
  const apiBase = new URL(`${socket}/`, document.baseURI);

  const $ = (id) => document.getElementById(id);
  const els = {
    signInSection: $('sign-in-section'),
    signInForm: $('sign-in-form'),
    username: $('username'),
    password: $('password'),
    signUp: $('sign-up'),
    signedInSection: $('signed-in-section'),
    whoName: $('who-name'),
    keyDetails: $('key-details'),
    keyForm: $('key-form'),
    keyInput: $('user-key'),
    keyForget: $('key-forget'),
    message: $('message'),
    notice: $('notice'),
    uploadSection: $('upload-section'),
    uploadForm: $('upload-form'),
    fileInput: $('file-input'),
    uploadButton: $('upload-button'),
    uploads: $('uploads'),
    dropZone: $('drop-zone'),
    resumableSection: $('resumable-section'),
    resumable: $('resumable'),
    filesSection: $('files-section'),
    fileCount: $('file-count'),
    refresh: $('refresh'),
    empty: $('empty'),
    table: $('file-table'),
    rows: $('file-rows'),
    more: $('more'),
  };

  let userKey = '';
  /** the client library for this key (uploads); made when the key is set */
  let storage = null;
  let cursor = null;
  let listed = 0;
  let listGeneration = 0;

  // ---- messages ----

  class ApiError extends Error {
    constructor(message, status, code) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function showError(err) {
    const text = typeof err === 'string' ? err : describeError(err);
    els.message.textContent = text;
    els.message.hidden = false;
  }

  function clearError() {
    els.message.textContent = '';
    els.message.hidden = true;
  }

  let noticeTimer;
  function notify(text) {
    els.notice.textContent = text;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => (els.notice.textContent = ''), 6000);
  }

  function describeError(err) {
    if (err instanceof ApiError) return err.message;
    if (isStorageApiError(err)) {
      if (err.status === 401) return 'Your user key was not accepted. Check it and try again.';
      if (err.code === 'network_error') return 'Could not reach the server. Check your connection and try again.';
      // the library's messages start with the endpoint's name ("user-upload-link: …")
      return capitalise(String(err.message).replace(/^[a-z][a-z-]*: /, ''));
    }
    if (err instanceof TypeError) return 'Could not reach the server. Check your connection and try again.';
    return (err && err.message) || 'Something went wrong.';
  }

  // ---- the endpoints ----

  async function call(endpoint, args = {}) {
    let res;
    try {
      res = await fetch(new URL(`${endpoint}/`, apiBase), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-USER-KEY': userKey },
        body: JSON.stringify(args),
        cache: 'no-store',
      });
    } catch {
      throw new ApiError('Could not reach the server. Check your connection and try again.', 0, 'network');
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      // not JSON: a proxy's error page, say
    }
    if (res.status === 401) {
      throw new ApiError('Your user key was not accepted. Check it and try again.', 401, 'unauthorized');
    }
    if (!res.ok) {
      const message = body && typeof body.message === 'string' ? body.message : `The server answered ${res.status} ${res.statusText}`.trim();
      throw new ApiError(capitalise(message), res.status, body && body.code);
    }
    return body;
  }

  function capitalise(s) {
    return s ? s[0].toUpperCase() + s.slice(1) : s;
  }

  // ---- formatting ----

  const UNITS = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  function formatSize(bytes) {
    if (!Number.isFinite(bytes)) return '';
    if (bytes === 1) return '1 byte';
    let n = bytes;
    let u = 0;
    while (n >= 1024 && u < UNITS.length - 1) {
      n /= 1024;
      u++;
    }
    return u === 0 ? `${n} bytes` : `${n < 10 ? n.toFixed(1) : Math.round(n)} ${UNITS[u]}`;
  }

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  function formatDate(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? '' : dateFormat.format(d);
  }

  function el(tag, props = {}, children = []) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'text') node.textContent = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) node.append(c);
    return node;
  }

  // ---- the list ----

  async function refreshList() {
    cursor = null;
    listed = 0;
    await loadPage(true);
  }

  async function loadPage(replace) {
    const generation = ++listGeneration;
    els.table.setAttribute('aria-busy', 'true');
    els.refresh.disabled = true;
    els.more.disabled = true;
    try {
      const args = { limit: PAGE_SIZE };
      if (!replace && cursor) args.cursor = cursor;
      const page = await call('user-list', args);
      if (generation !== listGeneration) return;
      if (replace) els.rows.replaceChildren();
      for (const f of page.files || []) els.rows.append(fileRow(f));
      listed = els.rows.children.length;
      cursor = page.cursor || null;
      renderListState();
    } catch (err) {
      if (generation === listGeneration) handleFailure(err);
    } finally {
      if (generation === listGeneration) {
        els.table.setAttribute('aria-busy', 'false');
        els.refresh.disabled = false;
        els.more.disabled = false;
      }
    }
  }

  function renderListState() {
    els.empty.hidden = listed > 0;
    els.table.hidden = listed === 0;
    els.more.hidden = !cursor;
    els.fileCount.textContent = listed ? `(${listed}${cursor ? '+' : ''})` : '';
  }

  function fileRow(f) {
    const name = f.name;
    const open = el('button', { type: 'button', class: 'link', 'data-testid': 'file-open', 'aria-label': `Open ${name}`, onclick: () => openFile(name) }, ['Open']);
    const download = el('button', { type: 'button', 'data-testid': 'file-download', 'aria-label': `Download ${name}`, onclick: () => downloadFile(name) }, ['Download']);
    const del = el('button', { type: 'button', class: 'danger', 'data-testid': 'file-delete', 'aria-label': `Delete ${name}`, onclick: () => deleteFile(name, row) }, ['Delete']);
    const row = el('tr', { 'data-testid': 'file-row', dataset: { name } }, [
      el('td', { class: 'name', 'data-testid': 'file-name' }, [el('span', { text: name, title: name })]),
      el('td', { class: 'num', 'data-testid': 'file-size', 'data-bytes': f.size, title: `${Number(f.size).toLocaleString()} bytes`, text: formatSize(f.size) }),
      el('td', { 'data-testid': 'file-date' }, [el('time', { datetime: f.lastModified, text: formatDate(f.lastModified) })]),
      el('td', { class: 'actions' }, [open, download, del]),
    ]);
    return row;
  }

  async function openFile(name) {
    clearError();
    // Open the tab now, while the click still counts as a user gesture; point it at the link once we have it.
    const tab = window.open('', '_blank');
    try {
      const { link } = await call('user-read', { name });
      if (tab) {
        tab.opener = null;
        tab.location.href = link;
      } else {
        window.location.assign(link);
      }
    } catch (err) {
      if (tab) tab.close();
      handleFailure(err, `Could not open ${name}`);
    }
  }

  async function downloadFile(name) {
    clearError();
    try {
      const { link } = await call('user-read', { name, download: true });
      // The link answers with Content-Disposition: attachment, so the browser saves it and stays here.
      const a = el('a', { href: link, download: name, rel: 'noopener', hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) {
      handleFailure(err, `Could not download ${name}`);
    }
  }

  async function deleteFile(name, row) {
    clearError();
    if (!window.confirm(`Delete “${name}”? This cannot be undone.`)) return;
    row.setAttribute('aria-busy', 'true');
    row.querySelectorAll('button').forEach((b) => (b.disabled = true));
    try {
      const result = await call('user-delete', { name });
      const failed = (result.errors || [])[0];
      if (failed) {
        showError(`Could not delete ${name}: ${failed.message}`);
      } else {
        notify(`Deleted ${name}.`);
      }
      await refreshList();
    } catch (err) {
      row.removeAttribute('aria-busy');
      row.querySelectorAll('button').forEach((b) => (b.disabled = false));
      handleFailure(err, `Could not delete ${name}`);
    }
  }

  // ---- uploads ----

  const RESUME_PREFIX = 'aws-storage-upload:'; // where the library keeps its state (localStorageStore)
  /** resume keys of the uploads running (or paused) in this page */
  const active = new Set();
  const queue = [];
  let running = 0;

  /**
   * The resume key of a file: who uploads it (a tag of the user key), its name, size and lastModified.
   * The tag keeps one user's unfinished uploads out of another's list on a shared browser.
   */
  let userTag = '';
  function resumeKeyOf(file) {
    return `${userTag}\n${file.name.normalize('NFC')}\n${file.size}\n${file.lastModified ?? ''}`;
  }
  /** The library's saved uploads under this user's tag (userTag), newest first. */
  function savedUploads() {
    const out = [];
    try {
      for (let i = 0; i < localStorage.length; i++) {
        const key = localStorage.key(i);
        if (!key || !userTag || !key.startsWith(`${RESUME_PREFIX}${userTag}\n`)) continue;
        try {
          const v = JSON.parse(localStorage.getItem(key));
          if (v && typeof v.uploadId === 'string' && typeof v.name === 'string' && typeof v.size === 'number') {
            out.push({ storageKey: key, resumeKey: key.slice(RESUME_PREFIX.length), state: v });
          }
        } catch {
          // not the library's state
        }
      }
    } catch {
      // no localStorage: nothing to resume
    }
    return out.sort((x, y) => String(y.state.updatedAt).localeCompare(String(x.state.updatedAt)));
  }

  /** The unfinished uploads the library saved that no upload in this page is working on. */
  function renderResumable() {
    const items = savedUploads().filter((s) => !active.has(s.resumeKey));
    els.resumable.replaceChildren(...items.map(resumableItem));
    els.resumableSection.hidden = items.length === 0 || !userKey;
  }

  function resumableItem({ storageKey, state }) {
    const done = Object.keys(state.parts || {}).length;
    const count = state.partCount || 0;
    const percent = count ? Math.floor((done / count) * 100) : 0;
    const discard = el('button', {
      type: 'button', class: 'danger', 'data-testid': 'resumable-discard', 'aria-label': `Discard the unfinished upload of ${state.name}`,
      onclick: async () => {
        discard.disabled = true;
        try {
          await call('user-multipart-abort', { name: state.name, uploadId: state.uploadId });
        } catch (err) {
          // gone already, or not this key's: the saved state is dropped all the same
          if (err instanceof ApiError && err.status === 401) return keyRejected();
        }
        localStorage.removeItem(storageKey);
        renderResumable();
      },
    }, ['Discard']);
    return el('li', { class: 'upload', 'data-testid': 'resumable-item', dataset: { name: state.name, percent: String(percent) } }, [
      el('div', { class: 'upload-head' }, [
        el('span', { class: 'name', text: state.name, title: state.name }),
        el('span', { class: 'size', text: formatSize(state.size) }),
      ]),
      el('div', { class: 'upload-foot' }, [
        el('span', { class: 'status', 'data-testid': 'resumable-status', text: `${percent} % uploaded (${done} of ${count} parts)` }),
        el('span', { class: 'upload-actions' }, [discard]),
      ]),
    ]);
  }

  function uploadItem(file) {
    const bar = el('div', { class: 'bar' });
    const progress = el('div', {
      class: 'progress',
      role: 'progressbar',
      'aria-label': `Upload of ${file.name}`,
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': 0,
      'data-testid': 'upload-progress',
    }, [bar]);
    const status = el('span', { class: 'status', 'data-testid': 'upload-status', text: 'Waiting…' });
    const pause = el('button', { type: 'button', 'data-testid': 'upload-pause', 'aria-label': `Pause the upload of ${file.name}`, hidden: true }, ['Pause']);
    const resume = el('button', { type: 'button', 'data-testid': 'upload-resume', 'aria-label': `Resume the upload of ${file.name}`, hidden: true }, ['Resume']);
    const cancel = el('button', { type: 'button', class: 'danger', 'data-testid': 'upload-cancel', 'aria-label': `Cancel the upload of ${file.name}` }, ['Cancel']);
    const item = el('li', { class: 'upload', 'data-testid': 'upload-item', dataset: { name: file.name, state: 'waiting' } }, [
      el('div', { class: 'upload-head' }, [
        el('span', { class: 'name', text: file.name, title: file.name }),
        el('span', { class: 'size', text: formatSize(file.size) }),
      ]),
      progress,
      el('div', { class: 'upload-foot' }, [status, el('span', { class: 'upload-actions' }, [pause, resume, cancel])]),
    ]);
    let percent = 0;
    let verb = 'Uploading';
    const ui = {
      item,
      pause,
      resume,
      cancel,
      get percent() {
        return percent;
      },
      set(p) {
        percent = Math.max(percent, Math.max(0, Math.min(100, Math.floor(p))));
        progress.setAttribute('aria-valuenow', String(percent));
        progress.setAttribute('aria-valuetext', `${percent} %`);
        bar.style.width = `${percent}%`;
        if (item.dataset.state === 'uploading') status.textContent = percent < 100 ? `${verb}… ${percent} %` : 'Finishing…';
      },
      state(state, text) {
        item.dataset.state = state;
        status.textContent = text;
        const live = state === 'uploading' || state === 'paused';
        pause.hidden = state !== 'uploading';
        resume.hidden = state !== 'paused';
        cancel.hidden = !(live || state === 'waiting' || state === 'linking');
      },
      verb(v) {
        verb = v;
      },
    };
    return ui;
  }

  /** One file through the library: resolves true when the store has it. */
  function uploadOne(file, ui) {
    const resumeKey = resumeKeyOf(file);
    const resuming = savedUploads().some((s) => s.resumeKey === resumeKey);
    if (active.has(resumeKey)) {
      ui.state('failed', 'Failed: this file is already being uploaded here.');
      return Promise.resolve(false);
    }
    active.add(resumeKey);
    renderResumable();
    ui.verb(resuming ? 'Resuming' : 'Uploading');
    ui.state('linking', resuming ? 'Resuming…' : 'Preparing…');
    const task = storage.upload(file.name, file, {
      resumeKey,
      onProgress: ({ loaded, total }) => {
        if (ui.item.dataset.state === 'linking') ui.state('uploading', '');
        ui.set(total > 0 ? (loaded / total) * 100 : 100);
      },
    });
    ui.pause.onclick = () => {
      task.pause();
      ui.state('paused', `Paused at ${ui.percent} %`);
    };
    ui.resume.onclick = () => {
      task.resume();
      ui.state('uploading', '');
      ui.set(ui.percent);
    };
    ui.cancel.onclick = () => {
      ui.cancel.disabled = true;
      void task.cancel();
    };
    return task.promise.then(
      () => {
        ui.set(100);
        ui.state('done', 'Uploaded');
        return true;
      },
      (err) => {
        if (isStorageApiError(err) && err.code === 'canceled') {
          ui.state('canceled', 'Canceled');
        } else {
          ui.state('failed', `Failed: ${describeError(err)}`);
          if (isStorageApiError(err) && err.status === 401) keyRejected();
        }
        return false;
      },
    ).finally(() => {
      active.delete(resumeKey);
      renderResumable();
    });
  }

  /** At most PARALLEL_UPLOADS files at once (each its parts in parallel); the rest wait their turn. */
  function pump() {
    while (running < PARALLEL_UPLOADS && queue.length) {
      const next = queue.shift();
      if (next.ui.item.dataset.state !== 'waiting') continue; // canceled while it waited
      running++;
      void uploadOne(next.file, next.ui).then((ok) => {
        running--;
        next.batch.settled(ok, next.ui.item.dataset.state === 'canceled');
        pump();
      });
    }
  }

  function uploadFiles(files) {
    if (!storage) return;
    clearError();
    const b = { total: files.length, ok: 0, failed: 0, left: files.length };
    b.settled = (ok, canceled) => {
      if (ok) b.ok++;
      else if (!canceled) b.failed++;
      if (--b.left > 0) return;
      if (b.ok) notify(`Uploaded ${b.ok} of ${b.total} file${b.total === 1 ? '' : 's'}.`);
      if (b.failed) showError(`${b.failed} of ${b.total} upload${b.total === 1 ? '' : 's'} failed; see the list of uploads.`);
      if (userKey && b.ok) void refreshList();
    };
    const items = files.map((file) => {
      const ui = uploadItem(file);
      ui.cancel.onclick = () => {
        // not started yet: it never will
        ui.state('canceled', 'Canceled');
        b.settled(false, true);
      };
      return { file, ui, batch: b };
    });
    // the newest batch on top, in the order the files were chosen
    els.uploads.prepend(...items.map((q) => q.ui.item));
    queue.push(...items);
    pump();
  }

  // ---- the key ----

  function handleFailure(err, prefix) {
    if (err instanceof ApiError && err.status === 401) {
      keyRejected();
      return;
    }
    showError(prefix ? `${prefix}: ${describeError(err)}` : describeError(err));
  }

  function keyRejected() {
    showError(sessionStorage.getItem(NAME_STORAGE)
      ? 'Your sign-in is no longer valid. Sign in again.'
      : 'Your user key was not accepted. Check it and try again.');
    forgetKey();
    setSignedIn(false);
    (els.keyDetails.open ? els.keyInput : els.username).focus();
  }

  function forgetKey() {
    sessionStorage.removeItem(KEY_STORAGE);
    sessionStorage.removeItem(NAME_STORAGE);
  }

  function setSignedIn(on) {
    els.uploadSection.hidden = !on;
    els.filesSection.hidden = !on;
    els.signInSection.hidden = on;
    els.signedInSection.hidden = !on;
    const name = sessionStorage.getItem(NAME_STORAGE);
    els.whoName.textContent = on && name ? ` as ${name}` : '';
    if (on) renderResumable();
    if (!on) {
      userKey = '';
      userTag = '';
      storage = null;
      els.resumableSection.hidden = true;
      els.rows.replaceChildren();
      listed = 0;
      cursor = null;
    }
  }

  // ---- signing in (the platform's users/auth/ route on the host) ----

  /** what the host tells the page: its instance (for the users routes) and whether sign-up is open */
  let pageConfig = null;
  async function loadPageConfig() {
    if (!pageConfig) {
      const res = await fetch(new URL('page-config.json', document.baseURI), { cache: 'no-store' });
      if (!res.ok) throw new ApiError('The server did not say how to sign in.', res.status, 'page_config');
      pageConfig = await res.json();
    }
    return pageConfig;
  }

  async function postUsers(path, body) {
    const { instance } = await loadPageConfig();
    let res;
    try {
      res = await fetch(new URL(`v2/instances/${encodeURIComponent(instance)}/users/${path}`, document.baseURI), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        cache: 'no-store',
      });
    } catch {
      throw new ApiError('Could not reach the server. Check your connection and try again.', 0, 'network');
    }
    let answer = null;
    try {
      answer = await res.json();
    } catch {
      // not JSON
    }
    if (res.ok && answer && typeof answer.user_key === 'string') return answer;
    if (res.status === 429) {
      const wait = Number(res.headers.get('Retry-After')) || 1;
      throw new ApiError(`Too many failed sign-ins. Try again in ${wait} second${wait === 1 ? '' : 's'}.`, 429, 'too_many_requests');
    }
    if (res.status === 401 && path === 'auth/') throw new ApiError('Wrong username or password.', 401, 'unauthorized');
    const message = answer && typeof answer.message === 'string' ? answer.message : `The server answered ${res.status}`;
    throw new ApiError(capitalise(message), res.status, answer && answer.code);
  }

  async function signInWith(path) {
    clearError();
    const username = els.username.value;
    const password = els.password.value;
    if (!username || !password) {
      showError('Enter your username and password.');
      return;
    }
    try {
      const user = await postUsers(path, { username, password });
      els.password.value = '';
      sessionStorage.setItem(NAME_STORAGE, user.username);
      await useKey(user.user_key);
    } catch (err) {
      showError(err);
      els.password.focus();
    }
  }

  async function useKey(key) {
    userKey = key;
    // the client's rule: SHA-256 of the key, or FNV-1a 64 where a plain-http page has no crypto.subtle
    userTag = await ownerTag(key);
    storage = createClient({ url: new URL('.', document.baseURI).href, userKey: key }, { socket });
    clearError();
    els.filesSection.hidden = false;
    await refreshList();
    if (userKey) {
      sessionStorage.setItem(KEY_STORAGE, key);
      setSignedIn(true);
    }
  }

  // ---- wiring ----

  els.keyForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const key = els.keyInput.value.trim();
    if (!key) {
      showError('Enter your user key.');
      return;
    }
    void useKey(key);
  });

  els.signInForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void signInWith('auth/');
  });
  els.signUp.addEventListener('click', () => void signInWith(''));

  els.keyForget.addEventListener('click', () => {
    forgetKey();
    els.keyInput.value = '';
    setSignedIn(false);
    clearError();
    notify('Signed out: the key was removed from this tab.');
    els.username.focus();
  });

  els.fileInput.addEventListener('change', () => {
    els.uploadButton.disabled = els.fileInput.files.length === 0;
  });

  els.uploadForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const files = [...els.fileInput.files];
    if (!files.length) return;
    els.uploadForm.reset();
    els.uploadButton.disabled = true;
    uploadFiles(files);
  });

  // Dropped files go up at once; a click (or Enter) on the zone opens the file chooser.
  els.dropZone.addEventListener('dragover', (e) => {
    e.preventDefault();
    els.dropZone.classList.add('over');
  });
  els.dropZone.addEventListener('dragleave', () => els.dropZone.classList.remove('over'));
  els.dropZone.addEventListener('drop', (e) => {
    e.preventDefault();
    els.dropZone.classList.remove('over');
    const files = [...(e.dataTransfer?.files ?? [])];
    if (files.length) uploadFiles(files);
  });
  els.dropZone.addEventListener('click', () => els.fileInput.click());
  els.dropZone.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      els.fileInput.click();
    }
  });

  els.refresh.addEventListener('click', () => {
    clearError();
    void refreshList();
  });
  els.more.addEventListener('click', () => void loadPage(false));

  loadPageConfig().then(
    (config) => (els.signUp.hidden = !config.signup),
    () => undefined, // sign-in says so when it is tried
  );

  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) {
    if (!sessionStorage.getItem(NAME_STORAGE)) {
      els.keyDetails.open = true;
      els.keyInput.value = saved;
    }
    void useKey(saved);
  }
})();
