/**
 * A running cluster: `memfabric boot|status|exec|stop`.
 *
 * QEMU outlives `memfabric boot`, so every node's QEMU is started detached
 * (own session, stdio to files, unref'd) and the cluster's state lives in a
 * private (0700) run directory:
 *
 *   <base>/<cluster>-<hash of the topology file's absolute path>/
 *     cluster.json            lock + state (pids); present while the cluster is up
 *     <node>/qmp.sock         QMP (stop asks QEMU to quit through it)
 *     <node>/console.sock     serial console (connect with socat/nc -U)
 *     <node>/console.log      everything the console printed (kept after stop)
 *     <node>/agent.sock       memfabric guest agent (exec)
 *     <node>/qemu.pid         QEMU's -pidfile
 *     <node>/qemu.log         QEMU's stdout/stderr (kept after stop)
 *
 * <base> is $MEMFABRIC_RUN_DIR, else $XDG_RUNTIME_DIR/memfabric, else
 * ~/.cache/memfabric/run. Every program is started with an argv array.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  accessSync, chmodSync, closeSync, constants, existsSync, ftruncateSync, lstatSync, mkdirSync, openSync, readFileSync,
  readdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execWith, guestExec, guestPing, GuestExecResult, GuestExecTimeoutError } from './agent';
import { agentOverLibvirt, defineAndStart, destroyAndUndefine, domainName, domainState, domainStateSync } from './libvirt-domains';
import type { DomainRuntime } from '../engine/emit/libvirt';
import { remoteHostUri } from '../engine/index';
import type { RegionPlan } from '../engine/model/cxl-regions';
import { describeRegion, MadeRegion, makeRegions, RegionError } from './cxl-regions';
import { checkRemoteFiles, createRemoteFiles, remoteFileExists, uploadGuestFiles, WantedFile } from './libvirt-storage';
import { accelerator, bootArgv, diskFormat, findExecutable, NodeGuest, qemuBinary, tail } from './launch';
import { defaultGuestKernel, GuestImage, GuestKernel, guestCmdline, qemuVersionOf } from './image';
import { qmpAnswers, qmpQuit } from './qmp';

export { qmpAnswers, qmpQuit };

/** A boot, exec or stop that cannot go on; node and its last console lines when one node is the cause. */
export class ClusterError extends Error {
  constructor(message: string, public readonly node?: string, public readonly consoleLines?: string[]) {
    super(message);
    this.name = 'ClusterError';
  }
}

export type NodeState = 'starting' | 'ready' | 'stopped' | 'crashed';

export interface ClusterNodeSpec {
  name: string;
  /** The node's argv from `plan` (binary first). */
  argv: string[];
  files: { path: string; size: bigint }[];
  /** The topology's <guest>: the user's own kernel, initrd or disk (absolute paths), or image="none". */
  guest?: UserGuest;
  /** The libvirt connection URI the node runs on (topology host=): implies the libvirt backend. */
  host?: string;
  /** The node's libvirt domain with what a run adds (the libvirt backend): `plan --format libvirt`'s XML. */
  domainXml?: (rt: DomainRuntime, emulator: string) => string;
  /** The CXL regions boot makes in the guest once it is ready (<window region= dax=>). */
  regions?: RegionPlan[];
}

export interface UserGuest {
  kernel?: string;
  initrd?: string;
  disk?: string;
  image?: 'builtin' | 'none';
  /** <guest kernel-version>: the built-in image's Linux; default from the node's QEMU (guestKernelOf). */
  kernelVersion?: GuestKernel;
}

/** The built-in image flavour a node boots: its <guest kernel-version>, else the default for the QEMU it runs. */
export function guestKernelOf(n: ClusterNodeSpec, qemuVersion: string | undefined): GuestKernel {
  return n.guest?.kernelVersion ?? defaultGuestKernel(qemuVersion);
}

/**
 * The image flavours the nodes that boot memfabric's image need, each with
 * the nodes that boot it: the QEMU binary is asked for its version (once) only
 * when a node leaves kernel-version to the default.
 */
export function neededGuestKernels(nodes: ClusterNodeSpec[], qemu: string): Map<GuestKernel, string[]> {
  const builtin = nodes.filter((n) => needsBuiltinImage([n]));
  let version: string | undefined;
  if (builtin.some((n) => !n.guest?.kernelVersion)) version = qemuVersionOf(findExecutable(qemu) ?? qemu);
  const out = new Map<GuestKernel, string[]>();
  for (const n of builtin) {
    const k = guestKernelOf(n, version);
    out.set(k, [...(out.get(k) ?? []), n.name]);
  }
  return out;
}

/**
 * How boot knows a node is ready: 'builtin' = memfabric's initramfs printed
 * MEMFABRIC-READY and its agent answers; 'agent' = the memfabric agent answers
 * (a user's initrd or disk that runs it); 'qmp' = image="none", QEMU answers QMP.
 */
export type Readiness = 'builtin' | 'agent' | 'qmp';

