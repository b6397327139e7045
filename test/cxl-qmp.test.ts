/**
 * memfabric cxl poison|error|event|dc (server/src/runtime/cxl-control.ts):
 * - the checks alone (no QEMU): alignment, capacity, DC regions and blocks,
 *   and which QEMU has which command (the bundled profiles' query-commands);
 * - on a real node under QEMU 10.0 (TCG, <guest image="none">: QEMU without a
 *   guest, ready when QMP answers): one host bridge, two root ports, a 256 MiB
 *   persistent Type 3 from the topology and a dynamic-capacity Type 3 written
 *   in <qemu> (<type3> has no DC attributes); QEMU accepts and refuses;
 * - on a node under QEMU 7.2, which has no CXL QMP command: refused, nothing sent.
 * A refused request must not touch QMP: while the test holds the node's only
 * QMP connection, a request that would need it cannot get an answer, and a
 * refused one still answers at once. The run directory is a temp dir; every
 * cluster is stopped, and no QEMU of ours is left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QEMU10, hasQemu, hasQemu10, processesMentioning, runCliAsync, runCliEnv } from './support/cli';
import { CXL_QMP_SINCE, CxlArgError, buildCxlCommand, missingCxlCommand, parseCxlArgs, type3Device } from '../server/src/runtime/cxl-control';
import { analyzeDocuments, NO_HOST } from '../server/src/engine/index';
import { BUNDLED } from '../server/src/engine/qemu/profile';

const topology = (dc: boolean) => `<?xml version="1.0" encoding="UTF-8"?>
<cluster name="cxlqmp">
  <guest image="none"/>
  <node name="n0" machine="q35" memory="512M" cpus="1">
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12">
        <root-port id="rp0" port="0" chassis="0" slot="1">
          <type3 id="mem0" size="256M" sn="0x1"/>
        </root-port>
        <root-port id="rp1" port="1" chassis="0" slot="2"/>
      </host-bridge>
      <window size="4G" targets="cxl.1"/>
    </cxl>
${dc ? '    <qemu>-object memory-backend-ram,id=dc0,size=512M -device cxl-type3,bus=rp1,id=dcd0,volatile-dc-memdev=dc0,num-dc-regions=2,sn=0x2</qemu>\n' : ''}  </node>
</cluster>
`;

const MiB = 1n << 20n;

// ------------------------------------------------------------------ the checks alone

function node(dc = true) {
  const [doc] = analyzeDocuments([{ text: topology(dc), source: '/tmp/cxlqmp.cluster.xml' }], NO_HOST, { qemu: BUNDLED[1] });
  return doc.nodes[0];
}
const build = (args: string[]) => {
  const req = parseCxlArgs(args);
  return buildCxlCommand(req, type3Device(node(), req.device));
};
const refusal = (args: string[]): CxlArgError => {
  try {
    build(args);
  } catch (e) {
    if (e instanceof CxlArgError) return e;
    throw e;
  }
  assert.fail(`not refused: ${args.join(' ')}`);
};

test('the devices as the topology describes them: capacity, QOM path, DC regions', () => {
  const mem0 = type3Device(node(), 'mem0');
  assert.deepEqual([mem0.qomPath, mem0.volatile, mem0.persistent, mem0.dynamic, mem0.capacity, mem0.dcRegions.length], ['/machine/peripheral/mem0', 0n, 256n * MiB, 0n, 256n * MiB, 0]);
  const dcd0 = type3Device(node(), 'dcd0');
  assert.equal(dcd0.capacity, 512n * MiB);
  assert.deepEqual(dcd0.dcRegions, [{ base: 0n, len: 256n * MiB }, { base: 256n * MiB, len: 256n * MiB }]);
  assert.throws(() => type3Device(node(), 'rp0'), /'rp0' of node n0 is a cxl-rp, not a CXL Type 3 device \(cxl-type3\); its Type 3 devices: mem0, dcd0/);
  assert.throws(() => type3Device(node(), 'nope'), /node n0 has no device 'nope' \(its CXL Type 3 devices: mem0, dcd0\)/);
});

test('poison, error, event and dc arguments: what is sent, and what is refused with the rule and the numbers', () => {
  assert.deepEqual(build(['poison', 'f', 'n0', 'mem0', '--start', '4K', '--length', '64']), { execute: 'cxl-inject-poison', arguments: { path: '/machine/peripheral/mem0', start: 4096, length: 64 } });
  const a = refusal(['poison', 'f', 'n0', 'mem0', '--start', '0x1001', '--length', '64']);
  assert.equal(a.rule, 'cxl-poison-align');
  assert.match(a.message, /--start 0x1001 \(~4 KiB\) is not a multiple of 64 bytes .* nearest are 0x1000 \(4 KiB\) and 0x1040/);
  assert.equal(refusal(['poison', 'f', 'n0', 'mem0', '--start', '0', '--length', '100']).rule, 'cxl-poison-align');
  assert.equal(refusal(['poison', 'f', 'n0', 'mem0', '--start', '0', '--length', '0']).rule, 'cxl-poison-length');
  const c = refusal(['poison', 'f', 'n0', 'mem0', '--start', '0xfffffc0', '--length', '128']);
  assert.equal(c.rule, 'cxl-poison-capacity');
  assert.match(c.message, /device physical addresses end at 0xfffffff/);
  // the last cache line is inside
  assert.equal(build(['poison', 'f', 'n0', 'mem0', '--start', '0xfffffc0', '--length', '64']).arguments.start, 0xfffffc0);

  assert.deepEqual(build(['error', 'uncorrectable', 'f', 'n0', 'mem0', '--type', 'internal', '--type', 'mem-data-ecc', '--header', '1,0x2']).arguments.errors,
    [{ type: 'internal', header: [1, 2] }, { type: 'mem-data-ecc', header: [1, 2] }]);
  assert.match(refusal(['error', 'correctable', 'f', 'n0', 'mem0', '--type', 'bogus']).message, /--type 'bogus' is not one of cache-data-ecc, mem-data-ecc/);
  assert.equal(refusal(['error', 'uncorrectable', 'f', 'n0', 'mem0', '--type', 'internal', '--header', Array(33).fill('0').join(',')]).rule, 'cxl-error-header');

  // the kind may follow DEVICE too; the flags default to the log's severity
  assert.deepEqual(build(['event', 'f', 'n0', 'mem0', 'general-media', '--dpa', '0x2000', '--log', 'failure']).arguments,
    { path: '/machine/peripheral/mem0', log: 'failure', flags: 2, dpa: 0x2000, descriptor: 0, type: 0, 'transaction-type': 0 });
  assert.equal(refusal(['event', 'general-media', 'f', 'n0', 'mem0', '--dpa', '256M']).rule, 'cxl-event-dpa');
  assert.equal(refusal(['event', 'general-media', 'f', 'n0', 'mem0', '--dpa', '0', '--device', '0x1000000']).rule, 'cxl-field-range');
  assert.equal(refusal(['event', 'memory-module', 'f', 'n0', 'mem0', '--life-used', '101']).rule, 'cxl-field-range');
  assert.equal(build(['event', 'memory-module', 'f', 'n0', 'mem0', '--temperature', '-40']).arguments.temperature, -40);
  assert.match(refusal(['event', 'dram', 'f', 'n0', 'mem0']).message, /needs --dpa/);

  assert.deepEqual(build(['dc', 'add', 'f', 'n0', 'dcd0', '--extent', '0:2M', '--extent', '4M:2M', '--region', '1']).arguments,
    { path: '/machine/peripheral/dcd0', 'host-id': 0, 'selection-policy': 'prescriptive', region: 1, extents: [{ offset: 0, len: 2 * 2 ** 20 }, { offset: 4 * 2 ** 20, len: 2 * 2 ** 20 }] });
  assert.equal(build(['dc', 'release', 'f', 'n0', 'dcd0', '--forced-removal', '--extent', '0:2M']).arguments['forced-removal'], true);
  assert.equal(refusal(['dc', 'add', 'f', 'n0', 'mem0', '--extent', '0:2M']).rule, 'cxl-dc-none');
  assert.equal(refusal(['dc', 'add', 'f', 'n0', 'dcd0', '--extent', '0:2M', '--region', '2']).rule, 'cxl-dc-region');
  assert.equal(refusal(['dc', 'add', 'f', 'n0', 'dcd0', '--extent', '1M:2M']).rule, 'cxl-dc-extent-align');
  assert.equal(refusal(['dc', 'add', 'f', 'n0', 'dcd0', '--extent', '0:0']).rule, 'cxl-dc-extent-length');
  assert.match(refusal(['dc', 'add', 'f', 'n0', 'dcd0', '--extent', '254M:4M']).message, /ends at 0x10200000 \(258 MiB\), past the end of DC region 0 of 'dcd0' \(0x10000000 \(256 MiB\)/);
  assert.equal(refusal(['dc', 'add', 'f', 'n0', 'dcd0', '--extent', '0:4M', '--extent', '2M:2M']).rule, 'cxl-dc-extent-overlap');

  assert.equal(refusal(['poison', 'f', 'n0']).rule, 'usage');
  assert.match(refusal(['dc', 'f', 'n0', 'dcd0']).message, /cxl dc needs one of add, release/);
  assert.match(refusal(['poison', 'f', 'n0', 'mem0', '--extent', '0:2M']).message, /takes no option --extent/);
});

test('which QEMU has which command: the bundled profiles\' query-commands, else the version against CXL_QMP_SINCE', () => {
  const [q72, q100] = BUNDLED;
  for (const c of Object.keys(CXL_QMP_SINCE) as (keyof typeof CXL_QMP_SINCE)[]) {
    assert.equal(missingCxlCommand(q100, c), undefined, c);
    assert.equal(missingCxlCommand(q72, c), `${c} needs QEMU ≥ ${CXL_QMP_SINCE[c]} (this node runs QEMU ${q72.version})`);
  }
  // A profile read before commands were recorded: the version decides.
  assert.equal(missingCxlCommand({ version: '9.0.0' }, 'cxl-inject-poison'), undefined);
  assert.equal(missingCxlCommand({ version: '9.0.0' }, 'cxl-add-dynamic-capacity'), 'cxl-add-dynamic-capacity needs QEMU ≥ 9.1 (this node runs QEMU 9.0.0)');
});

// ------------------------------------------------------------------ real QEMU

/** Hold the node's QMP monitor (QEMU serves one client at a time) until released. */
async function holdQmp(socket: string): Promise<() => void> {
  const sock = net.createConnection(socket);
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.once('data', () => resolve()); // the greeting
  });
  return () => sock.destroy();
}

