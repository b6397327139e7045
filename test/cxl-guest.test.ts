/**
 * memfabric cxl … and what the guest saw of it (issue 16, part 3), on real
 * guests under QEMU 10.0: the 6.12 guest traces each injected event as its
 * cxl_* record with the injected fields and lists injected poison
 * (cxl list --media-errors); the 6.1 guest's tools say what they cannot show.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasQemu10 } from './support/cli';
import { qemu10Cluster } from './support/qemu10-cluster';

const TOPOLOGY = (guest: string) => `<cluster name="ras">
  ${guest}
  <node name="n" machine="q35" memory="1G" maxmem="2G" slots="1" cpus="1">
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12"><root-port id="rp0" port="0" chassis="0" slot="2"><type3 id="t3" size="256M" path="t3.raw" lsa-path="t3-lsa.raw" sn="0x5"/></root-port></host-bridge>
      <window size="4G" targets="cxl.1"/>
    </cxl>
  </node>
</cluster>
`;

interface Out { ok: boolean; sent: { execute: string }; guest: { memdev?: string; records: string[]; mediaErrors?: { offset: number; length: number; source: string }[]; notes: string[] } }

interface Events { node: string; since: number; last: number; records: { seq: number; time: number; event: string; memdev?: string; fields: Record<string, string>; line: string }[]; note?: string }

function withNode(guest: string, body: (cxl: (args: string[]) => Out, events: (since?: number) => Events, eventsText: () => string, sh: (cmd: string) => { status: number | null; stdout: string; stderr: string }) => void) {
  const { file, mf, sh, end } = qemu10Cluster('memfabric-ras-', 'ras.cluster.xml', TOPOLOGY(guest));
  try {
    const boot = mf(['boot', file]);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    body((args) => {
      const [what, ...rest] = args;
      const r = mf(['cxl', what, '--format', 'json', file, 'n', 't3', ...rest]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      return JSON.parse(r.stdout) as Out;
    }, (since) => {
      const r = mf(['cxl', 'events', '--format', 'json', file, 'n', ...(since === undefined ? [] : ['--since', String(since)])]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      return JSON.parse(r.stdout) as Events;
    }, () => {
      const r = mf(['cxl', 'events', file, 'n']);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      return r.stdout;
    }, (cmd) => sh('n', cmd));
  } finally {
    end();
  }
}

test('the 6.12 guest sees what memfabric cxl injects: the poison list, and each event as its trace record with the injected fields', { skip: !hasQemu10() && 'QEMU 10.0 missing', timeout: 300_000 }, () => {
  withNode('', (cxl) => {
    const p = cxl(['poison', '--start', '0x1000', '--length', '64']);
    assert.equal(p.guest.memdev, 'mem0');
    assert.deepEqual(p.guest.mediaErrors, [{ offset: 4096, length: 64, source: 'Internal' }]);
    assert.match(p.guest.records.join('\n'), /cxl_poison: memdev=mem0 .*serial=5 .*dpa=0x1000 dpa_length=0x40 source=Internal/);

    const gm = cxl(['event', 'general-media', '--dpa', '0x2000', '--log', 'warning']);
    assert.equal(gm.guest.records.length, 1, JSON.stringify(gm.guest));
    assert.match(gm.guest.records[0], /cxl_general_media: memdev=mem0 .*serial=5 log=Warning .*: dpa=2000 .*type='ECC Error'/);

    const dram = cxl(['event', 'dram', '--dpa', '0x8000']);
    assert.match(dram.guest.records.join('\n'), /cxl_dram: memdev=mem0 .*: dpa=8000 /);

    const mm = cxl(['event', 'memory-module']);
    assert.match(mm.guest.records.join('\n'), /cxl_memory_module: memdev=mem0 .*event_type='Health Status Change'/);

    // RAS errors arrive as PCIe internal errors, masked by default: memfabric unmasks them, and the AER driver's records come.
    const cor = cxl(['error', 'correctable', '--type', 'cache-data-ecc']);
    assert.match(cor.guest.notes.join('\n'), /unmasked internal errors in 0000:[0-9a-f:.]+'s AER masks/);
    assert.match(cor.guest.records.join('\n'), /cxl_aer_correctable_error: memdev=mem0 .*status: 'Cache Data ECC Error'/);
    const unc = cxl(['error', 'uncorrectable', '--type', 'cache-data-parity']);
    assert.match(unc.guest.records.join('\n'), /cxl_aer_uncorrectable_error: memdev=mem0 .*status: 'Cache Data Parity Error' first_error: 'Cache Data Parity Error'/);
  });
});

test("the 6.1 guest's tools say what they cannot show: no media error list, no cxl trace events", { skip: !hasQemu10() && 'QEMU 10.0 missing', timeout: 300_000 }, () => {
  withNode('<guest kernel-version="6.1"/>', (cxl, events) => {
    const p = cxl(['poison', '--start', '0x1000', '--length', '64']);
    assert.equal(p.ok, true);
    assert.match(p.guest.notes.join('\n'), /the guest's cxl cannot list media errors .*the 6\.12 guest's ndctl 81 can/);
    assert.match(p.guest.notes.join('\n'), /the guest's kernel has no cxl_poison trace event/);
    const gm = cxl(['event', 'general-media', '--dpa', '0x2000']);
    assert.match(gm.guest.notes.join('\n'), /has no cxl_general_media trace event/);
    // memfabric cxl events: a note, exit 0, no records
    const ev = events();
    assert.deepEqual(ev.records, []);
    assert.match(ev.note ?? '', /the guest's kernel has no cxl trace events/);
  });
});

test('memfabric cxl events: the 6.12 guest\'s cxl trace records, parsed, and --since N returns only what came after, across a ring that wrapped', { skip: !hasQemu10() && 'QEMU 10.0 missing', timeout: 300_000 }, () => {
  withNode('', (cxl, events, eventsText, sh) => {
    // a small ring (one page per CPU), so that it wraps below
    assert.equal(sh('echo 4 > /sys/kernel/tracing/buffer_size_kb').status, 0);
    const gm = cxl(['event', 'general-media', '--dpa', '0x2000']);
    assert.equal(gm.ok, true);
    const ev = events();
    assert.equal(ev.node, 'n');
    const rec = ev.records.find((r) => r.event === 'cxl_general_media');
    assert.ok(rec, `no cxl_general_media record: ${JSON.stringify(ev)}`);
    assert.equal(rec.memdev, 'mem0');
    assert.equal(rec.fields.dpa, '2000');
    assert.equal(rec.fields.serial, '5');
    assert.equal(rec.fields.type, 'ECC Error');
    assert.ok(rec.time > 0 && Number.isFinite(rec.time), String(rec.time));
    assert.ok(ev.last >= rec.seq);
    // nothing new after the last record
    assert.deepEqual(events(ev.last).records, []);
    // the text form: one line per record
    assert.match(eventsText(), /^n #\d+ \d+\.\d{6} cxl_general_media: memdev=mem0 .*dpa=2000 /m);
    // The ring wraps (400 marker lines into one page), the first record is gone:
    // a second event is still all that --since the first poll returns.
    const marks = sh('for i in $(seq 400); do echo memfabric-filler > /sys/kernel/tracing/trace_marker; done; head -3 /sys/kernel/tracing/trace | tail -1');
    const [inBuffer, written] = /entries-in-buffer\/entries-written: (\d+)\/(\d+)/.exec(marks.stdout)!.slice(1).map(Number);
    assert.ok(written - inBuffer > 0, `the ring wrapped: ${marks.stdout}`);
    assert.deepEqual(events().records.filter((r) => r.event === 'cxl_general_media'), [], 'the first record was overwritten');
    cxl(['event', 'dram', '--dpa', '0x8000']);
    const next = events(ev.last);
    assert.deepEqual(next.records.map((r) => [r.event, r.fields.dpa]), [['cxl_dram', '8000']]);
    assert.ok(next.records[0].seq > ev.last + 400, `${next.records[0].seq} counts the 400 marker lines after #${ev.last}`);
    assert.equal(next.records[0].seq, next.last);
  });
});

test('dynamic capacity: QEMU 10.0 takes extents for a <type3 dc-size> device; the 6.12 guest lists the memdev without it (no DCD in its kernel)', { skip: !hasQemu10() && 'QEMU 10.0 missing', timeout: 300_000 }, () => {
  const { file, mf, end } = qemu10Cluster('memfabric-dcd-', 'dcd.cluster.xml', `<cluster name="dcd">
  <node name="n" machine="q35" memory="1G" maxmem="2G" slots="1" cpus="1">
    <cxl>
      <host-bridge id="cxl.1" bus-nr="12"><root-port id="rp0" port="0" chassis="0" slot="2"><type3 id="dcd0" dc-size="512M" dc-regions="2" sn="0x7"/></root-port></host-bridge>
      <window size="4G" targets="cxl.1"/>
    </cxl>
  </node>
</cluster>
`);
  try {
    assert.equal(mf(['boot', file]).status, 0);
    const memdevs = JSON.parse(mf(['exec', file, 'n', '--', 'cxl', 'list', '-M']).stdout) as Record<string, unknown>[];
    const m = memdevs.find((x) => x.serial === 7)!;
    assert.ok(m, JSON.stringify(memdevs));
    assert.deepEqual(Object.keys(m).filter((k) => /_size$/.test(k)), [], 'no static capacity, and no dynamic capacity shown');
    const add = mf(['cxl', 'dc', 'add', '--format', 'json', file, 'n', 'dcd0', '--extent', '0:2M', '--extent', '4M:2M']);
    assert.equal(add.status, 0, add.stdout + add.stderr);
    const out = JSON.parse(add.stdout) as { answer: unknown; guest: { memdev: string; memdevInfo: Record<string, unknown>; notes: string[] } };
    assert.deepEqual(out.answer, { return: {} });
    assert.equal(out.guest.memdev, m.memdev);
    assert.match(out.guest.notes.join('\n'), /no dynamic capacity: its kernel has no DCD support/);
    // The guest never takes the extents: QEMU keeps them pending and refuses the same DPA again.
    const again = mf(['cxl', 'dc', 'add', file, 'n', 'dcd0', '--extent', '0:2M']);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /cannot add DPA again while still pending/);
  } finally {
    end();
  }
});
