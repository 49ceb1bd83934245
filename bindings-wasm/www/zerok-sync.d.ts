// Types of zerok-sync.js: the same shapes as @0k-sync/tauri-plugin.

/** What the app's sync indicator shows: ☁️✓ synced, ☁️⏳ pending, ☁️✗ failed, 📴 offline. */
export type ConnectionStatus = 'synced' | 'pending' | 'failed' | 'offline';

/** An open invite for another device. */
export interface Invite {
  /** A `data:image/svg+xml;base64,…` URL of the QR code, for an `<img src>`. */
  qrCode: string;
  /** What the QR code holds: `joinInvite` takes it as well as the short code. */
  qrText: string;
  /** `XXXX-XXXX-XXXX-XXXX`, to type on the other device. */
  shortCode: string;
  /** When the invite expires: Unix time in milliseconds. */
  expiresAt: number;
}

/** The outcome of a push. The blob is in the device's durable outbox (IndexedDB) either way. */
export interface PushResult {
  blobId: string;
  /** The relay cursor it was stored at, or 0 while it is pending. */
  cursor: number;
  /** Not acknowledged by the relay yet: it syncs later by itself (`push-acked` tells when). */
  pending: boolean;
}

/** A blob from another device, decrypted and verified. */
export interface Blob {
  id: string;
  cursor: number;
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

export interface EventPayloads {
  connected: { head: number };
  disconnected: { reason: 'unreachable' | 'refused' | 'lost' | 'local' };
  'blob-available': { id: string; cursor: number; sender: string };
  error: { kind: string; message: string };
  status: { status: ConnectionStatus; lastCursor: number };
  progress: { unsent: number; cursor: number; head: number };
  'push-acked': { blobId: string; cursor: number };
  'pairing-code': { code: string };
  'device-added': { device: string };
}

/** A failure with a stable `kind` (the Tauri plugin's kinds: `notInGroup`, `emptyData`,
 * `tooLarge`, `invalidInvite`, `inviteExpired`, `inviteUnavailable`, `wrongCode`,
 * `relayUnavailable`, `pairingBusy`, `alreadyInGroup`, `timeout`, `config`, `network`,
 * `storage`, `stopped`, …). */
export class SyncError extends Error {
  readonly kind: string;
}

export interface OpenOptions {
  /** The relay's connection string (`zerok1:…`), or its HTTP URL (fetches `/connection`). */
  relay: string;
  /** Which device of this browser (one IndexedDB database each). Default `default`. */
  name?: string;
  /** Where `zerok_wasm_bg.wasm` is, if not next to the glue. */
  wasmUrl?: string | URL;
}

export class ZerokSync {
  static open(options: OpenOptions): Promise<ZerokSync>;
  enable(): Promise<void>;
  disable(): Promise<void>;
  createInvite(): Promise<Invite>;
  joinInvite(invite: string): Promise<void>;
  push(data: Uint8Array | string): Promise<PushResult>;
  pull(afterCursor?: number, limit?: number): Promise<PullResult>;
  syncNow(): Promise<ConnectionStatus>;
  status(): ConnectionStatus;
  lastCursor(): number;
  deviceId(): string;
  on<E extends keyof EventPayloads>(event: E, handler: (payload: EventPayloads[E]) => void): () => void;
  close(): Promise<void>;
}
