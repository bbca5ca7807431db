/**
 * The media type rule, in one place: `contentType` arguments (args.ts) and a base64 `data:` URL's type
 * (base64.ts) both become an object's Content-Type header. `type/subtype` tokens, with parameters like
 * `; charset=utf-8`; visible ASCII only, as a header value must be.
 */
export const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*([ \t]*;[ \t]*[A-Za-z0-9_.-]+=("[^"\\\u0000-\u001f\u007f-\uffff]*"|[A-Za-z0-9!#$&^_.+-]+))*$/;
export const MAX_MEDIA_TYPE = 255;

export const isMediaType = (s: string): boolean => s.length <= MAX_MEDIA_TYPE && MEDIA_TYPE.test(s);
