/**
 * Guest image builder.
 *
 * Builds a small Linux guest (Debian kernel + initramfs) from Debian packages:
 * packages are fetched with `apt-get download` into a temporary directory,
 * unpacked with `dpkg-deb -x` (no root tricks, no chroot, no debootstrap), the
 * needed files are copied into a staging tree, `depmod -b` indexes the kernel
 * modules, and the initramfs (newc cpio, gzip) is written here in TypeScript.
 *
 * Results are cached in `<cacheDir>/<key>/` where key = sha256 of the sorted
 * `package=version` list, the hash of the files in `guest-init/` (the init
 * script and the agent) and the builder's format number.
 *
 * Every external program is started with an argv array (never a shell string).
 * See docs/guest-image.md.
 */
import { spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { keepFile, memfabricCacheDir } from './keep-file';

export interface GuestImage {
  /** Path of the kernel (bzImage) to pass to `-kernel`. */
  kernel: string;
  /** Path of the gzip'd newc initramfs to pass to `-initrd`. */
  initrd: string;
  /** Kernel release of the guest (`uname -r`), e.g. `6.1.0-56-amd64`. */
  version: string;
  /** Cache directory holding kernel, initrd and manifest.json. */
  dir: string;
  /** Cache key (directory name). */
  key?: string;
  /** Exact `package=version` list the image was built from. */
  packages?: string[];
  /** True when buildImage found it in the cache (nothing was downloaded). */
  cached?: boolean;
  /** The flavour ('6.1' or '6.12'). */
  flavour?: GuestKernel;
}

/**
 * The two guest flavours: '6.1' = Debian bookworm's kernel and tools (ndctl 76.1);
 * '6.12' = bookworm-backports' kernel 6.12 with trixie's ndctl 81 (cxl, daxctl,
 * ndctl) and trixie's own libc under /opt/trixie. See docs/guest-image.md.
 */
export type GuestKernel = '6.1' | '6.12';
export const GUEST_KERNELS: readonly GuestKernel[] = ['6.1', '6.12'];

/**
 * The guest kernel a node boots when its topology does not say: 6.12 for a QEMU
 * of 8.0 or newer (QEMU 10.0: volatile CXL regions, poison, QoS need a kernel
 * newer than 6.1), 6.1 for QEMU 7.2 and when the version is unknown.
 * `qemuVersion` is a version ("10.0.2") or a `--version` line.
 */
export function defaultGuestKernel(qemuVersion: string | undefined): GuestKernel {
  const m = /(\d+)\.(\d+)/.exec(qemuVersion ?? '');
  return m && Number(m[1]) >= 8 ? '6.12' : '6.1';
}

/** `qemu-system-x86_64 --version`'s version (e.g. "10.0.2"), or undefined when it does not answer. */
export function qemuVersionOf(binary: string): string | undefined {
  const line = qemuVersionLine(binary);
  return line === undefined ? undefined : /version (\d+\.\d+(?:\.\d+)?)/.exec(line)?.[1];
}

/** qemuVersionLine's answers, by binary, with the file they came from (device, inode, size, mtime, ctime). */
const versionLines = new Map<string, { file: string; line: string | undefined }>();

/** Where qemuVersionLine keeps the answers of ELF binaries between runs: $XDG_CACHE_HOME/memfabric/versions, else ~/.cache/…. */
export function versionCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return memfabricCacheDir('versions', env);
}

/** The file's identity (device, inode, size, mtime and ctime in ns), or '' when it cannot be stat'ed. */
function fileIdentity(file: string): string {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  } catch {
    return '';
  }
}

