/**
 * Regions and DAX in one step (issue 16), on real guests under QEMU 10.0 with
 * the 6.12 guest (TCG):
 *  - examples/tigon-region-devdax.cluster.xml: boot makes the pmem region and
 *    its device-DAX; a write through /dev/dax0.0 (daxio) reads back and lands
 *    in the host's backing file at the DAX device's offset; after a stop, the
 *    next boot finds the namespace again on the label storage, with the data;
 *  - examples/cxl-interleave-system-ram.cluster.xml: a 2-way ram region over
 *    two host bridges becomes NUMA node 1 of 512 MiB, at the window's address
 *    that `layout` predicts;
 *  - what the rules cxl-region-hypervisor and cxl-region-guest-tools stand on,
 *    in the guest's own words: a CPU with the hypervisor bit cannot commit a
 *    region on 6.12, and the 6.1 guest's cxl cannot make a ram one.
 * Topologies, backing files and run directories live in temp dirs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QEMU10, REPO, hasQemu10, processesMentioning, runCliWithRunDir } from './support/cli';
import { qemu10Cluster } from './support/qemu10-cluster';

const MiB = 2 ** 20;
const skip = !hasQemu10() && 'QEMU 10.0 missing';

/** An example in a fresh directory, run under QEMU 10.0 (support/qemu10-cluster.ts). */
const cluster = (example: string) => qemu10Cluster('memfabric-regions-', example, readFileSync(join(REPO, 'examples', example), 'utf8'));

test('Tigon in one step: boot makes the pmem region and /dev/dax0.0; daxio writes and reads it; the host file holds it; the next boot finds it again', { skip, timeout: 600_000 }, () => {
  const { dir, file, mf, sh, end } = cluster('tigon-region-devdax.cluster.xml');
  try {
    const boot = mf(['boot', file]);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    assert.match(boot.stderr, /tigon: region0 pmem 256 MiB at 0x[0-9a-f]+ on decoder0\.0 \(1 way: mem0\) → \/dev\/dax0\.0 devdax \d+ MiB/);
    const st = JSON.parse(mf(['status', '--format', 'json', file]).stdout) as { nodes: { regions: { region: string; resource: string; dax: { device: string; mode: string; size: string } }[] }[] };
    const [r] = st.nodes[0].regions;
    assert.deepEqual([r.region, r.dax.device, r.dax.mode], ['region0', 'dax0.0', 'devdax']);
    assert.match(mf(['status', file]).stdout, /^tigon: region0 pmem 256 MiB .*\/dev\/dax0\.0 devdax/m);

    // Where dax0.0 sits in the region, from the guest's /proc/iomem: its offset is the DPA, the backing file's offset.
    const iomem = sh('tigon', 'cat /proc/iomem').stdout;
    const daxStart = BigInt('0x' + /^\s*([0-9a-f]+)-[0-9a-f]+ : dax0\.0$/m.exec(iomem)![1]);
    const offset = Number(daxStart - BigInt(r.resource));
    const w = sh('tigon', 'printf MEMFABRIC-TIGON > /tmp/in && daxio -i /tmp/in -o /dev/dax0.0 -l 15 && daxio -i /dev/dax0.0 -o /tmp/out -l 15 && cat /tmp/out');
    assert.equal(w.status, 0, w.stderr);
    assert.match(w.stdout, /MEMFABRIC-TIGON$/);
    const fd = openSync(join(dir, 'tigon-pmem0.raw'), 'r');
    const buf = Buffer.alloc(15);
    readSync(fd, buf, 0, 15, offset);
    closeSync(fd);
    assert.equal(buf.toString('latin1'), 'MEMFABRIC-TIGON', `the host file at the DAX device's offset 0x${offset.toString(16)}`);

    assert.equal(mf(['stop', file]).status, 0);
    // The label storage keeps the namespace: the second boot uses it as it is, and the data is still there.
    const again = mf(['boot', file]);
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.match(again.stderr, /region0 pmem 256 MiB .*\/dev\/dax0\.0 devdax/);
    const back = sh('tigon', 'daxio -i /dev/dax0.0 -o /tmp/out -l 15 && cat /tmp/out');
    assert.match(back.stdout, /MEMFABRIC-TIGON$/, back.stderr);
  } finally {
    end();
  }
});

