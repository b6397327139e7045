/** The CLI contract scripts depend on: formats, exit statuses, input detection. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './support/cli';

function withFiles(files: Record<string, string>, fn: (dir: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-cli-'));
  try {
    for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t);
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BAD_QEMU = 'qemu-system-x86_64 -M q35 -m 2G \\\n  -object memory-backend-file,id=m,mem-path=m.raw,size=1GB,share=on \\\n  -device ivshmem-plain,memdev=m\n';
const GOOD_TOPO = '<cluster name="c"><fabric id="f" size="1G" path="f.raw"/><node name="a"><attach fabric="f"/></node></cluster>\n';

test('check --format json: the documented shape, 0-based ranges, exit 1 on errors', () => {
  withFiles({ 'bad.qemu': BAD_QEMU }, (dir) => {
    const r = runCli(['check', '--format', 'json', 'bad.qemu'], { cwd: dir });
    assert.equal(r.status, 1, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.files.length, 1);
    assert.equal(out.files[0].file, 'bad.qemu');
    const [d] = out.files[0].diagnostics;
    assert.deepEqual(d.range, { start: { line: 1, character: 55 }, end: { line: 1, character: 58 } });
    assert.equal(d.severity, 'error');
    assert.equal(d.code, 'size-syntax');
    assert.match(d.message, /Parameter 'size' expects a size value/);
  });
});

test('check: exit 0 without errors; text format names file:line:col and the code', () => {
  withFiles({ 'ok.xml': GOOD_TOPO, 'bad.qemu': BAD_QEMU }, (dir) => {
    const ok = runCli(['check', 'ok.xml'], { cwd: dir });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /no problems in 1 file\(s\), 1 node\(s\)/);
    const bad = runCli(['check', 'bad.qemu', 'ok.xml'], { cwd: dir });
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /^bad\.qemu:2:56: error \[size-syntax\] /m);
  });
});

test('usage and I/O errors exit 2 with a one-line message', () => {
  for (const args of [['check'], ['check', '--format', 'yaml', 'x'], ['check', '/nonexistent/file.qemu'], ['frobnicate'], ['plan'], ['check', '--bogus', 'x']]) {
    const r = runCli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^memfabric: /);
  }
});

test('plan: json, argv and libvirt formats, --node, unknown node', () => {
  withFiles({ 'c.xml': '<cluster name="c"><fabric id="f" size="1G" path="f.raw"/><node name="n{n}" count="2"><attach fabric="f"/></node></cluster>' }, (dir) => {
    const j = runCli(['plan', 'c.xml'], { cwd: dir });
    assert.equal(j.status, 0, j.stderr);
    const plan = JSON.parse(j.stdout);
    assert.deepEqual(plan.nodes.map((n: { name: string }) => n.name), ['n1', 'n2']);
    assert.equal(plan.nodes[0].argv[0], 'qemu-system-x86_64');
    assert.deepEqual(plan.nodes[0].files, [{ path: join(dir, 'f.raw'), size: '0x40000000' }]);
    const one = JSON.parse(runCli(['plan', '--node', 'n2', 'c.xml'], { cwd: dir }).stdout);
    assert.deepEqual(one.nodes.map((n: { name: string }) => n.name), ['n2']);
    const argv = runCli(['plan', '--format', 'argv', '--node', 'n1', 'c.xml'], { cwd: dir });
    assert.match(argv.stdout, /^qemu-system-x86_64 -machine q35 .*-device ivshmem-plain,id=f-shm,memdev=f,bus=pcie\.0$/m);
    const lv = runCli(['plan', '--format', 'libvirt', '--node', 'n1', 'c.xml'], { cwd: dir });
    assert.match(lv.stdout, /<domain type="qemu" xmlns:qemu="http:\/\/libvirt\.org\/schemas\/domain\/qemu\/1\.0">/);
    const missing = runCli(['plan', '--node', 'zz', 'c.xml'], { cwd: dir });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no node 'zz'.*nodes: n1, n2/);
  });
});

test('inputs are detected from their content, not their names', () => {
  withFiles(
    {
      'topology.txt': GOOD_TOPO,
      'domain.conf': `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>d</name><memory unit='GiB'>2</memory>
<qemu:commandline><qemu:arg value='-object'/><qemu:arg value='memory-backend-file,id=m,mem-path=/dev/shm/m,size=3M,share=on'/><qemu:arg value='-device'/><qemu:arg value='ivshmem-plain,memdev=m,addr=0x10'/></qemu:commandline></domain>`,
      'opts.args': '-M q35 -m 1G,slots=2\n',
    },
    (dir) => {
      const r = JSON.parse(runCli(['check', '--format', 'json', 'topology.txt', 'domain.conf', 'opts.args'], { cwd: dir }).stdout);
      const codes = r.files.map((f: { diagnostics: { code: string }[] }) => f.diagnostics.map((d) => d.code));
      assert.deepEqual(codes, [[], ['ivshmem-size-pow2'], ['slots-without-maxmem']]);
    },
  );
});

test('a cluster of command-line files: a fabric file mapped with different sizes', () => {
  const node = (size: string) => `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=fam,mem-path=/srv/fam,size=${size},share=on -device ivshmem-plain,memdev=fam\n`;
  withFiles({ 'a.qemu': node('1G'), 'b.qemu': node('1G'), 'c.qemu': node('2G') }, (dir) => {
    const r = runCli(['check', '--format', 'json', 'a.qemu', 'b.qemu', 'c.qemu'], { cwd: dir });
    const out = JSON.parse(r.stdout);
    assert.equal(r.status, 1);
    assert.deepEqual(out.files.map((f: { diagnostics: unknown[] }) => f.diagnostics.length), [0, 0, 1]);
    const d = out.files[2].diagnostics[0];
    assert.equal(d.code, 'fabric-region-mismatch');
    assert.equal(d.related[0].file, join(dir, 'a.qemu'));
  });
});

test('a cluster of command-line files: one node maps the fabric file twice, at two sizes; another node agrees with one of them', () => {
  const a = 'qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=f1,mem-path=/srv/fam,size=1G,share=on -object memory-backend-file,id=f2,mem-path=/srv/fam,size=2G,share=on\n';
  const b = 'qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=f1,mem-path=/srv/fam,size=1G,share=on\n';
  withFiles({ 'a.qemu': a, 'b.qemu': b }, (dir) => {
    // Alone, a has no other node to disagree with; within the node, QEMU refuses the 2G backend (backing-file-twice).
    const alone = JSON.parse(runCli(['check', '--format', 'json', 'a.qemu'], { cwd: dir }).stdout);
    assert.deepEqual(alone.files[0].diagnostics.map((d: { code: string }) => d.code), ['backing-file-twice']);
    // With b: two nodes, two sizes; 1G is the majority, so a's 2G is the one reported.
    const out = JSON.parse(runCli(['check', '--format', 'json', 'a.qemu', 'b.qemu'], { cwd: dir }).stdout);
    const found = out.files.map((f: { diagnostics: { code: string; range: { start: { character: number } } }[] }) => f.diagnostics.filter((d) => d.code === 'fabric-region-mismatch'));
    assert.equal(found[1].length, 0);
    assert.equal(found[0].length, 1);
    assert.equal(found[0][0].range.start.character, a.indexOf('size=2G') + 'size='.length);
  });
});

test('a cluster of command-line files: the same fabric backed by different files', () => {
  const node = (path: string) => `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=fam,mem-path=${path},size=1G,share=on -device ivshmem-plain,memdev=fam\n`;
  withFiles({ 'a.qemu': node('/srv/fam'), 'b.qemu': node('/srv/fam'), 'c.qemu': node('/srv/fam2') }, (dir) => {
    const r = runCli(['check', '--format', 'json', 'a.qemu', 'b.qemu', 'c.qemu'], { cwd: dir });
    const out = JSON.parse(r.stdout);
    assert.equal(r.status, 0);
    const d = out.files[2].diagnostics[0];
    assert.equal(d.code, 'fabric-region-mismatch');
    assert.equal(d.severity, 'warning');
    const at = node('/srv/fam2').indexOf('/srv/fam2');
    assert.deepEqual(d.range, { start: { line: 0, character: at }, end: { line: 0, character: at + '/srv/fam2'.length } });
  });
});

test('two topology files are two clusters: the same fabric id backed by different files is no mismatch; command lines checked beside them form their own cluster', () => {
  const topo = (name: string, path: string) => `<cluster name="${name}"><fabric id="fam" size="1G" path="${path}"/><node name="n{n}" count="2"><attach fabric="fam"/></node></cluster>\n`;
  const node = (path: string) => `qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=fam,mem-path=${path},size=1G,share=on -device ivshmem-plain,memdev=fam\n`;
  withFiles({ 'a.cluster.xml': topo('a', 'a.raw'), 'b.cluster.xml': topo('b', 'b.raw'), 'x.qemu': node('/srv/x'), 'y.qemu': node('/srv/y') }, (dir) => {
    const r = runCli(['check', '--format', 'json', 'a.cluster.xml', 'b.cluster.xml', 'x.qemu', 'y.qemu'], { cwd: dir });
    const out = JSON.parse(r.stdout);
    const codes = out.files.map((f: { diagnostics: { code: string }[] }) => f.diagnostics.map((d) => d.code));
    // the loose command lines disagree with each other (one warning), never with the clusters
    assert.deepEqual(codes, [[], [], [], ['fabric-region-mismatch']]);
    assert.equal(out.files[3].diagnostics[0].related[0].file, join(dir, 'x.qemu'));
  });
});

test('mem-path-directory, unknown-machine-type and xml-syntax, with their ranges', () => {
  withFiles(
    {
      'dir.qemu': 'qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=m,mem-path=shm,size=1G,share=on -device ivshmem-plain,memdev=m\n',
      'machine.qemu': 'qemu-system-x86_64 -M q36 -m 1G\n',
      'broken.cluster.xml': '<cluster name="c"><node name="a" memory="1G"></cluster>\n',
    },
    (dir) => {
      mkdirSync(join(dir, 'shm'));
      const out = JSON.parse(runCli(['check', '--format', 'json', 'dir.qemu', 'machine.qemu', 'broken.cluster.xml'], { cwd: dir }).stdout);
      const [d1] = out.files[0].diagnostics;
      assert.equal(d1.code, 'mem-path-directory');
      assert.equal(d1.severity, 'warning');
      const t1 = 'qemu-system-x86_64 -M q35 -m 1G -object memory-backend-file,id=m,mem-path=';
      assert.deepEqual(d1.range, { start: { line: 0, character: t1.length }, end: { line: 0, character: t1.length + 3 } });
      const [d2] = out.files[1].diagnostics;
      assert.equal(d2.code, 'unknown-machine-type');
      assert.match(d2.message, /no machine type 'q36' \(did you mean 'q35'\?\)/);
      assert.deepEqual(d2.range, { start: { line: 0, character: 22 }, end: { line: 0, character: 25 } });
      const d3 = out.files[2].diagnostics.find((d: { code: string }) => d.code === 'xml-syntax');
      assert.ok(d3, JSON.stringify(out.files[2]));
      assert.match(d3.message, /element 'node' is not closed/);
      assert.deepEqual(d3.range, { start: { line: 0, character: 19 }, end: { line: 0, character: 23 } });
    },
  );
});