/** Whether the file starts as an ELF executable does (a script is not: what it runs may change while it does not). */
function isElf(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const b = Buffer.alloc(4);
    return fs.readSync(fd, b, 0, 4, 0) === 4 && b.equals(ELF_MAGIC);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/**
 * The first line of `BINARY --version` (undefined when it fails), asked once
 * per binary file: `memfabric boot` needs it for the profile and again for the
 * guest kernel, and each run costs 15-70 ms before the first node starts. A
 * binary replaced on disk (an upgraded QEMU, seen by a long-running server) is
 * asked again.
 *
 * An ELF binary's answer is also kept on disk (versionCacheDir), under its
 * path, with the file's device, inode, size, mtime and ctime: a QEMU prints
 * the version it was built with, so while the file is the same file so is the
 * answer, and the next `memfabric boot` starts its nodes without running it
 * (65 ms of 0.5 s on a 2-core machine). Any change to the file (replaced,
 * rewritten, touched, chmod'ed) changes its ctime. A script (a wrapper that
 * picks a QEMU) is run every time. `cacheDir` null keeps nothing on disk.
 */
export function qemuVersionLine(binary: string, cacheDir: string | null = versionCacheDir()): string | undefined {
  const file = binary.includes('/') ? fileIdentity(binary) : '';
  const kept = file ? versionLines.get(binary) : undefined;
  if (kept && kept.file === file) return kept.line;
  const disk = file && cacheDir !== null && isElf(binary) ? path.join(cacheDir, `${sha256(path.resolve(binary)).slice(0, 24)}.json`) : undefined;
  if (disk) {
    try {
      const k = JSON.parse(fs.readFileSync(disk, 'utf8')) as { binary?: unknown; file?: unknown; line?: unknown };
      if (k.binary === path.resolve(binary) && k.file === file && typeof k.line === 'string') {
        versionLines.set(binary, { file, line: k.line });
        return k.line;
      }
    } catch {
      // not kept yet (or unreadable): ask the binary
    }
  }
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const line = r.status === 0 ? (r.stdout ?? '').split('\n')[0].trim() : undefined;
  if (file) versionLines.set(binary, { file, line });
  // kept only when the file did not change while it ran, and only an answer (a failure is asked again)
  if (disk && line !== undefined && fileIdentity(binary) === file) keepFile(disk, JSON.stringify({ binary: path.resolve(binary), file, line }));
  return line;
}

/** Forget the answers qemuVersionLine keeps in this process (the disk's stay). */
export function forgetVersionLines(): void {
  versionLines.clear();
}

export interface BuildImageOptions {
  /** Guest kernel flavour; default '6.1'. */
  kernel?: GuestKernel;
  /** Cache root; default `$MEMFABRIC_IMAGE_DIR`, else `~/.cache/memfabric/images`. */
  cacheDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** Bump when the layout produced by this file changes (invalidates caches). */
const BUILDER_FORMAT = 1;

/** Meta package whose dependency names the kernel package. */
const KERNEL_META = 'linux-image-amd64';

/** Userland packages unpacked into the guest (the binaries come from the first group). */
const USER_PACKAGES = [
  // programs
  'busybox-static', 'pciutils', 'pci.ids', 'ndctl', 'daxctl', 'kmod', 'qemu-guest-agent',
  // daxio (PMDK): reads and writes a device-DAX (/dev/daxN.M only maps, it has no read/write)
  'pmdk-tools', 'libpmem1',
  // shared libraries of those programs (the ELF closure is checked below)
  'libc6', 'libcxl1', 'libdaxctl1', 'libndctl6', 'libkmod2', 'libjson-c5', 'libuuid1',
  'libudev1', 'libtraceevent1', 'libtracefs1', 'libiniparser1', 'libpci3', 'libkeyutils1',
  'liblzma5', 'libssl3', 'libzstd1', 'zlib1g',
  // qemu-ga's
  'libglib2.0-0', 'libnuma1', 'liburing2', 'libffi8', 'libmount1', 'libblkid1', 'libpcre2-8-0', 'libselinux1',
];

/** Dynamically linked programs copied into the guest: [path in package tree, path in guest]. */
const PROGRAMS: Array<[string, string]> = [
  ['usr/bin/lspci', 'usr/bin/lspci'],
  ['usr/bin/setpci', 'usr/bin/setpci'],
  ['usr/bin/cxl', 'usr/bin/cxl'],
  ['usr/bin/ndctl', 'usr/bin/ndctl'],
  ['usr/bin/daxctl', 'usr/bin/daxctl'],
  ['bin/kmod', 'bin/kmod'],
  ['usr/bin/daxio', 'usr/bin/daxio'],
  // QEMU's guest agent: the host speaks the standard protocol to it (runtime/agent.ts)
  ['usr/sbin/qemu-ga', 'usr/sbin/qemu-ga'],
];

/**
 * The 6.12 flavour: bookworm's ndctl 76.1 cannot make a volatile (ram) region
 * and has no `cxl list --media-errors`; trixie's ndctl 81 can. Its programs run
 * with trixie's own libc and loader from /opt/trixie/lib (beside bookworm's
 * busybox and libraries), through /usr/bin wrappers.
 */
const TRIXIE_SUITE = 'trixie';
const TRIXIE_PACKAGES = [
  'cxl', 'daxctl', 'ndctl', 'libcxl1', 'libdaxctl1', 'libndctl6', 'libc6', 'libkmod2', 'libudev1',
  'libuuid1', 'libjson-c5', 'libiniparser4', 'libkeyutils1', 'libtraceevent1', 'libtracefs1',
  'libssl3t64', 'libcap2', 'libzstd1', 'zlib1g', 'pmdk-tools', 'libpmem1',
];
const TRIXIE_PROGRAMS = ['cxl', 'daxctl', 'ndctl', 'daxio'];
/** Where the trixie programs and their libraries (with trixie's loader) live in the guest. */
export const TRIXIE_DIR = 'opt/trixie';
const BACKPORTS_SUITE = 'bookworm-backports';
/** Userland packages of the 6.12 flavour: the 6.1 ones without bookworm's ndctl and its libraries. */
const NDCTL_76_PACKAGES = new Set(['ndctl', 'daxctl', 'libcxl1', 'libdaxctl1', 'libndctl6', 'libtraceevent1', 'libtracefs1', 'libiniparser1', 'libkeyutils1', 'pmdk-tools', 'libpmem1']);

const KMOD_LINKS = ['sbin/modprobe', 'sbin/insmod', 'sbin/rmmod', 'sbin/lsmod', 'sbin/modinfo', 'sbin/depmod', 'bin/lsmod'];

/** Module directories (relative to lib/modules/<ver>/kernel) shipped entirely. */
const MODULE_DIRS = ['drivers/cxl', 'drivers/dax', 'drivers/nvdimm', 'drivers/acpi/nfit'];
/** Individual modules shipped (with their dependencies). */
const MODULE_NAMES = ['virtio_pci', 'virtio_console', 'virtio_blk', 'virtio_net'];

/** Where shared libraries are looked up inside the unpacked package tree. */
const LIB_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64', 'lib', 'usr/lib'];

/** Host tools needed, with the Debian package that provides them. */
const HOST_TOOLS: Record<string, string> = {
  'apt-get': 'apt',
  'apt-cache': 'apt',
  'apt-config': 'apt',
  'dpkg-deb': 'dpkg',
  depmod: 'kmod',
  modinfo: 'kmod',
};

export class MissingHostToolError extends Error {
  constructor(public readonly tool: string, public readonly pkg: string) {
    super(
      `memfabric: the host tool '${tool}' is needed to build the guest image but was not found ` +
      `(searched PATH, /usr/sbin, /sbin). Install it with: apt-get install ${pkg} ` +
      `(see docs/guest-image.md).`,
    );
    this.name = 'MissingHostToolError';
  }
}

// ---------------------------------------------------------------------------
// small helpers

export interface RunResult { stdout: string; stderr: string; code: number }

/** A program (argv array, C locale, non-interactive apt), its output and exit status. */
export function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, LC_ALL: 'C', LANG: 'C', DEBIAN_FRONTEND: 'noninteractive' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code) => resolve({
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
      code: code ?? -1,
    }));
  });
}

