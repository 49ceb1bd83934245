// 0k-sync in the browser: the same API as the Tauri plugin's package (@0k-sync/tauri-plugin),
// over the core compiled to WebAssembly. This file is the browser's driver: a WebSocket to the
// relay's /sync endpoint, IndexedDB for the device's keys, outbox, cursor and received blobs,
// and timers. The wasm module does no IO.
//
//   import { ZerokSync } from './zerok-sync.js';
//   const sync = await ZerokSync.open({ relay: 'http://127.0.0.1:8788' });
//   await sync.enable();
//   const invite = await sync.createInvite();       // show invite.qrCode / invite.shortCode
//   await sync.push(new TextEncoder().encode('hello'));
//   sync.on('blob-available', async () => { const { blobs } = await sync.pull(seen); });

import init, { Device, decodeBlob, qrCode } from './pkg/zerok_wasm.js';

const STATE = 'state';
const INBOX = 'inbox';
const DEVICE_KEY = 'device_key';
/** How long `push` waits for the relay before answering `pending: true`. */
const PUSH_ACK_WAIT_MS = 3000;
/** How long invites and pairing wait for the relay. */
const RELAY_WAIT_MS = 15000;
const PULL_PAGE = 100;

/** An error with a stable `kind` (the Tauri plugin's kinds), for apps to branch on. */
export class SyncError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'SyncError';
    this.kind = kind;
  }
}

const asSyncError = (e) =>
  e instanceof SyncError ? e : e && e.kind ? new SyncError(e.kind, e.message) : new SyncError('internal', String(e));

let wasmReady;

export class ZerokSync {
  /**
   * Opens (or creates) a device stored in this browser under `name`, syncing through `relay`:
   * the relay's connection string (`zerok1:…`), or its HTTP URL to fetch it from `/connection`.
   */
  static async open({ relay, name = 'default', wasmUrl } = {}) {
    if (!relay) throw new SyncError('config', 'no relay: pass its connection string or HTTP URL');
    wasmReady ??= init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
    await wasmReady;
    const connection = relay.startsWith('zerok1:') ? relay : await fetchConnection(relay);
    const db = await openDb(`zerok-sync:${name}`);
    const records = await readState(db);
    let key = records.find(([k]) => k === DEVICE_KEY)?.[1];
    if (!key) {
      key = crypto.getRandomValues(new Uint8Array(32));
      await write(db, [{ key: DEVICE_KEY, value: key }]);
    }
    const seed = crypto.getRandomValues(new Uint8Array(32));
    let device;
    try {
      device = new Device(connection, key, seed, records.filter(([k]) => k !== DEVICE_KEY), ...now());
    } catch (e) {
      throw new SyncError('config', String(e.message ?? e));
    }
    return new ZerokSync(device, db);
  }

  #device;
  #db;
  #sockets = new Map();
  #listeners = new Map();
  #waiters = new Set();
  #timer = null;
  #pumping = false;
  #again = false;
  #closed = false;

  constructor(device, db) {
    this.#device = device;
    this.#db = db;
    this.#onVisible = () => document.visibilityState === 'visible' && this.#command('resume');
    this.#onOnline = () => this.#command('resume');
    this.#onPageHide = () => this.#command('close');
    if (typeof document !== 'undefined') document.addEventListener('visibilitychange', this.#onVisible);
    globalThis.addEventListener?.('online', this.#onOnline);
    globalThis.addEventListener?.('pagehide', this.#onPageHide);
  }

  #onVisible;
  #onOnline;
  #onPageHide;

  /** Starts syncing: connects (when in a group), pushes what is pending, pulls what is new. */
  async enable() {
    this.#command('enable');
    this.#command('launch');
  }

  /** Stops syncing and closes the connection; pushes still land in the outbox. */
  async disable() {
    this.#command('disable');
  }

  /** Opens an invite for another device (creating the group first on the first device). */
  async createInvite() {
    if (!this.#device.inGroup()) {
      const ready = this.#waitFor('the group', (e) => e.type === 'group-ready' && true);
      this.#command('createGroup');
      await ready;
    }
    await this.#waitFor('a relay connection', (e) => e.type === 'connected' && true, () =>
      ['synced', 'pending'].includes(this.status()),
    );
    const invite = this.#waitFor('the invite', (e) => e.type === 'invite-ready' && e);
    this.#command('createInvite');
    const { shortCode, qrText, expiresAt } = await invite;
    return { qrCode: qrCode(qrText), qrText, shortCode, expiresAt };
  }

  /** Joins the group of the device that showed `invite` (a short code or the QR text). */
  async joinInvite(invite) {
    const joined = this.#waitFor('pairing', (e) => {
      if (e.type === 'group-ready') return true;
      if (e.type === 'pairing-failed') throw asSyncError(e.error);
      return undefined;
    });
    this.#call(() => this.#device.joinInvite(String(invite), ...now()));
    await joined;
  }

