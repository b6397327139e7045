#!/usr/bin/env node
/**
 * `npm run bench:boot`: what a cluster boot costs over bare QEMU, and how far
 * this machine goes. A measurement, not a test: it prints its inputs, the
 * machine, a table and PASS/MISS per target, and exits 0 either way (nonzero
 * only when it could not run at all).
 *
 * For N = 1, 4, 16 and 40 (--quick: 1 and 4; --sizes=1,8 for others) it writes
 * a FAME cluster in a temporary directory: one <fabric> (a 64 MiB host file)
 * and N small nodes (q35, 128 MiB: the smallest power of two the built-in
 * guest boots with, 96 MiB panics; 1 CPU), each attaching the fabric, booting
 * memfabric's built-in guest for the default QEMU (its command line has
 * no_timer_check: without it some of 40 TCG guests on 2 cores panic early,
 * "IO-APIC + timer doesn't work!"; server/src/runtime/image.ts guestCmdline);
 * --append=ARGS adds kernel arguments (<guest append>). Then, below 40 nodes, one
 * warm-up pair that is not counted (memfabric, then bare: at N=1 the first
 * memfabric boot was the slowest of its runs in each of four runs, as the
 * cluster's files are made and read cold); then, alternating (memfabric, bare, bare, memfabric, memfabric, bare,
 * …: 10 pairs for N=1, 5 up to N=4, 2 below 40, one pair from 40; --reps=K
 * pairs for every N below 40):
 *
 *   memfabric  `memfabric boot --format json FILE`, timed from spawning the CLI
 *              until it returns (every node ready: the guest printed
 *              MEMFABRIC-READY on its console and its agent answers guest-ping).
 *              Each node's time to ready is boot's own bootMs (from that node's
 *              QEMU spawn). Then `memfabric stop FILE`.
 *   bare       the very argv memfabric started, read back from
 *              /proc/PID/cmdline of its QEMUs (first memfabric run of that N),
 *              with only memfabric's node directory replaced by a fresh one of
 *              the bench (console log, QMP, agent and pid files), spawned here
 *              (argv array, detached, stdio to a file, as boot does), all N at
 *              once, and judged ready the same way: MEMFABRIC-READY in the
 *              console log, then guest-ping over the agent socket (memfabric's
 *              own guestPing from out/), each node polled every READY_POLL_MS
 *              (server/src/runtime/cluster.ts, 100 ms) as boot does. Timed
 *              from the first spawn until the last node is ready. Then SIGTERM.
 *   one CPU    At N = 1 both sides run on one CPU (taskset -c: the CLI and
 *              the QEMU it starts; the bare QEMU), the one that ran a fixed
 *              loop fastest when the bench started (scripts/one-cpu.mjs). A
 *              node's one vCPU runs on one CPU either way, and the two CPUs of
 *              this machine are not always alike: at N = 1 a boot took 6 s or
 *              8.3 s by the CPU it got, for minutes at a time (nodes ready at
 *              5.6-6.1 s and 8.1-8.5 s in one run), and four memfabric runs in
 *              a row on the slow one made a 1.29x of 1.0x. From N = 4 the
 *              nodes share both CPUs, as users run them.
 *
 * While every node of a run is up: the QEMU processes' Rss and Pss
 * (/proc/PID/smaps_rollup) summed and divided by N, and the drop of the host's
 * MemAvailable from just before the run, divided by N.
 *
 * After the first memfabric boot of each N: one write through a guest is seen
 * by all the others, timed. The fabric's BAR2 is read from `lspci` in node01
 * (and checked in the last node), then `memfabric exec FILE node01 -- devmem
 * BAR 32 MARKER` (a fresh random marker) and, all at once, `memfabric exec FILE
 * nodeK -- devmem BAR 32` on every other node; timed from the write until the
 * last reader returned it. The host file's first 4 bytes are checked too.
 *
 * Targets: "cluster boot ≤ 1.1× bare QEMU at every N", as the median over the
 * pairs of each pair's memfabric wall time over its bare wall time (paired:
 * the two runs of a pair follow each other, so both see the machine of that
 * minute; this machine's CPUs change speed for minutes at a time, and in one
 * run the median memfabric over the median bare gave 0.96× while the pairs
 * gave 1.07×: the bare side had drawn more of the slow minutes). The ratio of
 * the medians is printed beside it. "40 nodes ready on this machine, with the
 * time and memory reported".
 *
 * Everything the bench starts is stopped at the end, on failure and on Ctrl-C
 * (memfabric stop, SIGTERM/SIGKILL for bare QEMUs), the temporary directory is
 * removed, and no process whose command line names it may be left.
 *
 * Options: --quick, --sizes=1,4,…, --reps=K (pairs per N below 40),
 * --memory=128M, --append=ARGS (none by default), --timeout=S (per
 * boot; default 120 + 12 s per node).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allowedCpus, fastestCpu, loopTimes } from './one-cpu.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const CLI = join(ROOT, 'bin', 'memfabric.js');
const AGENT = join(ROOT, 'out/server/src/runtime/agent.js');
if (!existsSync(AGENT)) {
  console.error('bench:boot: out/ is missing: run `npx tsc -p .` first (npm run bench:boot does).');
  process.exit(2);
}
const { guestPing } = require(AGENT);

// ------------------------------------------------------------------ options

const opt = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const QUICK = process.argv.includes('--quick');
const SIZES = (opt('sizes') ?? (QUICK ? '1,4' : '1,4,16,40')).split(',').map(Number);
const REPS = opt('reps') === undefined ? undefined : Number(opt('reps'));
const MEMORY = opt('memory') ?? '128M';
const FABRIC = '64M';
// The guest's extra kernel arguments (<guest append>), none by default.
const APPEND = opt('append') ?? '';
if (SIZES.some((n) => !Number.isInteger(n) || n < 1 || n > 99) || (REPS !== undefined && (!Number.isInteger(REPS) || REPS < 1))) {
  console.error('bench:boot: usage: bench-boot.mjs [--quick] [--sizes=1,4,16,40] [--reps=K] [--memory=128M] [--append=ARGS] [--timeout=S]');
  process.exit(2);
}
const timeoutFor = (n) => Number(opt('timeout') ?? 120 + 12 * n);
// pairs of runs per N: 10 for one node, 5 up to 4 nodes, 2 below 40, 1 from 40 (--reps=K for every N below 40)
const repsFor = (n) => (n >= 40 ? 1 : REPS ?? (n === 1 ? 10 : n <= 4 ? 5 : 2));
// below 40 nodes, a first pair of runs that is not counted: at N=1 the first memfabric boot was
// the slowest of its runs in each of four runs (the cluster's run directory and fabric file made, files read cold)
const warmFor = (n) => (n >= 40 ? 0 : 1);
const { READY_POLL_MS: POLL_MS } = require(join(ROOT, 'out/server/src/runtime/cluster.js')); // boot's ready loop
// one node's runs, both sides, on the fastest CPU (see "one CPU" above)
const { cpu: ONE_CPU, times: CPU_TIMES } = fastestCpu(allowedCpus()?.cpus);
const cpuFor = (n) => (n === 1 ? ONE_CPU : undefined);
const PING_MS = 2000; // cluster.ts: guestPing(agentSocket, 2000)

// ------------------------------------------------------------------ helpers

const now = () => performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const max = (xs) => (xs.length ? Math.max(...xs) : NaN);
const sec = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : '—');
const mib = (kb) => (Number.isFinite(kb) ? `${(kb / 1024).toFixed(0)} MiB` : '—');
const log = (l) => process.stderr.write(`bench:boot: ${l}\n`);

function memAvailableKb() {
  return Number(/^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? NaN);
}

/** Rss and Pss (kB) of one process, from /proc/PID/smaps_rollup. */
function smaps(pid) {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    return { rss: Number(/^Rss:\s+(\d+)/m.exec(t)[1]), pss: Number(/^Pss:\s+(\d+)/m.exec(t)[1]) };
  } catch {
    return { rss: NaN, pss: NaN };
  }
}

