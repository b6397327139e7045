#!/usr/bin/env node
// The main job on the built-in example cluster, with memfabric's own commands:
// check the examples, plan and lay out the 4-node FAME cluster (and ask the QEMU
// that will run it to confirm the layout: --probe), boot all four
// nodes under real QEMU with memfabric's guest, show what the guests see,
// prove that the fabric memory is shared (a value written on node01 is read on
// every other node and lands in the host file), and stop the cluster.
// (Run through `npm start`, which installs and builds first.)
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, openSync, readSync, closeSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'memfabric-demo-'));
const env = { ...process.env, MEMFABRIC_RUN_DIR: join(dir, 'run') };
const cluster = join(dir, 'fame.cluster.xml');
copyFileSync(join(root, 'examples', 'fame-4node.cluster.xml'), cluster);

const mf = (args, { show = true, cwd = root, extraEnv = {} } = {}) => {
  if (show) console.log(`\n$ ${Object.entries(extraEnv).map(([k, v]) => `${k}=${v} `).join('')}memfabric ${args.map((a) => (a.startsWith(dir) ? a.replace(dir, '$DEMO') : a)).join(' ')}`);
  const r = spawnSync(process.execPath, [join(root, 'bin', 'memfabric.js'), ...args], { encoding: 'utf8', env: { ...env, ...extraEnv }, cwd });
  if (show) {
    process.stdout.write(r.stdout.split(dir).join('$DEMO'));
    process.stderr.write(r.stderr.split(dir).join('$DEMO'));
  }
  return r;
};

let failed = false;
try {
  // Examples whose comment says "Needs QEMU X.Y or later" are checked for QEMU 10.0 (scripts/qemu10-setup.sh).
  const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.cluster.xml')).map((f) => `examples/${f}`);
  const newer = examples.filter((f) => /Needs QEMU \d+\.\d+ or later/.test(readFileSync(join(root, f), 'utf8')));
  mf(['check', ...examples.filter((f) => !newer.includes(f))]);
  const qemu10 = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'memfabric', 'qemu-10.0', 'bin', 'qemu-system-x86_64');
  if (newer.length && existsSync(qemu10)) mf(['check', ...newer], { extraEnv: { MEMFABRIC_QEMU: qemu10 } });
  mf(['check', 'examples/tigon-launch.sh']);
  mf(['plan', '--format', 'argv', '--node', 'node01', cluster]);
  const layout = mf(['layout', '--node', 'node01', cluster], { show: false });
  console.log(`\n$ memfabric layout --node node01 $DEMO/fame.cluster.xml   (the fabric's BAR)`);
  console.log(layout.stdout.split('\n').filter((l) => /fam-shm|PCI Bus 0000:00 .*GiB$/.test(l)).join('\n'));
  // The QEMU that will run the nodes, asked before anything boots: its firmware's map against the prediction.
  const probed = mf(['layout', '--probe', '--node', 'node01', cluster], { show: false });
  console.log(`\n$ memfabric layout --probe --node node01 $DEMO/fame.cluster.xml   (QEMU itself, firmware only, no guest)`);
  process.stdout.write(probed.stdout.split('\n').filter((l) => /^# node01: (confirmed|QEMU)|^#   /.test(l)).join('\n') + '\n');
  process.stderr.write(probed.stderr.split(dir).join('$DEMO'));

  const boot = mf(['boot', cluster]);
  if (boot.status !== 0) throw new Error('boot failed');
  // Every node's /proc/iomem, firmware E820 and BARs against the prediction.
  const verified = mf(['verify', cluster]).status === 0;
  const nodes = ['node01', 'node02', 'node03', 'node04'];
  let bar;
  for (const n of nodes) {
    const r = mf(['exec', cluster, n, '--', 'lspci', '-v', '-d', '1af4:1110'], { show: n === 'node01' });
    bar ??= /Memory at ([0-9a-f]+) \(64-bit, prefetchable\) \[size=32G\]/.exec(r.stdout)?.[1];
  }
  if (!bar) throw new Error('no 32G fabric BAR in the guest');
  const predicted = /fam-shm/.test(layout.stdout) && layout.stdout.includes(bar.padStart(10, '0'));
  console.log(`\nThe guests see the fabric at 0x${bar}; memfabric layout predicted ${predicted ? 'the same address' : 'a DIFFERENT address'}.`);
  mf(['exec', cluster, 'node01', '--', 'devmem', `0x${bar}`, '32', '0x4d454d46']);
  let shared = predicted && verified;
  for (const n of nodes.slice(1)) {
    const r = mf(['exec', cluster, n, '--', 'devmem', `0x${bar}`, '32']);
    shared &&= r.stdout.trim().toLowerCase() === '0x4d454d46';
  }
  const fd = openSync(join(dir, 'fam.raw'), 'r');
  const buf = Buffer.alloc(4);
  readSync(fd, buf, 0, 4, 0);
  closeSync(fd);
  console.log(`\nhost: the first 4 bytes of fam.raw: ${buf.toString('hex')} ("${buf.toString('latin1')}")`);
  shared &&= buf.readUInt32LE(0) === 0x4d454d46;
  console.log(shared ? 'The fabric is shared: node01 wrote it; node02, node03, node04 and the host file read it.' : 'FAILED: the value did not arrive everywhere');
  failed = !shared;
} catch (e) {
  console.error(`memfabric demo: ${e.message}`);
  failed = true;
} finally {
  mf(['stop', cluster]);
  // Nothing of the cluster may be left running.
  const left = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir);
    } catch {
      return false;
    }
  });
  if (left.length) {
    console.error(`memfabric demo: processes left: ${left.join(' ')}`);
    failed = true;
  }
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = failed ? 1 : 0;