/** True when a node of the spec boots memfabric's kernel or initramfs (the image must be built). */
export function needsBuiltinImage(nodes: ClusterNodeSpec[]): boolean {
  return nodes.some((n) => {
    const g = n.guest ?? {};
    if (g.image === 'none') return false;
    if (g.image !== 'builtin' && g.disk && !g.kernel && !g.initrd) return false;
    return !g.kernel || !g.initrd;
  });
}

/** What a node boots, and how its readiness is seen. */
export function nodeGuest(n: ClusterNodeSpec, image?: Pick<GuestImage, 'kernel' | 'initrd'>): { guest: NodeGuest; readiness: Readiness } {
  const g = n.guest ?? {};
  if (g.image === 'none') return { guest: { disk: g.disk }, readiness: 'qmp' };
  if (g.image !== 'builtin' && g.disk && !g.kernel && !g.initrd) return { guest: { disk: g.disk }, readiness: 'agent' };
  const kernel = g.kernel ?? image?.kernel;
  const initrd = g.initrd ?? image?.initrd;
  if (!kernel || !initrd) throw new ClusterError(`node ${n.name}: memfabric's guest image is needed but was not given`, n.name);
  return { guest: { kernel, initrd, disk: g.disk }, readiness: g.initrd ? 'agent' : 'builtin' };
}

/**
 * Everything boot can refuse before it creates or starts anything: the QEMU
 * binary, the accelerator, the user's kernel, initrd and disk files.
 */