function memoryOf(pids, availBefore) {
  const m = pids.map(smaps);
  const n = pids.length;
  return {
    rssPerNode: m.reduce((a, x) => a + x.rss, 0) / n,
    pssPerNode: m.reduce((a, x) => a + x.pss, 0) / n,
    availDropPerNode: (availBefore - memAvailableKb()) / n,
  };
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

/** argv run on one CPU (cpu given: taskset execs it, the pid is argv's), else as it is. */
const onCpu = (cpu, argv) => (cpu === undefined ? argv : ['taskset', '-c', String(cpu), ...argv]);

/** Run the CLI (argv array, no shell), on cpu if given (with what it starts); resolves with status, stdout, stderr and the wall time. */
function mf(args, env, cpu) {
  return new Promise((resolveRun) => {
    const t0 = now();
    const [cmd, ...rest] = onCpu(cpu, [process.execPath, CLI, ...args]);
    const p = spawn(cmd, rest, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (status, signal) => resolveRun({ status: status ?? (signal ? 128 : -1), stdout, stderr, ms: now() - t0 }));
    p.on('error', (e) => resolveRun({ status: -1, stdout, stderr: stderr + e.message, ms: now() - t0 }));
  });
}

// ------------------------------------------------------------------ state to clean

const TMP = mkdtempSync(join(tmpdir(), 'mfbb-'));
const ENV = { ...process.env, MEMFABRIC_RUN_DIR: join(TMP, 'run') };
const clusterFiles = new Set(); // booted by memfabric (stop them)
const bareProcs = new Set(); // ChildProcess of bare QEMUs still running
let cleaned = false;

function cleanup() {
  if (cleaned) return;
  cleaned = true;
  for (const p of bareProcs) {
    try {
      p.kill('SIGKILL');
    } catch { /* gone */ }
  }
  for (const f of clusterFiles) spawnSync(process.execPath, [CLI, 'stop', f], { env: ENV, stdio: 'ignore', timeout: 60_000 });
  // Nothing that names the temporary directory may be left running.
  const t0 = Date.now();
  let left = ours();
  while (left.length && Date.now() - t0 < 10_000) {
    spawnSync('sleep', ['0.2']);
    left = ours();
  }
  for (const pid of left) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch { /* gone */ }
  }
  if (left.length) log(`processes still running at the end, killed: ${left.join(' ')}`);
  rmSync(TMP, { recursive: true, force: true });
  return left;
}