  /** Seals `data` into the durable outbox, then waits briefly for the relay. Works offline. */
  async push(data) {
    const bytes = data instanceof Uint8Array ? data : new TextEncoder().encode(String(data));
    const blobId = this.#call(() => this.#device.push(bytes, ...now()));
    const queued = this.#waitFor('the outbox', (e) => {
      if (e.type === 'push-queued' && e.blobIds.includes(blobId)) return true;
      if (e.type === 'error' && e.blobId === blobId) throw asSyncError(e.error);
      return undefined;
    });
    const acked = this.#waitFor('the relay', (e) => e.type === 'push-acked' && e.blobId === blobId && e, null, PUSH_ACK_WAIT_MS);
    await queued;
    try {
      const { cursor } = await acked;
      return { blobId, cursor, pending: false };
    } catch {
      return { blobId, cursor: 0, pending: true };
    }
  }

  /** Received blobs after `afterCursor`, oldest first, at most `limit`. */
  async pull(afterCursor = 0, limit = PULL_PAGE) {
    const range = IDBKeyRange.lowerBound(afterCursor, true);
    const values = await request(this.#db.transaction(INBOX).objectStore(INBOX).getAll(range, limit + 1));
    const blobs = values.slice(0, limit).map((v) => decodeBlob(v));
    const hasMore = values.length > limit;
    return { blobs, hasMore, maxCursor: blobs.length ? blobs[blobs.length - 1].cursor : afterCursor };
  }

  /** Pushes everything pending and pulls everything new; resolves with the status then. */
  async syncNow() {
    const done = this.#waitFor('sync', (e) => e.type === 'progress' && e.unsent === 0 && e.cursor >= e.head && true, null, RELAY_WAIT_MS);
    this.#command('syncNow');
    await done.catch(() => {});
    return this.status();
  }

  /** `synced`, `pending`, `failed` or `offline`. */
  status() {
    return this.#device.status();
  }

  /** The newest cursor this device has received up to. */
  lastCursor() {
    return this.#device.cursor();
  }

  /** This device's id, as other devices see it as a blob's sender. */
  deviceId() {
    return this.#device.deviceId();
  }

  /** Listens to `connected`, `disconnected`, `blob-available`, `error`, `status`, `progress`,
   * `push-acked`, `pairing-code` or `device-added`; returns the function that stops it. */
  on(event, handler) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(handler);
    return () => this.#listeners.get(event)?.delete(handler);
  }

  /** Flushes for at most 500 ms, then closes the connection and the database. */
  async close() {
    if (this.#closed) return;
    this.#command('close');
    await new Promise((resolve) => setTimeout(resolve, this.#device.unsent() > 0 ? 500 : 0));
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const ws of this.#sockets.values()) ws.close();
    this.#sockets.clear();
    if (typeof document !== 'undefined') document.removeEventListener('visibilitychange', this.#onVisible);
    globalThis.removeEventListener?.('online', this.#onOnline);
    globalThis.removeEventListener?.('pagehide', this.#onPageHide);
    this.#db.close();
  }

  #command(name) {
    this.#call(() => this.#device.command(name, ...now()));
  }

  /** Runs a wasm call, then carries out what it caused; its refusal becomes a SyncError. */
  #call(f) {
    if (this.#closed) throw new SyncError('stopped', 'this device was closed');
    let result;
    try {
      result = f();
    } catch (e) {
      throw asSyncError(e);
    } finally {
      this.#pump();
    }
    return result;
  }

  /** Resolves with `match(event)`'s first value that is not undefined/false (or rejects with
   * what it throws); `already()` true resolves at once; times out after `ms`. */
  #waitFor(what, match, already = null, ms = RELAY_WAIT_MS) {
    if (already?.()) return Promise.resolve(true);
    return new Promise((resolve, reject) => {
      const waiter = (e) => {
        let value;
        try {
          value = match(e);
        } catch (error) {
          finish();
          return reject(error);
        }
        if (value !== undefined && value !== false) {
          finish();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new SyncError('timeout', `timed out waiting for ${what}`));
      }, ms);
      const finish = () => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      this.#waiters.add(waiter);
    });
  }

  /** Carries out everything the core asked for, until it is idle. */
  #pump() {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      for (;;) {
        const out = this.#device.poll();
        if (out.kind !== 'idle') {
          this.#carryOut(out);
          continue;
        }
        if (this.#again) {
          this.#again = false;
          continue;
        }
        clearTimeout(this.#timer);
        if (out.at !== null && !this.#closed) {
          this.#timer = setTimeout(() => this.#input((d) => d.timeout(...now())), Math.max(0, out.at - performance.now()));
        }
        return;
      }
    } finally {
      this.#pumping = false;
    }
  }

  #input(f) {
    if (this.#closed) return;
    f(this.#device);
    this.#pump();
  }

  #carryOut(out) {
    switch (out.kind) {
      case 'connect':
        return this.#connect(out.conn, out.url);
      case 'send': {
        const ws = this.#sockets.get(out.conn);
        if (ws?.readyState === WebSocket.OPEN) ws.send(out.bytes);
        return;
      }
      case 'close': {
        const ws = this.#sockets.get(out.conn);
        this.#sockets.delete(out.conn);
        ws?.close();
        return;
      }
      case 'store':
        return this.#store(out.op, out.writes);
      case 'event':
        return this.#dispatch(out);
    }
  }

  #connect(conn, url) {
    let reported = false;
    const gone = () => {
      if (reported) return;
      reported = true;
      this.#sockets.delete(conn);
      this.#input((d) => d.disconnected(conn, ...now()));
    };
    if (!url) return void queueMicrotask(gone);
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      return void queueMicrotask(gone);
    }
    ws.binaryType = 'arraybuffer';
    this.#sockets.set(conn, ws);
    ws.onopen = () => this.#input((d) => d.connected(conn, ...now()));
    ws.onmessage = (m) => {
      if (m.data instanceof ArrayBuffer) this.#input((d) => d.received(conn, new Uint8Array(m.data), ...now()));
    };
    ws.onclose = gone;
    ws.onerror = gone;
  }

  #store(op, writes) {
    write(this.#db, writes).then(
      () => this.#input((d) => d.storeDone(op, true, false, ...now())),
      (e) => this.#input((d) => d.storeDone(op, false, e?.name === 'QuotaExceededError', ...now())),
    );
  }

  #dispatch(event) {
    for (const waiter of [...this.#waiters]) waiter(event);
    const { kind: _kind, type, ...fields } = event;
    if (type === 'status') fields.lastCursor = this.lastCursor();
    // `error` handlers get a SyncError with the report's kind, as from the Tauri plugin.
    const payload = type === 'error' ? asSyncError(fields.error) : fields;
    for (const handler of this.#listeners.get(type) ?? []) {
      try {
        handler(payload);
      } catch (e) {
        console.error('0k-sync: an event handler threw', e);
      }
    }
  }
}

