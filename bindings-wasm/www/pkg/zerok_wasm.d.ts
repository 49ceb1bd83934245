/* tslint:disable */
/* eslint-disable */

/**
 * One device: the core client and nothing else.
 */
export class Device {
    free(): void;
    [Symbol.dispose](): void;
    /**
     * Runs a command: `enable`, `disable`, `createGroup`, `createInvite`, `cancelInvite`,
     * `syncNow`, `launch`, `resume`, `pause`, `close`. Throws `{ kind, message }` if refused.
     */
    command(name: string, mono_ms: number, unix_ms: number): void;
    /**
     * The connection asked for is open.
     */
    connected(conn: number, mono_ms: number, unix_ms: number): void;
    /**
     * The durable cursor: every blob up to it is in the inbox.
     */
    cursor(): number;
    /**
     * This device's id (hex), as other devices see it as a blob's sender.
     */
    deviceId(): string;
    /**
     * A connection failed or closed.
     */
    disconnected(conn: number, mono_ms: number, unix_ms: number): void;
    /**
     * Whether the device belongs to a sync group.
     */
    inGroup(): boolean;
    /**
     * Joins a group with a short code or QR text (the outcome comes as events).
     */
    joinInvite(code: string, mono_ms: number, unix_ms: number): void;
    /**
     * Opens a device from its stored state records (`[key, Uint8Array]` pairs, as written by
     * earlier `store` outputs), its 32-byte signing key seed and a 32-byte random seed.
     * `connection` is the relay's connection string (`zerok1:…@…,ws://…/sync`).
     */
    constructor(connection: string, device_key: Uint8Array | number[], seed: Uint8Array | number[], records: Array<any>, mono_ms: number, unix_ms: number);
    /**
     * The next thing to do, as `{ kind, … }`:
     * `connect { conn, url }`, `send { conn, bytes }`, `close { conn }`,
     * `store { op, writes: [{ key, value } | { key, delete: true } | { cursor, blob }] }`,
     * `event { type, … }`, or `idle { at }` (`at`: `performance.now()` time, or null).
     */
    poll(): any;
    /**
     * Seals `data` for the durable outbox; returns the blob id (hex).
     */
    push(data: Uint8Array | number[], mono_ms: number, unix_ms: number): string;
    /**
     * Bytes arrived on a connection.
     */
    received(conn: number, bytes: Uint8Array | number[], mono_ms: number, unix_ms: number): void;
    /**
     * `synced`, `pending`, `failed` or `offline`.
     */
    status(): string;
    /**
     * A `store` output was applied (`ok`) or failed (nothing of it was written; `full`: the
     * browser's quota is exhausted).
     */
    storeDone(op: number, ok: boolean, full: boolean, mono_ms: number, unix_ms: number): void;
    /**
     * The `idle` deadline passed.
     */
    timeout(mono_ms: number, unix_ms: number): void;
    /**
     * Blobs not yet acknowledged by the relay.
     */
    unsent(): number;
}

/**
 * Decodes an inbox record (a `store` write's `blob`) as `{ id, cursor, sender, data, timestamp }`.
 */
export function decodeBlob(bytes: Uint8Array | number[]): any;

/**
 * The QR code of an invite's text, as an SVG data URL for `<img src>`.
 */
export function qrCode(text: string): string;

export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module;

export interface InitOutput {
    readonly memory: WebAssembly.Memory;
    readonly __wbg_device_free: (a: number, b: number) => void;
    readonly decodeBlob: (a: number, b: number) => [number, number, number];
    readonly device_command: (a: number, b: number, c: number, d: number, e: number) => [number, number];
    readonly device_connected: (a: number, b: number, c: number, d: number) => void;
    readonly device_cursor: (a: number) => number;
    readonly device_deviceId: (a: number) => [number, number];
    readonly device_disconnected: (a: number, b: number, c: number, d: number) => void;
    readonly device_inGroup: (a: number) => number;
    readonly device_joinInvite: (a: number, b: number, c: number, d: number, e: number) => [number, number];
    readonly device_new: (a: number, b: number, c: number, d: number, e: number, f: number, g: any, h: number, i: number) => [number, number, number];
    readonly device_poll: (a: number) => any;
    readonly device_push: (a: number, b: number, c: number, d: number, e: number) => [number, number, number, number];
    readonly device_received: (a: number, b: number, c: number, d: number, e: number, f: number) => void;
    readonly device_status: (a: number) => [number, number];
    readonly device_storeDone: (a: number, b: number, c: number, d: number, e: number, f: number) => void;
    readonly device_timeout: (a: number, b: number, c: number) => void;
    readonly device_unsent: (a: number) => number;
    readonly qrCode: (a: number, b: number) => [number, number, number, number];
    readonly __wbindgen_malloc: (a: number, b: number) => number;
    readonly __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
    readonly __wbindgen_free: (a: number, b: number, c: number) => void;
    readonly __wbindgen_exn_store: (a: number) => void;
    readonly __externref_table_alloc: () => number;
    readonly __wbindgen_externrefs: WebAssembly.Table;
    readonly __externref_table_dealloc: (a: number) => void;
    readonly __wbindgen_start: () => void;
}

export type SyncInitInput = BufferSource | WebAssembly.Module;

/**
 * Instantiates the given `module`, which can either be bytes or
 * a precompiled `WebAssembly.Module`.
 *
 * @param {{ module: SyncInitInput }} module - Passing `SyncInitInput` directly is deprecated.
 *
 * @returns {InitOutput}
 */
export function initSync(module: { module: SyncInitInput } | SyncInitInput): InitOutput;

/**
 * If `module_or_path` is {RequestInfo} or {URL}, makes a request and
 * for everything else, calls `WebAssembly.instantiate` directly.
 *
 * @param {{ module_or_path: InitInput | Promise<InitInput> }} module_or_path - Passing `InitInput` directly is deprecated.
 *
 * @returns {Promise<InitOutput>}
 */
export default function __wbg_init (module_or_path?: { module_or_path: InitInput | Promise<InitInput> } | InitInput | Promise<InitInput>): Promise<InitOutput>;