export function preflight(spec: ClusterSpec): { accel: 'kvm' | 'tcg'; qemu: string } {
  let accel: 'kvm' | 'tcg';
  try {
    accel = accelerator();
  } catch (e) {
    throw new ClusterError(`nothing started: ${(e as Error).message}`);
  }
  const qemu = qemuBinary(spec.nodes[0]?.argv[0]);
  if (!findExecutable(qemu)) {
    throw new ClusterError(`nothing started: the QEMU binary '${qemu}' ${process.env.MEMFABRIC_QEMU?.trim() ? '(MEMFABRIC_QEMU) ' : ''}is not ${qemu.includes('/') ? 'an executable file' : 'found in PATH'}; install qemu-system-x86 or set MEMFABRIC_QEMU to the binary`);
  }
  const errors: string[] = [];
  const seen = new Set<string>();
  for (const n of spec.nodes) {
    for (const what of ['kernel', 'initrd', 'disk'] as const) {
      const p = n.guest?.[what];
      if (!p || seen.has(p)) continue;
      seen.add(p);
      let st;
      try {
        st = statSync(p);
      } catch (e) {
        errors.push(`the ${what} named in <guest ${what}="…"> does not exist: ${p} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
        continue;
      }
      if (!st.isFile()) errors.push(`the ${what} named in <guest ${what}="…"> is not a regular file: ${p}`);
      else {
        try {
          accessSync(p, what === 'disk' ? constants.R_OK | constants.W_OK : constants.R_OK);
        } catch {
          errors.push(`the ${what} named in <guest ${what}="…"> is not ${what === 'disk' ? 'readable and writable' : 'readable'}: ${p}`);
        }
      }
    }
  }
  if (errors.length) throw new ClusterError(`nothing started:\n  ${errors.join('\n  ')}`);
  return { accel, qemu };
}

export interface ClusterSpec {
  /** Cluster name (topology `name`, else the file's base name). */
  name: string;
  /** Absolute path of the topology file. */
  file: string;
  nodes: ClusterNodeSpec[];
}

interface StateFile {
  version: 1;
  cluster: string;
  file: string;
  /** starting (boot in progress by bootPid), up, stopping. */
  phase: 'starting' | 'up' | 'stopping';
  bootPid: number;
  accel: string;
  startedAt: string;
  /** Where the nodes run: QEMU processes of ours (absent), or libvirt domains on uri. */
  backend?: 'libvirt';
  uri?: string;
  /** The QEMU binary that runs our QEMU-process nodes, as started (MEMFABRIC_QEMU or PATH, made absolute). */
  qemu?: string;
  nodes: { name: string; pid?: number; dir: string; readiness?: Readiness; ready?: boolean; domain?: string; uri?: string; regions?: MadeRegion[] }[];
}

export interface NodeStatus {
  name: string;
  state: NodeState;
  pid?: number;
  dir: string;
  consoleLog: string;
  consoleSocket: string;
  qmpSocket: string;
  agentSocket: string;
  /** The QEMU binary the node was started with (a QEMU process of ours; absent for a libvirt domain). */
  qemu?: string;
  /** A libvirt domain (the libvirt backend): its connection and name. */
  backend?: 'libvirt';
  uri?: string;
  domain?: string;
  /** The CXL regions boot made in its guest (and what came of them). */
  regions?: MadeRegion[];
}

export interface ClusterStatus {
  cluster: string;
  file: string;
  runDir: string;
  running: boolean;
  nodes: NodeStatus[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * How often boot looks at each starting node (its console for MEMFABRIC-READY,
 * then a guest-ping; or QMP): a node is seen ready at most this long after it
 * is (scripts/bench-boot.mjs waits for bare QEMU the same way).
 */
export const READY_POLL_MS = 100;
/** The same for a libvirt domain, each look a `virsh` run or two (as before the nodes were watched each on its own). */
const LIBVIRT_POLL_MS = 250;
const SOCKET_MAX = 107; // sun_path minus the NUL

export function runBase(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MEMFABRIC_RUN_DIR) return env.MEMFABRIC_RUN_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'memfabric');
  return join(homedir(), '.cache', 'memfabric', 'run');
}

const safeName = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_') || '_';

/** The cluster's run directory: one per (cluster name, topology file). */
export function clusterRunDir(name: string, file: string, env: NodeJS.ProcessEnv = process.env): string {
  const hash = createHash('sha256').update(file).digest('hex').slice(0, 12);
  return join(runBase(env), `${safeName(name)}-${hash}`);
}

function nodeDir(runDir: string, node: string): string {
  return join(runDir, safeName(node));
}

function nodePaths(dir: string) {
  return {
    consoleLog: join(dir, 'console.log'),
    consoleSocket: join(dir, 'console.sock'),
    qmpSocket: join(dir, 'qmp.sock'),
    agentSocket: join(dir, 'agent.sock'),
    pidFile: join(dir, 'qemu.pid'),
    qemuLog: join(dir, 'qemu.log'),
  };
}

/** Create dir (and parents) and make sure dir itself is ours and 0700. */
function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new ClusterError(`${dir} is not a directory`);
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new ClusterError(`run directory ${dir} belongs to uid ${st.uid}, not to you`);
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/**
 * True when pid is a live (not zombie) process whose command line mentions
 * `marker` (the node's run directory): a recycled pid is not mistaken for our QEMU.
 */
export function pidAlive(pid: number | undefined, marker: string): boolean {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(marker);
  } catch {
    return false;
  }
}

function readState(runDir: string): StateFile | undefined {
  try {
    return JSON.parse(readFileSync(join(runDir, 'cluster.json'), 'utf8')) as StateFile;
  } catch {
    return undefined;
  }
}

function writeState(runDir: string, st: StateFile, exclusive = false): void {
  writeFileSync(join(runDir, 'cluster.json'), JSON.stringify(st, null, 2) + '\n', { mode: 0o600, flag: exclusive ? 'wx' : 'w' });
}

const nodeMarker = (dir: string) => dir + '/';

function nodePid(n: { pid?: number; dir: string }): number | undefined {
  if (n.pid) return n.pid;
  try {
    return Number(readFileSync(nodePaths(n.dir).pidFile, 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

/** Alive QEMUs of a recorded state, or a boot still in progress. */
function liveParts(runDir: string, st: StateFile): string[] {
  const live = st.backend === 'libvirt'
    ? st.nodes.filter((n) => n.domain && domainStateSync(n.uri ?? st.uri!, n.domain) !== undefined).map((n) => `${n.name} (libvirt domain ${n.domain})`)
    : st.nodes.filter((n) => pidAlive(nodePid(n), nodeMarker(n.dir))).map((n) => `${n.name} (pid ${nodePid(n)})`);
  if (st.phase === 'starting' && st.bootPid !== process.pid && pidAlive(st.bootPid, 'memfabric')) live.push(`memfabric boot (pid ${st.bootPid})`);
  return live;
}

/** Remove what a node leaves besides its logs. */
function cleanNode(dir: string): void {
  const p = nodePaths(dir);
  for (const f of [p.qmpSocket, p.consoleSocket, p.agentSocket, p.pidFile]) rmSync(f, { force: true });
}

/** Compare backing files with the plan: all errors before anything is created. */
export function checkBackingFiles(nodes: ClusterNodeSpec[]): { missing: { path: string; size: bigint }[]; errors: string[] } {
  const want = new Map<string, { size: bigint; nodes: string[] }>();
  const errors: string[] = [];
  for (const n of nodes) {
    for (const f of n.files) {
      const w = want.get(f.path);
      if (!w) want.set(f.path, { size: f.size, nodes: [n.name] });
      else if (w.size !== f.size) errors.push(`${f.path}: ${n.name} needs ${f.size} bytes but ${w.nodes.join(', ')} need ${w.size} bytes`);
      else w.nodes.push(n.name);
    }
  }
  const missing: { path: string; size: bigint }[] = [];
  for (const [path, w] of want) {
    let st;
    try {
      st = statSync(path, { bigint: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        missing.push({ path, size: w.size });
        continue;
      }
      errors.push(`${path}: ${(e as Error).message}`);
      continue;
    }
    if (!st.isFile()) errors.push(`${path}: backing file of ${w.nodes.join(', ')} is not a regular file`);
    else if (st.size !== w.size) errors.push(`${path}: backing file of ${w.nodes.join(', ')} is ${st.size} bytes, the plan needs ${w.size} bytes (${w.size > st.size ? 'too small' : 'too large'}); memfabric never resizes an existing file: fix the size in the topology or move the file away`);
  }
  return { missing, errors };
}

/** Create missing backing files sparse, never touching an existing one. */
function createBackingFiles(missing: { path: string; size: bigint }[]): string[] {
  const created: string[] = [];
  for (const f of missing) {
    let fd: number;
    try {
      fd = openSync(f.path, 'wx', 0o600); // O_CREAT|O_EXCL: never an existing file
    } catch (e) {
      throw new ClusterError(`cannot create backing file ${f.path}: ${(e as Error).message}`);
    }
    try {
      ftruncateSync(fd, Number(f.size));
    } finally {
      closeSync(fd);
    }
    created.push(f.path);
  }
  return created;
}

export interface BootOptions {
  /** memfabric's guest image; needed when needsBuiltinImage(spec.nodes) (unless `images` has every node's flavour). */
  image?: Pick<GuestImage, 'kernel' | 'initrd'>;
  /** memfabric's guest image per flavour (neededGuestKernels): a node boots the one of its kernel version. */
  images?: Partial<Record<GuestKernel, Pick<GuestImage, 'kernel' | 'initrd'>>>;
  /** Run the nodes as libvirt domains on this connection URI (else as QEMU processes of ours). */
  libvirtUri?: string;
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface BootedNode {
  name: string;
  /** The CXL regions made in its guest. */
  regions?: MadeRegion[];
  /** QEMU's pid (0 for a libvirt domain: libvirt runs it). */
  pid: number;
  /** The libvirt domain (libvirt backend). */
  domain?: string;
  bootMs: number;
  dir: string;
}

interface Launched {
  name: string;
  dir: string;
  /** Our QEMU process (QEMU backend). */
  proc?: ChildProcess;
  pid: number;
  /** The libvirt domain (libvirt backend) and its connection. */
  domain?: string;
  uri?: string;
  t0: number;
  bootMs?: number;
  readiness: Readiness;
  /** On another host: no console log here; ready when the agent answers. */
  remote?: boolean;
}

/** What the libvirt backend adds to a node's domain: its name, accelerator, guest boot, console file. */
function domainRuntime(n: ClusterNodeSpec, guest: NodeGuest, name: string, consoleLog: string | undefined, accel: string): DomainRuntime {
  const i = n.argv.findIndex((a) => a === '-append' || a === '--append');
  const cmdline = guestCmdline(i >= 0 ? n.argv[i + 1] : undefined);
  return {
    name,
    type: accel === 'kvm' ? 'kvm' : 'qemu',
    ...(guest.kernel || guest.initrd ? { boot: { kernel: guest.kernel, initrd: guest.initrd, cmdline } } : {}),
    ...(guest.disk ? { disk: { path: guest.disk, format: diskFormat(guest.disk), boot: !guest.kernel } } : {}),
    ...(consoleLog ? { consoleLog } : {}),
  };
}

function groupBy<T>(xs: T[], key: (x: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const x of xs) m.set(key(x), [...(m.get(key(x)) ?? []), x]);
  return m;
}

/** Check everything, then start every node detached and wait until each guest answers. */
export async function bootCluster(spec: ClusterSpec, opts: BootOptions): Promise<{ runDir: string; nodes: BootedNode[]; created: string[]; accel: string }> {
  const { accel, qemu } = preflight(spec);
  const flavours = new Map<string, GuestKernel>();
  if (opts.images) for (const [k, names] of neededGuestKernels(spec.nodes, qemu)) for (const name of names) flavours.set(name, k);
  const guests = new Map(spec.nodes.map((n) => [n.name, nodeGuest(n, opts.images?.[flavours.get(n.name) ?? '6.1'] ?? opts.image)]));
  const runDir = clusterRunDir(spec.name, spec.file);
  for (const n of spec.nodes) {
    const p = nodePaths(nodeDir(runDir, n.name));
    for (const s of [p.qmpSocket, p.consoleSocket, p.agentSocket]) {
      if (Buffer.byteLength(s) > SOCKET_MAX) throw new ClusterError(`socket path too long (${Buffer.byteLength(s)} > ${SOCKET_MAX} bytes): ${s}; set MEMFABRIC_RUN_DIR to a shorter directory`);
      if (s.includes(',')) throw new ClusterError(`run directory path must not contain ',': ${s}`);
    }
  }
  privateDir(runDir);

  // the lock: refuse while a recorded QEMU (or a boot) is alive, else clear stale state
  const old = readState(runDir);
  if (old) {
    const live = liveParts(runDir, old);
    if (live.length) throw new ClusterError(`cluster '${spec.name}' is already running (${live.join(', ')}); run memfabric stop ${spec.file} first`);
    for (const n of old.nodes) cleanNode(n.dir);
    rmSync(join(runDir, 'cluster.json'), { force: true });
  }
  // The libvirt backend: asked for (a connection URI), or implied by nodes that name their host.
  const uri = opts.libvirtUri;
  const libvirt = !!uri || spec.nodes.some((n) => n.host);
  const nodeUri = (n: ClusterNodeSpec) => n.host ?? uri;
  if (libvirt) {
    for (const n of spec.nodes) {
      if (!n.domainXml) throw new ClusterError(`node ${n.name}: no libvirt domain for it`, n.name);
      if (!nodeUri(n)) throw new ClusterError(`nothing started: node ${n.name} names no host= and no libvirt connection was given (--connect URI, MEMFABRIC_LIBVIRT_URI), while other nodes run on libvirt hosts`, n.name);
    }
  }
  const state: StateFile = {
    version: 1, cluster: spec.name, file: spec.file, phase: 'starting', bootPid: process.pid, accel,
    startedAt: new Date().toISOString(), ...(libvirt ? { backend: 'libvirt' as const, ...(uri ? { uri } : {}) } : { qemu: findExecutable(qemu) ?? qemu }),
    nodes: spec.nodes.map((n) => ({ name: n.name, dir: nodeDir(runDir, n.name), readiness: guests.get(n.name)!.readiness, ...(libvirt ? { domain: domainName(runDir, n.name), uri: nodeUri(n) } : {}) })),
  };
  try {
    writeState(runDir, state, true);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ClusterError(`cluster '${spec.name}' is being booted by another memfabric (${join(runDir, 'cluster.json')} appeared)`);
    throw e;
  }

  const launched: Launched[] = [];
  let ok = false;
  try {
    // Backing files: a node of this host maps this host's files; a node on another host (host= with a
    // host part) maps that host's, which are checked and created through libvirt's storage API. All are
    // checked before anything is created or started.
    const remote = (n: ClusterNodeSpec) => !!n.host && remoteHostUri(n.host);
    const { missing, errors } = checkBackingFiles(spec.nodes.filter((n) => !remote(n)));
    const remoteMissing: { uri: string; files: WantedFile[] }[] = [];
    for (const [hostUri, nodes] of groupBy(spec.nodes.filter(remote), (n) => n.host!)) {
      const want = new Map<string, WantedFile>();
      for (const n of nodes) {
        for (const f of n.files) {
          const w = want.get(f.path);
          if (!w) want.set(f.path, { path: f.path, size: f.size, nodes: [n.name] });
          else if (w.size !== f.size) errors.push(`${f.path} on ${hostUri}: ${n.name} needs ${f.size} bytes but ${w.nodes.join(', ')} need ${w.size} bytes`);
          else w.nodes.push(n.name);
        }
      }
      if (!want.size) continue;
      const r = await checkRemoteFiles(hostUri, [...want.values()]);
      errors.push(...r.errors);
      if (r.missing.length) remoteMissing.push({ uri: hostUri, files: r.missing });
    }
    // A node on another host boots guest files that are there: the kernel and initrd are uploaded (kept by
    // content, like this host's image cache); a user's disk image must be there already.
    const remoteGuest = new Map<string, NodeGuest>();
    for (const [hostUri, nodes] of groupBy(spec.nodes.filter(remote), (n) => n.host!)) {
      try {
        const files = [...new Set(nodes.flatMap((n) => [guests.get(n.name)!.guest.kernel, guests.get(n.name)!.guest.initrd]).filter((f): f is string => !!f))];
        const up = files.length ? await uploadGuestFiles(hostUri, files) : undefined;
        if (up) opts.log?.(`${up.uploaded ? 'uploaded' : 'found'} the guest's ${files.map((f) => f.slice(f.lastIndexOf('/') + 1)).join(' and ')} ${up.uploaded ? 'to' : 'in'} ${up.dir} on ${hostUri}`);
        for (const n of nodes) {
          const g = guests.get(n.name)!.guest;
          if (g.disk && !(await remoteFileExists(hostUri, g.disk))) errors.push(`${n.name}: the disk image ${g.disk} named in <guest disk="…"> is not on ${hostUri} (memfabric does not copy a disk: it is the guest's own writable state)`);
          remoteGuest.set(n.name, { ...g, ...(g.kernel ? { kernel: up!.paths.get(g.kernel) } : {}), ...(g.initrd ? { initrd: up!.paths.get(g.initrd) } : {}) });
        }
      } catch (e) {
        errors.push(`the guest of ${nodes.map((n) => n.name).join(', ')} on ${hostUri}: ${(e as Error).message}`);
      }
    }
    if (errors.length) throw new ClusterError(`nothing started:\n  ${errors.join('\n  ')}`);
    const created = createBackingFiles(missing);
    for (const c of created) opts.log?.(`created ${c} (sparse)`);
    for (const m of remoteMissing) {
      let made: string[];
      try {
        made = await createRemoteFiles(m.uri, m.files);
      } catch (e) {
        throw new ClusterError(`nothing started: ${(e as Error).message}`);
      }
      for (const c of made) opts.log?.(`created ${c} on ${m.uri} (sparse, through libvirt's storage API)`);
      created.push(...made.map((c) => `${m.uri}:${c}`));
    }

    for (const n of spec.nodes) {
      const dir = nodeDir(runDir, n.name);
      privateDir(dir);
      cleanNode(dir);
      const p = nodePaths(dir);
      const { guest, readiness } = guests.get(n.name)!;
      if (libvirt) {
        // A libvirt domain: recorded before it is defined, so that a boot killed half-way is cleaned by the next stop.
        const name = state.nodes.find((s) => s.name === n.name)!.domain!;
        const uri = nodeUri(n)!;
        writeState(runDir, state);
        // (libvirt needs the emulator's absolute path.)
        const far = remoteGuest.get(n.name);
        const xml = n.domainXml!(domainRuntime(n, far ?? guest, name, far ? undefined : p.consoleLog, accel), findExecutable(qemu) ?? qemu);
        const err = await defineAndStart(uri, name, xml);
        if (err) throw new ClusterError(`node ${n.name}: ${err}`, n.name, consoleLines(p.consoleLog));
        opts.log?.(`${n.name}: libvirt domain ${name} started on ${uri} (${accel.toUpperCase()}), waiting for the guest`);
        launched.push({ name: n.name, dir, pid: 0, domain: name, uri, t0: Date.now(), readiness, ...(far ? { remote: true } : {}) });
        continue;
      }
      const argv = bootArgv(n.argv, guest, dir, { detached: true, accel, qemu });
      const out = openSync(p.qemuLog, 'w', 0o600);
      let proc: ChildProcess;
      try {
        proc = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', out, out] });
      } finally {
        closeSync(out);
      }
      const spawnErr = await new Promise<Error | undefined>((r) => {
        proc.once('error', (e) => r(e));
        proc.once('spawn', () => r(undefined));
      });
      if (spawnErr || !proc.pid) throw new ClusterError(`node ${n.name}: cannot start ${argv[0]}: ${spawnErr?.message ?? 'no pid'}`);
      proc.unref();
      opts.log?.(`${n.name}: QEMU started (pid ${proc.pid}, ${accel.toUpperCase()}), waiting for the guest`);
      launched.push({ name: n.name, dir, proc, pid: proc.pid, t0: Date.now(), readiness });
      state.nodes.find((s) => s.name === n.name)!.pid = proc.pid;
      writeState(runDir, state);
    }

    const timeout = opts.timeoutMs ?? 300_000;
    const deadline = Date.now() + timeout;
    // Each node is watched on its own, every READY_POLL_MS: a node whose agent is slow to answer
    // its first ping does not hold back seeing the others ready.
    let failed = false;
    const progress = setInterval(() => {
      const waiting = launched.filter((l) => l.bootMs === undefined);
      if (!waiting.length) return;
      const line = waiting.length === 1 ? lastLine(nodePaths(waiting[0].dir).consoleLog) : '';
      opts.log?.(`waiting for ${waiting.map((l) => l.name).join(', ')} (${Math.round((Date.now() - waiting[0].t0) / 1000)} s)${line ? `; console: ${line}` : ''}`);
    }, 5000);
    const watch = async (l: Launched): Promise<void> => {
      const p = nodePaths(l.dir);
      const ping = () => (l.domain ? agentOverLibvirt(l.uri!, l.domain)('guest-ping').then(() => true, () => false) : guestPing(p.agentSocket, 2000));
      while (!failed) {
        if (l.domain) {
          const st = await domainState(l.uri!, l.domain);
          if (st !== 'running') throw new ClusterError(`node ${l.name}: libvirt domain ${l.domain} is ${st ?? 'gone'} before the guest was ready\nlast console lines (${p.consoleLog}):\n${tail(p.consoleLog)}`, l.name, consoleLines(p.consoleLog));
        } else if (l.proc!.exitCode !== null || l.proc!.signalCode !== null || !pidAlive(l.pid, nodeMarker(l.dir))) {
          const why = l.proc!.exitCode !== null ? `exit status ${l.proc!.exitCode}` : l.proc!.signalCode ?? 'exited';
          throw new ClusterError(`node ${l.name}: QEMU stopped (${why}) before the guest was ready: ${safeRead(p.qemuLog).trim()}\nlast console lines (${p.consoleLog}):\n${tail(p.consoleLog)}`, l.name, consoleLines(p.consoleLog));
        }
        const ready = l.readiness === 'qmp'
          ? l.domain ? true : await qmpAnswers(p.qmpSocket, 2000)
          : (l.readiness === 'agent' || l.remote || /^MEMFABRIC-READY\r?$/m.test(safeRead(p.consoleLog))) && (await ping());
        if (ready) {
          if (failed) return; // (another node failed: its cluster is being taken down)
          l.bootMs = Date.now() - l.t0;
          state.nodes.find((s) => s.name === l.name)!.ready = true;
          writeState(runDir, state);
          opts.log?.(`${l.name} ready in ${(l.bootMs / 1000).toFixed(1)} s`);
          return;
        }
        if (Date.now() > deadline) {
          const late = launched.filter((x) => x.bootMs === undefined);
          throw new ClusterError(
            late.map((x) => `node ${x.name}: guest not ready within ${timeout / 1000} s; last console lines (${nodePaths(x.dir).consoleLog}):\n${tail(nodePaths(x.dir).consoleLog)}`).join('\n'),
            late[0].name,
            consoleLines(nodePaths(late[0].dir).consoleLog),
          );
        }
        await sleep(l.domain ? LIBVIRT_POLL_MS : READY_POLL_MS);
      }
    };
    try {
      await Promise.all(launched.map((l) => watch(l).catch((e) => {
        failed = true; // (the other nodes' loops stop at their next round)
        throw e;
      })));
    } finally {
      clearInterval(progress);
    }
    // The regions the topology asks for, made in each guest with its own tools (runtime/cxl-regions.ts).
    await Promise.all(spec.nodes.filter((n) => n.regions?.length).map(async (n) => {
      let made: MadeRegion[];
      try {
        made = await makeRegions((argv) => execInNode(spec, n.name, argv, 120_000), n.regions!);
      } catch (e) {
        if (!(e instanceof RegionError)) throw e;
        throw new ClusterError(`node ${n.name}: the CXL region asked for could not be made: ${e.message}`, n.name);
      }
      for (const r of made) opts.log?.(`${n.name}: ${describeRegion(r)}`);
      state.nodes.find((s) => s.name === n.name)!.regions = made;
      writeState(runDir, state);
    }));
    state.phase = 'up';
    writeState(runDir, state);
    ok = true;
    return { runDir, accel, created, nodes: launched.map((l) => ({ name: l.name, pid: l.pid, ...(l.domain ? { domain: l.domain } : {}), bootMs: l.bootMs!, dir: l.dir, ...(state.nodes.find((s) => s.name === l.name)?.regions ? { regions: state.nodes.find((s) => s.name === l.name)!.regions } : {}) })) };
  } finally {
    if (!ok) {
      // leave nothing running, no socket, no lock, no domain; logs stay for the post-mortem
      if (libvirt) await Promise.all(state.nodes.filter((x) => x.domain && x.uri).map((x) => destroyAndUndefine(x.uri!, x.domain!, 3000)));
      await stopNodes(launched.filter((l) => !l.domain).map((l) => ({ name: l.name, pid: l.pid, dir: l.dir })), 3000);
      for (const l of launched) cleanNode(l.dir);
      rmSync(join(runDir, 'cluster.json'), { force: true });
    }
  }
}

/** The last console lines, without carriage returns, escape sequences or empty lines. */
export function consoleLines(p: string, lines = 15): string[] {
  // eslint-disable-next-line no-control-regex
  return safeRead(p).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '').split('\n').filter((l) => l.trim()).slice(-lines);
}

