/**
 * The FAME example's plan boots under real QEMU with a real guest: two of its
 * nodes see the fabric as a 32 GiB 64-bit prefetchable BAR2 of the Red Hat
 * ivshmem device (1af4:1110), a value written through that BAR on one node is
 * read back on the other, and it is in the host's backing file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, openSync, readSync, closeSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, hasQemu, runCli } from './support/cli';
import { buildImage } from '../server/src/runtime/image';
import { launchNode, RunningNode } from '../server/src/runtime/launch';

test('plan of examples/fame-4node.cluster.xml boots, and the fabric is shared', { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-fame-'));
  const nodes: RunningNode[] = [];
  try {
    copyFileSync(join(REPO, 'examples', 'fame-4node.cluster.xml'), join(dir, 'fame.cluster.xml'));
    const r = runCli(['plan', '--format', 'json', join(dir, 'fame.cluster.xml')]);
    assert.equal(r.status, 0, r.stderr);
    const plan = JSON.parse(r.stdout) as { nodes: { name: string; argv: string[]; files: { path: string; size: string }[] }[] };
    assert.equal(plan.nodes.length, 4);
    assert.deepEqual(plan.nodes[0].files, [{ path: join(dir, 'fam.raw'), size: '0x800000000' }]);
    const image = await buildImage({});
    // Two nodes are enough to prove sharing, and leave a core each under TCG.
    for (const n of plan.nodes.slice(0, 2)) {
      nodes.push(await launchNode({ name: n.name, argv: n.argv, image, runDir: join(dir, 'run', n.name) }));
    }
    const bars: bigint[] = [];
    for (const n of nodes) {
      const l = await n.exec(['lspci', '-v', '-d', '1af4:1110']);
      assert.equal(l.exitCode, 0, l.stdout);
      assert.match(l.stdout, /Red Hat, Inc\. Inter-VM shared memory/);
      const m = /Memory at ([0-9a-f]+) \(64-bit, prefetchable\) \[size=32G\]/.exec(l.stdout);
      assert.ok(m, `no 32G 64-bit prefetchable BAR in:\n${l.stdout}`);
      bars.push(BigInt('0x' + m[1]));
    }
    const addr = '0x' + bars[0].toString(16);
    const w = await nodes[0].exec(['devmem', addr, '32', '0xcafef00d']);
    assert.equal(w.exitCode, 0, w.stdout + w.stderr);
    const rd = await nodes[1].exec(['devmem', '0x' + bars[1].toString(16), '32']);
    assert.equal(rd.exitCode, 0, rd.stderr);
    assert.equal(rd.stdout.trim().toLowerCase(), '0xcafef00d');
    // The host file holds it at offset 0, little-endian; QEMU never shrank or truncated it.
    const fd = openSync(join(dir, 'fam.raw'), 'r');
    const buf = Buffer.alloc(4);
    readSync(fd, buf, 0, 4, 0);
    closeSync(fd);
    assert.equal(buf.readUInt32LE(0), 0xcafef00d);
    assert.equal(statSync(join(dir, 'fam.raw')).size, 32 * 2 ** 30);
  } finally {
    for (const n of nodes) await n.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
