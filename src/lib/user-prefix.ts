// The rule for where a user's files live, alone so that the host (which removes a user's unfinished
// uploads by this prefix) takes it from here without the socket's other modules.

/** The prefix under which a user's files live: `<user.id>/`. Only ids the user store issued reach here. */
export function userPrefix(userId: string | number): string {
  const id = String(userId);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id)) throw new Error('user id is not a safe key segment');
  return `${id}/`;
}
