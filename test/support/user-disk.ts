/**
 * A "user's own image" for the tests of issue 15: a raw ext4 disk that runs
 * Debian's qemu-guest-agent, plus a Debian kernel and a tiny initrd that mounts
 * the disk and switch_roots into it.
 *
 * Built from Debian packages without root tricks: `apt-get download` +
 * `dpkg-deb -x` (or `dpkg-deb --fsys-tarfile | tar -x` for the kernel) into a
 * temporary directory, the ELF closure of /usr/sbin/qemu-ga is copied into a
 * staging tree, the disk is made with `mke2fs -d TREE` (no loop mount, no
 * chroot, no debootstrap) and the initrd (newc cpio, gzip) is written here.
 *
 * Nothing from memfabric's own guest (server/src/runtime/guest-init, its agent)
 * goes into this image: it stands for a cloud image the user brings.
 *
 * Cached in `<cacheRoot>/<key>/` (default `~/.cache/memfabric/user-disk/`),
 * key = sha256 of the exact `package=version` list, this file's own (compiled)
 * source and USER_DISK_FORMAT. Every external program runs from an argv array.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { cpioNewc, parsePolicy, readElf, run, sha256 } from '../../server/src/runtime/image';

export interface UserDisk {
  /** Debian vmlinuz (bzImage) for `-kernel`. */
  kernel: string;
  /** gzip'd newc initrd for `-initrd` (busybox + the modules that mount the disk). */
  initrd: string;
  /** Raw ext4 image for `-drive format=raw`; copy it before booting (the guest writes to it). */
  disk: string;
  /** `uname -r` of the kernel, e.g. `6.1.0-57-amd64`. */
  kernelRelease: string;
  /** Cache directory and key. */
  dir: string;
  key: string;
  /** Exact `package=version` list the image was built from. */
  packages: string[];
  /** True when found in the cache (nothing downloaded or built). */
  cached: boolean;
  /** Sizes in bytes: disk apparent size and allocated bytes, initrd, kernel. */
  sizes: { disk: number; diskAllocated: number; initrd: number; kernel: number };
}

export interface BuildUserDiskOptions {
  /** Cache root; default `$MEMFABRIC_USER_DISK_DIR`, else `$XDG_CACHE_HOME|~/.cache` + `/memfabric/user-disk`. */
  cacheRoot?: string;
  log?: (line: string) => void;
}

/** Bump when the produced layout changes (the source hash catches most edits anyway). */
const USER_DISK_FORMAT = 1;

const KERNEL_META = 'linux-image-amd64';

/** qemu-guest-agent and the shared libraries of its ELF closure (checked below), plus busybox. */
const DISK_PACKAGES = [
  'busybox-static', 'qemu-guest-agent',
  'libc6', 'libglib2.0-0', 'libnuma1', 'libudev1', 'liburing2', 'libffi8', 'libmount1',
  'libblkid1', 'libpcre2-8-0', 'libselinux1', 'zlib1g',
];

/** Modules the initrd loads (with their dependencies and soft pre-dependencies). */
const INITRD_MODULES = ['virtio_pci', 'virtio_blk', 'ext4', 'virtio_console'];

/** Kernel module directories extracted from the kernel package (not all 400 MB of it). */
const MODULE_SUBDIRS = ['drivers/virtio', 'drivers/block', 'drivers/char', 'fs', 'lib', 'crypto', 'arch'];

const LIB_DIRS = ['lib/x86_64-linux-gnu', 'usr/lib/x86_64-linux-gnu', 'lib64', 'lib', 'usr/lib'];

const DISK_SIZE = '64M';

// ---------------------------------------------------------------------------
// helpers

