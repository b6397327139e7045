/**
 * The libvirt corpus (test/corpus/libvirt): domains that libvirt 9.0 and QEMU
 * 7.2 were asked to define, translate and really start (record.mjs, on a
 * private libvirtd). Every domain must be judged as they judged it:
 *  - offline (no libvirtd: the model of libvirt 9.0), and
 *  - with `check --libvirt` against a running libvirtd (the private one),
 * which means: where libvirt or QEMU refused, an error of ours quotes their
 * words; where the domain started, no error of ours. With a libvirtd here, the
 * records are checked live first (define, domxml-to-native, start).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addVerdicts, analyzeDocument, analyzeDocuments } from '../server/src/engine/index';
import { judgeWithQemu } from '../server/src/runtime/judge';
import { userProfile } from '../server/src/host/qemu-profile';
import { bundledProfile } from '../server/src/engine/qemu/profile';
import { nodeHost } from '../server/src/host/probe';
import { domainSpanOf, argvWords, libvirtFindings, probeableNode } from '../server/src/engine/libvirt-answer';
import { parseXml, child, childElements, attr } from '../server/src/engine/syntax/xml';
import { QEMU10, REPO, hasQemu, hasQemu10, runCli } from './support/cli';
import { server } from './support/lsp-server';
import { pathToFileURL } from 'node:url';
import { PrivateLibvirtd } from './support/libvirtd';
import { DomainOutcome, domainText, makeFiles, runDomain } from './support/libvirt-corpus';

const DIR = join(REPO, 'test', 'corpus', 'libvirt');
const domains = readdirSync(DIR).filter((f) => /^\d{3}-.*\.xml$/.test(f)).sort();
const record = (f: string, suffix = ''): DomainOutcome => JSON.parse(readFileSync(join(DIR, f.replace(/\.xml$/, `.expected${suffix}.json`)), 'utf8'));

/** The QEMUs each domain was recorded with: the system's 7.2 (libvirt's default <emulator>), and 10.0 as the domain's <emulator>. */
const QEMUS = [
  { suffix: '', version: '7.2', emulator: undefined as string | undefined, here: hasQemu() },
  { suffix: '-10.0', version: '10.0', emulator: QEMU10 as string | undefined, here: hasQemu10() },
];

/** What refused the domain, in the words to look for in our errors (libvirt's category dropped), or undefined if it started. */
function refusal(o: DomainOutcome): string | undefined {
  const r = o.define !== 'ok' ? o.define : o.argv !== 'ok' ? o.argv : o.start !== 'ok' ? o.qemuSays ?? o.start : undefined;
  return r?.replace(/^(internal error|XML error|invalid argument|unsupported configuration|operation failed): /, '');
}

/** A domain of the corpus written into a scratch directory with the files it names. */
function materialize(f: string, emulator?: string): { dir: string; file: string; text: string } {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-lvjudge-'));
  chmodSync(dir, 0o755);
  let text = domainText(join(DIR, f), dir);
  if (emulator) text = text.replace(/<emulator>[^<]*<\/emulator>/, `<emulator>${emulator}</emulator>`);
  makeFiles(text, dir);
  const file = join(dir, f);
  writeFileSync(file, text);
  return { dir, file, text };
}

function assertJudged(f: string, o: DomainOutcome, errors: string[], how: string) {
  // libvirt took the domain but dropped its <qemu:commandline> without a word: we must say so, as an error.
  if (o.droppedCommandline) assert.ok(errors.some((m) => m.startsWith('[libvirt-qemu-namespace]') && /silently drops/.test(m)), `${f} (${how}): libvirt dropped <qemu:commandline>; we do not say so:\n${errors.join('\n')}`);
  const why = refusal(o);
  if (why) assert.ok(errors.some((m) => m.includes(why)), `${f} (${how}): libvirt ${o.libvirt} / QEMU ${o.qemu} refused it ("${why}") but no error of ours says so:\n${errors.join('\n')}`);
  else assert.deepEqual(errors.filter((m) => !(o.droppedCommandline && m.startsWith('[libvirt-qemu-namespace]'))), [], `${f} (${how}): libvirt ${o.libvirt} and QEMU ${o.qemu} started it, yet we report errors`);
}