async function runOk(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(`memfabric: '${[path.basename(cmd), ...args].join(' ')}' failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  }
  return r.stdout;
}

function findTool(name: string): string {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!dirs.includes(d)) dirs.push(d);
  }
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch { /* next */ }
  }
  throw new MissingHostToolError(name, HOST_TOOLS[name] ?? name);
}

export function sha256(data: string | Buffer): string {
  return crypto.createHash('sha256').update(data).digest('hex');
}

/** Directory holding the files shipped into the initramfs (init, agent). */
export function guestInitDir(): string {
  const candidates = [
    path.join(__dirname, 'guest-init'),
    // compiled: out/server/src/runtime -> repo/server/src/runtime/guest-init
    path.resolve(__dirname, '..', '..', '..', '..', 'server', 'src', 'runtime', 'guest-init'),
    path.resolve(process.cwd(), 'server', 'src', 'runtime', 'guest-init'),
  ];
  for (const c of candidates) {
    if (fs.existsSync(path.join(c, 'init'))) return c;
  }
  throw new Error(`memfabric: guest-init files not found (looked in ${candidates.join(', ')})`);
}

function guestInitFiles(dir: string): Array<{ name: string; data: Buffer }> {
  return fs.readdirSync(dir)
    .filter((n) => fs.statSync(path.join(dir, n)).isFile())
    .sort()
    .map((name) => ({ name, data: fs.readFileSync(path.join(dir, name)) }));
}

// ---------------------------------------------------------------------------
// package resolution

/** Parse `apt-cache policy a b c` into candidate versions. */
/** `apt-cache policy` output: package → candidate version ('(none)' when there is none). */
export function parsePolicy(text: string): Map<string, string> {
  const res = new Map<string, string>();
  let cur: string | undefined;
  for (const line of text.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) { cur = head[1]; continue; }
    const cand = /^\s+Candidate:\s+(\S+)/.exec(line);
    if (cand && cur) res.set(cur, cand[1]);
  }
  return res;
}

/** apt options: none for the system's own configuration, else a private one (see privateApt). */
type AptArgs = string[];

async function candidateVersions(aptCache: string, pkgs: string[], apt: AptArgs = [], where = 'the apt sources'): Promise<Map<string, string>> {
  const pol = parsePolicy(await runOk(aptCache, [...apt, 'policy', ...pkgs]));
  const missing = pkgs.filter((p) => !pol.has(p) || pol.get(p) === '(none)');
  if (missing.length) {
    throw new Error(`memfabric: no installable version of ${missing.join(', ')} in ${where}; run 'apt-get update' (see docs/guest-image.md)`);
  }
  return pol;
}

/** The system's apt: options for apt-cache, and where its answers come from. */
interface SystemApt {
  args: AptArgs;
  /** The package lists, the dpkg status and the configuration directory (as apt-config names them). */
  state?: { lists: string; status: string; etc: string };
}

/**
 * The system's apt, asked once (apt-config). Its options: apt-cache's binary
 * cache in memfabric's cache, for the system's apt sources, when the system's
 * apt keeps none (Debian's container images set `Dir::Cache::pkgcache ""`):
 * without it every apt-cache run re-reads every package list (0.4-0.5 s each
 * on a 2-core machine), and boot asks apt for the image's versions whenever
 * apt's state changed (resolvePackages). apt checks the cache against the
 * lists and the dpkg status itself and rebuilds it when they change. No
 * options when the system's apt has its cache, or when apt-config does not
 * answer.
 *
 * apt-config's answer is kept in `<cacheRoot>/apt/config.json` with the stamp
 * of what it comes from (aptConfigStamp): while that is unchanged apt-config
 * is not run again (35 ms of each `memfabric boot` before its first node
 * started, on a 2-core machine).
 */
export function systemApt(cacheRoot: string): SystemApt {
  try {
    const tool = findTool('apt-config');
    const memoFile = path.join(cacheRoot, 'apt', 'config.json');
    let stdout: string | undefined;
    try {
      const kept = JSON.parse(fs.readFileSync(memoFile, 'utf8')) as { stamp?: unknown; stdout?: unknown };
      if (typeof kept.stdout === 'string' && kept.stamp === aptConfigStamp(tool, aptShellValues(kept.stdout).get('E'))) stdout = kept.stdout;
    } catch {
      // none kept (or unreadable): ask apt-config
    }
    if (stdout === undefined) {
      const r = spawnSync(tool, ['shell', 'P', 'Dir::Cache::pkgcache', 'L', 'Dir::State::lists/d', 'S', 'Dir::State::status/f', 'E', 'Dir::Etc/d'], { encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0) return { args: [] };
      stdout = r.stdout;
      keepFile(memoFile, JSON.stringify({ stamp: aptConfigStamp(tool, aptShellValues(stdout).get('E')), stdout }));
    }
    const v = aptShellValues(stdout);
    const state = v.get('L') && v.get('S') && v.get('E') ? { lists: v.get('L')!, status: v.get('S')!, etc: v.get('E')! } : undefined;
    if (v.get('P') !== '') return { args: [], state };
    const dir = path.join(cacheRoot, 'apt');
    fs.mkdirSync(dir, { recursive: true });
    return { args: ['-o', `Dir::Cache::pkgcache=${path.join(dir, 'system-pkgcache.bin')}`], state };
  } catch {
    return { args: [] };
  }
}

/** `apt-config shell`'s answer: each letter and its value. */
function aptShellValues(stdout: string): Map<string, string> {
  return new Map([...stdout.matchAll(/^([PLSE])='([^']*)'$/gm)].map((m) => [m[1], m[2]]));
}

/**
 * What apt-config's answer comes from: the apt-config binary (an upgraded apt
 * is a new file), $APT_CONFIG and the file it names, and apt's configuration
 * directories two levels down (apt.conf, apt.conf.d/*): /etc/apt, where
 * Debian's apt looks, and the one apt-config named (Dir::Etc) if another.
 */
function aptConfigStamp(tool: string, etc: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const dirs = [...new Set(['/etc/apt', ...(etc ? [path.resolve(etc)] : [])])];
  const paths: Array<[string, number]> = [[tool, 0], ...(env.APT_CONFIG ? [[env.APT_CONFIG, 0] as [string, number]] : []), ...dirs.map((d): [string, number] => [d, 2])];
  return sha256(JSON.stringify([env.APT_CONFIG ?? null, aptStamp(paths)]));
}

/**
 * The sizes and modification times of what apt's answers come from, as apt
 * checks its own binary cache against its lists and the dpkg status: each path
 * (a file, or a directory's entries `depth` levels down). Any change (an
 * `apt-get update`, a package installed, a source or preference edited)
 * changes it.
 */
export function aptStamp(paths: Array<[string, number]>): string {
  const out: unknown[] = [];
  const add = (p: string, depth: number): void => {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      out.push(p, null);
      return;
    }
    out.push(p, st.size, st.mtimeMs);
    if (depth > 0 && st.isDirectory()) for (const n of fs.readdirSync(p).sort()) add(path.join(p, n), depth - 1);
  };
  for (const [p, depth] of paths) add(p, depth);
  return sha256(JSON.stringify(out));
}

/** Kernel package named by the meta package's Depends, with its version when pinned by `(= ...)`. */
async function kernelPackage(aptCache: string, metaVersion: string, apt: AptArgs = []): Promise<{ name: string; version?: string }> {
  const show = await runOk(aptCache, [...apt, 'show', `${KERNEL_META}=${metaVersion}`]);
  const dep = /^Depends:\s*(.*)$/m.exec(show);
  for (const item of dep?.[1].split(',') ?? []) {
    const m = /^\s*(linux-image-\S+)(?:\s*\(\s*=\s*([^)\s]+)\s*\))?/.exec(item);
    if (m) return { name: m[1], version: m[2] };
  }
  throw new Error(`memfabric: cannot find the kernel package in 'apt-cache show ${KERNEL_META}' (Depends: ${dep?.[1] ?? 'missing'})`);
}

/** The Debian mirror the system's own apt sources use (not the security one); deb.debian.org otherwise. */
export function systemMirror(): string {
  const files = ['/etc/apt/sources.list'];
  try {
    for (const n of fs.readdirSync('/etc/apt/sources.list.d').sort()) {
      if (n.endsWith('.list') || n.endsWith('.sources')) files.push(path.join('/etc/apt/sources.list.d', n));
    }
  } catch { /* none */ }
  for (const f of files) {
    let text = '';
    try { text = fs.readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n')) {
      if (!/^\s*(URIs:|deb\s)/.test(line)) continue;
      for (const m of line.matchAll(/(https?:\/\/\S+\/debian)\/?(?=\s|$)/g)) {
        if (!/security/.test(m[1])) return m[1];
      }
    }
  }
  return 'http://deb.debian.org/debian';
}

/**
 * A private apt configuration for another suite (its own source list, lists and
 * cache under `<cacheRoot>/apt/<suite>`): the system's apt sources are never
 * touched (as scripts/qemu10-setup.sh does for QEMU 10.0). Its package lists are
 * fetched when absent, or when `refreshOlderThanMs` says they are too old.
 */
export async function privateApt(cacheRoot: string, suite: string, opts: { refreshOlderThanMs?: number; log?: (l: string) => void } = {}): Promise<AptArgs> {
  const dir = path.join(cacheRoot, 'apt', suite);
  for (const d of ['lists/partial', 'cache/archives/partial']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const sources = path.join(dir, 'sources.list');
  const line = `deb ${systemMirror()} ${suite} main\n`;
  let changed = false;
  try { changed = fs.readFileSync(sources, 'utf8') !== line; } catch { changed = true; }
  if (changed) fs.writeFileSync(sources, line);
  const args = [
    '-o', `Dir::Etc::SourceList=${sources}`, '-o', 'Dir::Etc::SourceParts=/dev/null',
    '-o', `Dir::State::Lists=${path.join(dir, 'lists')}`, '-o', `Dir::Cache=${path.join(dir, 'cache')}`,
    '-o', 'Dir::State::status=/dev/null', '-o', 'Debug::NoLocking=1', '-o', 'APT::Sandbox::User=root',
    // apt's binary cache in the private Dir::Cache, even where the system's apt keeps none (see systemAptCache)
    '-o', 'Dir::Cache::pkgcache=pkgcache.bin',
  ];
  const lists = fs.readdirSync(path.join(dir, 'lists')).filter((n) => /_Packages/.test(n));
  const age = lists.length ? Date.now() - Math.min(...lists.map((n) => fs.statSync(path.join(dir, 'lists', n)).mtimeMs)) : Infinity;
  if (changed || !lists.length || (opts.refreshOlderThanMs !== undefined && age > opts.refreshOlderThanMs)) {
    opts.log?.(`reading ${suite}'s package list (private apt configuration in ${dir})`);
    const r = await run(findTool('apt-get'), [...args, 'update', '-qq']);
    // lists that fail to refresh but exist are still usable (offline)
    if (r.code !== 0 && !lists.length) throw new Error(`memfabric: 'apt-get update' of ${suite} (private configuration in ${dir}) failed (exit ${r.code}): ${r.stderr.trim()}`);
    if (r.code !== 0) opts.log?.(`warning: ${suite}'s package list could not be refreshed; using the one from ${new Date(Date.now() - age).toISOString()}`);
    else {
      const now = new Date();
      for (const n of fs.readdirSync(path.join(dir, 'lists')).filter((x) => /_Packages/.test(x))) fs.utimesSync(path.join(dir, 'lists', n), now, now);
    }
  }
  return args;
}

