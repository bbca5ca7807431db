// The host reads a request's target as WHATWG URL does; the usual target skips the URL (requestTarget).
import { requestTarget } from '../../scripts/host/request';

const asUrl = (raw: string) => {
  try {
    const u = new URL(raw, 'http://host');
    return { pathname: u.pathname, search: u.search, params: [...u.searchParams] };
  } catch {
    return 'throws';
  }
};
const asTarget = (raw: string) => {
  try {
    const t = requestTarget(raw);
    return { pathname: t.pathname, search: t.search, params: [...t.searchParams] };
  } catch {
    return 'throws';
  }
};

test('the usual targets are taken as they are, without a URL', () => {
  for (const raw of ['/aws-storage/user-upload-link/', '/healthz', '/', '/aws-storage/user-read/?name=a.png&user_key=k%20x', '/v3/instances/i/endpoints/sockets/aws-storage/make-links/']) {
    expect(requestTarget(raw)).not.toBeInstanceOf(URL);
    expect([raw, asTarget(raw)]).toEqual([raw, asUrl(raw)]);
  }
});

test('targets URL would change go through URL: dot segments, empty segments, escapes, backslashes, fragments, spaces, non-ASCII', () => {
  const odd = ['', '//evil/x', '/a/../b', '/a/./b', '/a/..', '/.', '/%2e%2e/x', '/.well-known/x', '/a//b', '/a\\b', '/a#f', '/a?b#c', '/a b', '/é', "/a?x='1'", '/a?x="1"', '/a?x=<y>', '/a?x=%zz', '?x=1', 'x', '/a/%2F/b', '/a?'];
  for (const raw of odd) expect([raw, asTarget(raw)]).toEqual([raw, asUrl(raw)]);
  expect(requestTarget('/a/../b')).toBeInstanceOf(URL);
});

test('random targets: the same pathname, search and parameters as URL', () => {
  const alphabet = ['/', '/', 'a', 'Z', '0', '.', '..', '-', '_', '~', '%', '%2e', '%2F', '?', '&', '=', '+', '#', '\\', ' ', "'", '"', '<', '@', ':', ';', '!', 'é', '\t', '//'];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
  const near = ['/', 'a', 'Z', '0', '.', '-', '_', '~', '?', '&', '=', '+', '%', ':'];
  let plain = 0;
  for (let i = 0; i < 20_000; i++) {
    let raw = next() % 4 === 0 ? '' : '/';
    const n = next() % 10;
    const from = i % 2 === 0 ? alphabet : near; // half from characters the usual targets have
    for (let j = 0; j < n; j++) raw += from[next() % from.length];
    const taken = asTarget(raw) === 'throws' ? undefined : requestTarget(raw);
    if (taken && !(taken instanceof URL)) plain++;
    expect([raw, asTarget(raw)]).toEqual([raw, asUrl(raw)]);
  }
  expect(plain).toBeGreaterThan(300); // the fast path was tried, not only URL
});