function ours() {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(TMP) && !readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z ');
    } catch {
      return false;
    }
  });
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: stopping everything the bench started`);
    cleanup();
    process.exit(130);
  });
}
// The same when the bench itself fails, or its reader goes away (`… | head`: stdout's EPIPE
// arrives as an error event, mid-run): nothing it started may be left running.
const fail = (e) => {
  log(`${e?.code === 'EPIPE' ? 'its output is no longer read' : `failed: ${e?.stack ?? e}`}: stopping everything the bench started`);
  cleanup();
  process.exit(1);
};
process.stdout.on('error', fail);
process.on('uncaughtException', fail);

// ------------------------------------------------------------------ the machine and the inputs

function machine() {
  const qemuBin = process.env.MEMFABRIC_QEMU?.trim() || 'qemu-system-x86_64';
  const qv = spawnSync(qemuBin, ['--version'], { encoding: 'utf8' });
  const img = spawnSync(process.execPath, [CLI, 'image', '--format', 'json'], { encoding: 'utf8', env: ENV });
  let image;
  try {
    image = JSON.parse(img.stdout);
  } catch { /* below */ }
  if (qv.status !== 0 || !image?.ok) return { error: `QEMU (${qemuBin} --version: ${qv.error?.message ?? qv.stderr?.trim() ?? qv.status}) or the guest image (memfabric image: ${img.stderr.trim()}) is not usable` };
  const c = cpus();
  const foreign = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try {
      return /qemu-system/.test(readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0]) && !readFileSync(`/proc/${p}/stat`, 'utf8').includes(') Z ');
    } catch {
      return false;
    }
  }).length;
  return {
    cpu: `${c.length} × ${c[0]?.model.trim()}`,
    ram: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    host: `Linux ${release()}, node ${process.version}`,
    qemu: qv.stdout.split('\n')[0].trim(),
    guest: `memfabric image ${image.key} (Linux ${image.kernelRelease}, flavour ${image.flavour}; initramfs ${(image.initrdBytes / 2 ** 20).toFixed(1)} MiB)`,
    load: loadavg().map((x) => x.toFixed(2)).join(' '),
    foreignQemu: foreign,
  };
}

function topology(n) {
  return `<?xml version="1.0" encoding="UTF-8"?>
<!-- bench:boot: ${n} small FAME nodes sharing one fabric file -->
<cluster name="bench${n}">
${APPEND.trim() ? `  <guest append="${APPEND.trim().replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;')}"/>\n` : ''}  <fabric id="fam" size="${FABRIC}" path="fam.raw"/>
  <node name="node{n:02}" count="${n}" machine="q35" memory="${MEMORY}" cpus="1">
    <attach fabric="fam"/>
  </node>
