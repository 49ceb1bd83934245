// The demo: a local-first shared list. The list lives in this browser (localStorage) and is
// the source of truth; sync only merges other devices' items into it, by id, from the last
// cursor it pulled. Query parameters: `relay` (the relay's HTTP URL) and `device` (a name, so
// that two tabs of one browser can be two devices).

import { ZerokSync } from './zerok-sync.js';

const params = new URLSearchParams(location.search);
const relay = params.get('relay') ?? `http://${location.hostname}:8788`;
const deviceName = params.get('device') ?? 'default';
const storageKey = `zerok-demo:${deviceName}`;
const $ = (id) => document.getElementById(id);
const ICONS = { synced: '☁️✓ synced', pending: '☁️⏳ pending', failed: '☁️✗ failed', offline: '📴 offline' };

const local = JSON.parse(localStorage.getItem(storageKey) ?? '{"items":[],"seen":0}');
const save = () => localStorage.setItem(storageKey, JSON.stringify(local));

function render() {
  const items = [...local.items].sort((a, b) => a.at - b.at || a.id.localeCompare(b.id));
  $('items').replaceChildren(
    ...items.map((item) => {
      const li = document.createElement('li');
      li.textContent = item.text;
      if (item.from) {
        const from = document.createElement('span');
        from.className = 'from';
        from.textContent = `from ${item.from.slice(0, 6)}`;
        li.append(from);
      }
      return li;
    }),
  );
}

function showStatus(status) {
  $('status').className = `status ${status}`;
  $('status').textContent = ICONS[status] ?? status;
}

function say(text) {
  $('message').textContent = text;
}

/** An item from a blob: this demo's JSON, or any text (say, from the `zerok push` CLI). */
function itemOf(blob) {
  const text = new TextDecoder().decode(blob.data);
  try {
    const item = JSON.parse(text);
    if (item && typeof item.id === 'string' && typeof item.text === 'string') return { ...item, from: blob.sender };
  } catch {}
  return { id: blob.id, text: text.trim(), at: blob.timestamp, from: blob.sender };
}

let sync;
let pulling = Promise.resolve();

/** Merges everything received since the last pull; one pull at a time. */
function pullNew() {
  pulling = pulling.then(async () => {
    for (;;) {
      const { blobs, hasMore, maxCursor } = await sync.pull(local.seen);
      for (const blob of blobs) {
        const item = itemOf(blob);
        if (!local.items.some((i) => i.id === item.id)) local.items.push(item);
      }
      local.seen = maxCursor;
      save();
      render();
      if (!hasMore) return;
    }
  });
  return pulling;
}

async function main() {
  render();
  $('device').textContent = deviceName;
  try {
    sync = await ZerokSync.open({ relay, name: deviceName });
  } catch (e) {
    return say(`cannot start sync: ${e.message}`);
  }
  document.body.dataset.ready = 'true';
  sync.on('status', ({ status }) => showStatus(status));
  sync.on('blob-available', () => pullNew());
  sync.on('error', (e) => say(e.message));
  sync.on('pairing-code', ({ code }) => ($('pairing-code').textContent = `confirmation code ${code}`));
  sync.on('device-added', () => say('a device joined'));
  showStatus(sync.status());
  await sync.enable();
  await pullNew();

  $('invite-btn').onclick = async () => {
    say('');
    try {
      const invite = await sync.createInvite();
      $('qr').src = invite.qrCode;
      $('short-code').textContent = invite.shortCode;
      $('invite').hidden = false;
      await pushUnsent();
    } catch (e) {
      say(`invite failed: ${e.message}`);
    }
  };
  $('join-btn').onclick = async () => {
    say('joining…');
    try {
      await sync.joinInvite($('join-code').value.trim());
      say('joined');
      await pullNew();
      await pushUnsent();
    } catch (e) {
      say(`join failed (${e.kind}): ${e.message}`);
    }
  };
  $('add').onsubmit = async (event) => {
    event.preventDefault();
    const text = $('item-text').value.trim();
    if (!text) return;
    $('item-text').value = '';
    const item = { id: crypto.randomUUID(), text, at: Date.now() };
    local.items.push(item);
    save();
    render();
    await pushUnsent();
  };
}

/** Pushes this device's items not pushed yet (added before the device was in a group). */
async function pushUnsent() {
  for (const item of local.items.filter((i) => !i.from && !i.pushed)) {
    try {
      const { id, text, at } = item;
      await sync.push(new TextEncoder().encode(JSON.stringify({ id, text, at })));
      item.pushed = true;
      save();
    } catch (e) {
      if (e.kind !== 'notInGroup') say(`not synced (${e.kind}): ${e.message}`);
      return;
    }
  }
}

main();
