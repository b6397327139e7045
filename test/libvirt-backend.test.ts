/**
 * The libvirt backend (issue 15), on a private libvirtd (scripts/libvirtd-private.sh):
 *  - the FAME proof of `npm start` with `boot --backend libvirt`: the nodes are
 *    libvirt domains (virsh list shows them), one writes the fabric, the other
 *    and the host file read it; verify predicts libvirt's own command line;
 *  - a user's own image (a disk built from Debian packages that runs Debian's
 *    qemu-guest-agent, test/support/user-disk.ts) works with exec, views and
 *    verify, on both backends, under QEMU 7.2 and 10.0;
 *  - nothing is left after stop, and a boot killed with SIGKILL half-way is
 *    cleaned by the next stop.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, closeSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, QEMU10, REPO, fame2, hasQemu, hasQemu10, runCliWithRunDir } from './support/cli';
import { PrivateLibvirtd } from './support/libvirtd';
import { buildUserDisk } from './support/user-disk';
import { PrivateSshd } from './support/sshd';

let lv: PrivateLibvirtd | string = 'not started';
before(async () => {
  lv = hasQemu() ? await PrivateLibvirtd.start() : 'no qemu-system-x86_64';
});
after(() => {
  if (typeof lv !== 'string') lv.stop();
});

const domains = (d: PrivateLibvirtd, all = false) => d.virsh('list', '--name', ...(all ? ['--all'] : [])).stdout.split('\n').map((x) => x.trim()).filter(Boolean);

for (const [version, qemuEnv] of [['7.2', {}], ['10.0', { MEMFABRIC_QEMU: QEMU10 }]] as [string, Record<string, string>][]) test(`FAME on the libvirt backend under QEMU ${version}: domains in virsh list, one node writes, the other and the host file read, verify, stop leaves nothing`, { timeout: 600_000 }, (t) => {
  if (typeof lv === 'string') return t.skip(lv);
  if (version !== '7.2' && !hasQemu10()) return t.skip(`no QEMU ${version}`);
  const d = lv;
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-lvboot-'));
  const run = join(dir, 'run');
  const mf = (args: string[]) => runCliWithRunDir(run, args, { timeoutMs: 300_000, env: { MEMFABRIC_ACCEL: 'tcg', ...qemuEnv } });
  try {
    const file = fame2(dir);
    const boot = mf(['boot', '--backend', 'libvirt', '--connect', d.uri, '--format', 'json', file]);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    const b = JSON.parse(boot.stdout) as { ok: boolean; backend: string; uri: string; nodes: { name: string; domain: string }[] };
    assert.equal(b.backend, 'libvirt');
    assert.equal(b.uri, d.uri);
    assert.deepEqual(domains(d).sort(), b.nodes.map((n) => n.domain).sort(), 'the nodes are running libvirt domains');
    for (const n of b.nodes) assert.match(n.domain, /^mf-[0-9a-f]{8}-node0[12]$/);
    // The domain runs the QEMU asked for (its <emulator>).
    assert.match(d.virsh('dumpxml', b.nodes[0].domain).stdout, new RegExp(`<emulator>${(qemuEnv.MEMFABRIC_QEMU ?? '/usr/bin/qemu-system-x86_64').replace(/[.]/g, '\\.')}</emulator>`));

    const st = JSON.parse(mf(['status', '--format', 'json', file]).stdout) as { nodes: { name: string; state: string; backend: string; domain: string }[] };
    assert.deepEqual(st.nodes.map((n) => `${n.name} ${n.state} ${n.backend}`), ['node01 ready libvirt', 'node02 ready libvirt']);

    // The FAME proof: node01 writes "MEMF" at the start of the fabric BAR, node02 and the host file read it.
    // (Where the BAR is depends on the QEMU's SeaBIOS: each guest says.)
    const bar = (node: string) => /Memory at ([0-9a-f]+) \(64-bit, prefetchable\) \[size=32G\]/.exec(mf(['exec', file, node, '--', 'lspci', '-v']).stdout)?.[1];
    const at = bar('node01');
    assert.ok(at, 'a 32G fabric BAR in node01');
    assert.equal(bar('node02'), at);
    const w = mf(['exec', file, 'node01', '--', 'devmem', `0x${at}`, '32', '0x464d454d']);
    assert.equal(w.status, 0, w.stderr);
    const r = mf(['exec', file, 'node02', '--', 'devmem', `0x${at}`, '32']);
    assert.equal(r.stdout.trim(), '0x464D454D', r.stderr);
    const fd = openSync(join(dir, 'fam.raw'), 'r');
    const head = Buffer.alloc(4);
    readSync(fd, head, 0, 4, 0);
    closeSync(fd);
    assert.equal(head.toString('latin1'), 'MEMF');
    // Exit status and a missing program, through libvirt's agent channel.
    assert.equal(mf(['exec', file, 'node02', '--', 'sh', '-c', 'exit 3']).status, 3);
    const missing = mf(['exec', file, 'node02', '--', 'no-such-program']);
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /no-such-program: .*No such file or directory/);

    // The console is the domain's (virsh console, on a pty; Ctrl-] leaves), and its log is the console log.
    if (spawnSync('script', ['--version']).status === 0) {
      const c = spawnSync('script', ['-qc', `${process.execPath} ${BIN} console ${file} node01`, '/dev/null'], {
        input: '', env: { ...process.env, MEMFABRIC_RUN_DIR: run }, encoding: 'utf8', timeout: 5000, killSignal: 'SIGKILL',
      });
      assert.match(c.stdout ?? '', /Connected to domain '?mf-[0-9a-f]{8}-node01'?/, `${c.stdout}${c.stderr}`);
    }
    const st2 = JSON.parse(mf(['status', '--format', 'json', file]).stdout) as { nodes: { consoleLog: string }[] };
    assert.match(readFileSync(st2.nodes[0].consoleLog, 'utf8'), /^MEMFABRIC-READY\r?$/m);

    // The guest's memory map is the one predicted for libvirt's command line (its root ports, USB, balloon, agent channel).
    const v = mf(['verify', file]);
    assert.equal(v.status, 0, v.stdout + v.stderr);
    assert.match(v.stdout, /node01: the guest's memory map equals the prediction/);

    const stop = mf(['stop', file]);
    assert.equal(stop.status, 0, stop.stderr);
    assert.deepEqual(domains(d, true), [], 'no domain left, running or defined');
    // No state left: the run directory holds the console logs only.
    for (const c of existsSync(run) ? readdirSync(run) : []) assert.ok(!existsSync(join(run, c, 'cluster.json')), c);
  } finally {
    mf(['stop', join(dir, 'fame.cluster.xml')]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a boot killed with SIGKILL half-way leaves domains that the next stop removes', { timeout: 600_000 }, async (t) => {
  if (typeof lv === 'string') return t.skip(lv);
  const d = lv;
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-lvkill-'));
  const run = join(dir, 'run');
  try {
    const file = fame2(dir);
    // (The backend from the environment, as the extension's memfabric.backend and memfabric.libvirtUri settings give it.)
    const child = spawn(process.execPath, [BIN, 'boot', file], { cwd: REPO, env: { ...process.env, MEMFABRIC_RUN_DIR: run, MEMFABRIC_ACCEL: 'tcg', MEMFABRIC_BACKEND: 'libvirt', MEMFABRIC_LIBVIRT_URI: d.uri }, stdio: 'ignore' });
    // Kill it as soon as the first domain runs (before the guests are ready).
    for (let i = 0; i < 600 && domains(d).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    assert.ok(domains(d, true).length >= 1, 'the killed boot had started a domain');
    const st = runCliWithRunDir(run, ['status', '--format', 'json', file]);
    assert.ok((JSON.parse(st.stdout) as { nodes: { state: string }[] }).nodes.some((n) => n.state !== 'stopped'), st.stdout);
    const stop = runCliWithRunDir(run, ['stop', file]);
    assert.equal(stop.status, 0, stop.stderr);
    assert.deepEqual(domains(d, true), [], 'stop removed every domain of the killed boot');
  } finally {
    runCliWithRunDir(run, ['stop', join(dir, 'fame.cluster.xml')]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a user's own disk image running Debian's qemu-guest-agent works with exec, the views and verify, on both backends, under QEMU 7.2 and 10.0", { timeout: 900_000 }, async (t) => {
  if (!hasQemu()) return t.skip('no qemu-system-x86_64');
  const img = await buildUserDisk();
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-userimg-'));
  const run = join(dir, 'run');
  let qemuEnv: Record<string, string> = {};
  const mf = (args: string[]) => runCliWithRunDir(run, args, { timeoutMs: 300_000, env: { MEMFABRIC_ACCEL: 'tcg', ...qemuEnv } });
  try {
    const backends: { name: string; args: string[]; env: Record<string, string> }[] = [];
    for (const [q, env] of [['7.2', {}], ...(hasQemu10() ? [['10.0', { MEMFABRIC_QEMU: QEMU10 }]] : [])] as [string, Record<string, string>][]) {
      backends.push({ name: `qemu-${q}`, args: [], env });
      if (typeof lv !== 'string') backends.push({ name: `libvirt-${q}`, args: ['--backend', 'libvirt', '--connect', lv.uri], env });
    }
    for (const b of backends) {
      qemuEnv = b.env;
      // The guest writes to its disk: a copy for each boot.
      const disk = join(dir, `disk-${b.name}.img`);
      copyFileSync(img.disk, disk);
      const file = join(dir, `user-${b.name.replace(".", "")}.cluster.xml`);
      writeFileSync(file, `<cluster name="user-${b.name.replace(".", "")}">
  <guest kernel="${img.kernel}" initrd="${img.initrd}" disk="${disk}" append="root=/dev/vda"/>
  <node name="node01" machine="q35" memory="512M" cpus="1"/>
</cluster>
`);
      const boot = mf(['boot', ...b.args, file]);
      assert.equal(boot.status, 0, `${b.name}: ${boot.stdout}${boot.stderr}`);
      try {
        const u = mf(['exec', file, 'node01', '--', 'uname', '-r']);
        assert.equal(u.stdout.trim(), img.kernelRelease, `${b.name}: ${u.stderr}`);
        // Not memfabric's guest: its init is the image's own, and the agent is Debian's qemu-ga.
        const ps = mf(['exec', file, 'node01', '--', 'ps']);
        assert.match(ps.stdout, /qemu-ga -m virtio-serial/, b.name);
        const iomem = mf(['view', '--format', 'json', file, 'node01', 'iomem']);
        assert.equal(iomem.status, 0, `${b.name}: ${iomem.stderr}`);
        assert.ok((JSON.parse(iomem.stdout) as { iomem: unknown[] }).iomem.length > 3, b.name);
        // verify: the model places the disk as each backend attaches it (after the agent's virtio-serial;
        // libvirt's own command line with its xhci), and reads the BARs from sysfs, as this image has no lspci.
        assert.match(mf(['exec', file, 'node01', '--', 'sh', '-c', 'command -v lspci || echo no-lspci']).stdout, /no-lspci/, b.name);
        const v = mf(['verify', '--format', 'json', file]);
        const vr = JSON.parse(v.stdout) as { nodes: { ok: boolean; differences: unknown[] }[] };
        assert.deepEqual(vr.nodes.map((n) => n.differences), [[]], `${b.name}: ${v.stdout}${v.stderr}`);
        assert.equal(v.status, 0, b.name);
      } finally {
        assert.equal(mf(['stop', file]).status, 0);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------- other hosts

test('host-placement: nodes that share a fabric on two hosts are an error at both host= values; one fabric per host plans into two host groups', () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-hosts-'));
  try {
    const split = join(dir, 'split.cluster.xml');
    const text = `<cluster name="split">
  <fabric id="fam" size="1G" path="fam.raw"/>
  <node name="a" machine="q35" memory="1G" host="qemu+ssh://root@lab1/system"><attach fabric="fam"/></node>
  <node name="b" machine="q35" memory="1G" host="qemu+ssh://root@lab2/system"><attach fabric="fam"/></node>
</cluster>
`;
    writeFileSync(split, text);
    const r = runCliWithRunDir(join(dir, 'run'), ['check', '--format', 'json', split]);
    assert.equal(r.status, 1, r.stdout);
    const ds = (JSON.parse(r.stdout) as { files: { diagnostics: { code: string; message: string; range: { start: { line: number; character: number }; end: { line: number; character: number } }; related?: { range: { start: { line: number; character: number }; end: { line: number; character: number } } }[] }[] }[] }).files[0].diagnostics.filter((d) => d.code === 'host-placement');
    assert.equal(ds.length, 1, JSON.stringify(ds));
    const lines = text.split('\n');
    const at = (x: { start: { line: number; character: number }; end: { line: number; character: number } }) => lines[x.start.line].slice(x.start.character, x.end.character);
    assert.equal(at(ds[0].range), 'qemu+ssh://root@lab2/system');
    assert.equal(at(ds[0].related![0].range), 'qemu+ssh://root@lab1/system');
    assert.match(ds[0].message, /shares the fabric file .*fam\.raw with 'a'/);
    // boot refuses it before anything starts
    const boot = runCliWithRunDir(join(dir, 'run'), ['boot', split]);
    assert.equal(boot.status, 1);
    assert.match(boot.stderr, /host-placement/);
    // The 40-node example over two hosts, one fabric each: clean, two host groups of 20.
    const ex = join(REPO, 'examples', 'the-machine-40-two-hosts.cluster.xml');
    assert.equal(runCliWithRunDir(join(dir, 'run'), ['check', ex]).status, 0);
    const plan = JSON.parse(runCliWithRunDir(join(dir, 'run'), ['plan', ex]).stdout) as { hosts: { host: string; nodes: string[] }[]; nodes: { name: string; host: string }[] };
    assert.deepEqual(plan.hosts.map((h) => [h.host, h.nodes.length]), [['qemu+ssh://root@lab1/system', 20], ['qemu+ssh://root@lab2/system', 20]]);
    assert.equal(plan.nodes.find((n) => n.name === 'lab2-node07')?.host, 'qemu+ssh://root@lab2/system');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a cluster split across two connection URIs (one of them qemu+ssh to a loopback sshd) boots, runs commands and stops', { timeout: 600_000 }, async (t) => {
  if (typeof lv === 'string') return t.skip(lv);
  const sshd = await PrivateSshd.start();
  if (typeof sshd === 'string') return t.skip(sshd);
  const d = lv;
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-2hosts-'));
  const run = join(dir, 'run');
  const mf = (args: string[]) => runCliWithRunDir(run, args, { timeoutMs: 300_000, env: { MEMFABRIC_ACCEL: 'tcg', PATH: sshd.path } });
  try {
    const sshUri = sshd.uri(d.socket);
    const file = join(dir, 'two.cluster.xml');
    const esc = (u: string) => u.replace(/&/g, '&amp;');
    writeFileSync(file, `<cluster name="two">
  <fabric id="fam1" size="32G" path="fam1.raw"/>
  <fabric id="fam2" size="32G" path="fam2.raw"/>
  <node name="here" machine="q35" memory="512M" host="${esc(d.uri)}"><attach fabric="fam1"/></node>
  <node name="there" machine="q35" memory="512M" host="${esc(sshUri)}"><attach fabric="fam2"/></node>
</cluster>
`);
    assert.equal(mf(['check', file]).status, 0, mf(['check', file]).stdout);
    // No --backend: host= implies libvirt.
    assert.ok(!existsSync(join(dir, 'fam2.raw')));
    const boot = mf(['boot', '--format', 'json', file]);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    // The "remote" node's fabric file was made on its host through libvirt's storage API, over ssh: sparse, its size.
    assert.match(boot.stderr, new RegExp(`created ${dir}/fam2\\.raw on qemu\\+ssh://root@127\\.0\\.0\\.1:\\d+/system.* \\(sparse, through libvirt's storage API\\)`), boot.stderr);
    const st2 = statSync(join(dir, 'fam2.raw'));
    assert.equal(st2.size, 32 * 2 ** 30);
    assert.ok(st2.blocks * 512 < 2 ** 30, 'sparse');
    const b = JSON.parse(boot.stdout) as { backend: string; nodes: { name: string; domain: string; uri: string }[] };
    assert.equal(b.backend, 'libvirt');
    assert.deepEqual(b.nodes.map((n) => n.uri), [d.uri, sshUri]);
    assert.deepEqual(domains(d).sort(), b.nodes.map((n) => n.domain).sort(), 'both domains run (the ssh one on the same daemon, reached over ssh)');
    // It boots the guest's kernel and initrd uploaded to its host (vol-upload over ssh): the daemon keeps
    // /var/lib/libvirt in its own directory, where this host's file system has no such files.
    const up = /uploaded the guest's (\S+) and (\S+) to (\/var\/lib\/libvirt\/memfabric\/images\/[0-9a-f]{24}) on qemu\+ssh:/.exec(boot.stderr);
    assert.ok(up, boot.stderr);
    assert.ok(!existsSync(up[3]), 'not a path of this host');
    const xmlOf = (node: string) => d.virsh('dumpxml', b.nodes.find((n) => n.name === node)!.domain).stdout;
    const there = xmlOf('there');
    const kernel = /<kernel>([^<]+)<\/kernel>/.exec(there)![1];
    assert.equal(kernel, `${up[3]}/${up[1]}`);
    const local = /<kernel>([^<]+)<\/kernel>/.exec(xmlOf('here'))![1];
    assert.deepEqual(readFileSync(join(d.dir, 'lib', kernel.slice('/var/lib/libvirt/'.length))), readFileSync(local), 'the uploaded kernel is the local one');
    assert.doesNotMatch(there, /<log file=/, 'no console log file on the other host');
    assert.match(xmlOf('here'), /<log file=/);
    // Each node writes its own fabric.
    for (const [node, fam] of [['here', 'fam1.raw'], ['there', 'fam2.raw']]) {
      const w = mf(['exec', file, node, '--', 'devmem', '0x800000000', '32', '0x464d454d']);
      assert.equal(w.status, 0, `${node}: ${w.stderr}`);
      const fd = openSync(join(dir, fam), 'r');
      const head = Buffer.alloc(4);
      readSync(fd, head, 0, 4, 0);
      closeSync(fd);
      assert.equal(head.toString('latin1'), 'MEMF', `${node} wrote ${fam}`);
    }
    const st = JSON.parse(mf(['status', '--format', 'json', file]).stdout) as { nodes: { name: string; state: string; uri: string }[] };
    assert.deepEqual(st.nodes.map((n) => [n.name, n.state, n.uri]), [['here', 'ready', d.uri], ['there', 'ready', sshUri]]);
    const stText = mf(['status', file]).stdout;
    assert.match(stText, /^there\s+ready\s+mf-[0-9a-f]{8}-there\s+- \(another host\)$/m, stText);
    assert.match(stText, /^here\s+ready\s+mf-[0-9a-f]{8}-here\s+\/\S+\/console\.log$/m, stText);
    const stop = mf(['stop', file]);
    assert.equal(stop.status, 0, stop.stdout + stop.stderr);
    assert.deepEqual(domains(d, true), []);

    // The "remote" host's files are checked before anything starts (this host's file system says nothing of them):
    // a file of another size is refused and left as it is, a directory it lacks is named.
    const variant = (name: string, edit: (text: string) => string) => {
      const f = join(dir, `${name}.cluster.xml`);
      writeFileSync(f, edit(readFileSync(file, 'utf8').replace('name="two"', `name="${name}"`)));
      assert.equal(mf(['check', f]).status, 0, mf(['check', f]).stdout);
      return f;
    };
    writeFileSync(join(dir, 'small.raw'), Buffer.alloc(4096, 7));
    const small = mf(['boot', variant('small', (x) => x.replace('path="fam2.raw"', 'path="small.raw"'))]);
    assert.equal(small.status, 1);
    assert.match(small.stderr, new RegExp(`nothing started:\\n  ${dir}/small\\.raw on qemu\\+ssh://\\S+: backing file of there is 4096 bytes, the plan needs 34359738368 bytes \\(too small\\); memfabric never resizes`), small.stderr);
    assert.deepEqual(readFileSync(join(dir, 'small.raw')), Buffer.alloc(4096, 7), 'the file is untouched');
    const nodir = mf(['boot', variant('nodir', (x) => x.replace('path="fam2.raw"', `path="${dir}/no-such-dir/fam2.raw"`))]);
    assert.equal(nodir.status, 1);
    assert.match(nodir.stderr, /nothing started:\n  backing file .*no-such-dir\/fam2\.raw of there on qemu\+ssh:\/\/\S+: .*cannot open directory '.*no-such-dir': No such file or directory/, nodir.stderr);
    assert.ok(!existsSync(join(dir, 'no-such-dir')));
    assert.deepEqual(domains(d, true), []);

    // A node that fails half-way: the "remote" one asks for the host's CPU, which TCG cannot give; check cannot know
    // the accelerator, QEMU there refuses at start, and the boot removes the domain it had already started.
    const bad = variant('bad', (x) => x.replace(/(<node name="there"[^>]*>)/, '$1<qemu>-cpu host</qemu>'));
    const failed = mf(['boot', bad]);
    assert.equal(failed.status, 1, failed.stdout + failed.stderr);
    assert.match(failed.stderr, /found the guest's \S+ and \S+ in \/var\/lib\/libvirt\/memfabric\/images\/[0-9a-f]{24} on qemu\+ssh:/, 'uploaded once');
    assert.match(failed.stderr, /node there: libvirt cannot start mf-[0-9a-f]{8}-there: .*CPU model 'host' requires KVM/);
    assert.deepEqual(domains(d, true), [], 'the domain of the node that had started is gone too');
    assert.equal(JSON.parse(mf(['status', '--format', 'json', bad]).stdout).running, false);
    assert.deepEqual(d.virsh('pool-list', '--all', '--name').stdout.trim(), '', 'no storage pool is left');
  } finally {
    mf(['stop', join(dir, 'two.cluster.xml')]);
    sshd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