/** One `apt-get download` group: packages of one apt configuration, unpacked into one tree. */
export interface PackageGroup {
  /** 'system' (the host's apt sources) or the private suite. */
  suite: string;
  /** `pkg=version`, sorted. */
  list: string[];
  apt: AptArgs;
}

export interface ResolvedPackages {
  /** Everything, sorted; private suites' entries as `suite/pkg=version`. */
  list: string[];
  kernelPackage: string;
  kernelRelease: string;
  /** The suite the kernel comes from ('system' for bookworm's own). */
  kernelSuite: string;
  groups: PackageGroup[];
}

/**
 * The packages of the image of a kernel flavour, at the versions apt would
 * install now. Kept in `<cacheRoot>/apt/resolved-<flavour>.json` with the
 * stamp of apt's state (aptStamp: the system's lists, dpkg status and
 * configuration, and the private suites' lists): while it is unchanged, apt
 * is not asked again (boot asked it on every run: about 0.1 s of each boot).
 * `refreshOlderThanMs` (before downloading) always asks.
 */
export async function resolvePackages(kernel: GuestKernel = '6.1', opts: { cacheRoot?: string; refreshOlderThanMs?: number; log?: (l: string) => void } = {}): Promise<ResolvedPackages> {
  const cacheRoot = path.resolve(opts.cacheRoot ?? defaultCacheDir());
  const sys = systemApt(cacheRoot);
  const memoFile = path.join(cacheRoot, 'apt', `resolved-${kernel}.json`);
  const stamp = (): string | undefined => {
    if (!sys.state) return undefined;
    const own = [BACKPORTS_SUITE, TRIXIE_SUITE].flatMap((suite): Array<[string, number]> => [[path.join(cacheRoot, 'apt', suite, 'lists'), 1], [path.join(cacheRoot, 'apt', suite, 'sources.list'), 0]]);
    const what = JSON.stringify([RESOLVE_FORMAT, kernel, KERNEL_META, USER_PACKAGES, [...NDCTL_76_PACKAGES], TRIXIE_PACKAGES, sys.args]);
    return sha256(`${what}\n${aptStamp([[sys.state.lists, 1], [sys.state.status, 0], [sys.state.etc, 2], ...(kernel === '6.1' ? [] : own)])}`);
  };
  if (opts.refreshOlderThanMs === undefined) {
    const now = stamp();
    try {
      const kept = JSON.parse(fs.readFileSync(memoFile, 'utf8')) as { stamp: string; resolved: ResolvedPackages };
      if (now !== undefined && kept.stamp === now) return kept.resolved;
    } catch {
      // none kept (or unreadable): ask apt
    }
  }
  const resolved = await askApt(kernel, cacheRoot, sys.args, opts);
  const after = stamp();
  if (after !== undefined) keepFile(memoFile, JSON.stringify({ stamp: after, resolved }));
  return resolved;
}

/** Bumped when what resolvePackages answers changes shape (kept answers are then ignored). */
const RESOLVE_FORMAT = 1;