function lastLine(p: string): string {
  const l = consoleLines(p, 1)[0] ?? '';
  return l.length > 80 ? l.slice(0, 77) + '...' : l;
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

/** State of every node of the spec (nodes not booted are stopped). */
export function clusterStatus(spec: ClusterSpec): ClusterStatus {
  const runDir = clusterRunDir(spec.name, spec.file);
  const st = readState(runDir);
  const nodes = spec.nodes.map((n): NodeStatus => {
    const dir = nodeDir(runDir, n.name);
    const p = nodePaths(dir);
    const rec = st?.nodes.find((s) => s.name === n.name);
    const base: Omit<NodeStatus, 'state'> = { name: n.name, dir, consoleLog: p.consoleLog, consoleSocket: p.consoleSocket, qmpSocket: p.qmpSocket, agentSocket: p.agentSocket };
    if (!st || !rec) return { ...base, state: 'stopped' };
    if (st.qemu) base.qemu = st.qemu;
    if (rec.regions) base.regions = rec.regions;
    if (st.backend === 'libvirt') {
      const nuri = rec.uri ?? st.uri!;
      const ds = rec.domain ? domainStateSync(nuri, rec.domain) : undefined;
      const lv = { backend: 'libvirt' as const, uri: nuri, domain: rec.domain };
      if (st.phase === 'stopping') return { ...base, ...lv, state: 'stopped' };
      if (ds === 'running') return { ...base, ...lv, state: rec.ready ? 'ready' : 'starting' };
      if (ds === undefined && st.phase === 'starting' && pidAlive(st.bootPid, 'memfabric')) return { ...base, ...lv, state: 'starting' };
      return { ...base, ...lv, state: 'crashed' };
    }
    const pid = nodePid(rec);
    if (pidAlive(pid, nodeMarker(dir))) {
      if (st.phase === 'stopping') return { ...base, pid, state: 'stopped' };
      const ready = rec.ready || ((rec.readiness ?? 'builtin') === 'builtin' && /^MEMFABRIC-READY\r?$/m.test(safeRead(p.consoleLog)));
      return { ...base, pid, state: ready ? 'ready' : 'starting' };
    }
    if (st.phase === 'stopping') return { ...base, pid, state: 'stopped' };
    if (st.phase === 'starting' && !pid && pidAlive(st.bootPid, 'memfabric')) return { ...base, state: 'starting' };
    return { ...base, pid, state: 'crashed' };
  });
  return { cluster: spec.name, file: spec.file, runDir, running: !!st, nodes };
}

/** Record regions made in a running node's guest (memfabric cxl region), for status to show. */
export function recordRegions(spec: ClusterSpec, node: string, made: MadeRegion[]): void {
  const runDir = clusterRunDir(spec.name, spec.file);
  const st = readState(runDir);
  const rec = st?.nodes.find((n) => n.name === node);
  if (!st || !rec) return;
  // (a region made again on a window replaces what was recorded for that window)
  rec.regions = [...(rec.regions ?? []).filter((r) => !made.some((m) => m.window === r.window)), ...made];
  writeState(runDir, st);
}

/** Run argv in a node's guest. */
export async function execInNode(spec: ClusterSpec, node: string, argv: string[], timeoutMs: number): Promise<GuestExecResult> {
  const status = clusterStatus(spec);
  const n = status.nodes.find((x) => x.name === node);
  if (!n) throw new ClusterError(`no node '${node}' in ${spec.file} (nodes: ${status.nodes.map((x) => x.name).join(', ')})`);
  if (n.state !== 'ready') throw new ClusterError(`node ${node} is ${n.state}${n.state === 'stopped' ? ` (run memfabric boot ${spec.file})` : ''}`, node);
  const st = readState(status.runDir);
  const rec = st?.nodes.find((x) => x.name === node);
  if (rec?.readiness === 'qmp') throw new ClusterError(`node ${node} boots no guest (<guest image="none">): there is nothing to run commands in`, node);
  if (st?.backend === 'libvirt' && rec?.domain) {
    // Through libvirt, which owns the agent's socket (virsh qemu-agent-command).
    const deadline = Date.now() + timeoutMs;
    const run = execWith(agentOverLibvirt(rec.uri ?? st.uri!, rec.domain), argv, () => Date.now() > deadline);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new GuestExecTimeoutError(`no answer from the guest agent of ${rec.domain} within ${timeoutMs} ms for ${JSON.stringify(argv)}`)), timeoutMs)));
    try {
      return await Promise.race([run, late]);
    } finally {
      clearTimeout(timer);
    }
  }
  return guestExec(n.agentSocket, argv, timeoutMs);
}

