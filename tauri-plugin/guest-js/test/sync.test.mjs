// Unit tests of the guest package against Tauri's IPC mocks (no Rust, no webview):
// `node --test guest-js/test/` after `npm run build`.
import { test, beforeEach } from 'node:test';
import assert from 'node:assert/strict';

globalThis.window = globalThis; // the mocks install themselves on `window`

const { mockIPC } = await import('@tauri-apps/api/mocks');
const { emit } = await import('@tauri-apps/api/event');
const { sync, SyncError } = await import('../../dist-js/index.js');

let calls;
let answers;

// One mock for the whole file, as in an app: listeners registered by one test stay.
mockIPC(
  (cmd, args) => {
    calls.push({ cmd, args });
    const answer = answers[cmd];
    if (!answer) throw new Error(`unexpected command ${cmd}`);
    return answer(args);
  },
  { shouldMockEvents: true },
);

beforeEach(() => {
  calls = [];
  answers = {
    'plugin:sync|sync_enable': () => null,
    'plugin:sync|sync_status': () => 'pending',
    'plugin:sync|sync_last_cursor': () => 7,
  };
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 10));

test('enable fills the status and cursor that status() and lastCursor() answer synchronously', async () => {
  await sync.enable();
  assert.deepEqual(
    calls.map((c) => c.cmd),
    ['plugin:sync|sync_enable', 'plugin:sync|sync_status', 'plugin:sync|sync_last_cursor'],
  );
  assert.equal(sync.status(), 'pending');
  assert.equal(sync.lastCursor(), 7);
});

test('the status event keeps the cache current', async () => {
  await sync.enable();
  await emit('sync://status', { status: 'synced', lastCursor: 12 });
  await settle();
  assert.equal(sync.status(), 'synced');
  assert.equal(sync.lastCursor(), 12);
});

test('push sends the bytes as the raw body and returns the result', async () => {
  answers['plugin:sync|sync_push'] = (body) => {
    assert.ok(body instanceof Uint8Array, 'raw bytes, not JSON');
    assert.deepEqual([...body], [104, 105]);
    return { blobId: 'ab'.repeat(16), cursor: 3, pending: false };
  };
  const result = await sync.push(new TextEncoder().encode('hi'));
  assert.deepEqual(result, { blobId: 'ab'.repeat(16), cursor: 3, pending: false });
});

test('push refuses what is not a Uint8Array without calling the plugin', async () => {
  await assert.rejects(sync.push('hi'), (e) => e instanceof SyncError && e.kind === 'badRequest');
  assert.equal(calls.length, 0);
});

test('pull passes the cursor and decodes each blob into a Uint8Array', async () => {
  answers['plugin:sync|sync_pull'] = (args) => ({
    blobs: [{ id: 'x', cursor: args.afterCursor + 1, sender: 'd', data: 'aGVsbG8=', timestamp: 1700000000000 }],
    hasMore: false,
    maxCursor: args.afterCursor + 1,
  });
  const page = await sync.pull(4);
  assert.deepEqual(calls[0].args, { afterCursor: 4 });
  assert.equal(page.maxCursor, 5);
  assert.equal(page.hasMore, false);
  assert.ok(page.blobs[0].data instanceof Uint8Array);
  assert.equal(new TextDecoder().decode(page.blobs[0].data), 'hello');
  await sync.pull();
  assert.deepEqual(calls[1].args, { afterCursor: 0 }, 'no argument pulls from the start');
});

test('a refused command rejects with a SyncError carrying the kind', async () => {
  answers['plugin:sync|sync_join_invite'] = () => {
    throw { kind: 'inviteExpired', message: 'invite: the invite has expired' };
  };
  await assert.rejects(sync.joinInvite('AAAA-BBBB-CCCC-DDDD'), (e) => {
    assert.ok(e instanceof SyncError && e instanceof Error);
    assert.equal(e.kind, 'inviteExpired');
    assert.equal(e.message, 'invite: the invite has expired');
    return true;
  });
  assert.deepEqual(calls[0].args, { invite: 'AAAA-BBBB-CCCC-DDDD' });
});

test('createInvite returns the invite as the plugin gives it', async () => {
  const invite = { qrCode: 'data:image/svg+xml;base64,PHN2Zz4=', qrText: '0KSYNC:x', shortCode: 'AAAA-BBBB-CCCC-DDDD', expiresAt: 1 };
  answers['plugin:sync|sync_create_invite'] = () => invite;
  assert.deepEqual(await sync.createInvite(), invite);
});

test('on delivers events until its unlisten function is called', async () => {
  const seen = [];
  const stop = sync.on('blob-available', (info) => seen.push(info.cursor));
  await settle();
  await emit('sync://blob-available', { id: 'a', cursor: 1, sender: 's' });
  await settle();
  stop();
  await emit('sync://blob-available', { id: 'b', cursor: 2, sender: 's' });
  await settle();
  assert.deepEqual(seen, [1]);
});

test('error events arrive as SyncError instances', async () => {
  const errors = [];
  const stop = sync.on('error', (e) => errors.push(e));
  await settle();
  await emit('sync://error', { kind: 'tampered', message: 'the blob at cursor 3 failed to open' });
  await settle();
  stop();
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof SyncError);
  assert.equal(errors[0].kind, 'tampered');
});

test('syncNow returns the outcome and updates the cache', async () => {
  answers['plugin:sync|sync_now'] = () => ({ status: 'synced', lastCursor: 40, unsent: 0 });
  assert.deepEqual(await sync.syncNow(), { status: 'synced', lastCursor: 40, unsent: 0 });
  assert.equal(sync.status(), 'synced');
  assert.equal(sync.lastCursor(), 40);
});