</cluster>
`;
}

// ------------------------------------------------------------------ one memfabric run

/** `memfabric boot`, memory while up, (optionally) the fabric write, `memfabric stop`. */
async function memfabricRun(n, file, timeoutS, { fabricTest, cpu }) {
  const before = memAvailableKb();
  clusterFiles.add(file);
  const boot = await mf(['boot', '--format', 'json', '--timeout', String(timeoutS), file], ENV, cpu);
  const res = { kind: 'memfabric', wallMs: boot.ms };
  let out;
  try {
    out = JSON.parse(boot.stdout);
  } catch {
    out = { ok: false, error: boot.stderr.trim() || `exit status ${boot.status}` };
  }
  if (boot.status !== 0 || !out.ok) {
    // boot stops what it started; its stderr says which nodes were ready before it gave up
    const ready = [...boot.stderr.matchAll(/^memfabric: (\S+) ready in ([\d.]+) s$/gm)].map((m) => Number(m[2]) * 1000);
    res.error = `memfabric boot exited ${boot.status} after ${sec(boot.ms)} with ${ready.length}/${n} nodes ready: ${String(out.error).split('\n')[0]}`;
    // the failing node's last console lines, as boot reports them
    res.detail = (out.console ?? String(out.error).split('\n').slice(1)).slice(-12);
    res.readyMs = ready;
    await mf(['stop', file], ENV);
    clusterFiles.delete(file);
    return res;
  }
  res.accel = out.accel;
  res.readyMs = out.nodes.map((x) => x.bootMs);
  const pids = out.nodes.map((x) => x.pid);
  Object.assign(res, memoryOf(pids, before));
  // The argv memfabric started, and each node's directory in it.
  res.nodes = out.nodes.map((x) => ({
    name: x.name,
    dir: dirname(x.consoleLog),
    argv: readFileSync(`/proc/${x.pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0'),
  }));
  if (fabricTest) res.fabric = await fabricWrite(file, out.nodes.map((x) => x.name));
  const stop = await mf(['stop', file], ENV);
  if (stop.status !== 0) throw new Error(`memfabric stop ${file} failed: ${stop.stderr.trim()}`);
  clusterFiles.delete(file);
  for (const pid of pids) if (alive(pid)) throw new Error(`QEMU pid ${pid} still runs after memfabric stop`);
  return res;
}

/** One write in node01 through the fabric BAR, read back in every other node; timed. */
async function fabricWrite(file, names) {
  const barOf = async (node) => {
    const r = await mf(['exec', '--timeout', '600', file, node, '--', 'lspci', '-v', '-d', '1af4:1110'], ENV);
    return /Memory at ([0-9a-f]+) \(64-bit, prefetchable\)/.exec(r.stdout)?.[1];
  };
  const bar = await barOf(names[0]);
  if (!bar) return { error: 'no ivshmem BAR2 in lspci of node01' };
  if (names.length > 1 && (await barOf(names[names.length - 1])) !== bar) return { error: `the fabric BAR of ${names[names.length - 1]} is not node01's` };
  const marker = `0x${randomBytes(4).toString('hex').replace(/^0/, '1')}`;
  const t0 = now();
  const w = await mf(['exec', '--timeout', '600', file, names[0], '--', 'devmem', `0x${bar}`, '32', marker], ENV);
  const t1 = now();
  if (w.status !== 0) return { error: `the write in node01 failed: ${w.stderr.trim()}` };
  const reads = await Promise.all(names.slice(1).map((node) => mf(['exec', '--timeout', '600', file, node, '--', 'devmem', `0x${bar}`, '32'], ENV)));
  const t2 = now();
  const seen = reads.filter((r) => r.status === 0 && r.stdout.trim().toLowerCase() === marker).length;
  const fd = openSync(join(dirname(file), 'fam.raw'), 'r');
  const b = Buffer.alloc(4);
  readSync(fd, b, 0, 4, 0);
  closeSync(fd);
  return {
    bar: `0x${bar}`, marker, writeMs: t1 - t0, readAllMs: t2 - t1, totalMs: t2 - t0,
    readMedianMs: median(reads.map((r) => r.ms)), seen, others: names.length - 1,
    hostFile: b.readUInt32LE(0) === Number(marker),
  };
}

