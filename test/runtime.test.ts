/**
 * memfabric boot / status / exec / stop on real guests (TCG): two nodes of the
 * FAME example share the fabric, a killed QEMU is seen as crashed, stop leaves
 * no process, socket or lock; bad input starts nothing and touches no file.
 * The run directory is a temp dir (MEMFABRIC_RUN_DIR), never the user's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, REPO, fame2, hasQemu, processesMentioning, runCliWithRunDir, socketsUnder } from './support/cli';

const mf = (runBase: string, args: string[], timeoutMs?: number) => runCliWithRunDir(runBase, args, { timeoutMs });
import { buildImage } from '../server/src/runtime/image';
import { checkBackingFiles, clusterRunDir } from '../server/src/runtime/cluster';


test('run directories: one per topology file, even with the same cluster name', () => {
  const env = { MEMFABRIC_RUN_DIR: '/tmp/x' };
  const a = clusterRunDir('fame', '/a/fame.cluster.xml', env);
  const b = clusterRunDir('fame', '/b/fame.cluster.xml', env);
  assert.notEqual(a, b);
  assert.match(a, /^\/tmp\/x\/fame-[0-9a-f]{12}$/);
  assert.equal(clusterRunDir('fame', '/a/fame.cluster.xml', env), a);
  assert.match(clusterRunDir('a/b c', '/f', env), /^\/tmp\/x\/a_b_c-/);
});

test('backing files: missing ones listed, wrong sizes refused, conflicting plans refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-files-'));
  try {
    const f = join(dir, 'x.raw');
    writeFileSync(f, Buffer.alloc(100));
    const r = checkBackingFiles([
      { name: 'a', argv: [], files: [{ path: f, size: 4096n }, { path: join(dir, 'new.raw'), size: 1n << 30n }] },
      { name: 'b', argv: [], files: [{ path: join(dir, 'new.raw'), size: 1n << 31n }] },
    ]);
    assert.deepEqual(r.missing, [{ path: join(dir, 'new.raw'), size: 1n << 30n }]);
    assert.equal(r.errors.length, 2);
    assert.match(r.errors.join('\n'), /x\.raw: backing file of a is 100 bytes, the plan needs 4096 bytes \(too small\)/);
    assert.match(r.errors.join('\n'), /new\.raw: b needs 2147483648 bytes but a need 1073741824 bytes/);
    assert.equal(statSync(f).size, 100);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad input starts nothing: unknown node, backing file of the wrong size', { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-bad-'));
  const run = join(dir, 'run');
  try {
    const file = fame2(dir);
    const unknown = mf(run, ['boot', file, '--node', 'node07']);
    assert.equal(unknown.status, 2, unknown.stderr);
    assert.match(unknown.stderr, /no node 'node07' in .*\(nodes: node01, node02\)/);
    assert.ok(!existsSync(join(dir, 'fam.raw')), 'no backing file created for a refused boot');

    const exec = mf(run, ['exec', file, 'node07', '--', 'true']);
    assert.equal(exec.status, 2);
    assert.match(exec.stderr, /no node 'node07'/);

    // a 1 MiB fam.raw where the plan needs 32 GiB: refused, untouched
    const fam = join(dir, 'fam.raw');
    const fd = openSync(fam, 'w');
    ftruncateSync(fd, 1 << 20);
    closeSync(fd);
    const before = statSync(fam);
    const wrong = mf(run, ['boot', file]);
    assert.equal(wrong.status, 1, wrong.stdout + wrong.stderr);
    // the checker's backing-file-size rule (or boot's own check, should the checker not see it) names the file and both sizes
    assert.match(wrong.stderr, /fam\.raw' is 0x100000 \(1 MiB\), smaller than size 0x800000000|fam\.raw: backing file of node01, node02 is 1048576 bytes, the plan needs 34359738368 bytes/);
    assert.match(wrong.stderr, /nothing started/);
    const after = statSync(fam);
    assert.equal(after.size, before.size);
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.deepEqual(processesMentioning(run), []);
    assert.deepEqual(socketsUnder(run), [], 'no socket, pid file or lock left');
    const st = mf(run, ['status', '--format', 'json', file]);
    assert.equal(st.status, 0, st.stderr);
    assert.deepEqual((JSON.parse(st.stdout) as { nodes: { state: string }[] }).nodes.map((n) => n.state), ['stopped', 'stopped']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('boot, status, exec, shared fabric, crash, stop (two FAME nodes, real guests)', { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 600_000 }, async () => {
  await buildImage({}); // cached normally; built once otherwise
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-rt-'));
  const run = join(dir, 'run');
  const file = fame2(dir);
  try {
    const boot = mf(run, ['boot', file, '--timeout', '240']);
    assert.equal(boot.status, 0, boot.stdout + boot.stderr);
    assert.match(boot.stdout, /^cluster fame: 2 node\(s\) ready/);
    assert.match(boot.stdout, /^node01\s+ready\s+\d+/m);
    assert.match(boot.stdout, /^node02\s+ready\s+\d+/m);
    assert.match(boot.stderr, /created .*fam\.raw \(sparse\)/);
    const fam = statSync(join(dir, 'fam.raw'));
    assert.equal(fam.size, 32 * 2 ** 30);
    assert.ok(fam.blocks * 512 < 2 ** 30, 'the fabric file is sparse');

    const runDirs = readdirSync(run);
    assert.equal(runDirs.length, 1);
    const runDir = join(run, runDirs[0]);
    assert.equal(statSync(runDir).mode & 0o777, 0o700);

    const st = mf(run, ['status', '--format', 'json', file]);
    assert.equal(st.status, 0, st.stderr);
    const status = JSON.parse(st.stdout) as { runDir: string; nodes: { name: string; state: string; pid: number; consoleLog: string; qmpSocket: string; consoleSocket: string; agentSocket: string }[] };
    assert.equal(status.runDir, runDir);
    assert.deepEqual(status.nodes.map((n) => [n.name, n.state]), [['node01', 'ready'], ['node02', 'ready']]);
    for (const n of status.nodes) {
      assert.ok(readFileSync(`/proc/${n.pid}/cmdline`, 'utf8').startsWith('qemu-system-x86_64'));
      for (const s of [n.qmpSocket, n.consoleSocket, n.agentSocket]) assert.ok(statSync(s).isSocket(), s);
      assert.match(readFileSync(n.consoleLog, 'utf8'), /^MEMFABRIC-READY\r?$/m, 'the console is mirrored to the log');
    }

    // a second boot of a running cluster is refused and leaves it alone
    const again = mf(run, ['boot', file]);
    assert.equal(again.status, 1, again.stdout + again.stderr);
    assert.match(again.stderr, /cluster 'fame' is already running \(node01 \(pid \d+\), node02 \(pid \d+\)\)/);

    const ex = mf(run, ['exec', file, 'node01', '--', 'sh', '-c', 'echo hi; exit 3']);
    assert.equal(ex.stdout, 'hi\n');
    assert.equal(ex.status, 3);

    // the fabric: written on node01 through BAR2, read on node02
    const bars: string[] = [];
    for (const n of ['node01', 'node02']) {
      const l = mf(run, ['exec', file, n, '--', 'lspci', '-v', '-d', '1af4:1110']);
      assert.equal(l.status, 0, l.stderr);
      const m = /Memory at ([0-9a-f]+) \(64-bit, prefetchable\) \[size=32G\]/.exec(l.stdout);
      assert.ok(m, l.stdout);
      bars.push('0x' + m[1]);
    }
    const w = mf(run, ['exec', file, 'node01', '--', 'devmem', bars[0], '32', '0x4d454d46']);
    assert.equal(w.status, 0, w.stderr);
    const rd = mf(run, ['exec', file, 'node02', '--', 'devmem', bars[1], '32']);
    assert.equal(rd.status, 0, rd.stderr);
    assert.equal(rd.stdout.trim().toLowerCase(), '0x4d454d46');

    // a QEMU killed by hand is seen as crashed
    process.kill(status.nodes[1].pid, 'SIGKILL');
    const t0 = Date.now();
    let states: string[] = [];
    while (Date.now() - t0 < 10_000) {
      const s2 = mf(run, ['status', '--format', 'json', file]);
      states = (JSON.parse(s2.stdout) as { nodes: { state: string }[] }).nodes.map((n) => n.state);
      if (states[1] === 'crashed') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(states, ['ready', 'crashed']);
    const text = mf(run, ['status', file]);
    assert.match(text.stdout, /^node02\s+crashed\s+\d+/m);
    const exCrashed = mf(run, ['exec', file, 'node02', '--', 'true']);
    assert.equal(exCrashed.status, 255);
    assert.match(exCrashed.stderr, /node node02 is crashed/);

    const stop = mf(run, ['stop', file]);
    assert.equal(stop.status, 0, stop.stderr);
    assert.match(stop.stdout, /^node01\s+quit \(QMP\)/m);
    assert.deepEqual(processesMentioning(runDir), [], 'no QEMU of the cluster is left');
    assert.deepEqual(socketsUnder(run), [], 'no socket, pid file or lock left');
    const s3 = mf(run, ['status', '--format', 'json', file]);
    assert.deepEqual((JSON.parse(s3.stdout) as { running: boolean; nodes: { state: string }[] }).nodes.map((n) => n.state), ['stopped', 'stopped']);
    assert.equal(statSync(join(dir, 'fam.raw')).size, 32 * 2 ** 30, 'never truncated');
  } finally {
    mf(run, ['stop', file], 60_000);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a boot killed with SIGKILL half-way leaves QEMUs that the next status sees and the next stop ends (QEMU backend)', { skip: !hasQemu() && 'qemu-system-x86_64 missing', timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'memfabric-killboot-'));
  const run = join(dir, 'run');
  const file = fame2(dir);
  const runDir = clusterRunDir('fame', file, { MEMFABRIC_RUN_DIR: run });
  try {
    const child = spawn(process.execPath, [BIN, 'boot', file], { cwd: REPO, env: { ...process.env, MEMFABRIC_RUN_DIR: run, MEMFABRIC_ACCEL: 'tcg' }, stdio: 'ignore' });
    // Killed as soon as both QEMUs run, before their guests are ready.
    const pids = () => {
      try {
        return (JSON.parse(readFileSync(join(runDir, 'cluster.json'), 'utf8')) as { nodes: { pid?: number }[] }).nodes.map((n) => n.pid).filter((p): p is number => !!p);
      } catch {
        return [];
      }
    };
    for (let i = 0; i < 600 && pids().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    const started = pids();
    assert.equal(started.length, 2, 'the killed boot had started both QEMUs');
    assert.deepEqual(processesMentioning(runDir).sort(), [...started].sort(), 'they outlive the killed CLI');
    const st = JSON.parse(mf(run, ['status', '--format', 'json', file]).stdout) as { running: boolean; nodes: { state: string }[] };
    assert.equal(st.running, true);
    assert.ok(st.nodes.every((n) => n.state !== 'stopped'), JSON.stringify(st));
    // A new boot is refused while they run.
    const again = mf(run, ['boot', file]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already running/);
    const stop = mf(run, ['stop', file]);
    assert.equal(stop.status, 0, stop.stderr);
    assert.deepEqual(processesMentioning(runDir), [], 'no QEMU of the cluster is left');
    assert.deepEqual(socketsUnder(run), [], 'no socket, pid file or lock left');
    assert.equal(statSync(join(dir, 'fam.raw')).size, 32 * 2 ** 30, 'the fabric file is kept, never truncated');
  } finally {
    mf(run, ['stop', file], 60_000);
    rmSync(dir, { recursive: true, force: true });
  }
});
