/**
 * @aws-storage/client: the aws-storage socket from a browser or Node ≥ 20, with no dependencies.
 * This is the browser (and default) entry; Node's (./node.ts) adds file paths and a state directory.
 */
export { createClient } from './client.js';
export type {
  ClientOptions,
  Credentials,
  FileInfo,
  GetUrlOptions,
  ListOptions,
  ListResult,
  MakeLinksOptions,
  MakeLinksResult,
  RemoveResult,
  SignedUrl,
  StorageClient,
} from './client.js';
export { StorageApiError, isStorageApiError } from './errors.js';
export type { StorageErrorCode } from './errors.js';
export type { FetchLike } from './http.js';
export type { PathData, UploadData } from './source.js';
export { localStorageStore, memoryStore, ownerTag } from './state.js';
export type { ResumeStore, SavedUpload } from './state.js';
export { DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_THRESHOLD } from './upload.js';
export type { UploadOptions, UploadProgress, UploadResult, UploadState, UploadTask } from './upload.js';
