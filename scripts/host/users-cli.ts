// npm run users -- <command>: the user store from the command line (SQLite in DATA_DIR, or PostgreSQL
// with DATABASE_URL, as the host uses). Answers are JSON on stdout; errors a line on stderr.
import path from 'node:path';
import readline from 'node:readline';
import { hashPassword, InvalidPasswordError, passwordProblem } from './passwords';
import {
  AdminKeyTakenError,
  InvalidAdminKeyError,
  InvalidUsernameError,
  NoSuchUserError,
  openUserStore,
  UsernameTakenError,
  UserStoreUnavailableError,
} from './users/index';
import { checkUsername } from './users/rules';
import type { NewUser, UserRef, UserStore } from './users/types';

const USAGE = `usage: npm run users -- <command>
  add <name> [--password]    a new user; prints its key (the only time it is shown); --password asks for
                             one (from the terminal without echo, or the first line of stdin; never argv)
  passwd <id|name>           sets the user's password (read as for add); every sign-in key of the user
                             ends (devices signed in must sign in again); its user key is left alone
  list                       every user
  show <id|name>             one user
  rotate <id|name>           a new key for the user; the old one stops working (every host within 1 s)
  disable <id|name>          the user's key is refused; its files stay
  enable <id|name>
  delete <id|name>           removes the user and its key; its files are kept (the host's admin route can remove them)
  admin-keys add [label]     a new admin key; prints it (the only time it is shown)
  admin-keys list
  admin-keys revoke <id>     the admin key stops working (every host within 1 s)
<id|name>: all digits is an id, anything else a name (NFKC-normalised, as names are stored).
DATA_DIR (default ./.data) holds users.sqlite; DATABASE_URL=postgres://... uses PostgreSQL instead.
Exit codes: 0 done, 1 conflict or not found, 2 usage or a bad argument, 3 the user store cannot be reached.
`;

class UsageError extends Error {}

/**
 * A password: typed at the terminal (not echoed, asked twice), or the first line of stdin when it is not
 * a terminal (`printf '%s\n' "$PW" | npm run users -- add alice --password`). Never from argv, where
 * other users of the machine could read it.
 */
async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    let text = '';
    for await (const chunk of process.stdin) {
      text += chunk;
      if (text.includes('\n') || text.length > 4096) break;
    }
    const line = text.split(/\r?\n/)[0];
    const problem = passwordProblem(line);
    if (problem) throw new InvalidPasswordError(problem);
    return line;
  }
  const ask = (prompt: string) =>
    new Promise<string>((resolve) => {
      const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
      // the prompt is shown; what is typed is not
      (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
        if (s.includes(prompt)) process.stderr.write(prompt);
      };
      rl.question(prompt, (answer) => {
        rl.close();
        process.stderr.write('\n');
        resolve(answer);
      });
    });
  const first = await ask('Password: ');
  const problem = passwordProblem(first);
  if (problem) throw new InvalidPasswordError(problem);
  if ((await ask('Again: ')) !== first) throw new InvalidPasswordError('the two passwords differ');
  return first;
}
class NotFound extends Error {}

function userRef(arg: string | undefined): UserRef {
  if (arg === undefined) throw new UsageError('name a user: <id|name>');
  return /^\d+$/.test(arg) ? { id: Number(arg) } : { username: arg };
}

function takeArgs(args: string[], min: number, max: number): string[] {
  if (args.length < min || args.length > max) throw new UsageError(`expected ${min === max ? min : `${min}..${max}`} argument(s)`);
  return args;
}

/** A command checks its arguments first (a bad one changes nothing, not even DATA_DIR), then runs. */
type Command = (args: string[]) => (store: UserStore) => Promise<unknown>;

/** What `add` has always printed (README: {"id", "username", "user_key"}); `rotate` prints the same. */
const keyAnswer = (u: NewUser) => ({ id: u.id, username: u.username, user_key: u.user_key });

const oneUser = (args: string[]): UserRef => userRef(takeArgs(args, 1, 1)[0]);

