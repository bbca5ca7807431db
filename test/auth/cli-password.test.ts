// `npm run users -- add <name> --password` and `passwd`: the password comes from stdin (or the terminal),
// never from argv; it is stored only as its scrypt hash.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { keyDigest } from '../../scripts/host/admin-key';
import { verifyPassword } from '../../scripts/host/passwords';
import { openUserStore } from '../../scripts/host/users';
import { tempDir } from '../support/host';

jest.setTimeout(120_000);
const ROOT = path.resolve(__dirname, '..', '..');

function cli(dataDir: string, stdin: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/host/users-cli.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('exit', (code) => resolve({ code, stdout, stderr }));
    c.stdin.end(stdin);
  });
}

test('add --password and passwd read the password from stdin and store only its hash', async () => {
  const dir = tempDir('users-cli-pw-');
  try {
    const added = await cli(dir, 'first password here\n', 'add', 'alice', '--password');
    expect(added).toMatchObject({ code: 0, stderr: '' });
    const alice = JSON.parse(added.stdout);
    expect(alice).toMatchObject({ username: 'alice', user_key: expect.any(String) });
    expect(added.stdout).not.toContain('first password here');

    const store = await openUserStore({ dataDir: dir });
    try {
      const stored = await store.passwordOf('alice');
      expect(stored?.passwordHash).toMatch(/^scrypt\$/);
      expect(await verifyPassword('first password here', stored!.passwordHash)).toBe(true);

      // two devices signed in; the admin's passwd (naming alice in fullwidth: NFKC) ends both, not her own key
      const devices = [await store.issueSignInKey({ id: alice.id }), await store.issueSignInKey({ id: alice.id })];
      const changed = await cli(dir, 'second password here\n', 'passwd', 'ａｌｉｃｅ');
      expect(changed.code).toBe(0);
      expect(JSON.parse(changed.stdout)).toEqual({ id: alice.id, username: 'alice', password: 'set', sign_in_keys_ended: 2 });
      const after = await store.passwordOf('alice');
      expect(await verifyPassword('second password here', after!.passwordHash)).toBe(true);
      expect(await verifyPassword('first password here', after!.passwordHash)).toBe(false);
      const fresh = await openUserStore({ dataDir: dir });
      try {
        for (const d of devices) expect(await fresh.findByKeyDigest(keyDigest(d.user_key))).toBeUndefined();
        expect(await fresh.findByKeyDigest(keyDigest(alice.user_key))).toMatchObject({ id: alice.id });
      } finally {
        await fresh.close();
      }

      // a bad password is refused and changes nothing
      const short = await cli(dir, 'short\n', 'add', 'bob', '--password');
      expect(short.code).toBe(2);
      expect(short.stderr).toMatch(/at least 8 characters/);
      expect(await store.getUser({ username: 'bob' })).toBeUndefined();
      // a password on the command line is not taken
      const argv = await cli(dir, '', 'add', 'carol', 'secret-on-argv', '--password');
      expect(argv.code).toBe(2);
      expect(await store.getUser({ username: 'carol' })).toBeUndefined();
      expect((await cli(dir, 'whatever password\n', 'passwd', 'nobody')).code).toBe(1);
    } finally {
      await store.close();
    }
    for (const f of fs.readdirSync(dir)) {
      if (fs.statSync(path.join(dir, f)).isFile()) expect(fs.readFileSync(path.join(dir, f)).includes('second password here')).toBe(false);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