async function askApt(kernel: GuestKernel, cacheRoot: string, sysApt: AptArgs, opts: { refreshOlderThanMs?: number; log?: (l: string) => void }): Promise<ResolvedPackages> {
  const aptCache = findTool('apt-cache');
  const userPkgs = kernel === '6.1' ? USER_PACKAGES : USER_PACKAGES.filter((p) => !NDCTL_76_PACKAGES.has(p));
  const groups: PackageGroup[] = [];
  let kpkg: string;
  let kernelSuite = 'system';
  if (kernel === '6.1') {
    const vers = await candidateVersions(aptCache, [KERNEL_META, ...userPkgs], sysApt);
    const k = await kernelPackage(aptCache, vers.get(KERNEL_META)!, sysApt);
    kpkg = k.name;
    if (k.version) vers.set(kpkg, k.version);
    else for (const [n, v] of await candidateVersions(aptCache, [kpkg], sysApt)) vers.set(n, v);
    groups.push({ suite: 'system', apt: [], list: [kpkg, ...userPkgs].map((p) => `${p}=${vers.get(p)}`).sort() });
  } else {
    const sys = await candidateVersions(aptCache, userPkgs, sysApt);
    groups.push({ suite: 'system', apt: [], list: userPkgs.map((p) => `${p}=${sys.get(p)}`).sort() });
    const bpo = await privateApt(cacheRoot, BACKPORTS_SUITE, opts);
    const meta = await candidateVersions(aptCache, [KERNEL_META], bpo, BACKPORTS_SUITE);
    const k = await kernelPackage(aptCache, meta.get(KERNEL_META)!, bpo);
    kpkg = k.name;
    const kv = k.version ?? (await candidateVersions(aptCache, [kpkg], bpo, BACKPORTS_SUITE)).get(kpkg);
    groups.push({ suite: BACKPORTS_SUITE, apt: bpo, list: [`${kpkg}=${kv}`] });
    kernelSuite = BACKPORTS_SUITE;
    const tx = await privateApt(cacheRoot, TRIXIE_SUITE, opts);
    const tv = await candidateVersions(aptCache, TRIXIE_PACKAGES, tx, TRIXIE_SUITE);
    groups.push({ suite: TRIXIE_SUITE, apt: tx, list: TRIXIE_PACKAGES.map((p) => `${p}=${tv.get(p)}`).sort() });
  }
  const list = groups.flatMap((g) => g.list.map((e) => (g.suite === 'system' ? e : `${g.suite}/${e}`))).sort();
  return { list, kernelPackage: kpkg, kernelRelease: kpkg.replace(/^linux-image-/, ''), kernelSuite, groups };
}

/** Cache key for a package list and the guest-init files. */
export function imageKey(pkgList: string[], initFiles: Array<{ name: string; data: Buffer }>): string {
  const initHash = sha256(initFiles.map((f) => `${f.name}\0${sha256(f.data)}\n`).join(''));
  return sha256(`${[...pkgList].sort().join('\n')}\n--\ninit=${initHash}\nformat=${BUILDER_FORMAT}\n`).slice(0, 24);
}

// ---------------------------------------------------------------------------
// ELF reading (64-bit little endian only)

interface ElfSection { name: string; type: number; offset: number; size: number; link: number }
export interface ElfInfo { interp?: string; needed: string[]; sections: ElfSection[]; buf: Buffer }

/** An ELF64 (little endian) file's interpreter, DT_NEEDED libraries and sections; undefined if not ELF. */
export function readElf(file: string): ElfInfo | undefined {
  const buf = fs.readFileSync(file);
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) return undefined;
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error(`memfabric: ${file}: only ELF64 little-endian is supported`);
  const phoff = Number(buf.readBigUInt64LE(0x20));
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const phentsize = buf.readUInt16LE(0x36);
  const phnum = buf.readUInt16LE(0x38);
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  const shstrndx = buf.readUInt16LE(0x3e);
  const cstr = (off: number): string => {
    let end = off;
    while (end < buf.length && buf[end] !== 0) end++;
    return buf.toString('latin1', off, end);
  };
  let interp: string | undefined;
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (buf.readUInt32LE(p) === 3 /* PT_INTERP */) interp = cstr(Number(buf.readBigUInt64LE(p + 8)));
  }
  const raw: Array<Omit<ElfSection, 'name'> & { nameOff: number }> = [];
  for (let i = 0; i < shnum; i++) {
    const s = shoff + i * shentsize;
    raw.push({
      nameOff: buf.readUInt32LE(s),
      type: buf.readUInt32LE(s + 4),
      offset: Number(buf.readBigUInt64LE(s + 0x18)),
      size: Number(buf.readBigUInt64LE(s + 0x20)),
      link: buf.readUInt32LE(s + 0x28),
    });
  }
  const strOff = shstrndx < raw.length ? raw[shstrndx].offset : 0;
  const sections: ElfSection[] = raw.map((r) => ({ name: cstr(strOff + r.nameOff), type: r.type, offset: r.offset, size: r.size, link: r.link }));
  const needed: string[] = [];
  const dyn = sections.find((s) => s.type === 6 /* SHT_DYNAMIC */);
  if (dyn) {
    const strtab = sections[dyn.link];
    for (let off = dyn.offset; off + 16 <= dyn.offset + dyn.size; off += 16) {
      const tag = Number(buf.readBigInt64LE(off));
      if (tag === 0) break;
      if (tag === 1 /* DT_NEEDED */) needed.push(cstr(strtab.offset + Number(buf.readBigUInt64LE(off + 8))));
    }
  }
  return { interp, needed, sections, buf };
}

/** Kernel module file names: plain, or compressed as Debian's 6.12 ships them (.ko.xz). */
const MODULE_FILE = /\.ko(\.xz|\.zst|\.gz)?$/;

/** `depends=` of a kernel module, from its .modinfo section (through the host's modinfo when compressed). */
async function moduleDepends(file: string): Promise<string[]> {
  if (!file.endsWith('.ko')) {
    const out = await runOk(findTool('modinfo'), ['-F', 'depends', file]);
    return out.trim().split(',').filter(Boolean);
  }
  const elf = readElf(file);
  const mi = elf?.sections.find((s) => s.name === '.modinfo');
  if (!elf || !mi) return [];
  for (const kv of elf.buf.toString('latin1', mi.offset, mi.offset + mi.size).split('\0')) {
    if (kv.startsWith('depends=')) return kv.slice(8).split(',').filter(Boolean);
  }
  return [];
}

// ---------------------------------------------------------------------------
// file tree helpers

/** Resolve a path inside `root`, following symlinks (absolute targets are re-rooted). */
function resolveIn(root: string, rel: string): string | undefined {
  let cur = path.join(root, rel);
  for (let i = 0; i < 40; i++) {
    let st: fs.Stats;
    try { st = fs.lstatSync(cur); } catch { return undefined; }
    if (!st.isSymbolicLink()) return cur;
    const t = fs.readlinkSync(cur);
    cur = t.startsWith('/') ? path.join(root, t) : path.join(path.dirname(cur), t);
  }
  return undefined;
}

function copyFileTo(src: string, dst: string, mode?: number): void {
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(src, dst);
  fs.chmodSync(dst, mode ?? (fs.statSync(src).mode & 0o7777));
}

