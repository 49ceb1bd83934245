// @0k-sync/tauri-plugin: the JavaScript side of the Tauri `sync` plugin.
//
//   import { sync } from '@0k-sync/tauri-plugin';
//   await sync.enable();
//   const { blobId, cursor, pending } = await sync.push(new TextEncoder().encode('hello'));
//   sync.on('blob-available', async (info) => { const { blobs } = await sync.pull(info.cursor - 1); });

import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

/** What the app's sync indicator shows: ☁️✓ synced, ☁️⏳ pending, ☁️✗ failed, 📴 offline. */
export type ConnectionStatus = 'synced' | 'pending' | 'failed' | 'offline';

/** An open invite for another device. */
export interface Invite {
  /** A `data:image/svg+xml;base64,…` URL of the QR code, for an `<img src>`. */
  qrCode: string;
  /** What the QR code holds (`0KSYNC:…`): `joinInvite` takes it as well as the short code. */
  qrText: string;
  /** `XXXX-XXXX-XXXX-XXXX`, to type on the other device. */
  shortCode: string;
  /** When the invite expires: Unix time in milliseconds (like `Date.now()`). */
  expiresAt: number;
}

/** The outcome of a push. The blob is in the device's durable outbox either way. */
export interface PushResult {
  /** The blob's id, as other devices see it. */
  blobId: string;
  /** The relay cursor it was stored at, or 0 while it is pending. */
  cursor: number;
  /** Not acknowledged by the relay yet (offline or slow): it syncs later by itself, and the
   * `push-acked` event reports its cursor then. */
  pending: boolean;
}

/** A blob from another device, decrypted and verified. */
export interface Blob {
  id: string;
  cursor: number;
  /** The sending device. */
  sender: string;
  data: Uint8Array;
  /** When the relay stored it: Unix time in milliseconds. */
  timestamp: number;
}

/** A page of received blobs, oldest first. */
export interface PullResult {
  blobs: Blob[];
  /** More follow: pull again with `maxCursor`. */
  hasMore: boolean;
  /** The cursor of the last blob of this page (the argument when the page is empty). */
  maxCursor: number;
}

/** `connected`: connected and authenticated to the relay. */
export interface ConnectionInfo {
  /** The group's newest cursor at the relay. */
  head: number;
}

/** `blob-available`: a new blob can be pulled with `pull(cursor - 1)`. */
export interface BlobInfo {
  id: string;
  cursor: number;
  sender: string;
}

/** `status`: the indicator or the cursor changed. */
export interface StatusInfo {
  status: ConnectionStatus;
  lastCursor: number;
}

/** `progress`: how far a sync cycle is. */
export interface Progress {
  unsent: number;
  cursor: number;
  head: number;
}

/** `push-acked`: a pending push reached the relay. */
export interface PushAcked {
  blobId: string;
  cursor: number;
}

/** `pairing-code` (with `code`, shown on both screens) and `device-added` (with `device`). */
export interface PairingInfo {
  device: string | null;
  code: string | null;
}

/** The outcome of `syncNow()`. */
export interface SyncNowResult {
  status: ConnectionStatus;
  lastCursor: number;
  /** Pushes the relay has not acknowledged yet. */
  unsent: number;
}

/** Every event and what its handler receives. */
export interface SyncEvents {
  connected: ConnectionInfo;
  /** `unreachable`, `refused`, `lost` or `local`. */
  disconnected: string;
  'blob-available': BlobInfo;
  error: SyncError;
  status: StatusInfo;
  progress: Progress;
  'push-acked': PushAcked;
  'pairing-code': PairingInfo;
  'device-added': PairingInfo;
}

/** How every call fails, and what the `error` event carries: a stable `kind` to branch on
 * (`notInGroup`, `inviteExpired`, `invalidInvite`, `wrongCode`, `tooLarge`, `emptyData`,
 * `timeout`, `relayError`, …) and a message for people. */
export class SyncError extends Error {
  readonly kind: string;

  constructor(kind: string, message: string) {
    super(message);
    this.name = 'SyncError';
    this.kind = kind;
  }

