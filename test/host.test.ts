/** The host probe the engine is given: real files, and the language server's one-second memory of them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedHost, nodeHost } from '../server/src/host/probe';

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
