// End to end in headless Chromium (Debian's, driven by playwright-core): a real relay (the
// `zerok` binary), the demo page served from loopback, two browser contexts that pair by
// typing the short code and converge, a reload that keeps everything (IndexedDB), and a
// native `zerok` device syncing with the browsers through the same relay.
//
// Needs: scripts/wasm-build.sh run first (www/pkg) and the `zerok` binary (ZEROK_BIN, or
// target/debug/zerok). SCREENSHOT=path saves the converged demo.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, extname, normalize } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const root = new URL('..', import.meta.url).pathname;
const www = join(root, 'www');
const zerok = process.env.ZEROK_BIN ?? join(root, '..', 'target', 'debug', 'zerok');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
/** How long two devices may take to see each other's items. */
const CONVERGE_MS = 10_000;

let dir, relay, site, browser, url;

before(async () => {
  assert.ok(existsSync(join(www, 'pkg', 'zerok_wasm_bg.wasm')), 'run scripts/wasm-build.sh first');
  assert.ok(existsSync(zerok), `no zerok binary at ${zerok} (set ZEROK_BIN)`);
  dir = mkdtempSync(join(tmpdir(), 'zerok-browser-'));
  relay = await startRelay(join(dir, 'relay'));
  site = await serve(www);
  url = (device) => `http://127.0.0.1:${site.address().port}/?device=${device}&relay=${encodeURIComponent(relay.http)}`;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  site?.close();
  relay?.proc.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('two browsers pair by short code, their lists converge, and a reload keeps everything', async () => {
  const alice = await openDevice('alice');
  const bob = await openDevice('bob');

  const code = await invite(alice);
  assert.match(code, /^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/);
  assert.match(await alice.getAttribute('#qr', 'src'), /^data:image\/svg\+xml;base64,/);
  await bob.fill('#join-code', code);
  await bob.click('#join-btn');
  await bob.waitForFunction(() => document.getElementById('message').textContent === 'joined', null, { timeout: 20_000 });

  const started = Date.now();
  await addItem(alice, 'apple');
  await addItem(bob, 'banana');
  await converge([alice, bob], ['apple', 'banana']);
  console.log(`two browsers converged ${Date.now() - started} ms after the first add`);
  for (const page of [alice, bob]) {
    await page.waitForFunction(() => document.getElementById('status').className.includes('synced'));
  }

  // Bob closes the tab and comes back: the group, the keys and the list survive (IndexedDB and
  // localStorage), and sync goes on.
  await bob.reload();
  await bob.waitForSelector('body[data-ready]');
  await addItem(alice, 'cherry');
  await converge([bob], ['apple', 'banana', 'cherry']);

  if (process.env.SCREENSHOT) await alice.screenshot({ path: process.env.SCREENSHOT });
});

test('a browser and a native zerok device sync through the same relay', async () => {
  const carol = await openDevice('carol');
  await addItem(carol, 'written before the native device joined');
  const code = await invite(carol);
  const native = join(dir, 'native');
  await run(zerok, ['join', '--data-dir', native, '--relay', relay.connection, code]);
  await run(zerok, ['push', '--data-dir', native, '-'], 'from the command line\n');
  await converge([carol], ['from the command line']);
  await addItem(carol, 'from the browser');
  const deadline = Date.now() + CONVERGE_MS;
  let pulled = '';
  while (!pulled.includes('from the browser')) {
    assert.ok(Date.now() < deadline, `the native device did not receive the browser's item: ${pulled}`);
    await new Promise((r) => setTimeout(r, 300));
    pulled = (await run(zerok, ['pull', '--data-dir', native])).stdout;
  }
  assert.ok(pulled.includes('written before the native device joined'), 'and what the browser wrote before');
});

test('the API refuses bad input with the Tauri package error kinds', async () => {
  const page = await browser.newPage();
  await page.goto(url('checker'));
  await page.waitForSelector('body[data-ready]');
  const kinds = await page.evaluate(async (relayUrl) => {
    const { ZerokSync } = await import('./zerok-sync.js');
    const sync = await ZerokSync.open({ relay: relayUrl, name: 'api-check' });
    const kind = (p) => p.then(() => 'ok', (e) => e.kind);
    const out = {
      pushOutsideGroup: await kind(sync.push(new Uint8Array([1]))),
      emptyPush: await kind(sync.push(new Uint8Array())),
      garbageCode: await kind(sync.joinInvite('not a code')),
      tooShort: await kind(sync.joinInvite('ABCD-EFGH')),
      status: sync.status(),
      cursor: sync.lastCursor(),
    };
    const pull = await sync.pull(0);
    out.pull = [pull.blobs.length, pull.hasMore, pull.maxCursor];
    const badRelay = await kind(ZerokSync.open({ relay: 'zerok1:nonsense', name: 'x' }));
    await sync.close();
    out.badRelay = badRelay;
    out.afterClose = await kind(sync.push(new Uint8Array([1])));
    return out;
  }, relay.http);
  assert.deepEqual(kinds, {
    pushOutsideGroup: 'notInGroup',
    emptyPush: 'emptyData',
    garbageCode: 'invalidInvite',
    tooShort: 'invalidInvite',
    status: 'offline',
    cursor: 0,
    pull: [0, false, 0],
    badRelay: 'config',
    afterClose: 'stopped',
  });
  await page.close();
});

async function openDevice(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[${name}] page error:`, e));
  await page.goto(url(name));
  await page.waitForSelector('body[data-ready]', { timeout: 20_000 });
  return page;
}

async function invite(page) {
  await page.click('#invite-btn');
  await page.waitForFunction(() => /^\S{4}-/.test(document.getElementById('short-code').textContent), null, {
    timeout: 20_000,
  });
  return (await page.textContent('#short-code')).trim();
}

async function addItem(page, text) {
  await page.fill('#item-text', text);
  await page.click('#add-btn');
}

async function converge(pages, texts) {
  for (const page of pages) {
    await page.waitForFunction(
      (want) => {
        const have = [...document.querySelectorAll('#items li')].map((li) => li.firstChild.textContent);
        return want.every((t) => have.includes(t));
      },
      texts,
      { timeout: CONVERGE_MS },
    );
  }
}

function startRelay(dataDir) {
  return new Promise((resolve, reject) => {
    const proc = spawn(zerok, ['relay', '--data-dir', dataDir, '--bind', '127.0.0.1:0', '--http', '127.0.0.1:0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    proc.on('error', reject);
    let http;
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const h = line.match(/http on (http:\/\/[0-9.]+:[0-9]+)/);
      if (h) http = h[1];
      const c = line.match(/connection string: (\S+)/);
      if (c) resolve({ proc, connection: c[1], http });
    });
  });
}

const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' };

function serve(folder) {
  return new Promise((resolve) => {
    const server = createServer((req, res) => {
      const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
      const file = join(folder, path.endsWith('/') ? `${path}index.html` : path);
      if (!file.startsWith(folder) || !existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': MIME[extname(file)] ?? 'application/octet-stream' });
      res.end(readFileSync(file));
    });
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

function run(cmd, args, input) {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 60_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || error.message}`)) : resolve({ stdout, stderr }),
    );
    if (input !== undefined) child.stdin.end(input);
  });
}