function now() {
  return [performance.now(), Date.now()];
}

async function fetchConnection(url) {
  let response;
  try {
    response = await fetch(new URL('/connection', url));
  } catch (e) {
    throw new SyncError('network', `the relay at ${url} could not be reached: ${e}`);
  }
  if (!response.ok) throw new SyncError('network', `the relay at ${url} answered ${response.status}`);
  return (await response.text()).trim();
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function openDb(name) {
  const req = indexedDB.open(name, 1);
  req.onupgradeneeded = () => {
    req.result.createObjectStore(STATE);
    req.result.createObjectStore(INBOX);
  };
  return request(req);
}

async function readState(db) {
  const store = db.transaction(STATE).objectStore(STATE);
  const [keys, values] = await Promise.all([request(store.getAllKeys()), request(store.getAll())]);
  return keys.map((k, i) => [k, values[i]]);
}

/** Applies one store operation's writes in one transaction: all or nothing. */
function write(db, writes) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction([STATE, INBOX], 'readwrite', { durability: 'strict' });
    const state = tx.objectStore(STATE);
    const inbox = tx.objectStore(INBOX);
    for (const w of writes) {
      if (w.blob) inbox.put(w.blob, w.cursor);
      else if (w.delete) state.delete(w.key);
      else state.put(w.value, w.key);
    }
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}