test('the corpus covers what issue 14 names, refused and accepted', () => {
  assert.ok(domains.length >= 15, `${domains.length} domains`);
  for (const q of QEMUS) {
    const outcomes = domains.map((f) => record(f, q.suffix));
    assert.ok(outcomes.filter((o) => refusal(o)).length >= 5, 'refused domains');
    assert.ok(outcomes.filter((o) => !refusal(o)).length >= 5, 'accepted domains');
    for (const o of outcomes) assert.equal(o.libvirt, '9.0.0');
    for (const o of outcomes) assert.ok(o.qemu.startsWith(`${q.version}.`), o.qemu);
  }
  // The two QEMUs judge some domains differently (libvirt 9.0's -no-acpi, removed in QEMU 9.0).
  assert.ok(domains.some((f) => refusal(record(f)) !== refusal(record(f, '-10.0'))));
});

test('offline (no libvirtd), every recorded domain is judged as libvirt 9.0 and QEMU 7.2 / 10.0 judged it', () => {
  for (const q of QEMUS) {
    for (const f of domains) {
      const { dir, file, text } = materialize(f, q.emulator);
      try {
        const r = analyzeDocument(text, file, nodeHost, 'libvirt', { qemu: bundledProfile(q.version) });
        const errors = r.diagnostics.filter((d) => d.severity === 'error').map((d) => `[${d.code}] ${d.message.split(dir).join('@DIR@')}`);
        assertJudged(f, record(f, q.suffix), errors, `offline, QEMU ${q.version}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
});

let lv: PrivateLibvirtd | string = 'not started';
before(async () => {
  lv = await PrivateLibvirtd.start();
});
after(() => {
  if (typeof lv !== 'string') lv.stop();
});

test('live: a private libvirtd 9.0 still defines, translates and starts each domain as recorded', { timeout: 600_000 }, (t) => {
  if (typeof lv === 'string') return t.skip(lv);
  for (const q of QEMUS.filter((x) => x.here)) {
    for (const f of domains) assert.deepEqual(runDomain(lv, join(DIR, f), q.emulator), record(f, q.suffix), `${f} (QEMU ${q.version}): libvirt/QEMU now do something else than recorded (re-record: node test/corpus/libvirt/record.mjs${q.emulator ? ' --qemu10' : ''})`);
  }
});

test('check --libvirt against the running libvirtd judges every recorded domain as libvirt and QEMU did', { timeout: 600_000 }, (t) => {
  if (typeof lv === 'string') return t.skip(lv);
  const d = lv;
  for (const q of QEMUS.filter((x) => x.here)) for (const f of domains) {
    const { dir, file } = materialize(f, q.emulator);
    try {
      // The domain is judged for the QEMU it names (MEMFABRIC_QEMU), its command line for libvirt's <emulator>.
      const r = runCli(['check', '--libvirt', '--connect', d.uri, '--format', 'json', file], q.emulator ? { env: { MEMFABRIC_QEMU: q.emulator } } : {});
      const out = JSON.parse(r.stdout) as { libvirt: { uri?: string; version?: string; none?: string }; files: { diagnostics: { code: string; severity: string; message: string }[] }[] };
      assert.equal(out.libvirt.uri, d.uri, `${f}: libvirt was not asked: ${r.stderr}`);
      assert.equal(out.libvirt.version, '9.0.0');
      const errors = out.files[0].diagnostics.filter((x) => x.severity === 'error').map((x) => `[${x.code}] ${x.message.split(dir).join('@DIR@')}`);
      assertJudged(f, record(f, q.suffix), errors, `check --libvirt, QEMU ${q.version}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test('libvirt refusing a domain: its own words at the element they name (libvirt-refuses), and check fails', (t) => {
  if (typeof lv === 'string') return t.skip(lv);
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-lvrefuse-'));
  try {
    const text = readFileSync(join(DIR, '011-unit-gib.xml'), 'utf8').replace('<devices>', "<devices>\n    <memballoon model='bogus'/>");
    const file = join(dir, 'balloon.xml');
    writeFileSync(file, text);
    const offline = runCli(['check', '--format', 'json', file]);
    assert.equal(offline.status, 0, 'the offline model does not know balloon models');
    const r = runCli(['check', '--libvirt', '--connect', (lv as PrivateLibvirtd).uri, '--format', 'json', file]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const ds = (JSON.parse(r.stdout) as { files: { diagnostics: { code: string; message: string; range: { start: { line: number; character: number }; end: { line: number; character: number } } }[] }[] }).files[0].diagnostics;
    const refused = ds.find((x) => x.code === 'libvirt-refuses');
    assert.ok(refused, JSON.stringify(ds));
    assert.match(refused.message, /libvirt 9\.0\.0 \(qemu:\/\/\/system\?socket=.*\) refuses this domain: "XML error: Invalid value for attribute 'model' in element 'memballoon': 'bogus'\."/);
    const lines = text.split('\n');
    const { start, end } = refused.range;
    assert.equal(lines[start.line].slice(start.character, end.character), 'bogus', 'the range is the value libvirt names');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("findings on libvirt's own command line map back to the XML: pass-through characters, aliases, options", (t) => {
  if (typeof lv === 'string') return t.skip(lv);
  const { dir, file, text } = materialize('007-nvdimm-acpi.xml');
  const fame = materialize('002-fame-seed-q35-addr.xml');
  try {
    const argvOf = (f: string) => (lv as PrivateLibvirtd).virsh('domxml-to-native', 'qemu-argv', f).stdout;
    const dom = parseXml(text).root!;
    const nv = argvOf(file);
    const words = argvWords(nv);
    const at = (pred: (w: string) => boolean, needle: string) => {
      const w = words.find((x) => pred(x.text))!;
      assert.ok(w, needle);
      const k = w.text.indexOf(needle);
      return { start: w.at[k], end: w.at[k + needle.length - 1] + 1 };
    };
    const slice = (s: { start: number; end: number }, t2 = text) => t2.slice(s.start, s.end);
    // -m size=524288k,slots=4,maxmem=4194304k: size is <memory>, maxmem <maxMemory>; the nvdimm device (alias
    // nvdimm0) is the <memory model='nvdimm'> element; ram-node0 is cell 0.
    assert.equal(slice(domainSpanOf(text, nv, at((w) => w.startsWith('size=524288k,'), '524288k')).span), 'memory');
    assert.equal(slice(domainSpanOf(text, nv, at((w) => w.startsWith('size=524288k,'), '4194304k')).span), 'maxMemory');
    const devices = child(dom, 'devices')!;
    const nvEl = childElements(devices, 'memory')[0];
    assert.deepEqual(domainSpanOf(text, nv, at((w) => w.includes('"driver":"nvdimm"'), 'nvdimm0')).span, nvEl.nameSpan);
    const cell = childElements(child(child(dom, 'cpu')!, 'numa')!, 'cell')[0];
    assert.deepEqual(domainSpanOf(text, nv, at((w) => w.includes('"id":"ram-node0"'), 'ram-node0')).span, attr(cell, 'memory')!.valueSpan);
    // A pass-through argument maps character for character into its <qemu:arg value>.
    const fv = argvOf(fame.file);
    const fw = argvWords(fv);
    const w = fw.find((x) => x.text.startsWith('ivshmem-plain,'))!;
    const k = w.text.indexOf('addr=0x10');
    const m = domainSpanOf(fame.text, fv, { start: w.at[k], end: w.at[k + 8] + 1 });
    assert.ok(m.passedThrough);
    assert.equal(fame.text.slice(m.span.start, m.span.end), 'addr=0x10');
    // libvirt's own pcie-root-port has no element: the domain's name.
    const rp = fw.find((x) => x.text.includes('"driver":"pcie-root-port"'))!;
    assert.equal(fame.text.slice(...Object.values(domainSpanOf(fame.text, fv, { start: rp.at[2], end: rp.at[3] }).span) as [number, number]), 'domain');
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(fame.dir, { recursive: true, force: true });
  }
});

test('the language server asks the running libvirtd about a resting domain: its refusal joins the diagnostics (trusted workspace only)', async (t) => {
  if (typeof lv === 'string') return t.skip(lv);
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-lsp-libvirt-'));
  const text = readFileSync(join(DIR, '011-unit-gib.xml'), 'utf8').replace('<devices>', "<devices>\n    <memballoon model='bogus'/>");
  const uri = pathToFileURL(join(dir, 'balloon.xml')).toString();
  const on = await server({ probe: true, libvirtUri: (lv as PrivateLibvirtd).uri }, dir);
  try {
    on.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'xml', version: 1, text } });
    const first = await on.waitFor((p) => p.uri === uri);
    assert.ok(!first.diagnostics.some((d) => d.code === 'libvirt-refuses'), 'the model alone, at once');
    const asked = await on.waitFor((p) => p.uri === uri && p.diagnostics.some((d) => d.code === 'libvirt-refuses'), 30_000);
    assert.match(asked.diagnostics.find((d) => d.code === 'libvirt-refuses')!.message, /refuses this domain: "XML error: Invalid value for attribute 'model' in element 'memballoon': 'bogus'\."/);
  } finally {
    on.close();
  }
  const off = await server({ libvirtUri: (lv as PrivateLibvirtd).uri }, dir);
  try {
    off.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'xml', version: 1, text } });
    await off.waitFor((p) => p.uri === uri);
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(off.pubs.every((p) => !p.diagnostics.some((d) => d.code === 'libvirt-refuses')), 'libvirt is not asked without the client asking (untrusted workspace)');
  } finally {
    off.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("check --libvirt --probe runs libvirt's own command line under QEMU (paused start, master key and monitor left to libvirt)", { timeout: 300_000 }, (t) => {
  if (typeof lv === 'string') return t.skip(lv);
  const { dir, file, text } = materialize('002-fame-seed-q35-addr.xml');
  try {
    // Clean: QEMU runs libvirt's command line to the firmware (no -S wait, no missing master key).
    const clean = runCli(['check', '--libvirt', '--connect', (lv as PrivateLibvirtd).uri, '--probe', '--format', 'json', file]);
    assert.equal(clean.status, 0, clean.stdout + clean.stderr);
    assert.deepEqual(JSON.parse(clean.stdout).files[0].diagnostics, []);
    // Probed twice: the domain as modelled, and libvirt's command line (either may come from the probe cache).
    assert.equal(clean.stderr.match(/probed 1 node\(s\) with QEMU 7\.2\.\d+: [01] run\(s\)/g)?.length, 2, clean.stderr);
    // A fabric file in a directory that does not exist: only QEMU says so, at the <qemu:arg> that names it.
    const bad = join(dir, 'bad.xml');
    writeFileSync(bad, text.replace(`${dir}/FAM`, `${dir}/missing/FAM`));
    const r = runCli(['check', '--libvirt', '--connect', (lv as PrivateLibvirtd).uri, '--probe', '--format', 'json', bad]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    const d = (JSON.parse(r.stdout) as { files: { diagnostics: { code: string; message: string; range: { start: { line: number; character: number }; end: { line: number; character: number } } }[] }[] }).files[0].diagnostics.find((x) => x.code === 'qemu-refuses')!;
    assert.match(d.message, /can't open backing store .*missing\/FAM for guest RAM: No such file or directory/);
    assert.match(readFileSync(bad, 'utf8').split('\n')[d.range.start.line], /<qemu:arg value='memory-backend-file,mem-path=/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a slot collision QEMU reports on libvirt's own device points at the pass-through device that took the slot, libvirt's device as related", { skip: !hasQemu() && 'no qemu-system-x86_64' }, async (t) => {
  if (typeof lv === 'string') return t.skip(lv);
  const { dir, file, text } = materialize('001-fame-seed-q35.xml');
  try {
    const argv = (lv as PrivateLibvirtd).virsh('domxml-to-native', 'qemu-argv', file).stdout.trim();
    const q72 = bundledProfile('7.2');
    const [argvDoc] = analyzeDocuments([{ text: argv, source: `${file}#libvirt-argv`, kind: 'qemu' }], nodeHost, { qemu: q72 });
    // QEMU itself, on libvirt's command line: it refuses libvirt's first pcie-root-port.
    const judged = await judgeWithQemu([probeableNode(argvDoc.nodes[0])], (await userProfile()).profile, { agent: false });
    addVerdicts(argvDoc, judged);
    const refusal = argvDoc.diagnostics.find((d) => d.code === 'qemu-refuses');
    assert.match(refusal?.message ?? '', /PCI: slot 1 function 0 not available for pcie-root-port, in use by ivshmem-plain,id=\(null\)/);
    // As if the offline model had not seen it: the finding lands on the <qemu:arg> of the ivshmem-plain.
    const offline = analyzeDocument(text, file, nodeHost, 'libvirt', { qemu: q72 });
    const [d] = libvirtFindings(text, { ...offline, diagnostics: [] }, { ok: true, uri: 'test', argv }, argvDoc).filter((x) => x.code === 'qemu-refuses');
    assert.equal(text.slice(d.span.start, d.span.end), 'ivshmem-plain,memdev=FAM');
    assert.match(d.related?.[0].message ?? '', /^libvirt's own pcie-root-port \(\{"driver":"pcie-root-port".*"addr":"0x1"\}\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