  static from(raw: unknown): SyncError {
    if (raw instanceof SyncError) return raw;
    if (raw && typeof raw === 'object' && 'kind' in raw && 'message' in raw) {
      const { kind, message } = raw as { kind: unknown; message: unknown };
      return new SyncError(String(kind), String(message));
    }
    return new SyncError('unknown', String(raw));
  }
}

export interface SyncPlugin {
  /** Starts syncing (remembered across launches): connect, push pending, pull. */
  enable(): Promise<void>;
  /** Stops syncing (remembered across launches). Pushes still land in the outbox. */
  disable(): Promise<void>;
  /** Opens an invite for another device; the first device's group is created on the way. */
  createInvite(): Promise<Invite>;
  /** Joins a group with a short code or QR text; resolves once this device is a member. */
  joinInvite(invite: string): Promise<void>;
  /** Seals and queues a blob durably, then waits briefly for the relay. Works offline. */
  push(data: Uint8Array): Promise<PushResult>;
  /** Blobs from other devices with a cursor above `afterCursor` (default 0), oldest first. */
  pull(afterCursor?: number): Promise<PullResult>;
  /** The indicator, kept current by the plugin's events. */
  status(): ConnectionStatus;
  /** Every blob up to this cursor has been received. */
  lastCursor(): number;
  /** A full cycle (push everything, pull everything), for a "Sync now" button. */
  syncNow(): Promise<SyncNowResult>;
  /** Calls `handler` for each `event`; returns the function that stops it. */
  on<E extends keyof SyncEvents>(event: E, handler: (payload: SyncEvents[E]) => void): () => void;
}

type RawBlob = Omit<Blob, 'data'> & { data: string };
type RawPullResult = Omit<PullResult, 'blobs'> & { blobs: RawBlob[] };

const cache: StatusInfo = { status: 'offline', lastCursor: 0 };
let cacheListening: Promise<unknown> | null = null;

async function call<T>(command: string, args?: Parameters<typeof invoke>[1]): Promise<T> {
  try {
    return await invoke<T>(`plugin:sync|${command}`, args);
  } catch (e) {
    throw SyncError.from(e);
  }
}

async function refreshCache(): Promise<void> {
  cacheListening ??= listen<StatusInfo>('sync://status', (e) => Object.assign(cache, e.payload));
  await cacheListening;
  cache.status = await call<ConnectionStatus>('sync_status');
  cache.lastCursor = await call<number>('sync_last_cursor');
}

function bytesFromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export const sync: SyncPlugin = {
  async enable() {
    await call<void>('sync_enable');
    await refreshCache();
  },

  async disable() {
    await call<void>('sync_disable');
    await refreshCache();
  },

  async createInvite() {
    const invite = await call<Invite>('sync_create_invite');
    await refreshCache();
    return invite;
  },

  async joinInvite(invite: string) {
    await call<void>('sync_join_invite', { invite });
    await refreshCache();
  },

  async push(data: Uint8Array) {
    if (!(data instanceof Uint8Array)) throw new SyncError('badRequest', 'push takes a Uint8Array');
    // The bytes go as the raw request body: no JSON encoding of every byte.
    const result = await call<PushResult>('sync_push', data);
    await refreshCache();
    return result;
  },

  async pull(afterCursor?: number) {
    const raw = await call<RawPullResult>('sync_pull', { afterCursor: afterCursor ?? 0 });
    return { ...raw, blobs: raw.blobs.map((b) => ({ ...b, data: bytesFromBase64(b.data) })) };
  },

  status() {
    return cache.status;
  },

  lastCursor() {
    return cache.lastCursor;
  },

  async syncNow() {
    const result = await call<SyncNowResult>('sync_now');
    cache.status = result.status;
    cache.lastCursor = result.lastCursor;
    return result;
  },

  on(event, handler) {
    let stopped = false;
    let unlisten: (() => void) | null = null;
    listen<unknown>(`sync://${event}`, (e) => {
      const payload = event === 'error' ? SyncError.from(e.payload) : e.payload;
      handler(payload as never);
    }).then(
      (fn) => (stopped ? fn() : (unlisten = fn)),
      () => {},
    );
    return () => {
      stopped = true;
      unlisten?.();
    };
  },
};
