/** The host probe the engine is given: real files, and the language server's one-second memory of them; and the paths rules ask it about. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedHost, nodeHost } from '../server/src/host/probe';
import { resolvePath } from '../server/src/engine/rules/paths';

test('nodeHost: a missing file is undefined, a file has its size', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mf-host-'));
  try {
    assert.equal(nodeHost.stat(join(dir, 'nope.raw')), undefined);
    writeFileSync(join(dir, 'f.raw'), Buffer.alloc(4096));
    assert.deepEqual(nodeHost.stat(join(dir, 'f.raw')), { size: 4096n, isFile: true, isDirectory: false, isCharDevice: false });
    assert.equal(nodeHost.stat(dir)?.isDirectory, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cachedHost: answers are kept for the ttl, then asked again (a file appearing and growing is seen after it)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mf-host-'));
  const f = join(dir, 'fam.raw');
  let now = 1_000;
  const host = cachedHost(1000, nodeHost, () => now);
  try {
    assert.equal(host.stat(f), undefined);
    writeFileSync(f, Buffer.alloc(512));
    now += 999;
    assert.equal(host.stat(f), undefined, 'asked again inside the ttl');
    now += 1;
    assert.equal(host.stat(f)?.size, 512n);
    truncateSync(f, 1 << 20);
    assert.equal(host.stat(f)?.size, 512n);
    now += 1000;
    assert.equal(host.stat(f)?.size, 1048576n);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resolvePath: a path normal already is given as is, any other one normalized as split and join do it', () => {
  // The reference: every '', '.' and '..' part dropped or applied, one '/' between parts.
  const reference = (base: string, p: string) => {
    const whole = p.startsWith('/') ? p : `${base.replace(/\/+$/, '')}/${p}`;
    const out: string[] = [];
    for (const part of whole.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') out.pop();
      else out.push(part);
    }
    return '/' + out.join('/');
  };
  const parts = ['', '.', '..', 'a', '.h', '..b', 'b.', 'c..'];
  let normal = 0;
  for (let i = 0; i < 6000; i++) {
    const p = (i % 3 ? '/' : '') + Array.from({ length: 1 + (i % 5) }, (_, k) => parts[(i * 7 + k * 13 + (i >> 3)) % parts.length]).join('/') + (i % 7 === 0 ? '/' : '');
    for (const base of ['/x/y', '/x/y/', '/']) {
      const want = reference(base, p);
      assert.equal(resolvePath(base, p), want, JSON.stringify([base, p]));
      if (want === p) normal++;
    }
  }
  // (both kinds are there: paths given as is, and paths that change)
  assert.ok(normal > 100 && normal < 15000, `${normal} paths normal already`);
});
