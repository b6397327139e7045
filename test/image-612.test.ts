/**
 * The guest image's second flavour, Linux 6.12 (bookworm-backports) with
 * trixie's ndctl 81, and how a node's kernel is chosen:
 * - unit: the default follows the QEMU version (7.2 -> 6.1, 10.0 -> 6.12), the
 *   real binaries' versions give those defaults, <guest kernel-version> wins;
 * - real: a CXL Type 3 node booted with `memfabric boot` under QEMU 10.0 (no
 *   kernel-version: the default) runs 6.12, cxl 81 or newer, sees its memdev and
 *   has the cxl trace events on; under QEMU 7.2 a node without kernel-version
 *   runs 6.1 and one with kernel-version="6.12" runs 6.12, in one cluster.
 * The run directory is a temp dir (MEMFABRIC_RUN_DIR); every QEMU is stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasQemu, hasQemu10, processesMentioning, QEMU10, runCliEnv } from './support/cli';
import { buildImage, defaultGuestKernel, qemuVersionOf, trixieWrapper } from '../server/src/runtime/image';
import { ClusterNodeSpec, neededGuestKernels } from '../server/src/runtime/cluster';

test('the default guest kernel follows the QEMU version', () => {
  assert.equal(defaultGuestKernel('7.2.19'), '6.1');
  assert.equal(defaultGuestKernel('7.2'), '6.1');
  assert.equal(defaultGuestKernel('10.0.2'), '6.12');
  assert.equal(defaultGuestKernel('8.0.0'), '6.12');
  assert.equal(defaultGuestKernel('QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-1~bpo12+1)'), '6.12');
  assert.equal(defaultGuestKernel(undefined), '6.1', 'unknown: the 6.1 image');
  assert.equal(trixieWrapper('cxl', '/opt/trixie/lib/ld-linux-x86-64.so.2'),
    '#!/bin/sh\n# cxl of Debian trixie (ndctl 81) with trixie\'s own libc: see memfabric\'s docs/guest-image.md\n' +
    'exec /opt/trixie/lib/ld-linux-x86-64.so.2 --library-path /opt/trixie/lib --argv0 cxl /opt/trixie/bin/cxl "$@"\n');
});

test('the real QEMU binaries choose 6.1 (7.2) and 6.12 (10.0); kernel-version wins', { skip: !hasQemu() && 'qemu-system-x86_64 missing' }, () => {
  const v72 = qemuVersionOf('qemu-system-x86_64');
  assert.match(v72 ?? '', /^7\.2\./);
  const node = (name: string, kernelVersion?: '6.1' | '6.12', extra: Partial<ClusterNodeSpec['guest']> = {}): ClusterNodeSpec =>
    ({ name, argv: ['qemu-system-x86_64'], files: [], guest: { ...(kernelVersion ? { kernelVersion } : {}), ...extra } });
  const nodes = [node('a'), node('b', '6.12'), node('c', '6.1'), node('d', undefined, { image: 'none' })];
  assert.deepEqual([...neededGuestKernels(nodes, 'qemu-system-x86_64')].sort(), [['6.1', ['a', 'c']], ['6.12', ['b']]]);
  if (hasQemu10()) {
    assert.match(qemuVersionOf(QEMU10) ?? '', /^10\.0\./);
    assert.deepEqual([...neededGuestKernels(nodes, QEMU10)].sort(), [['6.1', ['c']], ['6.12', ['a', 'b']]]);
  }
  assert.deepEqual([...neededGuestKernels(nodes, '/nonexistent/qemu')].sort(), [['6.1', ['a', 'c']], ['6.12', ['b']]], 'no answer: 6.1');
});

const cxlCluster = `<cluster name="cxl612">
  <node name="n1" machine="q35" memory="1G" maxmem="2G" slots="1" cpus="1">
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12">
        <root-port id="rp0" port="0" chassis="0" slot="2">
          <type3 id="mem0" size="256M" path="cxl-mem0.raw"/>
        </root-port>
      </host-bridge>
      <window size="4G" targets="cxl.1"/>
    </cxl>
  </node>
</cluster>
`;

test('QEMU 10.0 boots the 6.12 image by default: cxl 81, the memdev, cxl trace events on', { skip: (!hasQemu10() && 'QEMU 10.0 missing (scripts/qemu10-setup.sh)') || false, timeout: 20 * 60_000 }, async () => {
  const t0 = Date.now();
  const img = await buildImage({ kernel: '6.12', log: (l) => console.log(`# image: ${l}`) });
  assert.match(img.version, /^6\.12\./);
  assert.equal(img.flavour, '6.12');
  assert.ok(img.packages!.some((p) => /^trixie\/cxl=(8[1-9]|9\d)/.test(p)), img.packages!.join(' '));
  console.log(`# 6.12 image ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${img.dir}`);
  const again = await buildImage({ kernel: '6.12' });
  assert.equal(again.cached, true);
  assert.equal(again.dir, img.dir);
  const six1 = await buildImage({ kernel: '6.1', log: (l) => console.log(`# image 6.1: ${l}`) });
  assert.notEqual(six1.key, img.key, 'separate cache keys');
  assert.match(six1.version, /^6\.1\./);

  const dir = mkdtempSync(join(tmpdir(), 'memfabric-612-'));
  const run = join(dir, 'run');
  const file = join(dir, 'cxl612.cluster.xml');
  writeFileSync(file, cxlCluster);
  const mf = (args: string[]) => runCliEnv(args, { MEMFABRIC_RUN_DIR: run, MEMFABRIC_ACCEL: 'tcg', MEMFABRIC_QEMU: QEMU10 }, { timeoutMs: 300_000 });
  try {
    const b = mf(['boot', file]);
    assert.equal(b.status, 0, b.stdout + b.stderr);
    console.log(`# ${b.stdout.trim().split('\n').pop()}`);
    const uname = mf(['exec', file, 'n1', '--', 'uname', '-r']);
    assert.equal(uname.status, 0, uname.stderr);
    assert.equal(uname.stdout.trim(), img.version);
    const ver = mf(['exec', file, 'n1', '--', 'cxl', '--version']);
    assert.equal(ver.status, 0, ver.stderr);
    assert.ok(Number(ver.stdout.trim()) >= 81, `cxl --version: ${ver.stdout}`);
    for (const p of ['daxctl', 'ndctl']) {
      const v = mf(['exec', file, 'n1', '--', p, '--version']);
      assert.equal(v.status, 0, `${p}: ${v.stderr}`);
      assert.ok(Number(v.stdout.trim()) >= 81, `${p} --version: ${v.stdout}`);
    }
    // device probing can finish slightly after the modules are loaded
    let memdevs: Array<{ memdev?: string; pmem_size?: number }> = [];
    for (let i = 0; i < 10 && !memdevs.length; i++) {
      const r = mf(['exec', file, 'n1', '--', 'cxl', 'list', '-M']);
      if (r.status === 0 && r.stdout.includes('"memdev"')) memdevs = JSON.parse(r.stdout);
      else await new Promise((res) => setTimeout(res, 1000));
    }
    assert.equal(memdevs.length, 1);
    assert.equal(memdevs[0].pmem_size, 256 * 1024 * 1024);
    // ndctl 81's media-error listing (bookworm's 76.1 has no such option)
    const media = mf(['exec', file, 'n1', '--', 'cxl', 'list', '-L', '--media-errors', '-m', 'mem0']);
    assert.equal(media.status, 0, media.stderr);
    const trace = mf(['exec', file, 'n1', '--', 'cat', '/sys/kernel/tracing/events/cxl/enable']);
    assert.equal(trace.status, 0, trace.stderr);
    assert.equal(trace.stdout.trim(), '1');
  } finally {
    const s = mf(['stop', file]);
    assert.equal(s.status, 0, s.stdout + s.stderr);
    assert.deepEqual(processesMentioning(run), [], 'no QEMU left');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('QEMU 7.2 boots the 6.1 image by default, and 6.12 where kernel-version says so', { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 20 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-61-'));
  const run = join(dir, 'run');
  const file = join(dir, 'two.cluster.xml');
  writeFileSync(file, `<cluster name="two">
  <node name="old" memory="512M"/>
  <node name="new" memory="512M"><guest kernel-version="6.12"/></node>
</cluster>
`);
  const env = { MEMFABRIC_RUN_DIR: run, MEMFABRIC_ACCEL: 'tcg', MEMFABRIC_QEMU: '' };
  const mf = (args: string[]) => runCliEnv(args, env, { timeoutMs: 600_000 });
  try {
    const b = mf(['boot', file]);
    assert.equal(b.status, 0, b.stdout + b.stderr);
    const old = mf(['exec', file, 'old', '--', 'uname', '-r']);
    assert.match(old.stdout.trim(), /^6\.1\.\d+-\d+-amd64$/, old.stderr);
    const nu = mf(['exec', file, 'new', '--', 'uname', '-r']);
    assert.match(nu.stdout.trim(), /^6\.12\./, nu.stderr);
    // tracefs is harmless on 6.1: no cxl events there, none enabled
    const t61 = mf(['exec', file, 'old', '--', 'sh', '-c', 'test -e /sys/kernel/tracing/events/cxl && echo has || echo none']);
    assert.equal(t61.stdout.trim(), 'none');
    const v61 = mf(['exec', file, 'old', '--', 'cxl', '--version']);
    assert.match(v61.stdout.trim(), /^76/, 'bookworm\'s ndctl in the 6.1 image');
  } finally {
    const s = mf(['stop', file]);
    assert.equal(s.status, 0, s.stdout + s.stderr);
    assert.deepEqual(processesMentioning(run), [], 'no QEMU left');
    rmSync(dir, { recursive: true, force: true });
  }
});