type Out = { ok: boolean; rule?: string; error?: string; sent: unknown; answer?: unknown; qemu?: string };

function cluster(prefix: string, dc: boolean, qemu: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const run = join(dir, 'run');
  const file = join(dir, 'cxlqmp.cluster.xml');
  writeFileSync(file, topology(dc));
  const env = { MEMFABRIC_RUN_DIR: run, MEMFABRIC_ACCEL: 'tcg', MEMFABRIC_QEMU: qemu };
  const mf = (args: string[]) => runCliEnv(args, env, { timeoutMs: 120_000 });
  const mfAsync = (args: string[]) => runCliAsync(args, env, { timeoutMs: 60_000 });
  const cxl = (args: string[]) => {
    const [action, ...rest] = args;
    const kinds = ['add', 'release', 'general-media', 'dram', 'memory-module', 'uncorrectable', 'correctable'];
    const kind = kinds.includes(rest[0]) ? [rest.shift()!] : [];
    return mf(['cxl', action, ...kind, file, 'n0', ...rest, '--format', 'json']);
  };
  const json = (r: { stdout: string; stderr: string }): Out => {
    try {
      return JSON.parse(r.stdout) as Out;
    } catch {
      assert.fail(`not JSON: ${r.stdout}${r.stderr}`);
    }
  };
  const cleanup = () => {
    mf(['stop', file]);
    assert.deepEqual(processesMentioning(run), [], 'no QEMU of this run is left');
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, run, file, mf, mfAsync, cxl, json, cleanup };
}

