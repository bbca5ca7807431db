// A user removed with its files (DELETE users/<id>/?remove_files=true) can still have things written
// under its prefix after the removal answered: a request admitted before it (a raw upload still sending,
// a multipart complete under way) or a link given out before it, which S3 cannot revoke (up to 7 days).
// So the removal is recorded in the user store (shared by every host), and every host sweeps the
// prefixes of the removed users now and then until the record's time is past. The sweep is the
// removal's own: the socket's user-list, user-delete and admin-multipart-uploads.
import { sweepRemovedUser, type AdminRouteDeps } from './user-routes';
import type { UserStore } from './users/types';

/** How often, by default, each host sweeps (±25 %, so that hosts started together do not sweep together). */
export const DEFAULT_REMOVAL_SWEEP_MS = 60_000;

export interface RemovalSweeperDeps extends Pick<AdminRouteDeps, 'callAsUser' | 'callAsAdmin'> {
  users: UserStore;
  log: (line: string) => void;
  intervalMs: number;
}

export function startRemovalSweeper(deps: RemovalSweeperDeps): { stop(): void } {
  const { users, log } = deps;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  // a sweep that fails is logged once per user until one succeeds again
  const failing = new Set<number>();

  async function sweep(): Promise<void> {
    for (const r of await users.removals()) {
      if (stopped) return;
      // Still a user: its removal stopped partway (kept, disabled) and is the admin's to finish; its
      // files are not swept meanwhile (the user may be enabled again).
      if (await users.getUser({ id: r.id })) {
        if (Date.now() > r.sweepUntil) await users.forgetRemoval(r.id);
        continue;
      }
      const swept = await sweepRemovedUser(r.id, deps);
      if (swept.failure) {
        if (!failing.has(r.id)) log(`removed user ${r.id}: sweeping its files failed, tried again later: ${swept.failure.message}`);
        failing.add(r.id);
        continue;
      }
      failing.delete(r.id);
      if (swept.removed > 0 || swept.uploadsAborted > 0) {
        log(`removed user ${r.id}: swept ${swept.removed} file(s) and ${swept.uploadsAborted} unfinished upload(s) written after its removal`);
      }
      if (Date.now() > r.sweepUntil) await users.forgetRemoval(r.id);
    }
  }

  const schedule = () => {
    timer = setTimeout(() => {
      sweep()
        .catch((err: unknown) => log(`removed users: sweep failed, tried again later: ${(err as Error)?.message ?? String(err)}`))
        .finally(() => {
          if (!stopped) schedule();
        });
    }, deps.intervalMs * (0.75 + Math.random() / 2));
    timer.unref();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
