/* tslint:disable */
/* eslint-disable */
export const memory: WebAssembly.Memory;
export const __wbg_device_free: (a: number, b: number) => void;
export const decodeBlob: (a: number, b: number) => [number, number, number];
export const device_command: (a: number, b: number, c: number, d: number, e: number) => [number, number];
export const device_connected: (a: number, b: number, c: number, d: number) => void;
export const device_cursor: (a: number) => number;
export const device_deviceId: (a: number) => [number, number];
export const device_disconnected: (a: number, b: number, c: number, d: number) => void;
export const device_inGroup: (a: number) => number;
export const device_joinInvite: (a: number, b: number, c: number, d: number, e: number) => [number, number];
export const device_new: (a: number, b: number, c: number, d: number, e: number, f: number, g: any, h: number, i: number) => [number, number, number];
export const device_poll: (a: number) => any;
export const device_push: (a: number, b: number, c: number, d: number, e: number) => [number, number, number, number];
export const device_received: (a: number, b: number, c: number, d: number, e: number, f: number) => void;
export const device_status: (a: number) => [number, number];
export const device_storeDone: (a: number, b: number, c: number, d: number, e: number, f: number) => void;
export const device_timeout: (a: number, b: number, c: number) => void;
export const device_unsent: (a: number) => number;
export const qrCode: (a: number, b: number) => [number, number, number, number];
export const __wbindgen_malloc: (a: number, b: number) => number;
export const __wbindgen_realloc: (a: number, b: number, c: number, d: number) => number;
export const __wbindgen_free: (a: number, b: number, c: number) => void;
export const __wbindgen_exn_store: (a: number) => void;
export const __externref_table_alloc: () => number;
export const __wbindgen_externrefs: WebAssembly.Table;
export const __externref_table_dealloc: (a: number) => void;
export const __wbindgen_start: () => void;
