/**
 * patches/@syncano+core+0.15.0.patch: services are built on first use and the HTTP libraries load on
 * first use, with what each service does unchanged.
 */
type SyncanoCtor = new (ctx: object) => Record<string, any>;

function loadCore(): { Syncano: SyncanoCtor } {
  let Syncano!: SyncanoCtor;
  jest.isolateModules(() => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    Syncano = require('@syncano/core');
  });
  return { Syncano };
}

class HttpResponse {
  constructor(
    public status: number,
    public content: string,
    public mimetype: string,
    public headers: Record<string, string>,
  ) {}
}

test('response answers through setResponse, as before', () => {
  const { Syncano } = loadCore();
  const answers: HttpResponse[] = [];
  const syncano = new Syncano({ meta: { instance: 'i' }, HttpResponse, setResponse: (r: HttpResponse) => answers.push(r) });
  syncano.response.header('X-A', '1').json({ ok: true }, 201);
  expect(answers).toEqual([new HttpResponse(201, '{"ok":true}', 'application/json', { 'X-A': '1' })]);
  expect(syncano.response).toBe(syncano.response); // built once, then kept
});

test('services are built on first read, from the same config, and can be replaced', () => {
  const { Syncano } = loadCore();
  const syncano = new Syncano({ meta: { instance: 'inst', token: 't' } });
  expect(Object.keys(syncano)).not.toContain('users');
  for (const name of ['_class', 'event', 'endpoint', 'channel', 'socket', 'trace', 'hosting', 'account', 'instance', 'logger', 'users', 'groups', 'backups']) {
    expect(syncano[name]).toBeDefined();
  }
  expect(typeof syncano.endpoint.post).toBe('function');
  expect(syncano.users.instance.instanceName).toBe('inst');
  expect(syncano.data.books.instance).toMatchObject({ className: 'books', instanceName: 'inst' });
  expect(Object.keys(syncano)).toContain('users');
  syncano.users = 'replaced';
  expect(syncano.users).toBe('replaced');
  expect(new Syncano({ meta: {} }).users).not.toBe('replaced');
});

test('node-fetch and form-data load on first use, not with @syncano/core', () => {
  const loaded: string[] = [];
  let Syncano!: SyncanoCtor;
  jest.isolateModules(() => {
    jest.doMock('node-fetch', () => (loaded.push('node-fetch'), Object.assign(() => Promise.reject(new Error('offline')), { default: () => Promise.reject(new Error('offline')) })));
    jest.doMock('form-data', () => (loaded.push('form-data'), class FormData {}));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    Syncano = require('@syncano/core');
  });
  const syncano = new Syncano({ meta: { instance: 'i' } });
  void syncano.response;
  void syncano.data.books;
  expect(loaded).toEqual([]);
  // the first request needs node-fetch: now it loads
  void syncano.users.fetch('https://127.0.0.1:9/').catch(() => undefined);
  expect(loaded).toEqual(['node-fetch']);
});