const commands: Record<string, Command> = {
  add(args) {
    const withPassword = args.includes('--password');
    const [name] = takeArgs(args.filter((a) => a !== '--password'), 1, 1);
    checkUsername(name);
    return async (store) => keyAnswer(await store.createUser(name, withPassword ? { passwordHash: await hashPassword(await readPassword()) } : {}));
  },
  passwd(args) {
    const ref = oneUser(args);
    return async (store) => {
      const user = await store.getUser(ref);
      if (!user) throw new NotFound('no such user');
      // as the admin route: the user's sign-in keys end with the old password; its own key stays (rotate)
      const ended = await store.setPasswordHash({ id: user.id }, await hashPassword(await readPassword()), { endSignInKeys: {} });
      return { id: user.id, username: user.username, password: 'set', sign_in_keys_ended: ended };
    };
  },
  list(args) {
    takeArgs(args, 0, 0);
    return async (store) => {
      const all = [];
      // pages of 1000, bounded: ids only grow, so each page starts past the last
      for (let page = 0, afterId = 0; page < 1_000_000; page++) {
        const users = await store.listUsers({ limit: 1000, afterId });
        all.push(...users);
        if (users.length < 1000) break;
        afterId = users[users.length - 1].id;
      }
      return all;
    };
  },
  show(args) {
    const ref = oneUser(args);
    return async (store) => {
      const user = await store.getUser(ref);
      if (!user) throw new NotFound('no such user');
      return user;
    };
  },
  rotate(args) {
    const ref = oneUser(args);
    return async (store) => keyAnswer(await store.rotateKey(ref));
  },
  disable(args) {
    const ref = oneUser(args);
    return (store) => store.setDisabled(ref, true);
  },
  enable(args) {
    const ref = oneUser(args);
    return (store) => store.setDisabled(ref, false);
  },
  delete(args) {
    const ref = oneUser(args);
    return async (store) => {
      const user = await store.getUser(ref);
      if (!user || !(await store.deleteUser({ id: user.id }))) throw new NotFound('no such user');
      return { deleted: true, id: user.id, username: user.username, filesKept: true };
    };
  },
  'admin-keys'(args) {
    const [sub, ...rest] = args;
    if (sub === 'add') {
      const [label = ''] = takeArgs(rest, 0, 1);
      return (store) => store.addAdminKey(label);
    }
    if (sub === 'list') {
      takeArgs(rest, 0, 0);
      return (store) => store.listAdminKeys();
    }
    if (sub === 'revoke') {
      const [id] = takeArgs(rest, 1, 1);
      if (!/^\d+$/.test(id)) throw new UsageError('an admin key id is a number (admin-keys list shows them)');
      return async (store) => {
        if (!(await store.revokeAdminKey(Number(id)))) throw new NotFound(`no working admin key with id ${id}`);
        return { revoked: true, id: Number(id) };
      };
    }
    throw new UsageError('admin-keys add [label] | list | revoke <id>');
  },
};

/** The exit code and the stderr line for an error. */
function failure(err: unknown): [number, string] {
  const message = (err as Error).message;
  if (err instanceof UsageError) return [2, `usage: ${message}\n${USAGE}`];
  if (err instanceof InvalidUsernameError || err instanceof InvalidAdminKeyError || err instanceof InvalidPasswordError || err instanceof TypeError || err instanceof RangeError) {
    return [2, `bad argument: ${message}`];
  }
  if (err instanceof UsernameTakenError || err instanceof AdminKeyTakenError) return [1, `conflict: ${message}`];
  if (err instanceof NotFound || err instanceof NoSuchUserError) return [1, `not found: ${message}`];
  if (err instanceof UserStoreUnavailableError) return [3, `unavailable: ${message}`];
  return [3, `error: ${message}`];
}

async function main(): Promise<number> {
  const [name, ...args] = process.argv.slice(2);
  const command = name === undefined ? undefined : commands[name];
  if (!command || !Object.hasOwn(commands, name)) {
    process.stderr.write(USAGE);
    return 2;
  }
  let store: UserStore | undefined;
  try {
    const run = command(args);
    store = await openUserStore({
      dataDir: path.resolve(process.env.DATA_DIR || './.data'),
      databaseUrl: process.env.DATABASE_URL || undefined,
      poolSize: 2,
    });
    process.stdout.write(JSON.stringify(await run(store)) + '\n');
    return 0;
  } catch (err) {
    const [code, line] = failure(err);
    process.stderr.write(line.endsWith('\n') ? line : line + '\n');
    return code;
  } finally {
    await store?.close();
  }
}

void main().then((code) => {
  process.exitCode = code;
});
