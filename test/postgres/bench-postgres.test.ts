// The bench's own throw-away PostgreSQL (scripts/bench/postgres.ts, over scripts/postgres/run.ts):
// it answers, and stopping it stops the server and removes its folder.
import fs from 'node:fs';
import pg from 'pg';
import { startBenchPostgres } from '../../scripts/bench/postgres';
import { describeWithPostgres } from './support';

jest.setTimeout(180_000);

describeWithPostgres('the bench PostgreSQL', () => {
  test('starts, answers a query, and is gone after stop()', async () => {
    const lines: string[] = [];
    const started = await startBenchPostgres((l) => lines.push(l));
    if ('skipped' in started) throw new Error(`skipped: ${started.skipped}`);
    const folder = /\((\/tmp\/pg-[^,)]+)/.exec(lines.join('\n'))?.[1];
    expect(folder).toBeDefined();
    expect(fs.existsSync(folder!)).toBe(true);
    const client = new pg.Client({ connectionString: started.url });
    await client.connect();
    expect((await client.query('SELECT 1 + 1 AS two')).rows).toEqual([{ two: 2 }]);
    await client.end();
    await started.stop();
    expect(fs.existsSync(folder!)).toBe(false);
    const after = new pg.Client({ connectionString: started.url, connectionTimeoutMillis: 2_000 });
    await expect(after.connect()).rejects.toThrow();
  });
});
