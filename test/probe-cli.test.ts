/**
 * `memfabric check --probe` and `layout --probe`: the user's own QEMU (7.2 on
 * PATH, 10.0 through MEMFABRIC_QEMU) run on each distinct node shape, its
 * refusals and its firmware's memory map reported on the node's text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QEMU10, REPO, hasQemu, hasQemu10, runCli } from './support/cli';

const QEMUS = [
  ...(hasQemu() ? [{ name: '7.2', env: {} as NodeJS.ProcessEnv }] : []),
  ...(hasQemu10() ? [{ name: '10.0', env: { MEMFABRIC_QEMU: QEMU10 } as NodeJS.ProcessEnv }] : []),
];
interface D { code: string; severity: string; message: string; range: { start: { line: number; character: number }; end: { line: number; character: number } } }

function checkJson(files: string[], env: NodeJS.ProcessEnv, cache: string): { status: number; diags: D[][]; stderr: string } {
  const r = runCli(['check', '--probe', '--format', 'json', ...files], { env: { ...env, XDG_CACHE_HOME: cache } });
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  return { status: r.status, diags: JSON.parse(r.stdout).files.map((f: { diagnostics: D[] }) => f.diagnostics), stderr: r.stderr };
}

for (const q of QEMUS) {
  test(`check --probe under QEMU ${q.name}: the examples' memory maps are QEMU's (no probe-disagrees), one QEMU run per shape`, () => {
    const cache = mkdtempSync(join(tmpdir(), 'memfabric-probe-cli-'));
    try {
      const ex = readdirSync(join(REPO, 'examples')).filter((f) => f.endsWith('.cluster.xml')).sort().map((f) => join(REPO, 'examples', f));
      const r = checkJson(ex, q.env, cache);
      const all = r.diags.flat();
      assert.deepEqual(all.filter((d) => d.code === 'probe-disagrees').map((d) => d.message), []);
      // 40 nodes of one shape: one run of QEMU.
      assert.match(r.stderr, /probed 40 node\(s\) with QEMU [\d.]+: 1 run\(s\)/);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  test(`check --probe under QEMU ${q.name}: a refusal the model misses is an error on the option QEMU names, in QEMU's words; one the model reports is not repeated`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'memfabric-probe-cli-'));
    try {
      // The fabric's directory does not exist: QEMU cannot open the backing store (no model rule knows the host's directories).
      const missing = join(dir, 'missing');
      const text = `qemu-system-x86_64 -M q35 -m 1G \\\n  -object memory-backend-file,id=fam,mem-path=${missing}/fam.raw,size=1G,share=on \\\n  -device ivshmem-plain,id=shm,memdev=fam,bus=pcie.0\n`;
      const f = join(dir, 'missing-dir.qemu');
      writeFileSync(f, text);
      const [d] = checkJson([f], q.env, dir).diags;
      const refused = d.filter((x) => x.code === 'qemu-refuses');
      assert.equal(refused.length, 1, JSON.stringify(d));
      assert.equal(refused[0].severity, 'error');
      assert.match(refused[0].message, new RegExp(`^QEMU ${q.name.replace('.', '\\.')}\\.\\d+ refuses to start this node .*"can't open backing store ${missing}/fam.raw for guest RAM: No such file or directory"`));
      // on the -object option's value
      const lines = text.split('\n');
      const r0 = refused[0].range;
      assert.equal(lines[r0.start.line].slice(r0.start.character, r0.end.character), `memory-backend-file,id=fam,mem-path=${missing}/fam.raw,size=1G,share=on`);

      // cxl-type3 without lsa: 7.2 refuses and the rule says so with QEMU's words; no second report.
      const g = join(dir, 'no-lsa.qemu');
      writeFileSync(g, `qemu-system-x86_64 -M q35,cxl=on -m 2G \\\n  -object memory-backend-ram,id=m0,size=256M \\\n  -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \\\n  -device cxl-rp,port=0,bus=cxl.1,id=rp0,chassis=0,slot=2 \\\n  -device cxl-type3,bus=rp0,memdev=m0,id=t3 \\\n  -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G\n`);
      const [e] = checkJson([g], q.env, dir).diags;
      assert.ok(e.some((x) => x.severity === 'error' && x.code !== 'qemu-refuses'), JSON.stringify(e));
      assert.deepEqual(e.filter((x) => x.code === 'qemu-refuses').map((x) => x.message), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`check and layout --probe under QEMU ${q.name}: where the model is wrong, QEMU's answer is reported with both values`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'memfabric-probe-cli-'));
    try {
      // Four 256 MiB VGA framebuffers exhaust SeaBIOS's 32-bit window; the model does not know vgamem_mb.
      const f = join(dir, 'vga.qemu');
      writeFileSync(f, `qemu-system-x86_64 -M q35 -m 1G -vga none${' -device secondary-vga,vgamem_mb=256'.repeat(4)}\n`);
      const [d] = checkJson([f], q.env, dir).diags;
      const stop = d.find((x) => x.code === 'qemu-refuses');
      assert.match(stop?.message ?? '', /its firmware \(.*\) stops before booting: ".*out of 32bit address space.*"/i, JSON.stringify(d));
      assert.ok(d.some((x) => x.code === 'probe-disagrees' && /memfabric predicts the firmware maps every BAR, but it stopped/.test(x.message)));
      const r = runCli(['layout', '--probe', '--format', 'json', f], { env: { ...q.env, XDG_CACHE_HOME: dir } });
      assert.equal(r.status, 1, r.stderr);
      const n = JSON.parse(r.stdout).nodes[0];
      assert.equal(n.probe.confirmed, false);
      assert.match(n.probe.firmwareStop, /out of 32bit address space/i);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test(`layout --probe under QEMU ${q.name}: the FAME node is confirmed, and the E820 table shown is the firmware's`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'memfabric-probe-cli-'));
    try {
      const r = runCli(['layout', '--probe', '--format', 'json', '--node', 'node01', join(REPO, 'examples', 'fame-4node.cluster.xml')], { env: { ...q.env, XDG_CACHE_HOME: dir } });
      assert.equal(r.status, 0, r.stderr);
      const n = JSON.parse(r.stdout).nodes[0];
      assert.equal(n.probe.confirmed, true, JSON.stringify(n.probe));
      assert.deepEqual(n.probe.disagreements, []);
      assert.ok(n.qemuVersion.startsWith(q.name + '.'));
      const bar2 = n.bars.find((b: { device: string; bar: number }) => b.device === 'fam-shm' && b.bar === 2);
      // SeaBIOS 1.16.2 puts the 32 GiB fabric above RAM; 1.16.3 below the top of the CPU's 40 address bits, under the AMD hole.
      assert.equal(bar2.start, q.name === '7.2' ? '0x800000000' : '0xf000000000');
      const text = runCli(['layout', '--probe', '--node', 'node01', join(REPO, 'examples', 'fame-4node.cluster.xml')], { env: { ...q.env, XDG_CACHE_HOME: dir } });
      assert.match(text.stdout, new RegExp(`^# node01: confirmed by QEMU ${q.name.replace('.', '\\.')}\\.\\d+ \\(1\\.16\\.[23]`, 'm'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('check --probe with no QEMU to run says so and reports the model alone', () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-probe-cli-'));
  try {
    const r = runCli(['check', '--probe', join(REPO, 'examples', 'fame-4node.cluster.xml')], { env: { MEMFABRIC_QEMU: join(dir, 'no-qemu'), XDG_CACHE_HOME: dir } });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /--probe: there is no QEMU binary to probe with \(judging with the bundled QEMU 10\.0\.\d+ profile\)/);
    assert.match(r.stdout, /no problems in 1 file\(s\), 4 node\(s\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