function symlinkTo(target: string, linkPath: string): void {
  fs.mkdirSync(path.dirname(linkPath), { recursive: true });
  try { fs.unlinkSync(linkPath); } catch { /* absent */ }
  fs.symlinkSync(target, linkPath);
}

function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const n of fs.readdirSync(path.join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${n}` : n;
    out.push(r);
    const st = fs.lstatSync(path.join(dir, r));
    if (st.isDirectory()) out.push(...walk(dir, r));
  }
  return out;
}

// ---------------------------------------------------------------------------
// cpio (newc)

export interface CpioExtra { name: string; mode: number; rdevMajor: number; rdevMinor: number }

/** Write a newc cpio archive of `root` (uid/gid 0, mtime 0, sorted) plus device nodes. */
export function cpioNewc(root: string, extras: CpioExtra[] = []): Buffer {
  const chunks: Buffer[] = [];
  let ino = 1;
  const pad4 = (n: number) => (4 - (n % 4)) % 4;
  const push = (b: Buffer) => { chunks.push(b); };
  const entry = (name: string, mode: number, data: Buffer, nlink: number, rdevMajor = 0, rdevMinor = 0) => {
    const nameBuf = Buffer.from(`${name}\0`, 'utf8');
    const fields = [ino++, mode, 0, 0, nlink, 0, data.length, 0, 0, rdevMajor, rdevMinor, nameBuf.length, 0];
    const hdr = `070701${fields.map((f) => (f >>> 0).toString(16).padStart(8, '0')).join('')}`;
    push(Buffer.from(hdr, 'ascii'));
    push(nameBuf);
    push(Buffer.alloc(pad4(110 + nameBuf.length)));
    push(data);
    push(Buffer.alloc(pad4(data.length)));
  };
  for (const rel of walk(root)) {
    const full = path.join(root, rel);
    const st = fs.lstatSync(full);
    if (st.isDirectory()) entry(rel, st.mode, Buffer.alloc(0), 2);
    else if (st.isSymbolicLink()) entry(rel, st.mode, Buffer.from(fs.readlinkSync(full), 'utf8'), 1);
    else if (st.isFile()) entry(rel, st.mode, fs.readFileSync(full), 1);
  }
  for (const e of extras) entry(e.name, e.mode, Buffer.alloc(0), 1, e.rdevMajor, e.rdevMinor);
  entry('TRAILER!!!', 0, Buffer.alloc(0), 1);
  return Buffer.concat(chunks);
}

// ---------------------------------------------------------------------------
// ELF closure

/**
 * Copy into `libDest` every shared library the ELF files `files` need, transitively,
 * found in `root`'s library directories, with the ELF interpreter itself.
 * Returns what was copied, the interpreter the programs name and what was not found.
 */
export function elfClosure(root: string, files: string[], libDest: string): { libs: string[]; interp?: string; missing: string[] } {
  const done = new Set<string>();
  const queue: string[] = [];
  let interp: string | undefined;
  for (const f of files) {
    const elf = readElf(f);
    if (elf?.interp) interp = elf.interp;
    queue.push(...(elf?.needed ?? []));
  }
  const findLib = (soname: string): string | undefined => {
    for (const d of LIB_DIRS) {
      const p = resolveIn(root, `${d}/${soname}`);
      if (p) return p;
    }
    return undefined;
  };
  const missing: string[] = [];
  if (interp) queue.push(path.basename(interp));
  while (queue.length) {
    const so = queue.shift()!;
    if (done.has(so)) continue;
    done.add(so);
    const src = findLib(so);
    if (!src) { missing.push(so); continue; }
    copyFileTo(src, path.join(libDest, so), 0o755);
    queue.push(...(readElf(src)?.needed ?? []));
  }
  return { libs: [...done].filter((l) => !missing.includes(l)).sort(), interp, missing };
}

/** The /usr/bin wrapper running a trixie program with trixie's loader and libraries. */
export function trixieWrapper(program: string, loader: string): string {
  const lib = path.dirname(loader);
  const bin = `${path.dirname(lib)}/bin/${program}`;
  return `#!/bin/sh\n# ${program} of Debian trixie (ndctl 81) with trixie's own libc: see memfabric's docs/guest-image.md\n` +
    `exec ${loader} --library-path ${lib} --argv0 ${program} ${bin} "$@"\n`;
}

// ---------------------------------------------------------------------------
// the build

/** The image cache: $MEMFABRIC_IMAGE_DIR, else ~/.cache/memfabric/images. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.MEMFABRIC_IMAGE_DIR?.trim() || path.join(os.homedir(), '.cache', 'memfabric', 'images');
}

interface Manifest {
  key: string;
  /** Absent in images built before there were two flavours (= '6.1'). */
  flavour?: GuestKernel;
  kernelRelease: string;
  packages: string[];
  initFiles: Record<string, string>;
  kernel: string;
  initrd: string;
  initrdBytes: number;
  kernelBytes: number;
  builtAt: string;
  format: number;
}

function cachedImage(dir: string): GuestImage | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
    const kernel = path.join(dir, m.kernel);
    const initrd = path.join(dir, m.initrd);
    if (fs.statSync(kernel).size !== m.kernelBytes || fs.statSync(initrd).size !== m.initrdBytes) return undefined;
    return { kernel, initrd, version: m.kernelRelease, dir, key: m.key, packages: m.packages, flavour: m.flavour ?? '6.1' };
  } catch {
    return undefined;
  }
}

