import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';

/** A refused request's connection stays open this long (±25 %) after its answer, for the client to read it. */
export const LINGER_MS = 2_000;

/**
 * The one rule, for the store and the host, for closing a connection whose refused request still has
 * body coming. Node ends a `Connection: close` answer with socket.destroySoon(): a FIN, then at once
 * a close that resets a connection whose client is still sending, and a TCP reset throws away the
 * answer the client has not read yet. Here the answer only ends the connection (FIN: the client reads
 * the answer and knows not to reuse it); nothing more is read, so the client cannot choose how much
 * work the refusal costs; and the connection is closed about LINGER_MS later. The ±25 % spread keeps
 * connections refused together from all closing (and reopening) together.
 */
export function closeAfterAnswer(socket: Socket, res: ServerResponse, lingerMs = LINGER_MS): void {
  (socket as Socket & { destroySoon?: () => void }).destroySoon = () => socket.end();
  // Node's own 'finish' listener starts dropping an unread body (it resumes the socket): pause after
  // it, and again on the next turn, after that drop has begun.
  const stopReading = () => socket.pause();
  res.once('finish', () => {
    stopReading();
    setImmediate(stopReading);
  });
  const t = setTimeout(() => socket.destroy(), lingerMs * (0.75 + Math.random() / 2));
  t.unref();
  socket.once('close', () => clearTimeout(t));
}
