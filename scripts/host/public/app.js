// aws-storage page: a user's own files, through the socket's endpoints and presigned links.
// Plain modern JS, no build step. Every name from the server goes into the page as text, never HTML.
(() => {
  'use strict';

  const KEY_STORAGE = 'aws-storage:user-key';
  const PAGE_SIZE = 100;
  const PARALLEL_UPLOADS = 3;
  const socket = document.querySelector('meta[name="aws-storage-socket"]')?.content || 'aws-storage';
  const apiBase = new URL(`${socket}/`, document.baseURI);

  const $ = (id) => document.getElementById(id);
  const els = {
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
    filesSection: $('files-section'),
    fileCount: $('file-count'),
    refresh: $('refresh'),
    empty: $('empty'),
    table: $('file-table'),
    rows: $('file-rows'),
    more: $('more'),
  };

  let userKey = '';
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
    const item = el('li', { class: 'upload', 'data-testid': 'upload-item', dataset: { name: file.name, state: 'waiting' } }, [
      el('div', { class: 'upload-head' }, [
        el('span', { class: 'name', text: file.name, title: file.name }),
        el('span', { class: 'size', text: formatSize(file.size) }),
      ]),
      progress,
      status,
    ]);
    return {
      item,
      set(percent) {
        const p = Math.max(0, Math.min(100, Math.round(percent)));
        progress.setAttribute('aria-valuenow', String(p));
        progress.setAttribute('aria-valuetext', `${p} %`);
        bar.style.width = `${p}%`;
        status.textContent = p < 100 ? `Uploading… ${p} %` : 'Finishing…';
      },
      state(state, text) {
        item.dataset.state = state;
        status.textContent = text;
      },
    };
  }

  /** PUT the file to the presigned link, reporting progress; resolves when the store accepted it. */
  function putToStore(upload, file, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(upload.method || 'PUT', upload.link);
      for (const [k, v] of Object.entries(upload.headers || {})) xhr.setRequestHeader(k, v);
      xhr.upload.addEventListener('progress', (e) => {
        if (e.lengthComputable && e.total > 0) onProgress((e.loaded / e.total) * 100);
      });
      xhr.addEventListener('load', () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve();
        else reject(new ApiError(`The store refused the upload (${xhr.status}${storeMessage(xhr.responseText)})`, xhr.status, 'store'));
      });
      xhr.addEventListener('error', () => reject(new ApiError('Could not reach the store to upload the file. Check your connection and try again.', 0, 'network')));
      xhr.addEventListener('abort', () => reject(new ApiError('The upload was cancelled.', 0, 'aborted')));
      xhr.addEventListener('timeout', () => reject(new ApiError('The upload timed out.', 0, 'timeout')));
      xhr.send(file);
    });
  }

  /** S3 errors are XML: <Error><Code/><Message/></Error>. */
  function storeMessage(text) {
    if (!text) return '';
    try {
      const doc = new DOMParser().parseFromString(text, 'application/xml');
      const message = doc.querySelector('Error > Message')?.textContent || doc.querySelector('Error > Code')?.textContent;
      return message ? `: ${message}` : '';
    } catch {
      return '';
    }
  }

  async function uploadOne(file, ui) {
    try {
      ui.state('linking', 'Preparing…');
      const contentType = file.type || 'application/octet-stream';
      const upload = await call('user-upload-link', { name: file.name, contentType, method: 'PUT' });
      ui.state('uploading', 'Uploading… 0 %');
      ui.set(0);
      await putToStore(upload, file, (p) => ui.set(p));
      ui.set(100);
      ui.state('done', 'Uploaded');
      return true;
    } catch (err) {
      ui.state('failed', `Failed: ${describeError(err)}`);
      if (err instanceof ApiError && err.status === 401) keyRejected();
      return false;
    }
  }

  async function uploadFiles(files) {
    clearError();
    const queue = files.map((file) => ({ file, ui: uploadItem(file) }));
    // the newest batch on top, in the order the files were chosen
    els.uploads.prepend(...queue.map((q) => q.ui.item));
    let ok = 0;
    const worker = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        if (await uploadOne(next.file, next.ui)) ok++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_UPLOADS, queue.length) }, worker));
    if (ok) notify(`Uploaded ${ok} of ${files.length} file${files.length === 1 ? '' : 's'}.`);
    if (ok < files.length) showError(`${files.length - ok} of ${files.length} upload${files.length === 1 ? '' : 's'} failed; see the list of uploads.`);
    if (userKey) await refreshList();
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
    showError('Your user key was not accepted. Check it and try again.');
    sessionStorage.removeItem(KEY_STORAGE);
    setSignedIn(false);
    els.keyInput.focus();
  }

  function setSignedIn(on) {
    els.uploadSection.hidden = !on;
    els.filesSection.hidden = !on;
    els.keyForget.hidden = !on;
    if (!on) {
      userKey = '';
      els.rows.replaceChildren();
      listed = 0;
      cursor = null;
    }
  }

  async function useKey(key) {
    userKey = key;
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

  els.keyForget.addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORAGE);
    els.keyInput.value = '';
    setSignedIn(false);
    clearError();
    notify('The key was removed from this tab.');
    els.keyInput.focus();
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
    void uploadFiles(files);
  });

  els.refresh.addEventListener('click', () => {
    clearError();
    void refreshList();
  });
  els.more.addEventListener('click', () => void loadPage(false));

  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) {
    els.keyInput.value = saved;
    void useKey(saved);
  }
})();
