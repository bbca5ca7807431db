// npm run users -- add <username>   prints {"id","username","user_key"} as JSON
// npm run users -- list             prints the users (ids and names; keys are stored hashed only)
import path from 'node:path';
import { UsernameTakenError, UserStore } from './users';

function usage(): never {
  process.stderr.write('usage: npm run users -- add <username> | list   (DATA_DIR, default ./.data)\n');
  process.exit(2);
}

const [cmd, ...rest] = process.argv.slice(2);
const dataDir = path.resolve(process.env.DATA_DIR || './.data');
if (cmd !== 'add' && cmd !== 'list') usage();
const store = new UserStore(dataDir);
try {
  if (cmd === 'add') {
    if (rest.length !== 1) usage();
    const u = store.add(rest[0]);
    process.stdout.write(JSON.stringify({ id: u.id, username: u.username, user_key: u.user_key }) + '\n');
  } else {
    process.stdout.write(JSON.stringify(store.list()) + '\n');
  }
} catch (err) {
  process.stderr.write(`${err instanceof UsernameTakenError ? 'conflict' : 'error'}: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  store.close();
}
