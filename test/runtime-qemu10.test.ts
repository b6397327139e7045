/**
 * The product under QEMU 10.0 (bookworm-backports, SeaBIOS 1.16.3), as a user
 * who names it in MEMFABRIC_QEMU runs it: boot a FAME node, verify its guest
 * against the prediction for 10.0 (the fabric BAR where SeaBIOS 1.16.3 puts
 * it, not where 7.2 does), look at lspci, stop. Real guest, real QEMU 10.0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { QEMU10, fame2, hasQemu10, runCliWithRunDir } from './support/cli';
import { buildImage } from '../server/src/runtime/image';

test('boot, verify, view and stop a FAME node under QEMU 10.0', { skip: !hasQemu10() && `no QEMU 10.0 at ${QEMU10} (scripts/qemu10-setup.sh)`, timeout: 600_000 }, async () => {
  await buildImage({});
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-q10-'));
  const run = join(dir, 'run');
  const file = fame2(dir);
  const env = { MEMFABRIC_QEMU: QEMU10 };
  const mf = (args: string[], timeoutMs = 120_000) => runCliWithRunDir(run, args, { timeoutMs, env });
  try {
    const boot = mf(['boot', '--node', 'node01', file, '--timeout', '240'], 300_000);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    const v = mf(['verify', '--format', 'json', file]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.deepEqual(JSON.parse(v.stdout), { nodes: [{ name: 'node01', ok: true, differences: [] }] });
    const l = mf(['view', file, 'node01', 'lspci', '--format', 'json']);
    assert.equal(l.status, 0, l.stderr);
    const shm = (JSON.parse(l.stdout) as { devices: { vendorDevice: string; bars: { bar: number; start: string }[] }[] }).devices.find((d) => d.vendorDevice === '1af4:1110');
    // SeaBIOS 1.16.3: the 64-bit window below the top of the CPU's 40 address bits, under the AMD hole.
    assert.equal(shm?.bars.find((b) => b.bar === 2)?.start, '0xf000000000', l.stdout);
    // The same node judged for 7.2 would not match: the prediction really is per version.
    const v72 = runCliWithRunDir(run, ['verify', '--format', 'json', file], { env: { MEMFABRIC_QEMU: 'qemu-system-x86_64' } });
    assert.equal(v72.status, 1, v72.stdout);
  } finally {
    mf(['stop', file], 60_000);
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(spawnSync('pgrep', ['-f', dir]).status, 1, 'no QEMU of the test is left');
});