/** Quit over QMP, wait up to graceMs, then SIGKILL. Returns what was killed. */
async function stopNodes(nodes: { name: string; pid?: number; dir: string }[], graceMs: number): Promise<{ name: string; how: 'quit' | 'killed' | 'not running' }[]> {
  const res: { name: string; how: 'quit' | 'killed' | 'not running' }[] = [];
  const alive = nodes.filter((n) => pidAlive(nodePid(n), nodeMarker(n.dir)));
  for (const n of nodes) if (!alive.includes(n)) res.push({ name: n.name, how: 'not running' });
  await Promise.all(alive.map((n) => qmpQuit(nodePaths(n.dir).qmpSocket)));
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && alive.some((n) => pidAlive(nodePid(n), nodeMarker(n.dir)))) await sleep(100);
  for (const n of alive) {
    const pid = nodePid(n)!;
    if (pidAlive(pid, nodeMarker(n.dir))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone */ }
      const d2 = Date.now() + 5000;
      while (Date.now() < d2 && pidAlive(pid, nodeMarker(n.dir))) await sleep(50);
      if (pidAlive(pid, nodeMarker(n.dir))) throw new ClusterError(`node ${n.name}: QEMU pid ${pid} survived SIGKILL`);
      res.push({ name: n.name, how: 'killed' });
    } else res.push({ name: n.name, how: 'quit' });
  }
  return res;
}