async function runOk(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`user-disk: ${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** `dpkg-deb --fsys-tarfile DEB | tar -x -C DIR --wildcards PATTERNS…` without a shell. */
function extractDebMembers(deb: string, dir: string, patterns: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const dpkg = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '-C', dir, '--wildcards', ...patterns], { stdio: ['pipe', 'ignore', 'pipe'] });
    dpkg.stdout.pipe(tar.stdin);
    let err = '';
    dpkg.stderr.on('data', (b: Buffer) => { err += b; });
    tar.stderr.on('data', (b: Buffer) => { err += b; });
    let left = 2;
    let failed = false;
    const done = (what: string) => (code: number | null) => {
      if (code !== 0 && !failed) { failed = true; reject(new Error(`user-disk: ${what} on ${deb} failed (exit ${code}): ${err.trim()}`)); }
      if (--left === 0 && !failed) resolve();
    };
    dpkg.on('error', reject);
    tar.on('error', reject);
    dpkg.on('close', done('dpkg-deb --fsys-tarfile'));
    tar.on('close', done('tar -x'));
  });
}

function hasTool(name: string): boolean {
  return spawnSync(name, ['--help'], { stdio: 'ignore' }).error === undefined;
}

/** mke2fs comes with e2fsprogs; install it (as root) when missing. */
async function ensureMke2fs(log: (l: string) => void): Promise<void> {
  if (hasTool('mke2fs')) return;
  if (process.getuid?.() !== 0) throw new Error('user-disk: mke2fs (e2fsprogs) is missing; install it with: apt-get install -y --no-install-recommends e2fsprogs');
  log('user-disk: installing e2fsprogs for mke2fs');
  await runOk('apt-get', ['install', '-y', '--no-install-recommends', 'e2fsprogs']);
  if (!hasTool('mke2fs')) throw new Error('user-disk: mke2fs still missing after installing e2fsprogs');
}

/** Exact package=version list: the disk's packages and the kernel named by linux-image-amd64. */
export async function resolveUserDiskPackages(): Promise<{ packages: string[]; kernelPackage: string }> {
  const deps = await runOk('apt-cache', ['depends', KERNEL_META]);
  const km = /Depends:\s*(linux-image-[0-9]\S*)/.exec(deps);
  if (!km) throw new Error(`user-disk: 'apt-cache depends ${KERNEL_META}' names no linux-image-<version> package`);
  const kernelPackage = km[1];
  const names = [...DISK_PACKAGES, KERNEL_META, kernelPackage];
  const pol = new Map([...parsePolicy(await runOk('apt-cache', ['policy', ...names]))].filter(([, v]) => v !== '(none)'));
  const missing = names.filter((n) => !pol.has(n));
  if (missing.length) throw new Error(`user-disk: no candidate version for ${missing.join(', ')} (run apt-get update)`);
  return { packages: names.map((n) => `${n}=${pol.get(n)}`).sort(), kernelPackage };
}

export function userDiskKey(packages: string[]): string {
  let self = '';
  try { self = sha256(fs.readFileSync(__filename)); } catch { /* bundled: the format number still counts */ }
  return sha256(JSON.stringify({ format: USER_DISK_FORMAT, packages: [...packages].sort(), self })).slice(0, 24);
}

export function userDiskCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MEMFABRIC_USER_DISK_DIR) return env.MEMFABRIC_USER_DISK_DIR;
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'memfabric', 'user-disk');
}

// ---------------------------------------------------------------------------
// ELF (64-bit little endian): DT_NEEDED and PT_INTERP

export interface ElfDeps { needed: string[]; interp?: string }

/** An ELF file's interpreter and DT_NEEDED libraries (memfabric's own reader, runtime/image.ts). */
export function readElfDeps(file: string): ElfDeps | undefined {
  const e = readElf(file);
  return e && { needed: e.needed, interp: e.interp };
}

/** Find `name` in the library directories of an unpacked tree (following symlinks inside the tree). */
function findLib(tree: string, name: string): { rel: string; real: string } | undefined {
  for (const d of LIB_DIRS) {
    const p = path.join(tree, d, name);
    if (lexists(p)) return { rel: path.join(d, name), real: realInTree(tree, p) };
  }
  return undefined;
}

/** Resolve a path's symlinks treating `tree` as the root (absolute link targets stay in the tree). */
function realInTree(tree: string, p: string): string {
  for (let hops = 0; hops < 20; hops++) {
    const st = fs.lstatSync(p);
    if (!st.isSymbolicLink()) return p;
    const t = fs.readlinkSync(p);
    p = t.startsWith('/') ? path.join(tree, t) : path.join(path.dirname(p), t);
  }
  throw new Error(`user-disk: symlink loop at ${p}`);
}

function lexists(p: string): boolean {
  try { fs.lstatSync(p); return true; } catch { return false; }
}

function copyInto(stage: string, rel: string, src: string, mode?: number): void {
  const dst = path.join(stage, rel);
  fs.mkdirSync(path.dirname(dst), { recursive: true });
  fs.copyFileSync(src, dst);
  fs.chmodSync(dst, mode ?? (fs.statSync(src).mode & 0o7777));
}

/**
 * Copy `programs` and the transitive closure of their DT_NEEDED libraries (and the
 * ELF interpreter) from `tree` to `stage`. Throws when a needed library is absent.
 */
export function copyElfClosure(tree: string, stage: string, programs: string[]): string[] {
  const queue = programs.map((rel) => ({ rel, real: realInTree(tree, path.join(tree, rel)), from: '(program)' }));
  const done = new Set<string>();
  const copied: string[] = [];
  while (queue.length) {
    const { rel, real, from } = queue.shift()!;
    if (done.has(rel)) continue;
    done.add(rel);
    if (!fs.existsSync(real)) throw new Error(`user-disk: ${rel} (needed by ${from}) is not in the unpacked packages`);
    copyInto(stage, rel, real);
    copied.push(rel);
    const deps = readElfDeps(real);
    if (!deps) continue;
    if (deps.interp) {
      const base = path.basename(deps.interp);
      const lib = findLib(tree, base);
      if (!lib) throw new Error(`user-disk: ELF interpreter ${deps.interp} of ${rel} is not in the unpacked packages`);
      queue.push({ ...lib, from: rel });
      const ilink = path.join(stage, deps.interp.replace(/^\//, ''));
      if (path.relative(stage, ilink) !== lib.rel && !lexists(ilink)) {
        fs.mkdirSync(path.dirname(ilink), { recursive: true });
        fs.symlinkSync('/' + lib.rel, ilink);
      }
    }
    for (const n of deps.needed) {
      const lib = findLib(tree, n);
      if (!lib) throw new Error(`user-disk: ${n} (DT_NEEDED of ${rel}) is in none of the packages ${DISK_PACKAGES.join(', ')}`);
      queue.push({ ...lib, from: rel });
    }
  }
  return copied;
}

/** Verify the closure in the staged tree itself: every DT_NEEDED of every ELF file is present. */
export function checkElfClosure(stage: string): void {
  const walkFiles = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(d, e.name);
    return e.isDirectory() ? walkFiles(p) : e.isFile() ? [p] : [];
  });
  for (const f of walkFiles(stage)) {
    let deps: ElfDeps | undefined;
    try { deps = readElfDeps(f); } catch { deps = undefined; }
    if (!deps) continue;
    for (const n of deps.needed) {
      if (!findLib(stage, n)) throw new Error(`user-disk: staged ${path.relative(stage, f)} needs ${n}, which is not on the disk`);
    }
    if (deps.interp && !fs.existsSync(realInTree(stage, path.join(stage, deps.interp)))) throw new Error(`user-disk: interpreter ${deps.interp} missing on the disk`);
  }
}

// ---------------------------------------------------------------------------
// kernel modules

/** `depends=` and `softdep=pre:` of a .ko, read from its .modinfo strings. */
export function moduleInfo(file: string): { depends: string[]; softPre: string[]; aliases: string[] } {
  const b = fs.readFileSync(file).toString('latin1');
  const field = (k: string) => [...b.matchAll(new RegExp(`\\0${k}=([^\\0]*)`, 'g'))].map((m) => m[1]);
  const depends = field('depends').flatMap((s) => s.split(',')).filter(Boolean);
  const softPre = field('softdep').flatMap((s) => {
    const m = /pre:\s*([^:]*?)(?:\s+post:.*)?$/.exec(s);
    return m ? m[1].split(/\s+/).filter(Boolean) : [];
  });
  return { depends, softPre, aliases: field('alias') };
}

const modName = (f: string) => path.basename(f).replace(/\.ko$/, '').replace(/-/g, '_');

/** Modules in load order (dependencies first) for `wanted`, resolved in `modRoot` (lib/modules/<ver>). */
export function resolveModules(modRoot: string, wanted: string[]): string[] {
  const byName = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) byName.set(modName(e.name), p);
    }
  };
  walk(path.join(modRoot, 'kernel'));
  let aliasIndex: Map<string, string[]> | undefined;
  const providers = (alias: string): string[] => {
    const n = alias.replace(/-/g, '_');
    if (byName.has(n)) return [n];
    if (!aliasIndex) {
      // soft dependencies name aliases such as crypto-crc32c; only crypto/ and arch/ provide those here
      aliasIndex = new Map();
      for (const [name, f] of byName) {
        if (!/\/kernel\/(crypto|arch)\//.test(f)) continue;
        for (const a of moduleInfo(f).aliases) aliasIndex.set(a, [...(aliasIndex.get(a) ?? []), name]);
      }
    }
    // one provider, the generic C implementation by preference: TCG's default CPU lacks SSE4.2 for crc32c-intel
    const all = [...(aliasIndex.get(alias) ?? [])].sort((a, b) => Number(b.includes('generic')) - Number(a.includes('generic')) || a.localeCompare(b));
    return all.slice(0, 1);
  };
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, from: string) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new Error(`user-disk: module dependency cycle at ${name}`);
    const f = byName.get(name);
    if (!f) throw new Error(`user-disk: module ${name} (needed by ${from}) is not in ${modRoot}`);
    state.set(name, 'visiting');
    const info = moduleInfo(f);
    for (const s of info.softPre) {
      const p = providers(s);
      if (!p.length) throw new Error(`user-disk: no module provides ${s} (soft dependency of ${name})`);
      for (const q of p) visit(q, name);
    }
    for (const d of info.depends) visit(d.replace(/-/g, '_'), name);
    state.set(name, 'done');
    order.push(f);
  };
  for (const w of wanted) visit(w, '(initrd)');
  return order;
}

// ---------------------------------------------------------------------------
// cpio (newc)

function initrdInit(modules: string[]): string {
  return `#!/bin/sh
# user-disk initrd: load the modules that reach the disk, mount it, switch_root.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
fail() { echo "user-disk-initrd: FAILED: $*"; poweroff -f; }
echo "user-disk-initrd: loading modules"
${modules.map((m) => `insmod /lib/modules/${m} || echo "user-disk-initrd: insmod ${m} failed"`).join('\n')}
root=/dev/vda
for a in $(cat /proc/cmdline); do case "$a" in root=/dev/*) root="\${a#root=}";; esac; done
i=0
while [ ! -b "$root" ]; do
  i=$((i+1)); [ $i -gt 100 ] && fail "no block device $root"
  usleep 100000
done
mkdir -p /newroot
mount -t ext4 -o rw "$root" /newroot || fail "mount $root"
[ -x /newroot/sbin/init ] || fail "no /sbin/init on $root"
echo "user-disk-initrd: switch_root to $root"
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
`;
}

const DISK_INIT = `#!/bin/sh
# The user's own image: start Debian's qemu-guest-agent on its virtio-serial port.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
hostname user-disk
echo "user-disk: $(uname -r) up"
# what udev would do: /dev/virtio-ports/<name> -> /dev/vportNpM
mkdir -p /dev/virtio-ports
i=0
while [ ! -e /dev/virtio-ports/org.qemu.guest_agent.0 ] && [ $i -lt 100 ]; do
  for p in /sys/class/virtio-ports/*; do
    [ -r "$p/name" ] || continue
    n=$(cat "$p/name")
    [ -n "$n" ] && ln -sf "../$(basename "$p")" "/dev/virtio-ports/$n"
  done
  i=$((i+1)); usleep 100000
done
ls -l /dev/virtio-ports
mkdir -p /run/qemu-ga
echo "user-disk: starting qemu-ga"
while :; do
  /usr/sbin/qemu-ga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -t /run/qemu-ga -f /run/qemu-ga.pid
  echo "user-disk: qemu-ga exited with $?, restarting"
  sleep 1
done
`;

// ---------------------------------------------------------------------------

function cached(dir: string, key: string, packages: string[]): UserDisk | undefined {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    const r: UserDisk = {
      kernel: path.join(dir, 'vmlinuz'), initrd: path.join(dir, 'initrd.img'), disk: path.join(dir, 'disk.img'),
      kernelRelease: m.kernelRelease, dir, key, packages, cached: true, sizes: m.sizes,
    };
    for (const f of [r.kernel, r.initrd, r.disk]) if (!fs.statSync(f).isFile()) return undefined;
    return r;
  } catch {
    return undefined;
  }
}

/** Remove temporary build directories left by a builder that was killed (its pid is gone). */
function removeDeadBuilds(root: string): void {
  for (const name of fs.readdirSync(root)) {
    const m = /^\.(?:build|pub)-[0-9a-f]+-(\d+)-/.exec(name);
    if (!m) continue;
    let alive = true;
    try { process.kill(Number(m[1]), 0); } catch (e) { alive = (e as NodeJS.ErrnoException).code === 'EPERM'; }
    if (!alive) fs.rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

/** Build (or find in the cache) the user's disk image, its kernel and initrd. */
export async function buildUserDisk(opts: BuildUserDiskOptions = {}): Promise<UserDisk> {
  const log = opts.log ?? (() => {});
  const root = opts.cacheRoot ?? userDiskCacheRoot();
  const { packages, kernelPackage } = await resolveUserDiskPackages();
  const key = userDiskKey(packages);
  const dir = path.join(root, key);
  const hit = cached(dir, key, packages);
  if (hit) return hit;

  await ensureMke2fs(log);
  fs.mkdirSync(root, { recursive: true });
  removeDeadBuilds(root);
  const tmp = fs.mkdtempSync(path.join(root, `.build-${key}-${process.pid}-`));
  try {
    const debs = path.join(tmp, 'debs');
    const tree = path.join(tmp, 'tree');
    const ktree = path.join(tmp, 'kernel');
    const stage = path.join(tmp, 'disk');
    const irdStage = path.join(tmp, 'initrd');
    for (const d of [debs, tree, ktree, stage, irdStage]) fs.mkdirSync(d, { recursive: true });
    fs.chmodSync(debs, 0o777); // lets apt's _apt user write there (otherwise apt warns and downloads as root)

    const want = packages.filter((p) => !p.startsWith(`${KERNEL_META}=`));
    log(`user-disk: apt-get download ${want.length} packages`);
    await runOk('apt-get', ['download', ...want], { cwd: debs });
    const files = fs.readdirSync(debs).filter((f) => f.endsWith('.deb'));
    const kdeb = files.find((f) => f.startsWith(`${kernelPackage}_`));
    if (!kdeb) throw new Error(`user-disk: ${kernelPackage} was not downloaded`);
    for (const f of files) if (f !== kdeb) await runOk('dpkg-deb', ['-x', path.join(debs, f), tree]);
    // only the module directories the initrd's modules and their dependencies live in (a missing one is reported by name)
    await extractDebMembers(path.join(debs, kdeb), ktree, ['./boot/vmlinuz-*', ...MODULE_SUBDIRS.map((d) => `./lib/modules/*/kernel/${d}/*`)]);

    const kernelRelease = kernelPackage.replace(/^linux-image-/, '');
    const vmlinuz = path.join(ktree, 'boot', `vmlinuz-${kernelRelease}`);
    if (!fs.existsSync(vmlinuz)) throw new Error(`user-disk: ${kernelPackage} has no boot/vmlinuz-${kernelRelease}`);

    // --- disk tree
    const busybox = path.join(tree, 'bin', 'busybox');
    copyInto(stage, 'bin/busybox', busybox, 0o755);
    const applets = (await runOk(busybox, ['--list-full'])).split('\n').map((s) => s.trim()).filter(Boolean);
    const linkApplets = (into: string) => {
      for (const a of applets) {
        const p = path.join(into, a);
        if (lexists(p)) continue;
        fs.mkdirSync(path.dirname(p), { recursive: true });
        fs.symlinkSync('/bin/busybox', p);
      }
    };
    linkApplets(stage);
    // init is our script, not busybox's init applet
    fs.rmSync(path.join(stage, 'sbin', 'init'), { force: true });
    copyElfClosure(tree, stage, ['usr/sbin/qemu-ga']);
    checkElfClosure(stage);
    for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'root', 'etc', 'var', 'mnt']) fs.mkdirSync(path.join(stage, d), { recursive: true });
    fs.chmodSync(path.join(stage, 'tmp'), 0o1777);
    fs.symlinkSync('/run', path.join(stage, 'var', 'run'));
    fs.writeFileSync(path.join(stage, 'sbin', 'init'), DISK_INIT, { mode: 0o755 });
    fs.writeFileSync(path.join(stage, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    fs.writeFileSync(path.join(stage, 'etc', 'group'), 'root:x:0:\n');
    fs.writeFileSync(path.join(stage, 'etc', 'hostname'), 'user-disk\n');
    fs.writeFileSync(path.join(stage, 'etc', 'os-release'), 'NAME="Debian GNU/Linux (user disk built from packages)"\nID=debian\nVERSION_ID="12"\n');
    const diskTmp = path.join(tmp, 'disk.img');
    await runOk('mke2fs', ['-q', '-F', '-t', 'ext4', '-L', 'userdisk', '-E', 'root_owner=0:0', '-d', stage, diskTmp, DISK_SIZE]);

    // --- initrd
    const modRoot = path.join(ktree, 'lib', 'modules', kernelRelease);
    const mods = resolveModules(modRoot, INITRD_MODULES);
    fs.mkdirSync(path.join(irdStage, 'lib', 'modules'), { recursive: true });
    for (const m of mods) copyInto(irdStage, path.join('lib', 'modules', path.basename(m)), m, 0o644);
    copyInto(irdStage, 'bin/busybox', busybox, 0o755);
    linkApplets(irdStage);
    for (const d of ['proc', 'sys', 'dev', 'newroot']) fs.mkdirSync(path.join(irdStage, d), { recursive: true });
    fs.writeFileSync(path.join(irdStage, 'init'), initrdInit(mods.map((m) => path.basename(m))), { mode: 0o755 });
    const cpio = cpioNewc(irdStage, [
      { name: 'dev/console', mode: 0o020600, rdevMajor: 5, rdevMinor: 1 },
      { name: 'dev/null', mode: 0o020666, rdevMajor: 1, rdevMinor: 3 },
    ]);
    const initrdTmp = path.join(tmp, 'initrd.img');
    fs.writeFileSync(initrdTmp, zlib.gzipSync(cpio, { level: 9 }));
    fs.copyFileSync(vmlinuz, path.join(tmp, 'vmlinuz'));

    const st = fs.statSync(diskTmp);
    const sizes = {
      disk: st.size, diskAllocated: st.blocks * 512,
      initrd: fs.statSync(initrdTmp).size, kernel: fs.statSync(vmlinuz).size,
    };
    const manifest = { key, format: USER_DISK_FORMAT, packages, kernelRelease, initrdModules: mods.map((m) => path.relative(modRoot, m)), sizes };
    fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');

    // publish: only the three artefacts and the manifest, renamed into place in one step
    const pub = fs.mkdtempSync(path.join(root, `.pub-${key}-${process.pid}-`));
    for (const f of ['vmlinuz', 'initrd.img', 'disk.img', 'manifest.json']) fs.renameSync(path.join(tmp, f), path.join(pub, f));
    try {
      fs.renameSync(pub, dir);
    } catch (e) {
      fs.rmSync(pub, { recursive: true, force: true });
      const other = cached(dir, key, packages); // a concurrent build won the race
      if (!other) throw e;
    }
    log(`user-disk ${key}: disk ${(sizes.disk / 1048576).toFixed(0)} MiB (${(sizes.diskAllocated / 1048576).toFixed(1)} MiB used), initrd ${(sizes.initrd / 1024).toFixed(0)} KiB, kernel ${(sizes.kernel / 1048576).toFixed(1)} MiB`);
    return { ...cached(dir, key, packages)!, cached: false };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