test('an interleaved ram region over two host bridges becomes NUMA node 1 of 512 MiB, at the window layout predicts', { skip, timeout: 600_000 }, () => {
  const { file, mf, sh, end } = cluster('cxl-interleave-system-ram.cluster.xml');
  try {
    const boot = mf(['boot', '--format', 'json', file]);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    const b = JSON.parse(boot.stdout) as { nodes: { regions: { region: string; type: string; ways: number; size: string; resource: string; memdevs: string[]; dax: { device: string; mode: string; numaNode: number; size: string } }[] }[] };
    const [r] = b.nodes[0].regions;
    assert.deepEqual([r.region, r.type, r.ways, r.size, [...r.memdevs].sort()], ['region0', 'ram', 2, String(512 * MiB), ['mem0', 'mem1']]);
    assert.deepEqual([r.dax.device, r.dax.mode, r.dax.numaNode, r.dax.size], ['dax0.0', 'system-ram', 1, String(512 * MiB)]);
    // the guest's NUMA node 1 is the region's memory
    const meminfo = sh('cxl2hb', 'cat /sys/devices/system/node/node1/meminfo').stdout;
    assert.match(meminfo, /Node 1 MemTotal:\s+524288 kB/);
    // at the start of CXL window 0, as predicted
    const layout = JSON.parse(mf(['layout', '--format', 'json', file]).stdout) as { nodes: { iomem: { name: string; start: string }[] }[] };
    const win = layout.nodes[0].iomem.find((e) => e.name === 'CXL Window 0');
    assert.ok(win, JSON.stringify(layout.nodes[0].iomem.map((e) => e.name)));
    assert.equal(BigInt(win.start), BigInt(r.resource));
    // the CPU the node got (none was named): without the hypervisor bit
    assert.match(sh('cxl2hb', 'grep -c hypervisor /proc/cpuinfo || true').stdout.trim(), /^0$/);

    // In a running node: the region taken down in the guest, `memfabric cxl region` makes it again.
    const down = sh('cxl2hb', 'daxctl offline-memory dax0.0 && cxl disable-region region0 && cxl destroy-region region0 && cxl list -R');
    assert.equal(down.status, 0, down.stderr);
    assert.match(down.stderr, /destroyed 1 region/);
    const again = mf(['cxl', 'region', '--format', 'json', file, 'cxl2hb']);
    assert.equal(again.status, 0, again.stdout + again.stderr);
    const [r2] = (JSON.parse(again.stdout) as { regions: { region: string; dax: { mode: string; numaNode: number } }[] }).regions;
    assert.deepEqual([r2.region, r2.dax.mode, r2.dax.numaNode], ['region0', 'system-ram', 1]);
    const st = mf(['status', file]).stdout;
    assert.equal(st.match(/^cxl2hb: region0 ram 512 MiB/gm)?.length, 1, st);
    // a node that asks for no region on that window
    const none = mf(['cxl', 'region', '--window', '3', file, 'cxl2hb']);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /cxl2hb asks for no region on window 3/);
  } finally {
    end();
  }
});

