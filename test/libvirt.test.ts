/**
 * libvirt domain XML: the reader's diagnostics on the fixtures of
 * test/fixtures/libvirt (expected ranges are marked inline, see below), the
 * emitter's domains (schema-valid, and read back to the same model), and,
 * where the QEMU driver of libvirt 9.0 can be loaded, libvirt itself as the
 * ground truth (embedded driver `qemu:///embed`: no daemon, no network).
 *
 * Inline marks in a fixture, each an XML comment on a line of its own:
 *   <!--        ^^^^ SEVERITY CODE[: part of the message] -->
 *     the carets sit under the range, on the closest line above that is not a mark;
 *   <!-- @"text" SEVERITY CODE[: part of the message] -->
 *     the range is the first "text" on the closest line below that is not a mark
 *     (for ranges that start left of column 4, where carets cannot reach).
 * A fixture without marks must check clean. The diagnostics must be exactly the
 * marked ones: same code, severity and range, nothing more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { virshError } from '../server/src/host/libvirt';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeDocument, NO_HOST } from '../server/src/engine/index';
import { Diagnostic } from '../server/src/engine/diagnostics';
import { NodeModel, machineBase, prop, qemuBool, SizeValue } from '../server/src/engine/model/model';
import { LineMap, Range } from '../server/src/engine/text/source';
import { REPO, runCli, hasQemu, hasQemu10, QEMU10, exampleNeedsQemu } from './support/cli';
import { BUNDLED, QemuProfile } from '../server/src/engine/qemu/profile';
import { libvirtRootSlots } from '../server/src/engine/readers/libvirt-slots';
import { parseXml, child } from '../server/src/engine/syntax/xml';
import { check, plan } from '../server/src/cli/main';

const FIXTURES = join(REPO, 'test', 'fixtures', 'libvirt');
const EXAMPLES = join(REPO, 'examples');
const fixtureFiles = readdirSync(FIXTURES).filter((f) => f.endsWith('.xml')).sort();
const read = (f: string) => readFileSync(join(FIXTURES, f), 'utf8');

// ---------------------------------------------------------------------------------------------- inline marks

interface Expect {
  range: Range;
  severity: string;
  code: string;
  message?: string;
}

const CARET = /^<!--( *)(\^+) +(error|warning|information|hint) +([a-z0-9-]+)(?:: (.*?))? *-->\s*$/;
const AT = /^\s*<!-- @"([^"]+)" +(error|warning|information|hint) +([a-z0-9-]+)(?:: (.*?))? *-->\s*$/;

function expectations(text: string): Expect[] {
  const lines = text.split(/\r?\n/);
  const isMark = (l: string) => CARET.test(l) || AT.test(l);
  lines.forEach((l, i) => assert.ok(isMark(l) || !/^\s*<!--\s*(\^|@")/.test(l), `line ${i + 1} looks like a mark but is not one: ${l}`));
  const out: Expect[] = [];
  lines.forEach((l, i) => {
    const c = CARET.exec(l);
    if (c) {
      let t = i - 1;
      while (t >= 0 && isMark(lines[t])) t--;
      assert.ok(t >= 0, `mark on line ${i + 1} has no line above it`);
      const start = 4 + c[1].length;
      out.push({ range: { start: { line: t, character: start }, end: { line: t, character: start + c[2].length } }, severity: c[3], code: c[4], message: c[5] });
      return;
    }
    const a = AT.exec(l);
    if (a) {
      let t = i + 1;
      while (t < lines.length && isMark(lines[t])) t++;
      const col = t < lines.length ? lines[t].indexOf(a[1]) : -1;
      assert.ok(col >= 0, `mark on line ${i + 1}: "${a[1]}" is not on the line below it`);
      out.push({ range: { start: { line: t, character: col }, end: { line: t, character: col + a[1].length } }, severity: a[2], code: a[3], message: a[4] });
    }
  });
  return out;
}

const fmtRange = (r: Range) => `${r.start.line + 1}:${r.start.character}-${r.end.line + 1}:${r.end.character}`;
const key = (r: Range, severity: string, code: string) => `${fmtRange(r)} ${severity} ${code}`;

function assertMatches(file: string, expected: Expect[], actual: { range: Range; severity: string; code: string; message: string }[]) {
  const want = expected.map((e) => key(e.range, e.severity, e.code)).sort();
  const got = actual.map((d) => key(d.range, d.severity, d.code)).sort();
  assert.deepEqual(got, want, `${file}:\n${actual.map((d) => `  ${key(d.range, d.severity, d.code)} ${d.message}`).join('\n') || '  (no diagnostics)'}`);
  for (const e of expected) {
    if (!e.message) continue;
    const d = actual.find((a) => key(a.range, a.severity, a.code) === key(e.range, e.severity, e.code))!;
    assert.ok(d.message.includes(e.message), `${file} ${key(e.range, e.severity, e.code)}: message lacks "${e.message}":\n  ${d.message}`);
  }
}

function analyzeFixture(f: string) {
  const text = read(f);
  const r = analyzeDocument(text, join(FIXTURES, f), NO_HOST);
  return { text, r, lm: new LineMap(text) };
}

test('the fixtures cover what the brief lists', () => {
  for (const f of [
    'fame.xml', 'fame-no-namespace.xml', 'fame-wrong-uri.xml', 'fame-in-devices.xml', 'fame-other-prefix.xml',
    'memory-unit-gb.xml', 'memory-fraction.xml', 'memory-unknown-unit.xml', 'numa-sum.xml',
    'shmem-no-model.xml', 'shmem-not-pow2.xml', 'shmem-size-bytes.xml',
    'egm-rfc.xml', 'egm-rfc-no-hostdev.xml', 'egm-rfc-wrong-pcidev.xml', 'egm-rfc-no-numa-node.xml', 'ivshmem-768m.xml', 'ivshmem-768m-entities.xml',
  ]) assert.ok(fixtureFiles.includes(f), f);
  // The entity fixture really has entities before the size, so decoded and raw offsets differ there.
  const line = read('ivshmem-768m-entities.xml').split('\n').find((l) => l.includes('size=768M'))!;
  assert.ok(line.indexOf('&amp;') >= 0 && line.indexOf('&amp;') < line.indexOf('768M'));
});

for (const f of fixtureFiles) {
  test(`fixture ${f}: exactly the marked diagnostics`, () => {
    const { text, r, lm } = analyzeFixture(f);
    assert.ok(r.nodes.length >= 1, `${f}: no node read`);
    assertMatches(f, expectations(text), r.diagnostics.map((d) => ({ ...d, range: lm.range(d.span) })));
  });
}

/** The CLI's own check/plan, in this process (same code as bin/memfabric.js, without a node start-up each). */
async function cli(fn: typeof check, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const status = await fn(args, { out: (s) => (stdout += s), err: (s) => (stderr += s) });
  return { status, stdout, stderr };
}

