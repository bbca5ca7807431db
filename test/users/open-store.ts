// A child process of the suite: opens the store DATA_DIR / DATABASE_URL name (running its migrations,
// as a host starting does), makes the user named on the command line, prints its id as JSON.
import { openUserStore } from '../../scripts/host/users/index';

async function main(): Promise<void> {
  const store = await openUserStore({ dataDir: process.env.DATA_DIR!, databaseUrl: process.env.DATABASE_URL || undefined });
  try {
    const user = await store.createUser(process.argv[2]);
    process.stdout.write(JSON.stringify({ id: user.id }) + '\n');
  } finally {
    await store.close();
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).constructor.name}: ${(err as Error).message}\n`);
  process.exit(1);
});