test('QEMU 10.0: poison, events, errors and dynamic capacity accepted; bad arguments refused before QMP; QEMU\'s refusals quoted',
  { skip: !hasQemu10() && `no QEMU 10.0 at ${QEMU10} (scripts/qemu10-setup.sh)`, timeout: 180_000 }, async () => {
    const c = cluster('memfabric-cxlqmp10-', true, QEMU10);
    try {
      const boot = c.mf(['boot', c.file, '--timeout', '60']);
      assert.equal(boot.status, 0, boot.stdout + boot.stderr);
      const st = JSON.parse(c.mf(['status', '--format', 'json', c.file]).stdout) as { nodes: { qmpSocket: string; qemu: string }[] };
      assert.equal(st.nodes[0].qemu, QEMU10, 'boot records the QEMU it started');

      const ok = c.cxl(['poison', 'mem0', '--start', '0x1000', '--length', '64']);
      assert.equal(ok.status, 0, ok.stdout + ok.stderr);
      assert.deepEqual(c.json(ok), {
        ok: true, node: 'n0', device: 'mem0', path: '/machine/peripheral/mem0', qemu: '10.0.2',
        sent: { execute: 'cxl-inject-poison', arguments: { path: '/machine/peripheral/mem0', start: 4096, length: 64 } },
        answer: { return: {} },
        // (a node without a guest has nothing to read back: test/cxl-guest.test.ts reads a guest's view)
        guest: { notes: ['the guest cannot be asked: node n0 boots no guest (<guest image="none">): there is nothing to run commands in'] },
      });
      // QEMU keeps the record: the same range again is QEMU's refusal, quoted, exit 1
      const again = c.cxl(['poison', 'mem0', '--start', '0x1000', '--length', '64']);
      assert.equal(again.status, 1, again.stdout + again.stderr);
      assert.deepEqual(c.json(again).answer, { error: { class: 'GenericError', desc: 'Overlap with existing poisoned region not supported' } });
      assert.match(again.stderr, /QEMU 10\.0\.2 refused cxl-inject-poison on n0 mem0: "Overlap with existing poisoned region not supported"/);

      // Refusals of ours, while the test holds the only QMP connection: they answer at once (exit 2), nothing sent.
      const release = await holdQmp(st.nodes[0].qmpSocket);
      try {
        const mis = await c.mfAsync(['cxl', 'poison', c.file, 'n0', 'mem0', '--start', '0x1001', '--length', '64', '--timeout', '3']);
        assert.equal(mis.status, 2, mis.stdout + mis.stderr);
        assert.equal(mis.stderr, 'memfabric cxl: n0 mem0: poison --start 0x1001 (~4 KiB) is not a multiple of 64 bytes (a cache line): QEMU wants it 64-byte aligned (the nearest are 0x1000 (4 KiB) and 0x1040 (~4.06 KiB))\n');
        const past = await c.mfAsync(['cxl', 'poison', c.file, 'n0', 'mem0', '--start', '256M', '--length', '64', '--format', 'json', '--timeout', '3']);
        assert.equal(past.status, 2, past.stdout + past.stderr);
        const pj = c.json(past);
        assert.deepEqual([pj.ok, pj.rule, pj.sent], [false, 'cxl-poison-capacity', null]);
        assert.match(pj.error!, /poison 0x10000000 \(256 MiB\)…0x1000003f .* is not inside device 'mem0' \(capacity 0x10000000 \(256 MiB\)\): device physical addresses end at 0xfffffff/);
        // the control: a request that does need QMP gets no answer while it is held
        const held = await c.mfAsync(['cxl', 'poison', c.file, 'n0', 'mem0', '--start', '0x2000', '--length', '64', '--timeout', '2']);
        assert.equal(held.status, 1, held.stdout + held.stderr);
        assert.match(held.stderr, /QEMU did not greet on its QMP socket/);
      } finally {
        release();
      }

      const gm = c.cxl(['event', 'general-media', 'mem0', '--dpa', '0x1000', '--log', 'failure', '--descriptor', '1', '--type', '0', '--transaction-type', '1', '--channel', '2', '--component-id', 'memfabric']);
      assert.equal(gm.status, 0, gm.stdout + gm.stderr);
      assert.deepEqual(c.json(gm).sent, {
        execute: 'cxl-inject-general-media-event',
        arguments: { path: '/machine/peripheral/mem0', log: 'failure', flags: 2, dpa: 4096, descriptor: 1, type: 0, 'transaction-type': 1, channel: 2, 'component-id': 'memfabric' },
      });
      assert.deepEqual(c.json(gm).answer, { return: {} });
      for (const args of [['event', 'dram', 'mem0', '--dpa', '0x40', '--row', '7'], ['event', 'memory-module', 'mem0', '--temperature', '85'],
        ['error', 'uncorrectable', 'mem0', '--type', 'internal'], ['error', 'correctable', 'mem0', '--type', 'mem-data-ecc']]) {
        const r = c.cxl(args);
        assert.equal(r.status, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
        assert.deepEqual(c.json(r).answer, { return: {} });
      }

      // dynamic capacity on the <qemu> device: two extents of region 0, then the same again while pending (QEMU's refusal)
      const add = c.cxl(['dc', 'add', 'dcd0', '--extent', '0:2M', '--extent', '4M:2M']);
      assert.equal(add.status, 0, add.stdout + add.stderr);
      assert.deepEqual(c.json(add).answer, { return: {} });
      const pending = c.cxl(['dc', 'add', 'dcd0', '--extent', '0:2M']);
      assert.equal(pending.status, 1);
      assert.deepEqual(c.json(pending).answer, { error: { class: 'GenericError', desc: 'cannot add DPA again while still pending' } });
      const free = c.cxl(['dc', 'add', 'dcd0', '--extent', '8M:2M', '--policy', 'free']);
      assert.equal(free.status, 1);
      assert.match(free.stderr, /refused cxl-add-dynamic-capacity on n0 dcd0: "Selection policy not supported"/);
      const unaligned = c.cxl(['dc', 'add', 'dcd0', '--extent', '1M:2M']);
      assert.equal(unaligned.status, 2);
      assert.equal(c.json(unaligned).rule, 'cxl-dc-extent-align');
      const noDc = c.cxl(['dc', 'add', 'mem0', '--extent', '0:2M']);
      assert.equal(noDc.status, 2);
      assert.equal(c.json(noDc).rule, 'cxl-dc-none');
    } finally {
      c.cleanup();
    }
  });

test('QEMU 7.2 has no CXL QMP command: refused with the version it needs, nothing sent',
  { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 120_000 }, async () => {
    const c = cluster('memfabric-cxlqmp72-', false, 'qemu-system-x86_64');
    try {
      const boot = c.mf(['boot', c.file, '--timeout', '60']);
      assert.equal(boot.status, 0, boot.stdout + boot.stderr);
      const st = JSON.parse(c.mf(['status', '--format', 'json', c.file]).stdout) as { nodes: { qmpSocket: string; qemu: string }[] };
      assert.match(st.nodes[0].qemu, /\/qemu-system-x86_64$/);
      const release = await holdQmp(st.nodes[0].qmpSocket);
      try {
        const r = await c.mfAsync(['cxl', 'poison', c.file, 'n0', 'mem0', '--start', '0x1000', '--length', '64', '--format', 'json', '--timeout', '3']);
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /^memfabric cxl: cxl-inject-poison needs QEMU ≥ 8\.1 \(this node runs QEMU 7\.2\.\d+\); nothing sent\n$/);
        const j = c.json(r);
        assert.deepEqual([j.ok, j.rule, j.sent], [false, 'cxl-qemu-version', null]);
        assert.match(j.qemu!, /^7\.2\./);
        const e = await c.mfAsync(['cxl', 'error', 'correctable', c.file, 'n0', 'mem0', '--type', 'physical', '--timeout', '3']);
        assert.equal(e.status, 1);
        assert.match(e.stderr, /cxl-inject-correctable-error needs QEMU ≥ 8\.0 \(this node runs QEMU 7\.2\.\d+\)/);
      } finally {
        release();
      }
    } finally {
      c.cleanup();
    }
  });
