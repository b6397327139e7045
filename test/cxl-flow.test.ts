/**
 * The CXL -> region -> devdax flow of the Tigon guide on a real guest (TCG):
 * one node, one host bridge, one root port, one 256 MiB persistent Type 3
 * device on a file (with its LSA on a file), one 4 GiB window. In the guest:
 *   cxl list -M
 *   cxl create-region -m -d decoder0.0 -w 1 -t pmem -s 256M mem0
 *   ndctl create-namespace -r region0 -m devdax
 *   daxctl list
 * (The guide's `cxl create-region -d decoder0.0 -w 1 mem0` is refused by the
 * guest's cxl 76.1: it wants -m to take memdev names.)
 * The topology, its backing files and the run directory (MEMFABRIC_RUN_DIR)
 * live in a temp dir; the host's /dev/dax is not used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, hasQemu, runCliWithRunDir } from './support/cli';

const mf = (runBase: string, args: string[], timeoutMs = 60_000) => runCliWithRunDir(runBase, args, { timeoutMs });
import { buildImage } from '../server/src/runtime/image';


const TOPOLOGY = `<?xml version="1.0" encoding="UTF-8"?>
<cluster name="cxl-flow">
  <node name="cxl0" machine="q35" memory="1G" maxmem="2G" slots="1" cpus="2">
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12">
        <root-port id="rp0" port="0" chassis="0" slot="1">
          <type3 id="mem0" size="256M" path="mem0.raw" lsa-path="mem0-lsa.raw" lsa-size="256M" sn="0x1"/>
        </root-port>
      </host-bridge>
      <window size="4G" targets="cxl.1"/>
    </cxl>
  </node>
</cluster>
`;

const MiB = 2 ** 20;

test('CXL flow: cxl list, create-region, ndctl devdax namespace, daxctl list (real guest)', { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 180_000 }, async () => {
  await buildImage({}); // cached normally
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-cxlflow-'));
  const run = join(dir, 'run');
  const file = join(dir, 'cxl-flow.cluster.xml');
  writeFileSync(file, TOPOLOGY);
  const guest = (...cmd: string[]) => {
    const r = mf(run, ['exec', file, 'cxl0', '--', ...cmd]);
    return r;
  };
  const json = (cmd: string[]): unknown => {
    const r = guest(...cmd);
    assert.equal(r.status, 0, `${cmd.join(' ')}: ${r.stdout}${r.stderr}`);
    try {
      return JSON.parse(r.stdout);
    } catch {
      assert.fail(`${cmd.join(' ')}: not JSON: ${r.stdout}`);
    }
  };
  try {
    const check = mf(run, ['check', file]);
    assert.equal(check.status, 0, check.stdout + check.stderr);

    const boot = mf(run, ['boot', file, '--timeout', '90'], 120_000);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    assert.match(boot.stdout, /^cxl0\s+ready\s+\d+/m);
    assert.equal(statSync(join(dir, 'mem0.raw')).size, 256 * MiB);
    assert.equal(statSync(join(dir, 'mem0-lsa.raw')).size, 256 * MiB);

    // the guest's memory map is the predicted one (the CXL window included)
    const v = mf(run, ['verify', '--format', 'json', file]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.deepEqual(JSON.parse(v.stdout), { nodes: [{ name: 'cxl0', ok: true, differences: [] }] });

    // the memdev and the root decoder (the 4 GiB window)
    const memdevs = json(['cxl', 'list', '-M']) as { memdev: string; pmem_size: number; serial: number }[];
    assert.equal(memdevs.length, 1, JSON.stringify(memdevs));
    assert.deepEqual({ memdev: memdevs[0].memdev, pmem_size: memdevs[0].pmem_size, serial: memdevs[0].serial }, { memdev: 'mem0', pmem_size: 256 * MiB, serial: 1 });
    const roots = json(['cxl', 'list', '-D', '-d', 'root']) as { decoder: string; size: number; interleave_ways: number; pmem_capable?: boolean }[];
    assert.equal(roots.length, 1, JSON.stringify(roots));
    assert.equal(roots[0].decoder, 'decoder0.0');
    assert.equal(roots[0].size, 4 * 2 ** 30);
    assert.equal(roots[0].interleave_ways, 1);
    assert.equal(roots[0].pmem_capable, true);

    // the guide's form (memdev names without -m) is refused by this cxl tool
    const guide = guest('cxl', 'create-region', '-d', 'decoder0.0', '-w', '1', 'mem0');
    assert.notEqual(guide.status, 0, guide.stdout + guide.stderr);
    assert.match(guide.stderr, /must specify option for target object types \(-m\)/);

    // the form that works: -m (the arguments are memdevs), a pmem region of the whole device
    const cr = guest('cxl', 'create-region', '-m', '-d', 'decoder0.0', '-w', '1', '-t', 'pmem', '-s', '256M', 'mem0');
    assert.equal(cr.status, 0, cr.stdout + cr.stderr);
    assert.match(cr.stderr, /created 1 region/);
    const region = JSON.parse(cr.stdout) as { region: string; size: number; interleave_ways: number; decode_state: string; mappings: { position: number; memdev: string }[] };
    assert.equal(region.region, 'region0');
    assert.equal(region.size, 256 * MiB);
    assert.equal(region.interleave_ways, 1);
    assert.equal(region.decode_state, 'commit');
    assert.deepEqual(region.mappings.map((m) => [m.position, m.memdev]), [[0, 'mem0']]);

    // libnvdimm sees it as a pmem region
    const ndRegions = json(['ndctl', 'list', '-R']) as { dev: string; size: number; type: string }[];
    assert.deepEqual(ndRegions.map((r) => [r.dev, r.size, r.type]), [['region0', 256 * MiB, 'pmem']]);

    // a device-DAX namespace on it
    const ns = json(['ndctl', 'create-namespace', '-r', 'region0', '-m', 'devdax']) as {
      dev: string; mode: string; size: number; daxregion: { devices: { chardev: string; size: number; mode: string }[] };
    };
    assert.equal(ns.dev, 'namespace0.0');
    assert.equal(ns.mode, 'devdax');
    assert.ok(ns.size > 200 * MiB && ns.size <= 256 * MiB, `namespace size ${ns.size}`);
    assert.deepEqual(ns.daxregion.devices.map((d) => [d.chardev, d.size, d.mode]), [['dax0.0', ns.size, 'devdax']]);

    const dax = json(['daxctl', 'list']) as { chardev: string; size: number; mode: string; align: number }[];
    assert.deepEqual(dax.map((d) => [d.chardev, d.size, d.mode]), [['dax0.0', ns.size, 'devdax']]);
    assert.equal(dax[0].align, 2 * MiB);
    const dev = guest('test', '-c', '/dev/dax0.0');
    assert.equal(dev.status, 0, 'the guest has the character device /dev/dax0.0');

    // memfabric view daxctl / cxl, as the editor shows them
    const vd = mf(run, ['view', '--format', 'json', file, 'cxl0', 'daxctl']);
    assert.equal(vd.status, 0, vd.stderr);
    assert.deepEqual(JSON.parse(vd.stdout), { node: 'cxl0', daxctl: dax });
    const vdt = mf(run, ['view', file, 'cxl0', 'daxctl']);
    assert.equal(vdt.status, 0, vdt.stderr);
    assert.match(vdt.stdout, /^# cxl0: daxctl list\nchardev dax0\.0 {2}size \d+ MiB {2}.*align 2 MiB {2}mode devdax$/m);
    const vc = mf(run, ['view', '--format', 'json', file, 'cxl0', 'cxl']);
    assert.equal(vc.status, 0, vc.stderr);
    assert.match(JSON.stringify((JSON.parse(vc.stdout) as { cxl: unknown }).cxl), /"region":"region0"[^}]*"decode_state":"commit"/);
    const vct = mf(run, ['view', file, 'cxl0', 'cxl']);
    assert.equal(vct.status, 0, vct.stderr);
    assert.match(vct.stdout, /^ +region region0 .*size 256 MiB .*decode_state commit$/m);
    assert.match(vct.stdout, /^ +memdev mem0 {2}pmem_size 256 MiB {2}serial 0x1 /m);

      } finally {
    mf(run, ['stop', file]);
    rmSync(dir, { recursive: true, force: true });
  }
});
