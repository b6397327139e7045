/**
 * memfabric cxl events: the parser of the guest's trace buffer, on lines the
 * 6.12 guest printed under QEMU 10.0 (a general-media event memfabric cxl
 * injected, the cxl_poison record of a poison listing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCxlTrace, parseTraceFields, traceCounts } from '../server/src/runtime/cxl-guest';

const GM = " irq/29-0000:0d:-162     [000] .....     5.925047: cxl_general_media: memdev=mem0 host=0000:0d:00.0 serial=5 log=Informational : time=1796412380648478107 uuid=fbcd0a77-c260-417f-85a9-088b1621eba6 len=128 flags='' handle=1 related_handle=0 maint_op_class=0 : dpa=2000 dpa_flags='' descriptor='' type='ECC Error' transaction_type='Unknown' channel=0 rank=0 device=0 comp_id=00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 validity_flags='' hpa=ffffffffffffffff region= region_uuid=00000000-0000-0000-0000-000000000000";
const POISON = ' ld-linux-x86-64-177     [000] .....    10.023901: cxl_poison: memdev=mem0 host=0000:0d:00.0 serial=5 trace_type=List region= region_uuid=00000000-0000-0000-0000-000000000000 hpa=0xffffffffffffffff dpa=0x1000 dpa_length=0x40 source=Internal flags= overflow_time=0';
const HEADER = `# tracer: nop
#
# entries-in-buffer/entries-written: 3/3   #P:1
#
#                                _-----=> irqs-off/BH-disabled
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
`;

test('a cxl_general_media line: time, event, memdev, every field with quotes taken off, empty and spaced values kept', () => {
  const [r] = parseCxlTrace(HEADER + GM + '\n');
  assert.equal(r.seq, 1);
  assert.equal(r.time, 5.925047);
  assert.equal(r.event, 'cxl_general_media');
  assert.equal(r.memdev, 'mem0');
  assert.equal(r.line, GM.trim());
  assert.deepEqual(r.fields, {
    memdev: 'mem0', host: '0000:0d:00.0', serial: '5', log: 'Informational',
    time: '1796412380648478107', uuid: 'fbcd0a77-c260-417f-85a9-088b1621eba6', len: '128', flags: '', handle: '1', related_handle: '0', maint_op_class: '0',
    dpa: '2000', dpa_flags: '', descriptor: '', type: 'ECC Error', transaction_type: 'Unknown', channel: '0', rank: '0', device: '0',
    comp_id: '00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00', validity_flags: '', hpa: 'ffffffffffffffff', region: '',
    region_uuid: '00000000-0000-0000-0000-000000000000',
  });
});

test('a cxl_poison line, and seq counts every record of the buffer so that --since can skip what a client has', () => {
  const other = '          <idle>-0       [000] d.h1.     7.000001: some_other_event: x=1';
  const recs = parseCxlTrace(HEADER + GM + '\n' + other + '\n' + POISON + '\n');
  assert.deepEqual(recs.map((r) => [r.seq, r.event]), [[1, 'cxl_general_media'], [3, 'cxl_poison']]);
  const p = recs[1];
  assert.equal(p.time, 10.023901);
  assert.equal(p.memdev, 'mem0');
  assert.equal(p.fields.trace_type, 'List');
  assert.equal(p.fields.dpa, '0x1000');
  assert.equal(p.fields.dpa_length, '0x40');
  assert.equal(p.fields.source, 'Internal');
  assert.equal(p.fields.flags, '');
  assert.equal(p.fields.overflow_time, '0');
  assert.equal(p.fields.region, '');
});

test('quoted values with spaces and flag lists; a trace without records', () => {
  assert.deepEqual(parseTraceFields("memdev=mem1 flags='PERFORMANCE_DEGRADED|HW_REPLACE' : type='Media Event' x=1"),
    { memdev: 'mem1', flags: 'PERFORMANCE_DEGRADED|HW_REPLACE', type: 'Media Event', x: '1' });
  assert.deepEqual(parseCxlTrace(HEADER), []);
  assert.deepEqual(parseCxlTrace(''), []);
});

test('a ring that wrapped: seq goes on from entries-written, so --since neither repeats nor skips', () => {
  // 5 records written, 2 still held (the first 3 were overwritten): they are #4 and #5
  const wrapped = HEADER.replace('3/3', '2/5') + GM + '\n' + POISON + '\n';
  assert.deepEqual(traceCounts(wrapped), { dropped: 3, written: 5 });
  assert.deepEqual(parseCxlTrace(wrapped).map((r) => [r.seq, r.event]), [[4, 'cxl_general_media'], [5, 'cxl_poison']]);
  // without the header (irq-info or the header turned off), the lines are all there is
  assert.deepEqual(traceCounts(GM + '\n' + POISON + '\n'), { dropped: 0, written: 2 });
  assert.deepEqual(parseCxlTrace(GM + '\n').map((r) => r.seq), [1]);
});
