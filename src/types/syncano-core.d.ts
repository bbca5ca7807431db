// @syncano/core ships no types; this declares the part the handlers use.
declare module '@syncano/core' {
  interface SyncanoResponse {
    (content: string, status?: number, mimetype?: string, headers?: Record<string, string>): void;
    json(content: unknown, status?: number): void;
    header(key: string, value: string): SyncanoResponse;
  }
  export default class Syncano {
    constructor(ctx: object);
    response: SyncanoResponse;
  }
}
