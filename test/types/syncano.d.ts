// The @syncano test-side packages ship no types.
declare module '@syncano/schema' {
  export const socketSchema: object;
}
declare module '@syncano/test';