// ------------------------------------------------------------------ one bare run

/** The same argv, in fresh directories, started and waited for here. */
async function bareRun(n, nodes, dir, timeoutS, cpu) {
  const res = { kind: 'bare' };
  const before = memAvailableKb();
  const started = [];
  const t0 = now();
  try {
    for (const node of nodes) {
      const d = join(dir, node.name);
      mkdirSync(d, { recursive: true, mode: 0o700 });
      const argv = onCpu(cpu, node.argv.map((a) => a.split(node.dir).join(d)));
      if (argv.some((a) => a.includes(ENV.MEMFABRIC_RUN_DIR))) throw new Error(`bare argv of ${node.name} still names memfabric's run directory`);
      const out = openSync(join(d, 'qemu.log'), 'w', 0o600);
      let proc;
      try {
        proc = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', out, out] });
      } finally {
        closeSync(out);
      }
      await new Promise((r, j) => {
        proc.once('error', j);
        proc.once('spawn', r);
      });
      bareProcs.add(proc);
      proc.once('exit', () => bareProcs.delete(proc));
      started.push({ name: node.name, proc, t0: now(), consoleLog: join(d, 'console.log'), agent: join(d, 'agent.sock') });
    }
    const deadline = t0 + timeoutS * 1000;
    const ready = await Promise.all(started.map(async (s) => {
      while (now() < deadline) {
        if (s.proc.exitCode !== null || s.proc.signalCode !== null) return { failed: `${s.name}: QEMU exited (${s.proc.exitCode ?? s.proc.signalCode})` };
        let text = '';
        try {
          text = readFileSync(s.consoleLog, 'utf8');
        } catch { /* not yet */ }
        if (/^MEMFABRIC-READY\r?$/m.test(text) && (await guestPing(s.agent, PING_MS))) return { ms: now() - s.t0, at: now() };
        await sleep(POLL_MS);
      }
      return { failed: `${s.name}: not ready within ${timeoutS} s` };
    }));
    const failed = ready.filter((r) => r.failed);
    res.readyMs = ready.filter((r) => !r.failed).map((r) => r.ms);
    if (failed.length) {
      res.error = `bare QEMU: ${res.readyMs.length}/${n} nodes ready; ${failed[0].failed}`;
      return res;
    }
    res.wallMs = Math.max(...ready.map((r) => r.at)) - t0;
    Object.assign(res, memoryOf(started.map((s) => s.proc.pid), before));
    return res;
  } finally {
    await Promise.all(started.map(async (s) => {
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
      const gone = new Promise((r) => s.proc.once('exit', r));
      s.proc.kill('SIGTERM');
      const t = setTimeout(() => s.proc.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    }));
  }
}

// ------------------------------------------------------------------ main

let couldNotRun;
const results = [];
let info;
try {
  info = machine();
  if (info.error) throw new Error(info.error);
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  console.log('# memfabric bench:boot');
  console.log(`date        ${date}`);
  console.log(`machine     ${info.cpu}, ${info.ram} RAM; ${info.host}`);
  console.log(`QEMU        ${info.qemu}`);
  console.log(`guest       ${info.guest}`);
  console.log(`load        ${info.load} (1/5/15 min) at start; ${info.foreignQemu} QEMU process(es) of others running`);
  console.log(`nodes       q35, ${MEMORY}, 1 CPU, ivshmem-plain on a ${FABRIC} fabric file; memfabric's built-in guest${APPEND.trim() ? `, kernel arguments + "${APPEND.trim()}" (<guest append>)` : ''}`);
  console.log(`one CPU     ${ONE_CPU === undefined ? 'none (a single CPU, or no taskset): N = 1 unpinned' : `N = 1 on CPU ${ONE_CPU}, both sides: ${loopTimes(CPU_TIMES)}`}`);
  console.log(`N           ${SIZES.join(', ')}; runs per N: ${SIZES.map((n) => `${repsFor(n)} memfabric + ${repsFor(n)} bare${warmFor(n) ? ' after a warm-up pair' : ''}`).join(', ')} (alternating, memfabric first)`);
  console.log('');
  for (const n of SIZES) {
    const dir = join(TMP, `n${n}`);
    mkdirSync(dir);
    const file = join(dir, 'bench.cluster.xml');
    writeFileSync(file, topology(n));
    const timeoutS = timeoutFor(n);
    const row = { n, mf: [], bare: [], warm: { mf: [], bare: [] } };
    results.push(row);
    let nodes;
    let booted = 0;
    for (let i = -warmFor(n); i < repsFor(n); i++) {
      const order = i < 0 || i % 2 === 0 ? ['memfabric', 'bare'] : ['bare', 'memfabric'];
      const into = i < 0 ? row.warm : row;
      const label = (list) => (i < 0 ? 'warm-up' : `${list.length + 1}/${repsFor(n)}`);
      for (const kind of order) {
        if (kind === 'memfabric') {
          log(`N=${n}: memfabric boot (${label(row.mf)})`);
          const r = await memfabricRun(n, file, timeoutS, { fabricTest: !booted++, cpu: cpuFor(n) });
          into.mf.push(r);
          nodes ??= r.nodes;
          if (r.fabric) row.fabric = r.fabric;
          log(`N=${n}: memfabric ${r.error ?? `${sec(r.wallMs)}; nodes ready: median ${sec(median(r.readyMs))}, max ${sec(max(r.readyMs))}`}`);
          // the first boot of a small cluster failing means the bench cannot run here; a large one failing is a result
          if (r.error && n === SIZES[0] && n <= 4 && booted === 1) throw new Error(`the first boot failed: ${r.error}${(r.detail ?? []).map((l) => `\n    ${l}`).join('')}`);
        } else {
          if (!nodes) {
            into.bare.push({ kind: 'bare', error: 'not run: no memfabric boot of this N succeeded, so its argv is unknown' });
            continue;
          }
          log(`N=${n}: bare QEMU (${label(row.bare)})`);
          const r = await bareRun(n, nodes, join(dir, `bare${row.bare.length + row.warm.bare.length + 1}`), timeoutS, cpuFor(n));
          into.bare.push(r);
          log(`N=${n}: bare ${r.error ?? `${sec(r.wallMs)}; nodes ready: median ${sec(median(r.readyMs))}, max ${sec(max(r.readyMs))}`}`);
        }
      }
    }
  }
} catch (e) {
  couldNotRun = e;
}
const left = cleanup();

// ------------------------------------------------------------------ report

if (couldNotRun) {
  console.error(`bench:boot: could not run: ${couldNotRun.message}`);
  process.exit(1);
}

const ok = (rs) => rs.filter((r) => !r.error);
const rows = results.map((row) => {
  const mfOk = ok(row.mf);
  const bareOk = ok(row.bare);
  const mfWall = median(mfOk.map((r) => r.wallMs));
  const bareWall = median(bareOk.map((r) => r.wallMs));
  const allMfReady = mfOk.flatMap((r) => r.readyMs);
  const allBareReady = bareOk.flatMap((r) => r.readyMs);
  return {
    // each pair's two runs ran one after the other (memfabric first in even pairs, bare first in odd ones): their
    // ratio sees the same machine, while the medians of each side may fall in different minutes (see "paired" above)
    pairRatios: row.mf.map((m, i) => (m.error || !row.bare[i] || row.bare[i].error ? NaN : m.wallMs / row.bare[i].wallMs)),
    // what the CLI adds to its nodes' boot: its wall time less its slowest node's time to ready (from that QEMU's start)
    own: median(mfOk.map((r) => r.wallMs - max(r.readyMs))),
    ...row, mfOk, bareOk, mfWall, bareWall, medianRatio: mfWall / bareWall,
    mfReadyMed: median(allMfReady), mfReadyMax: max(allMfReady),
    bareReadyMed: median(allBareReady), bareReadyMax: max(allBareReady),
    pss: median(mfOk.map((r) => r.pssPerNode)), rss: median(mfOk.map((r) => r.rssPerNode)), avail: median(mfOk.map((r) => r.availDropPerNode)),
    barePss: median(bareOk.map((r) => r.pssPerNode)), bareAvail: median(bareOk.map((r) => r.availDropPerNode)),
  };
}).map((r) => ({ ...r, ratio: median(r.pairRatios) }));

console.log('| N | runs | memfabric boot | bare QEMU | ratio (pairs) | ratio (medians) | memfabric\'s own | node ready, median / max (memfabric) | (bare) | Pss / node | Rss / node | MemAvailable drop / node (bare) | write seen by all others |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const f = r.fabric;
  const fab = !f ? '—' : f.error ? `failed: ${f.error}` : f.others === 0
    ? `write ${sec(f.writeMs)} (no other node)${f.hostFile ? '' : ', NOT in the host file'}`
    : `${sec(f.totalMs)} (write ${sec(f.writeMs)}; ${f.seen}/${f.others} read it back in ${sec(f.readAllMs)}, ${f.others > 1 ? `${f.others} execs at once, each ${sec(f.readMedianMs)} median` : `${sec(f.readMedianMs)}`})${f.hostFile ? '' : ', NOT in the host file'}`;
  console.log(`| ${r.n} | ${r.mfOk.length}+${r.bareOk.length} | ${sec(r.mfWall)} | ${sec(r.bareWall)} | ${Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : '—'} | ${Number.isFinite(r.medianRatio) ? `${r.medianRatio.toFixed(2)}×` : '—'} | ${sec(r.own)} | ${sec(r.mfReadyMed)} / ${sec(r.mfReadyMax)} | ${sec(r.bareReadyMed)} / ${sec(r.bareReadyMax)} | ${mib(r.pss)} | ${mib(r.rss)} | ${mib(r.avail)} (${mib(r.bareAvail)}) | ${fab} |`);
}
console.log('');
console.log('runs: memfabric + bare runs that completed; boot and bare are wall times (medians); ratio (pairs) is the median of each pair\'s memfabric / bare (the target\'s),');
console.log('ratio (medians) the median memfabric over the median bare; memfabric\'s own is each boot\'s wall time less its slowest node\'s time to ready (median);');
console.log('node ready is from each QEMU spawn; memory is while every node is up');
console.log('(MemAvailable is the whole host\'s: other processes move it too); the write is `memfabric exec … devmem` in node01, then the same read in every other node.');
for (const r of rows) {
  for (const x of [...r.warm.mf, ...r.warm.bare, ...r.mf, ...r.bare]) {
    if (!x.error) continue;
    console.log(`N=${r.n} ${x.kind}: ${x.error}`);
    for (const l of x.detail ?? []) console.log(`    ${l}`);
  }
  const walls = (rs) => rs.map((x) => (x.error ? 'failed' : sec(x.wallMs))).join(', ');
  const warm = r.warm.mf.length ? ` (warm-up, not counted: memfabric ${walls(r.warm.mf)}, bare ${walls(r.warm.bare)})` : '';
  console.log(`N=${r.n} every run: memfabric ${walls(r.mf)}; bare ${walls(r.bare)}${warm}${r.mf[0]?.accel ? `; ${r.mf[0].accel.toUpperCase()}` : ''}`);
  console.log(`N=${r.n} each pair, memfabric / bare: ${r.pairRatios.map((x) => (Number.isFinite(x) ? `${x.toFixed(2)}×` : '—')).join(', ')}`);
}
console.log('');

console.log(`load        ${loadavg().map((x) => x.toFixed(2)).join(' ')} (1/5/15 min) at the end`);
const target = (pass, text, numbers) => console.log(`${pass ? 'PASS' : 'MISS'}  ${text}: ${numbers}`);
const allRatios = rows.every((r) => Number.isFinite(r.ratio) && r.ratio <= 1.1);
target(allRatios && rows.length > 0, 'cluster boot ≤ 1.1× bare QEMU at every N (median of the pairs)', rows.map((r) => `N=${r.n} ${Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}× (medians ${sec(r.mfWall)} / ${sec(r.bareWall)} = ${r.medianRatio.toFixed(2)}×)` : 'not measured'}`).join('; '));
const r40 = rows.find((r) => r.n === 40);
if (!r40) console.log(`SKIP  40 nodes ready on this machine: N=40 not run (${QUICK ? '--quick' : `--sizes=${SIZES.join(',')}`})`);
else if (r40.mfOk.length) target(true, '40 nodes ready on this machine', `memfabric boot ${sec(r40.mfWall)} (node ready median ${sec(r40.mfReadyMed)}, max ${sec(r40.mfReadyMax)}); ${mib(r40.pss)} Pss, ${mib(r40.rss)} Rss per node; MemAvailable −${mib(r40.avail * 40)} in all`);
else target(false, '40 nodes ready on this machine', r40.mf.map((x) => x.error).join('; '));
if (left.length) console.log(`note: ${left.length} process(es) naming the bench's directory were still running at the end and were killed`);
process.exitCode = 0;
