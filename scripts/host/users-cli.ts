// npm run users -- add <username>   prints {"id","username","user_key"} as JSON
// npm run users -- list             prints the users (ids and names; keys are stored hashed only)
import path from 'node:path';
import { openUserStore, UsernameTakenError } from './users/index';

function usage(): never {
  process.stderr.write('usage: npm run users -- add <username> | list   (DATA_DIR, default ./.data)\n');
  process.exit(2);
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd !== 'add' && cmd !== 'list') usage();
  if (cmd === 'add' && rest.length !== 1) usage();
  const store = await openUserStore({ dataDir: path.resolve(process.env.DATA_DIR || './.data') });
  try {
    if (cmd === 'add') {
      const u = await store.createUser(rest[0]);
      process.stdout.write(JSON.stringify({ id: u.id, username: u.username, user_key: u.user_key }) + '\n');
    } else {
      const users = await store.listUsers();
      process.stdout.write(JSON.stringify(users.map((u) => ({ id: u.id, username: u.username }))) + '\n');
    }
  } catch (err) {
    process.stderr.write(`${err instanceof UsernameTakenError ? 'conflict' : 'error'}: ${(err as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    await store.close();
  }
}

void main();