test('CLI check --format json reports the same ranges, and exits 1 exactly when an error is marked', async () => {
  for (const f of fixtureFiles) {
    // One run per fixture: files checked together form one cluster.
    const r = await cli(check, ['--format', 'json', join(FIXTURES, f)]);
    assert.ok(r.status === 0 || r.status === 1, `${f}: exit ${r.status} ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { files: { diagnostics: { range: Range; severity: string; code: string; message: string }[] }[] };
    const exp = expectations(read(f));
    // The CLI reads this host: an nvdimm/virtio-pmem path the fixture names is (rightly) missing here. Only then.
    const host = out.files[0].diagnostics.filter((d) => d.code === 'libvirt-memory-path-missing');
    for (const d of host) assert.ok(!existsSync(/^(\S+) does not exist/.exec(d.message)![1]), `${f}: ${d.message}`);
    assertMatches(f, exp, out.files[0].diagnostics.filter((d) => !host.includes(d)));
    assert.equal(r.status, exp.some((e) => e.severity === 'error') || host.length ? 1 : 0, f);
  }
  // And the real executable, on the clean FAME domain and on the 768M one.
  const clean = runCli(['check', '--format', 'json', join(FIXTURES, 'fame.xml')]);
  assert.equal(clean.status, 0, clean.stdout + clean.stderr);
  assert.deepEqual(JSON.parse(clean.stdout).files[0].diagnostics, []);
  const bad = runCli(['check', '--format', 'json', join(FIXTURES, 'ivshmem-768m-entities.xml')]);
  assert.equal(bad.status, 1);
  assertMatches('ivshmem-768m-entities.xml', expectations(read('ivshmem-768m-entities.xml')), JSON.parse(bad.stdout).files[0].diagnostics);
});

test('fixtures checked together form one cluster: the fabric regions must agree', async () => {
  const r = await cli(check, ['--format', 'json', join(FIXTURES, 'fame.xml'), join(FIXTURES, 'ivshmem-768m.xml')]);
  const out = JSON.parse(r.stdout) as { files: { diagnostics: { code: string; severity: string; message: string }[] }[] };
  const mismatch = out.files.flatMap((f) => f.diagnostics).filter((d) => d.code === 'fabric-region-mismatch');
  assert.ok(mismatch.length >= 1, r.stdout);
  assert.match(mismatch[0].message, /\/dev\/shm\/fam|\/home\/rocky\/FAME\/FAM/);
});

test('ivshmem-size-pow2 on 768M lands on the raw text, entities or not, and its fixes apply there', () => {
  for (const f of ['ivshmem-768m.xml', 'ivshmem-768m-entities.xml']) {
    const { text, r } = analyzeFixture(f);
    const d = r.diagnostics.find((x) => x.code === 'ivshmem-size-pow2')!;
    assert.equal(text.slice(d.span.start, d.span.end), '768M');
    assert.equal(text.slice(d.related![0].span.start, d.related![0].span.end), 'FAM', 'related: the memdev= of the ivshmem device');
    const fixed = applyFix(text, d, 0);
    assert.ok(fixed.includes('size=1G,'), fixed);
    if (f.includes('entities')) assert.ok(fixed.includes('R&amp;D&amp;&#x41;&#66;&quot;x,size=1G'), 'the entities are left alone');
    assert.deepEqual(analyzeDocument(fixed, join(FIXTURES, f), NO_HOST).diagnostics.map((x) => x.code), []);
  }
});

function applyFix(text: string, d: Diagnostic, i: number): string {
  const edits = [...d.fixes![i].edits].sort((a, b) => b.span.start - a.span.start);
  let t = text;
  for (const e of edits) t = t.slice(0, e.span.start) + e.newText + t.slice(e.span.end);
  return t;
}

test('every quick fix on the fixtures removes its diagnostic', () => {
  let applied = 0;
  for (const f of fixtureFiles) {
    const { text, r } = analyzeFixture(f);
    for (const d of r.diagnostics) {
      for (let i = 0; i < (d.fixes?.length ?? 0); i++) {
        const fixed = applyFix(text, d, i);
        const after = analyzeDocument(fixed, join(FIXTURES, f), NO_HOST).diagnostics;
        assert.ok(!after.some((x) => x.code === d.code), `${f}: fix "${d.fixes![i].title}" leaves ${after.filter((x) => x.code === d.code).map((x) => x.message).join(' | ')}`);
        assert.ok(after.length < r.diagnostics.length, `${f}: fix "${d.fixes![i].title}" brings new findings: ${after.map((x) => x.code).join(', ')}`);
        applied++;
      }
    }
  }
  assert.ok(applied >= 6, `${applied} fixes applied`);
});

test('related ranges of libvirt-numa-memory point at each cell size', () => {
  const { text, r } = analyzeFixture('numa-sum.xml');
  const d = r.diagnostics.find((x) => x.code === 'libvirt-numa-memory')!;
  assert.deepEqual(d.related!.map((x) => text.slice(x.span.start, x.span.end)), ['1', '2097152']);
  assert.match(d.message, /guest gets 3072 MiB/);
});

test('the reader models what libvirt 9.0 generates (sizes, units, shmem mapping)', () => {
  const node = (f: string) => analyzeFixture(f).r.nodes[0];
  const sz = (v?: SizeValue) => (v?.parsed.ok ? v.parsed.value : undefined);
  // unit='GB' is 4e9 bytes, rounded up to whole MiB (libvirt: -m 3815).
  assert.equal(sz(node('memory-unit-gb.xml').memory.size), 3815n << 20n);
  assert.equal(sz(node('memory-no-unit.xml').memory.size), 4n << 30n);
  // NUMA cells replace <memory>.
  assert.equal(sz(node('numa-sum.xml').memory.size), 3n << 30n);
  // <shmem> → memory-backend-file on /dev/shm/NAME, share=on, default size 4 MiB, on the root bus of a pc machine.
  const s = node('shmem-ok.xml');
  const b = [...s.backends.values()].map((x) => `${x.id} ${x.memPath?.text} ${sz(x.size)} ${x.share?.value.text}`);
  assert.deepEqual(b, ['shmmem-shmem0 /dev/shm/fam 67108864 on', 'shmmem-shmem1 /dev/shm/small 4194304 on']);
  assert.deepEqual(s.devices.map((d) => `${d.driver} ${prop(d.props, 'bus')?.value.text}`), ['ivshmem-plain pci.0', 'ivshmem-plain pci.0']);
  // FAME: the qemu:commandline arguments are the node's.
  const fame = node('fame.xml');
  assert.equal(sz(fame.backends.get('FAM')?.size), 32n << 30n);
  assert.deepEqual(fame.devices.map((d) => d.driver), ['ivshmem-plain']);
  // Commandlines libvirt drops are not part of the model.
  for (const f of ['fame-no-namespace.xml', 'fame-wrong-uri.xml', 'fame-in-devices.xml']) assert.equal(node(f).devices.length, 0, f);
  assert.equal(node('fame-other-prefix.xml').devices.length, 1);
});

// ---------------------------------------------------------------------------------------------- emission

/** What a node is, as far as memory goes: compared across readers and emitters. */
function summary(n: NodeModel) {
  const sz = (v?: SizeValue) => (v?.parsed.ok ? String(v.parsed.value) : v ? `?${v.m.text}` : '-');
  const numaIds = new Set(n.numa.map((c) => c.memdev?.text).filter(Boolean));
  const backendDesc = (id: string | undefined) => {
    const b = id === undefined ? undefined : n.backends.get(id);
    if (!b) return `missing ${id}`;
    const share = b.share ? qemuBool(b.share.value.text) : false;
    return `${b.obj.qomType} path=${b.memPath?.text ?? '-'} size=${sz(b.size)} share=${share}${b.align ? ` align=${sz(b.align)}` : ''}`;
  };
  const MEMORY_DEVICES = ['ivshmem-plain', 'ivshmem-doorbell', 'pxb-cxl', 'cxl-rp', 'cxl-upstream', 'cxl-downstream', 'cxl-type3', 'pc-dimm', 'nvdimm', 'vfio-pci'];
  return {
    machine: machineBase(n.machine.type?.text),
    ram: sz(n.memory.size),
    maxmem: n.memory.maxmem ? sz(n.memory.maxmem) : '-',
    slots: n.memory.slots?.n ?? '-',
    physBits: (n.cpu && prop(n.cpu.props, 'phys-bits')?.value.text) ?? '-',
    cxl: n.machine.props.filter((p) => p.key === 'cxl').map((p) => p.value.text).join(','),
    // Without -numa but with memory hotplug (slots > 0), QEMU 7.2 makes one node of all RAM itself
    // (hw/core/numa.c numa_complete_configuration, auto_enable_numa_with_memhp on pc and q35); libvirt on x86
    // needs that node written out (LV_HOTPLUG_NEEDS_NUMA). Both are the same machine.
    numa: n.numa.length
      ? n.numa.map((c) => `${c.nodeid?.n}: ${c.memdev ? sz(n.backends.get(c.memdev.text)?.size) : sz(c.mem)}`)
      : (n.memory.slots?.n ?? 0) > 0
        ? [`0: ${sz(n.memory.size)}`]
        : [],
    ivshmem: n.devices.filter((d) => d.driver === 'ivshmem-plain').map((d) => backendDesc(prop(d.props, 'memdev')?.value.text)).sort(),
    devices: n.devices.filter((d) => MEMORY_DEVICES.includes(d.driver)).map((d) => d.driver).sort(),
    backends: [...n.backends.values()].filter((b) => !numaIds.has(b.id) && b.id !== 'pc.ram').map((b) => `${b.id}: ${backendDesc(b.id)}`).sort(),
    fmws: n.fmws.map((w) => `${w.index}: ${sz(w.size)} ${w.targets.map((t) => t.m.text).join('+')} ${sz(w.granularity)}`),
  };
}

/** Split `plan --format libvirt` output into its domains. */
function splitDomains(xml: string): string[] {
  return xml.split(/(?=<\?xml )/).filter((s) => s.trim());
}

const hasValidator = spawnSync('virt-xml-validate', ['--help']).error === undefined && spawnSync('xmllint', ['--version']).error === undefined;

interface Planned {
  label: string;
  /** Judged for QEMU 10.0 (an example that needs a newer QEMU than 7.2), else undefined: 7.2. */
  opts: { qemu?: QemuProfile };
  /** The model plan used. */
  nodes: NodeModel[];
  domains: string[];
}

const emissionSources: string[] = [
  ...['fame.xml', 'fame-other-prefix.xml', 'shmem-ok.xml', 'numa-sum-ok.xml', 'memory-no-unit.xml', 'numa-file.cluster.xml'].map((f) => join(FIXTURES, f)),
  ...(existsSync(EXAMPLES) ? readdirSync(EXAMPLES).filter((f) => f.endsWith('.cluster.xml')).sort().map((f) => join(EXAMPLES, f)) : []),
];

const PROFILE_10 = BUNDLED.find((q) => q.arch === 'x86_64' && q.version.startsWith('10.0'))!;
let plannedCache: Planned[] | undefined;
async function planned(): Promise<Planned[]> {
  if (plannedCache) return plannedCache;
  plannedCache = [];
  for (const [i, file] of emissionSources.entries()) plannedCache.push(await (async () => {
    // The first through the real executable, the others in-process (same code, faster); an example that
    // needs a QEMU newer than 7.2 is planned for QEMU 10.0.
    const newer = exampleNeedsQemu(readFileSync(file, 'utf8'));
    const saved = process.env.MEMFABRIC_QEMU;
    if (newer) process.env.MEMFABRIC_QEMU = QEMU10;
    let r: { status: number; stdout: string; stderr: string };
    try {
      r = i === 0 ? runCli(['plan', '--format', 'libvirt', file]) : await cli(plan, ['--format', 'libvirt', file]);
    } finally {
      if (saved === undefined) delete process.env.MEMFABRIC_QEMU;
      else process.env.MEMFABRIC_QEMU = saved;
    }
    const label = file.slice(REPO.length + 1);
    assert.equal(r.status, 0, `${label}: ${r.stderr}`);
    const nodes = analyzeDocument(readFileSync(file, 'utf8'), file, NO_HOST).nodes;
    const domains = splitDomains(r.stdout);
    assert.equal(domains.length, nodes.length, `${label}: one domain per node`);
    domains.forEach((d) => assert.ok(d.endsWith('</domain>\n'), `${label}: each domain ends with a newline`));
    return { label, nodes, domains, opts: newer ? { qemu: PROFILE_10 } : {} };
  })());
  return plannedCache;
}

test('plan --format libvirt: every domain is valid against libvirt 9.0 schema (virt-xml-validate)', { skip: hasValidator ? false : 'virt-xml-validate/xmllint not installed (Debian libvirt-clients, libxml2-utils)' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-libvirt-'));
  try {
    let n = 0;
    const seen = new Set<string>();
    for (const p of (await planned())) {
      p.domains.forEach((d, i) => {
        // Nodes of one template differ in their name only: validate one of them.
        const shape = d.replace(/<name>[^<]*<\/name>/, '<name/>');
        if (seen.has(shape)) return;
        seen.add(shape);
        const f = join(dir, `${n}.xml`);
        writeFileSync(f, d);
        const v = spawnSync('virt-xml-validate', [f, 'domain'], { encoding: 'utf8' });
        assert.equal(v.status, 0, `${p.label} node ${p.nodes[i].name}:\n${v.stdout}${v.stderr}\n${d}`);
        n++;
      });
    }
    assert.ok(n >= 5, `${n} domains validated`);
    // And the validator does reject what the reader flags as dropped by libvirt (so the check above means something).
    const bad = spawnSync('virt-xml-validate', [join(FIXTURES, 'fame-no-namespace.xml'), 'domain'], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('plan --format libvirt round trip: the domain read back is the same machine', async () => {
  for (const p of (await planned())) {
    p.domains.forEach((d, i) => {
      const back = analyzeDocument(d, `/roundtrip/${p.nodes[i].name}.xml`, NO_HOST, undefined, p.opts);
      assert.equal(back.kind, 'libvirt');
      assert.equal(back.nodes.length, 1);
      assert.equal(back.nodes[0].name, p.nodes[i].name);
      assert.deepEqual(summary(back.nodes[0]), summary(p.nodes[i]), `${p.label} node ${p.nodes[i].name}`);
      const errs = back.diagnostics.filter((x) => x.severity === 'error');
      assert.deepEqual(errs.map((x) => `${x.code}: ${x.message}`), [], `${p.label} node ${p.nodes[i].name}: the emitted domain checks clean`);
    });
  }
  const fame = (await planned()).find((p) => p.label.endsWith('fixtures/libvirt/fame.xml'))!;
  const back = analyzeDocument(fame.domains[0], '/roundtrip/fame.xml', NO_HOST).nodes[0];
  assert.equal(summary(back).ram, String(4n << 30n));
  assert.deepEqual(summary(back).ivshmem, ['memory-backend-file path=/home/rocky/FAME/FAM size=34359738368 share=true']);
});

test('emission of a file-backed NUMA cell keeps share=on and says what libvirt cannot express', async () => {
  const p = (await planned()).find((x) => x.label.endsWith('numa-file.cluster.xml'))!;
  const d = p.domains[0];
  assert.match(d, /<cell id="1" cpus="1" memory="1048576" unit="KiB" memAccess="shared"\/>/);
  assert.match(d, /<!-- cell 1: wanted memory-backend-file mem-path=\/dev\/shm\/numa-cell1 share=on; libvirt cannot choose/);
  assert.match(d, /<cell id="0" cpus="0" memory="1048576" unit="KiB"\/>/);
});

// ---------------------------------------------------------------------------------------------- libvirt itself

/**
 * libvirt 9.0's QEMU driver, embedded in virsh (`qemu:///embed?root=DIR`): all
 * state under a temporary DIR, no daemon, no socket, no network. As root the
 * driver insists on the `libvirt-qemu` user of libvirt-daemon-system, so it
 * runs as `nobody` instead (unprivileged mode).
 */
class EmbeddedLibvirt {
  private constructor(readonly dir: string, private readonly prefix: string[], private readonly uid?: number) {}

  static open(): EmbeddedLibvirt | string {
    if (spawnSync('virsh', ['--version']).error) return 'virsh not installed (Debian libvirt-clients)';
    const driver = ['/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so', '/usr/lib64/libvirt/connection-driver/libvirt_driver_qemu.so'];
    if (!driver.some(existsSync)) return 'libvirt QEMU driver not installed (Debian libvirt-daemon-driver-qemu)';
    const dir = mkdtempSync(join(tmpdir(), 'memfabric-virsh-'));
    let prefix: string[] = [];
    let uid: number | undefined;
    if (process.getuid?.() === 0) {
      const id = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' });
      if (id.status !== 0 || spawnSync('setpriv', ['--version']).error) {
        rmSync(dir, { recursive: true, force: true });
        return 'running as root without a nobody user or setpriv';
      }
      uid = Number(id.stdout.trim());
      chmodSync(dir, 0o755);
      chownSync(dir, uid, uid);
      prefix = ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
    }
    const lv = new EmbeddedLibvirt(dir, prefix, uid);
    const v = lv.virsh('uri');
    if (v.status !== 0) {
      lv.close();
      return `qemu:///embed does not start: ${v.stderr.trim()}`;
    }
    return lv;
  }

  virsh(...args: string[]): { status: number; stdout: string; stderr: string } {
    const argv = [...this.prefix, 'env', `HOME=${this.dir}`, `XDG_RUNTIME_DIR=${this.dir}`, 'virsh', '-q', '-c', `qemu:///embed?root=${this.dir}/root`, ...args];
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
  }

  /** define + dumpxml + undefine in one virsh run: the domain as libvirt stored it, or libvirt's error. */
  defineDump(file: string, name: string): { ok: true; xml: string } | { ok: false; error: string } {
    const r = this.virsh(`define ${file}; dumpxml ${name}; undefine ${name}`);
    const lines = r.stderr.split('\n');
    const failed = lines.findIndex((l) => l.startsWith('error: Failed to define domain'));
    // virsh goes on with the next commands: libvirt's reason is the line right after its "Failed to define".
    if (failed >= 0) return { ok: false, error: virshError(lines[failed + 1] ?? '') };
    assert.ok(r.stdout.includes('</domain>') && !r.stderr.includes('error:'), `virsh define/dumpxml/undefine ${name}: ${r.stderr}`);
    return { ok: true, xml: r.stdout };
  }

  /** Write a domain for virsh to read; no KVM here, so type='kvm' becomes TCG. */
  file(name: string, text: string): string {
    const f = join(this.dir, name);
    writeFileSync(f, text.replace(/<domain type=(['"])kvm\1/, '<domain type=$1qemu$1'));
    if (this.uid !== undefined) chownSync(f, this.uid, this.uid);
    return f;
  }

  /** Kill whatever is still running out of our directory (QEMU capability probes), then remove it. */
  close() {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(this.dir)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone already */
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Our messages quote libvirt's, with or without its category ("XML error: ", "internal error: " …). */
function quotes(message: string, libvirtError: string): boolean {
  return message.includes(libvirtError) || message.includes(libvirtError.replace(/^(internal error|XML error|invalid argument|unsupported configuration): /, ''));
}

/** The node libvirt's generated command line stands for, read with our QEMU reader. */
function nodeOfArgv(argv: string, name: string, opts: { qemu?: QemuProfile } = {}) {
  const r = analyzeDocument(argv, `/libvirt/${name}.argv`, NO_HOST, 'qemu', opts);
  assert.equal(r.nodes.length, 1, argv);
  return r;
}

const lv = EmbeddedLibvirt.open();
const lvSkip = typeof lv === 'string' ? lv : false;

test('libvirt 9.0 (embedded QEMU driver) is the ground truth for every fixture', { skip: lvSkip }, () => {
  const l = lv as EmbeddedLibvirt;
  let compared = 0;
  for (const f of fixtureFiles.filter((x) => !x.endsWith('.cluster.xml'))) {
    const text = read(f);
    const ours = analyzeFixture(f).r;
    const errors = ours.diagnostics.filter((d) => d.severity === 'error');
    const file = l.file(f, text);
    const name = ours.nodes[0].name;

    const def = l.defineDump(file, name);
    if (!def.ok) {
      const e = def.error;
      assert.ok(errors.some((d) => quotes(d.message, e)), `${f}: libvirt refuses to define it ("${e}") but no error of ours says so:\n${ours.diagnostics.map((d) => d.message).join('\n')}`);
      continue;
    }
    const dump = { stdout: def.xml };
    // What libvirt keeps of <qemu:commandline> and <acpiEgmMemory> is what we say it keeps.
    const hadCmdline = /<[\w-]+:commandline/.test(text);
    const keptCmdline = dump.stdout.includes('<qemu:commandline>');
    const nsDiag = ours.diagnostics.some((d) => d.code === 'libvirt-qemu-namespace' && /silently drops/.test(d.message));
    if (hadCmdline) assert.equal(nsDiag, !keptCmdline, `${f}: libvirt ${keptCmdline ? 'keeps' : 'drops'} <qemu:commandline>`);
    if (text.includes('<acpiEgmMemory>')) {
      assert.ok(!dump.stdout.includes('acpiEgmMemory'), `${f}: libvirt 9.0 now keeps <acpiEgmMemory>`);
      assert.ok(ours.diagnostics.some((d) => d.code === 'egm-unsupported' && /drops the element/.test(d.message)), f);
    }

    const nat = l.virsh('domxml-to-native', 'qemu-argv', file);
    if (nat.status !== 0) {
      const e = virshError(nat.stderr);
      // A <hostdev> needs VFIO on the host, which a test machine has not: not about the XML.
      if (/PCI passthrough type|vfio/i.test(e) && text.includes('<hostdev')) continue;
      assert.ok(errors.some((d) => quotes(d.message, e)), `${f}: libvirt refuses to start it ("${e}") but no error of ours says so:\n${ours.diagnostics.map((d) => d.message).join('\n')}`);
      continue;
    }
    // libvirt accepts it: its command line is the machine we modelled, and whatever QEMU would
    // trip over on that command line we already report on the domain XML.
    const theirs = nodeOfArgv(nat.stdout, name);
    assert.deepEqual(summary(ours.nodes[0]), summary(theirs.nodes[0]), `${f}: our model vs libvirt's command line\n${nat.stdout}`);
    const theirErrors = new Set(theirs.diagnostics.filter((d) => d.severity === 'error').map((d) => d.code));
    for (const c of theirErrors) assert.ok(errors.some((d) => d.code === c), `${f}: libvirt's command line has ${c}, the domain check does not`);
    compared++;
  }
  assert.ok(compared >= 8, `${compared} fixtures compared with libvirt's command line`);
});

test('libvirt 9.0 takes our emitted domains: define keeps qemu:commandline, the command line is the planned machine', { skip: lvSkip }, async () => {
  const l = lv as EmbeddedLibvirt;
  let n = 0;
  for (const p of (await planned())) {
    // Forty identical FAME nodes tell no more than two.
    p.domains.slice(0, 2).forEach((d, i) => {
      const node = p.nodes[i];
      const file = l.file(`emitted-${n}.xml`, d);
      const def = l.defineDump(file, node.name);
      assert.ok(def.ok, `${p.label} ${node.name}: ${!def.ok && def.error}`);
      const dump = { stdout: def.xml };
      const args = node.args.filter((a) => !['m', 'smp', 'machine', 'numa', 'name', 'kernel', 'initrd', 'append'].includes(a.name) && !(a.name === 'object' && node.numa.some((c) => c.memdev && a.value?.text.includes(`id=${c.memdev.text}`))));
      if (args.length) assert.ok(dump.stdout.includes('<qemu:commandline>'), `${p.label} ${node.name}: libvirt dropped the commandline`);
      const nat = l.virsh('domxml-to-native', 'qemu-argv', file);
      assert.equal(nat.status, 0, `${p.label} ${node.name}: ${nat.stderr}`);
      const theirs = nodeOfArgv(nat.stdout, node.name, p.opts);
      const want = summary(node);
      const got = summary(theirs.nodes[0]);
      // libvirt names the backends of NUMA cells itself and backs shared cells with its own files.
      assert.deepEqual({ ...got, numa: got.numa.length }, { ...want, numa: want.numa.length }, `${p.label} ${node.name}\n${nat.stdout}`);
      assert.deepEqual(got.numa.map((c) => c.replace(/^\d+: /, '')), want.numa.map((c) => c.replace(/^\d+: /, '')));
      const errs = theirs.diagnostics.filter((x) => x.severity === 'error');
      assert.deepEqual(errs.map((x) => `${x.code}: ${x.message}`), [], `${p.label} ${node.name}: libvirt's command line checks clean`);
      n++;
    });
  }
  const fame = (await planned()).find((p) => p.label.endsWith('fixtures/libvirt/fame.xml'))!;
  const nat = l.virsh('domxml-to-native', 'qemu-argv', l.file('fame-emitted.xml', fame.domains[0]));
  assert.ok(nat.stdout.includes('-object memory-backend-file,mem-path=/home/rocky/FAME/FAM,size=32G,id=FAM,share=on -device ivshmem-plain,memdev=FAM'), nat.stdout);
  assert.ok(n >= 5, `${n} emitted domains run through libvirt`);
});

test('libvirt 9.0 drops <qemu:commandline> without xmlns:qemu, as libvirt-qemu-namespace claims', { skip: lvSkip }, () => {
  const l = lv as EmbeddedLibvirt;
  const def = l.virsh('define', l.file('no-ns.xml', read('fame-no-namespace.xml')));
  assert.equal(def.status, 0, def.stderr);
  const dump = l.virsh('dumpxml', 'node02');
  assert.equal(l.virsh('undefine', 'node02').status, 0);
  assert.ok(!dump.stdout.includes('commandline') && !dump.stdout.includes('ivshmem'), dump.stdout);
  // With the namespace declared, the same domain keeps all four arguments.
  const kept = l.defineDump(l.file('ns.xml', read('fame.xml')), 'node02');
  assert.ok(kept.ok);
  assert.equal((kept.xml.match(/<qemu:arg /g) ?? []).length, 4, kept.xml);
});

// ---------------------------------------------------------------------------------------------- PCI slots

/** libvirt's JSON -device options on the root bus: slot → driver (function 0 first). */
function rootSlotsOfArgv(argv: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const m of argv.matchAll(/-device '(\{[^']*\})'/g)) {
    const d = JSON.parse(m[1]) as { driver: string; bus?: string; addr?: string };
    if ((d.bus === 'pcie.0' || d.bus === 'pci.0') && d.addr) {
      const [slot, fn] = d.addr.split('.').map((x) => Number(x));
      if (!fn || !out.has(slot)) out.set(slot, d.driver);
    }
  }
  return out;
}

/** Run libvirt's command line under a real QEMU for a few seconds (no guest code runs: -S): its error, or '' if it started. */
function runArgv(argv: string, qemu: string, dir: string): string {
  let line = argv.slice(argv.indexOf('/usr/bin/qemu-system-x86_64 ') + '/usr/bin/qemu-system-x86_64 '.length).trim();
  line = line
    .replace(/-object '\{"qom-type":"secret"[^']*' /, '')
    .replace(/-chardev socket,id=charmonitor\S* /, '')
    .replace(/-mon chardev=charmonitor,id=monitor,mode=control /, '')
    .replace(/-sandbox \S+ /, '')
    .replace(/"filename":"[^"]*"/g, () => {
      const img = join(dir, `disk${Math.random().toString(36).slice(2)}.img`);
      writeFileSync(img, Buffer.alloc(1 << 20));
      return `"filename":"${img}"`;
    })
    .replace(/"mem-path":"[^"]*"/g, () => `"mem-path":"${join(dir, `mem${Math.random().toString(36).slice(2)}`)}"`)
    .replace(/"prealloc":true/g, '"prealloc":false')
    .replace(/mem-path=[^,' ]+/g, (_m) => `mem-path=${join(dir, `mem${Math.random().toString(36).slice(2)}`)}`);
  if (qemu !== '/usr/bin/qemu-system-x86_64' && line.includes('-no-acpi ')) line = line.replace(/-no-acpi /, '').replace(/-machine (pc-[a-z0-9.-]+)/, '-machine $1,acpi=off');
  const r = spawnSync('bash', ['-c', `exec timeout 3 ${qemu} ${line} -monitor none`], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 124 ? '' : (r.stderr || `exit ${r.status}`).trim();
}

test('libvirt 9.0 assigns the root-bus PCI slots our model says, and QEMU refuses exactly the domains we mark (slots, memory devices without ACPI)', { skip: lvSkip }, () => {
  const l = lv as EmbeddedLibvirt;
  const qemus = [...(hasQemu() ? ['/usr/bin/qemu-system-x86_64'] : []), ...(hasQemu10() ? [QEMU10] : [])];
  const memDir = mkdtempSync(join(tmpdir(), 'memfabric-slots-'));
  let compared = 0;
  let ran = 0;
  try {
    for (const f of fixtureFiles.filter((x) => !x.endsWith('.cluster.xml'))) {
      const text = read(f);
      const memDevice = /<memory model=/.test(text);
      if (!/<qemu:commandline>/.test(text) && !memDevice) continue;
      const ours = analyzeFixture(f).r;
      const name = ours.nodes[0].name;
      const file = l.file(f, text);
      const r = l.virsh(`define ${file}; domxml-to-native qemu-argv --domain ${name}; undefine ${name}`);
      if (!r.stdout.includes('qemu-system')) continue; // refused by libvirt: the ground-truth test above covers it
      const dom = parseXml(text).root!;
      const q35 = /machine='q35'/.test(text);
      const model = libvirtRootSlots(child(dom, 'devices'), q35);
      const theirs = rootSlotsOfArgv(r.stdout);
      assert.deepEqual(
        [...model].map(([s, d]) => `${s}:${d.driver}`).sort(),
        // The machine's own slots (pc: host bridge and PIIX3, whose 1.2 is libvirt's USB; q35: 0 and 0x1f) are not libvirt's.
        [...theirs].filter(([s]) => !(q35 ? [0, 0x1f] : [0, 1]).includes(s)).map(([s, d]) => `${s}:${d}`).sort(),
        `${f}: libvirt's root-bus slots`,
      );
      compared++;
      const slotErrors = ours.diagnostics.filter((d) => d.code === 'libvirt-passthrough-slot');
      const acpiErrors = ours.diagnostics.filter((d) => d.code === 'libvirt-memory-device-acpi');
      // libvirt 9.0 passes -no-acpi, which QEMU 10.0 no longer has: runArgv gives 10.0 acpi=off instead.
      for (const qemu of qemus) {
        const err = runArgv(r.stdout, qemu, memDir);
        ran++;
        const HOTPLUG = 'memory hotplug is not enabled: missing acpi device or acpi disabled';
        if (acpiErrors.length) assert.ok(err.includes(HOTPLUG) && acpiErrors.every((d) => d.message.includes(HOTPLUG)), `${f} under ${qemu}: QEMU says "${err}"`);
        else assert.ok(!err.includes(HOTPLUG), `${f} under ${qemu}: QEMU says "${err}" and we say nothing`);
        if (slotErrors.length) {
          const said = /PCI: slot \d+ function 0 not available for \S+, in use by \S+/.exec(err)?.[0];
          assert.ok(said && slotErrors.some((d) => d.message.includes(said)), `${f} under ${qemu}: QEMU says "${err}"; ours:\n${slotErrors.map((d) => d.message).join('\n')}`);
        } else {
          assert.doesNotMatch(err, /not available for/, `${f} under ${qemu}`);
        }
      }
    }
  } finally {
    rmSync(memDir, { recursive: true, force: true });
  }
  assert.ok(compared >= 10, `${compared} fixtures compared`);
  if (qemus.length) assert.ok(ran >= compared, `${ran} QEMU runs`);
});

test('cleanup: the embedded libvirt leaves no process and no file behind', { skip: lvSkip }, () => {
  const l = lv as EmbeddedLibvirt;
  l.close();
  assert.ok(!existsSync(l.dir));
});

process.on('exit', () => {
  if (typeof lv !== 'string' && existsSync(lv.dir)) lv.close();
});