/** Stop the cluster: nothing of it is left but the logs. */
export async function stopCluster(spec: ClusterSpec, graceMs = 10_000): Promise<{ runDir: string; nodes: { name: string; how: string }[]; wasRunning: boolean }> {
  const runDir = clusterRunDir(spec.name, spec.file);
  const st = readState(runDir);
  // nodes recorded, plus any node directory of the spec (a pid file without state)
  const recs = new Map<string, { name: string; pid?: number; dir: string }>();
  for (const n of st?.nodes ?? []) recs.set(n.name, n);
  for (const n of spec.nodes) if (!recs.has(n.name) && existsSync(nodeDir(runDir, n.name))) recs.set(n.name, { name: n.name, dir: nodeDir(runDir, n.name) });
  if (st) {
    st.phase = 'stopping';
    writeState(runDir, st);
  }
  let res: { name: string; how: string }[];
  if (st?.backend === 'libvirt') {
    res = await Promise.all(st.nodes.map(async (n) => ({ name: n.name, how: n.domain ? await destroyAndUndefine(n.uri ?? st.uri!, n.domain, graceMs) : 'not running' })));
  } else res = await stopNodes([...recs.values()], graceMs);
  for (const n of recs.values()) cleanNode(n.dir);
  rmSync(join(runDir, 'cluster.json'), { force: true });
  // a run directory left empty goes too
  try {
    for (const n of recs.values()) if (existsSync(n.dir) && readdirSync(n.dir).length === 0) rmSync(n.dir, { recursive: true });
    if (existsSync(runDir) && readdirSync(runDir).length === 0) rmSync(runDir, { recursive: true });
  } catch { /* best effort */ }
  return { runDir, nodes: res, wasRunning: !!st };
}