test("in the guest's words: the hypervisor bit stops a 6.12 guest's region commit; the 6.1 guest's cxl makes no ram region", { skip, timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-regions-'));
  const run = join(dir, 'run');
  const mf = (args: string[]) => runCliWithRunDir(run, args, { timeoutMs: 300_000, env: { MEMFABRIC_ACCEL: 'tcg', MEMFABRIC_QEMU: QEMU10 } });
  // Two nodes, no region asked for (so boot leaves the CPU alone): one on 6.12 with the default CPU, one on 6.1.
  const file = join(dir, 'raw.cluster.xml');
  const node = (name: string, kernel: string) => `  <node name="${name}" machine="q35" memory="1G" maxmem="2G" slots="1" cpus="1">
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12"><root-port id="rp0" port="0" chassis="0" slot="2"><type3 id="mem0" size="256M" kind="volatile" sn="0x10"/></root-port></host-bridge>
      <window size="4G" targets="cxl.1"/>
    </cxl>
  </node>`;
  writeFileSync(file, `<cluster name="raw">\n${node('k612', '6.12')}\n</cluster>\n`);
  const file61 = join(dir, 'raw61.cluster.xml');
  writeFileSync(file61, `<cluster name="raw61">\n  <guest kernel-version="6.1"/>\n${node('k61', '6.1')}\n</cluster>\n`);
  const create = ['cxl', 'create-region', '-m', '-d', 'decoder0.0', '-w', '1', '-t', 'ram', '-s', String(256 * MiB), 'mem0'];
  try {
    assert.equal(mf(['boot', file]).status, 0);
    assert.match(mf(['exec', file, 'k612', '--', 'grep', '-c', 'hypervisor', '/proc/cpuinfo']).stdout.trim(), /^[1-9]/);
    const c = mf(['exec', file, 'k612', '--', ...create]);
    assert.notEqual(c.status, 0);
    assert.match(c.stderr, /failed to commit decode: No such device or address/);
    assert.match(mf(['exec', file, 'k612', '--', 'dmesg']).stdout, /Failed to synchronize CPU cache state/);

    assert.equal(mf(['boot', file61]).status, 0);
    assert.match(mf(['exec', file61, 'k61', '--', 'uname', '-r']).stdout, /^6\.1\./);
    // (ndctl 76.1 says so and exits 0: no region is made)
    const c61 = mf(['exec', file61, 'k61', '--', ...create]);
    assert.match(c61.stderr, /region type 'ram' not supported yet/);
    assert.deepEqual(JSON.parse(mf(['exec', file61, 'k61', '--', 'cxl', 'list', '-R']).stdout.trim() || '[]'), []);
  } finally {
    mf(['stop', file]);
    mf(['stop', file61]);
    assert.deepEqual(processesMentioning(run), []);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the same ram region on the libvirt backend: the domain runs -cpu qemu64,-hypervisor through <qemu:commandline>, and boot makes the region over libvirt\'s agent channel', { skip, timeout: 600_000 }, async (t) => {
  const { PrivateLibvirtd } = await import('./support/libvirtd');
  const lv = await PrivateLibvirtd.start();
  if (typeof lv === 'string') return t.skip(lv);
  const { dir, file, mf, sh } = cluster('cxl-interleave-system-ram.cluster.xml');
  try {
    const boot = mf(['boot', '--backend', 'libvirt', '--connect', lv.uri, file]);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    assert.match(boot.stderr, /cxl2hb: region0 ram 512 MiB at 0x[0-9a-f]+ on decoder0\.0 \(2 ways: mem\d mem\d\) → \/dev\/dax0\.0 system-ram 512 MiB, NUMA node 1/);
    assert.match(sh('cxl2hb', 'cat /sys/devices/system/node/node1/meminfo').stdout, /Node 1 MemTotal:\s+524288 kB/);
    assert.equal(mf(['stop', file]).status, 0);
    assert.deepEqual(lv.virsh('list', '--all', '--name').stdout.trim(), '');
  } finally {
    mf(['stop', file]);
    lv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the other modes: a pmem region as fsdax (/dev/pmem0), a ram region as devdax (reconfigured from system-ram) and a pmem region as system-ram (a NUMA node), on three windows of one node', { skip, timeout: 600_000 }, () => {
  const { file, mf, end } = qemu10Cluster('memfabric-regions-', 'modes.cluster.xml', `<cluster name="modes">
  <node name="n" machine="q35" memory="1G" maxmem="2G" slots="1" cpus="1">
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12"><root-port id="rp0" port="0" chassis="0" slot="2"><type3 id="p" size="256M" path="p.raw" lsa-path="p-lsa.raw" sn="0x1"/></root-port></host-bridge>
      <host-bridge id="cxl.2" bus-nr="100"><root-port id="rp1" port="0" chassis="0" slot="3"><type3 id="v" size="256M" kind="volatile" sn="0x2"/></root-port></host-bridge>
      <host-bridge id="cxl.3" bus-nr="200"><root-port id="rp2" port="0" chassis="0" slot="4"><type3 id="k" size="256M" path="k.raw" lsa-path="k-lsa.raw" sn="0x3"/></root-port></host-bridge>
      <window size="4G" targets="cxl.1" region="pmem" dax="fsdax"/>
      <window size="4G" targets="cxl.2" region="ram" dax="devdax"/>
      <window size="4G" targets="cxl.3" region="pmem" dax="system-ram"/>
    </cxl>
  </node>
</cluster>
`);
  try {
    const boot = mf(['boot', '--format', 'json', file]);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    const regions = (JSON.parse(boot.stdout) as { nodes: { regions: { window: number; type: string; blockdev?: string; dax?: { device: string; mode: string; numaNode?: number; size: string } }[] }[] }).nodes[0].regions;
    assert.deepEqual(regions.map((r) => [r.window, r.type, r.blockdev ?? r.dax?.device, r.dax?.mode ?? 'fsdax']), [[0, 'pmem', 'pmem0', 'fsdax'], [1, 'ram', 'dax1.0', 'devdax'], [2, 'pmem', 'dax2.0', 'system-ram']]);
    const dev = mf(['exec', file, 'n', '--', 'sh', '-c', 'test -b /dev/pmem0 && test -c /dev/dax1.0 && daxctl list -d dax1.0']);
    assert.equal(dev.status, 0, dev.stderr);
    assert.match(dev.stdout, /"mode":"devdax"/);
    // the pmem region's memory is online as a NUMA node of its DAX device's size (less what the namespace keeps for its page map)
    const k = regions[2].dax!;
    assert.ok(k.numaNode !== undefined && k.numaNode > 0, JSON.stringify(k));
    const meminfo = mf(['exec', file, 'n', '--', 'cat', `/sys/devices/system/node/node${k.numaNode}/meminfo`]).stdout;
    const total = Number(new RegExp(`Node ${k.numaNode} MemTotal:\\s+(\\d+) kB`).exec(meminfo)?.[1]);
    assert.ok(total > 0 && total * 1024 <= Number(k.size), `node ${k.numaNode}: ${total} kB of a ${k.size}-byte dax device`);
  } finally {
    end();
  }
});