export async function buildImage(opts: BuildImageOptions = {}): Promise<GuestImage> {
  const log = opts.log ?? (() => undefined);
  const cacheRoot = path.resolve(opts.cacheDir ?? defaultCacheDir());
  const tools = {
    aptGet: findTool('apt-get'),
    aptCache: findTool('apt-cache'),
    dpkgDeb: findTool('dpkg-deb'),
  };
  // the cache must be a writable directory before anything is written into it (the private apt lists too)
  const usableCache = (): void => {
    try {
      fs.mkdirSync(cacheRoot, { recursive: true });
      if (!fs.statSync(cacheRoot).isDirectory()) throw new Error('not a directory');
      fs.accessSync(cacheRoot, fs.constants.W_OK);
    } catch (e) {
      const why = (e as NodeJS.ErrnoException).code === 'EEXIST' ? 'a file that is not a directory is in the way' : (e as Error).message;
      throw new Error(`memfabric: cannot use ${cacheRoot} as the image cache${process.env.MEMFABRIC_IMAGE_DIR?.trim() && !opts.cacheDir ? ' (MEMFABRIC_IMAGE_DIR)' : ''}: ${why}`);
    }
  };
  const flavour: GuestKernel = opts.kernel ?? '6.1';
  if (!GUEST_KERNELS.includes(flavour)) throw new Error(`memfabric: no guest kernel '${flavour}' (${GUEST_KERNELS.join(' or ')})`);
  const initDir = guestInitDir();
  const initFiles = guestInitFiles(initDir);
  if (flavour !== '6.1') usableCache();
  let resolved = await resolvePackages(flavour, { cacheRoot, log });
  let key = imageKey(resolved.list, initFiles);
  let dir = path.join(cacheRoot, key);
  let hit = cachedImage(dir);
  if (!hit && resolved.groups.some((g) => g.suite !== 'system')) {
    // about to download: the private suites' lists must name what the mirror still has
    resolved = await resolvePackages(flavour, { cacheRoot, log, refreshOlderThanMs: 3600_000 });
    key = imageKey(resolved.list, initFiles);
    dir = path.join(cacheRoot, key);
    hit = cachedImage(dir);
  }
  if (hit) {
    log(`image ${key}: cached in ${dir}`);
    return { ...hit, cached: true };
  }
  const depmod = findTool('depmod');
  usableCache();
  log(`image ${key}: building from ${resolved.list.length} packages`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'memfabric-image-'));
  try {
    // 1. download
    const t0 = Date.now();
    const sysroot = path.join(work, 'sysroot');
    const kroot = path.join(work, 'kernel');
    const troot = path.join(work, 'trixie');
    let nfiles = 0;
    for (const g of resolved.groups) {
      const debs = path.join(work, 'debs', g.suite);
      fs.mkdirSync(debs, { recursive: true });
      const dl = await run(tools.aptGet, [...g.apt, 'download', ...g.list], { cwd: debs });
      if (dl.code !== 0) {
        throw new Error(`memfabric: 'apt-get download' ${g.suite === 'system' ? '' : `(${g.suite}) `}failed (exit ${dl.code}): ${dl.stderr.trim()}`);
      }
      // 2. unpack: kernel separately, trixie's programs separately, userland into one tree
      for (const f of fs.readdirSync(debs).filter((x) => x.endsWith('.deb')).sort()) {
        const pkg = f.split('_')[0];
        const dest = pkg === resolved.kernelPackage ? kroot : g.suite === TRIXIE_SUITE ? troot : sysroot;
        fs.mkdirSync(dest, { recursive: true });
        await runOk(tools.dpkgDeb, ['-x', path.join(debs, f), dest]);
        nfiles++;
      }
    }
    log(`downloaded and unpacked ${nfiles} packages in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const kver = resolved.kernelRelease;
    const kmodRoot = path.join(kroot, 'lib', 'modules', kver);
    const vmlinuz = path.join(kroot, 'boot', `vmlinuz-${kver}`);
    if (!fs.existsSync(vmlinuz) || !fs.existsSync(kmodRoot)) {
      throw new Error(`memfabric: ${resolved.kernelPackage} did not contain boot/vmlinuz-${kver} and lib/modules/${kver}`);
    }

    // 3. staging tree
    const stage = path.join(work, 'initramfs');
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'lib/x86_64-linux-gnu', 'lib64', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run', 'root', 'mnt', 'var/log', 'usr/share/misc']) {
      fs.mkdirSync(path.join(stage, d), { recursive: true });
    }
    fs.chmodSync(path.join(stage, 'tmp'), 0o1777);
    const bb = resolveIn(sysroot, 'bin/busybox');
    if (!bb) throw new Error('memfabric: busybox-static did not contain bin/busybox');
    copyFileTo(bb, path.join(stage, 'bin/busybox'), 0o755);
    symlinkTo('busybox', path.join(stage, 'bin/sh'));
    for (const f of initFiles) {
      const mode = 0o755;
      if (f.name === 'init') {
        fs.writeFileSync(path.join(stage, 'init'), f.data, { mode });
      } else {
        fs.writeFileSync(path.join(stage, 'bin', f.name), f.data, { mode });
      }
    }
    const pciIds = resolveIn(sysroot, 'usr/share/misc/pci.ids');
    if (pciIds) copyFileTo(pciIds, path.join(stage, 'usr/share/misc/pci.ids'), 0o644);
    else log('warning: pci.ids not found; lspci will print numbers only');
    fs.writeFileSync(path.join(stage, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    fs.writeFileSync(path.join(stage, 'etc/group'), 'root:x:0:\n');
    fs.writeFileSync(path.join(stage, 'etc/hostname'), 'memfabric\n');

    // programs + ELF closure of their libraries
    const programs = flavour === '6.1' ? PROGRAMS : PROGRAMS.filter(([f]) => !TRIXIE_PROGRAMS.includes(path.basename(f)));
    for (const [from, to] of programs) {
      const src = resolveIn(sysroot, from);
      if (!src) throw new Error(`memfabric: ${from} missing from the unpacked packages`);
      copyFileTo(src, path.join(stage, to), 0o755);
    }
    const main = elfClosure(sysroot, programs.map(([, to]) => path.join(stage, to)), path.join(stage, 'lib/x86_64-linux-gnu'));
    if (main.missing.length) {
      throw new Error(`memfabric: shared libraries not found in the unpacked packages: ${main.missing.join(', ')} (add their packages to USER_PACKAGES in image.ts)`);
    }
    if (main.interp) {
      const base = path.basename(main.interp);
      const rel = main.interp.replace(/^\//, '');
      if (rel !== `lib/x86_64-linux-gnu/${base}`) symlinkTo(`/lib/x86_64-linux-gnu/${base}`, path.join(stage, rel));
    }
    for (const l of KMOD_LINKS) symlinkTo('/bin/kmod', path.join(stage, l));
    log(`programs: ${programs.map((p) => path.basename(p[1])).join(' ')}; ${main.libs.length} libraries`);

    if (flavour === '6.12') {
      // trixie's ndctl 81 with trixie's own libc and loader in /opt/trixie/lib, run by /usr/bin wrappers
      const tbin = path.join(stage, TRIXIE_DIR, 'bin');
      const tlib = path.join(stage, TRIXIE_DIR, 'lib');
      const bins: string[] = [];
      for (const p of TRIXIE_PROGRAMS) {
        const src = resolveIn(troot, `usr/bin/${p}`);
        if (!src) throw new Error(`memfabric: usr/bin/${p} missing from trixie's packages`);
        copyFileTo(src, path.join(tbin, p), 0o755);
        bins.push(path.join(tbin, p));
      }
      const tx = elfClosure(troot, bins, tlib);
      if (tx.missing.length) {
        throw new Error(`memfabric: shared libraries not found in trixie's packages: ${tx.missing.join(', ')} (add their packages to TRIXIE_PACKAGES in image.ts)`);
      }
      if (!tx.interp) throw new Error('memfabric: trixie\'s programs name no ELF interpreter');
      const loader = `/${TRIXIE_DIR}/lib/${path.basename(tx.interp)}`;
      for (const p of TRIXIE_PROGRAMS) {
        fs.writeFileSync(path.join(stage, 'usr/bin', p), trixieWrapper(p, loader), { mode: 0o755 });
      }
      log(`trixie programs: ${TRIXIE_PROGRAMS.join(' ')} (/usr/bin wrappers, loader ${loader}); ${tx.libs.length} libraries in /${TRIXIE_DIR}/lib`);
    }

    // kernel modules
    const index = new Map<string, string>(); // name -> rel path under kmodRoot
    for (const rel of walk(kmodRoot, 'kernel')) {
      if (MODULE_FILE.test(rel)) index.set(path.basename(rel).replace(MODULE_FILE, '').replace(/-/g, '_'), rel);
    }
    const wanted: string[] = [...MODULE_NAMES];
    for (const d of MODULE_DIRS) {
      for (const [name, rel] of index) if (rel.startsWith(`kernel/${d}/`)) wanted.push(name);
    }
    const mods = new Set<string>();
    while (wanted.length) {
      const m = wanted.shift()!.replace(/-/g, '_');
      if (mods.has(m)) continue;
      const rel = index.get(m);
      if (!rel) { log(`note: module ${m} not found as .ko (built in?)`); continue; }
      mods.add(m);
      wanted.push(...await moduleDepends(path.join(kmodRoot, rel)));
    }
    const stageMods = path.join(stage, 'lib/modules', kver);
    for (const m of [...mods].sort()) {
      const rel = index.get(m)!;
      copyFileTo(path.join(kmodRoot, rel), path.join(stageMods, rel), 0o644);
    }
    for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
      if (fs.existsSync(path.join(kmodRoot, f))) copyFileTo(path.join(kmodRoot, f), path.join(stageMods, f), 0o644);
    }
    await runOk(depmod, ['-b', stage, kver]);
    if (!fs.existsSync(path.join(stageMods, 'modules.dep'))) throw new Error('memfabric: depmod did not write modules.dep');
    log(`modules: ${mods.size} (${[...mods].sort().join(' ')})`);

    // 4. initramfs
    const cpio = cpioNewc(stage, [
      { name: 'dev/console', mode: 0o020600, rdevMajor: 5, rdevMinor: 1 },
      { name: 'dev/null', mode: 0o020666, rdevMajor: 1, rdevMinor: 3 },
      { name: 'dev/ttyS0', mode: 0o020600, rdevMajor: 4, rdevMinor: 64 },
    ]);
    const gz = zlib.gzipSync(cpio, { level: 9 });

    // 5. publish atomically
    const tmpDir = fs.mkdtempSync(path.join(cacheRoot, `.tmp-${key}-`));
    copyFileTo(vmlinuz, path.join(tmpDir, 'vmlinuz'), 0o644);
    fs.writeFileSync(path.join(tmpDir, 'initrd.img'), gz, { mode: 0o644 });
    const manifest: Manifest = {
      key,
      flavour,
      kernelRelease: kver,
      packages: resolved.list,
      initFiles: Object.fromEntries(initFiles.map((f) => [f.name, sha256(f.data)])),
      kernel: 'vmlinuz',
      initrd: 'initrd.img',
      kernelBytes: fs.statSync(vmlinuz).size,
      initrdBytes: gz.length,
      builtAt: new Date().toISOString(),
      format: BUILDER_FORMAT,
    };
    fs.writeFileSync(path.join(tmpDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    try {
      fs.renameSync(tmpDir, dir);
    } catch (e) {
      fs.rmSync(tmpDir, { recursive: true, force: true });
      const other = cachedImage(dir);
      if (!other) throw e;
      return other; // built concurrently by someone else
    }
    log(`image ${key} (Linux ${kver}): initrd ${(gz.length / 1048576).toFixed(1)} MiB (cpio ${(cpio.length / 1048576).toFixed(1)} MiB), kernel ${(manifest.kernelBytes / 1048576).toFixed(1)} MiB in ${dir}`);
    const img = cachedImage(dir);
    if (!img) throw new Error(`memfabric: image in ${dir} is unreadable after build`);
    return { ...img, cached: false };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// QEMU arguments

export interface GuestArgvOptions {
  /** Unix socket path for the command agent (QEMU listens on it). */
  agentSocket: string;
  /** Extra kernel command line words appended after the defaults. */
  append?: string;
  /**
   * Root bus for the agent's virtio-serial device: pcie.0 on q35, pci.0 on pc.
   * Named explicitly because after a pxb/pxb-cxl QEMU would otherwise put the
   * device on the expander's bus, which takes only bridges.
   */
  rootBus?: string;
}

/** Name of the virtio-serial port the guest agent listens on: QEMU's guest agent's own (qemu-ga, virt-manager and libvirt look for it). */
export const AGENT_PORT_NAME = 'org.qemu.guest_agent.0';

/**
 * The kernel command line memfabric boots a guest kernel with, then the
 * topology's <guest append>: the serial console, reboot on panic (QEMU then
 * exits), quiet, and no_timer_check: the IO-APIC timer check counts timer
 * interrupts against a busy loop, and TCG guests on a loaded host miss it
 * ("IO-APIC + timer doesn't work!  Boot with apic=debug …", a panic): 2 of 40
 * nodes booted at once on 2 cores did (scripts/bench-boot.mjs).
 */
export function guestCmdline(append?: string): string {
  return ['console=ttyS0', 'panic=-1', 'quiet', 'no_timer_check', append ?? ''].filter(Boolean).join(' ');
}

/**
 * QEMU arguments booting the image with the command agent attached.
 * Not included: machine, memory, accelerator, `-serial`, `-display`/`-nographic`.
 */
export function guestArgv(image: Pick<GuestImage, 'kernel' | 'initrd'>, opts: GuestArgvOptions): string[] {
  const append = guestCmdline(opts.append);
  return [
    '-kernel', image.kernel,
    '-initrd', image.initrd,
    '-append', append,
    ...agentArgv(opts.agentSocket, opts.rootBus),
  ];
}

/** The agent's virtio-serial device and port alone (part of guestArgv). */
export function agentArgv(agentSocket: string, rootBus?: string): string[] {
  if (/,/.test(agentSocket)) throw new Error(`memfabric: agent socket path must not contain ',': ${agentSocket}`);
  return [
    '-device', `virtio-serial-pci,id=mfserial${rootBus ? `,bus=${rootBus}` : ''}`,
    '-chardev', `socket,path=${agentSocket},server=on,wait=off,id=mfagent`,
    '-device', `virtserialport,bus=mfserial.0,chardev=mfagent,name=${AGENT_PORT_NAME}`,
  ];
}
