// zerok-notes: the local store (the app's notes file) is the source of truth. Adding a note
// saves it first and then pushes it; notes from other devices are pulled and merged in.
import { invoke } from '@tauri-apps/api/core';
import { sync } from '@0k-sync/tauri-plugin';

const INDICATOR = {
  synced: '☁️✓ synced',
  pending: '☁️⏳ pending',
  failed: '☁️✗ failed',
  offline: '📴 offline',
};
const $ = (id) => document.getElementById(id);
let notes = [];

function render() {
  const list = $('notes');
  list.replaceChildren(
    ...notes.map((note) => {
      const item = document.createElement('li');
      const text = document.createElement('span');
      text.textContent = note.text;
      const when = document.createElement('small');
      when.textContent = new Date(note.at).toLocaleTimeString();
      item.append(text, when);
      return item;
    }),
  );
}

function showStatus(status) {
  const badge = $('status');
  badge.textContent = INDICATOR[status] ?? status;
  badge.className = `status ${status}`;
}

function showError(error) {
  $('error').textContent = error ? `${error.message ?? error}` : '';
}

async function addNote(text) {
  const note = { id: crypto.randomUUID(), text, at: Date.now() };
  notes = await invoke('notes_add', { note }); // saved locally first: never lost
  render();
  try {
    await sync.push(new TextEncoder().encode(JSON.stringify(note))); // pending if offline
  } catch (e) {
    showError(e);
  }
  showStatus(sync.status());
}

function isNote(value) {
  return value && typeof value.id === 'string' && typeof value.text === 'string' && Number.isFinite(value.at);
}

// One pull at a time, each from where the last one stopped.
let pulling = Promise.resolve();
function pullNew() {
  pulling = pulling.then(async () => {
    let after = await invoke('notes_cursor');
    for (;;) {
      const page = await sync.pull(after);
      const incoming = [];
      for (const blob of page.blobs) {
        try {
          const note = JSON.parse(new TextDecoder().decode(blob.data));
          if (isNote(note)) incoming.push(note);
        } catch {
          // Not a note (another app's blob): skip it.
        }
      }
      notes = await invoke('notes_merge', { incoming, cursor: page.maxCursor });
      after = page.maxCursor;
      if (!page.hasMore) break;
    }
    render();
  });
  return pulling.catch(showError);
}

async function createInvite() {
  showError(null);
  const button = $('invite');
  button.classList.add('busy');
  try {
    const invite = await sync.createInvite();
    $('invite-qr').src = invite.qrCode;
    $('invite-code').textContent = invite.shortCode;
    $('invite-expiry').textContent = `valid until ${new Date(invite.expiresAt).toLocaleTimeString()}`;
    $('invite-box').hidden = false;
  } catch (e) {
    showError(e);
  } finally {
    button.classList.remove('busy');
  }
}

async function joinInvite(code) {
  showError(null);
  const button = $('join').querySelector('button');
  button.classList.add('busy');
  try {
    await sync.joinInvite(code.trim());
    $('join').hidden = true;
    $('invite-box').hidden = true;
    $('paired').hidden = false;
    await pullNew();
    return true;
  } catch (e) {
    showError(e);
    return false;
  } finally {
    button.classList.remove('busy');
  }
}

async function syncNow() {
  const button = $('sync-now');
  button.classList.add('busy');
  button.disabled = true;
  try {
    const result = await sync.syncNow();
    showStatus(result.status);
    await pullNew();
  } catch (e) {
    showError(e);
  } finally {
    button.classList.remove('busy');
    button.disabled = false;
  }
}

async function start() {
  notes = await invoke('notes_list');
  render();
  sync.on('status', (info) => showStatus(info.status));
  sync.on('blob-available', () => pullNew());
  sync.on('error', (e) => showError(e));
  sync.on('pairing-code', (info) => {
    $('pairing-code').textContent = `Confirmation code: ${info.code} (the same on both devices)`;
  });
  sync.on('device-added', () => {
    $('invite-box').hidden = true;
    $('join').hidden = true;
    $('paired').hidden = false;
  });

  $('add').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('note-text').value.trim();
    $('note-text').value = '';
    if (text) addNote(text);
  });
  $('invite').addEventListener('click', createInvite);
  $('join').addEventListener('submit', (e) => {
    e.preventDefault();
    joinInvite($('join-code').value);
  });
  $('sync-now').addEventListener('click', syncNow);

  try {
    await sync.enable();
  } catch (e) {
    showError(e);
  }
  showStatus(sync.status());
  await pullNew();

  const smokeJoin = await invoke('smoke_plan');
  if (smokeJoin) smokeTest(smokeJoin);
}

// CI's smoke test (src-tauri/tests/smoke.rs) drives the page through its own controls.
async function smokeTest(code) {
  const until = async (check, what) => {
    for (let i = 0; i < 600; i++) {
      if (check()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`smoke: timed out waiting for ${what}`);
  };
  try {
    $('join-code').value = code;
    $('join').requestSubmit();
    await until(() => $('join').hidden, 'joining');
    $('note-text').value = 'hello from the Tauri app';
    $('add').requestSubmit();
    await until(() => notes.some((n) => n.text === 'hello from the native device'), 'the native note');
    $('sync-now').click();
    await until(() => !$('sync-now').disabled && sync.status() === 'synced', 'sync now');
    await invoke('smoke_report', {
      report: { notes: notes.map((n) => n.text), status: $('status').textContent, error: $('error').textContent },
    });
  } catch (e) {
    await invoke('smoke_report', { report: { failed: String(e), error: $('error').textContent } });
  }
}

start().catch(showError);
