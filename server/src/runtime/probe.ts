/**
 * The probe: the user's own QEMU as the oracle. It runs the real QEMU for one
 * node's configuration, with its firmware (SeaBIOS) and without any guest,
 * and returns what QEMU and the firmware decided: the E820 table, every BAR
 * address, the PCI windows, QEMU's own memory regions (info mtree) and the
 * memory devices; or QEMU's refusal, with the option it names.
 *
 *  - It never touches user data: every host file the configuration names
 *    (memory-backend-file mem-path, -mem-path, -drive/-blockdev files,
 *    -hda.., -fsdev/-virtfs paths, filter-dump files) is replaced by a
 *    scratch stand-in of the same size and kind (sparse) in a private 0700
 *    directory that is removed afterwards; chardevs become null chardevs,
 *    host network backends hubports, audio backends none; the user's files
 *    are only stat()ed. A device (e.g. /dev/dax0.0) gets a sparse file of the
 *    size the backend names, and the result says which stand-ins could change
 *    the outcome (standIns[].caveat).
 *  - No process outlives it: QMP quit, else SIGTERM then SIGKILL of the
 *    process group, on success, refusal, timeout, abort and errors (and at
 *    process exit for anything still alive). Spawned with argv arrays.
 *  - Identical shapes are probed once: a key from the binary's identity
 *    (path, size, mtime), the accelerator and the normalized argv (no node
 *    names, no paths: only the kind and size of each stand-in), an in-memory
 *    cache that also joins probes in flight, and an on-disk JSON cache under
 *    $XDG_CACHE_HOME/memfabric/probe (else ~/.cache/memfabric/probe).
 *
 * The pure engine never imports this module.
 */
import { ChildProcess, spawn as nodeSpawn, SpawnOptions } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, closeSync, existsSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync,
  rmSync, statfsSync, statSync, Stats,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { NodeModel } from '../engine/model/model';
import { nodeArgv } from '../engine/emit/argv';
import { NodeLayout } from '../engine/layout/index';
import { firmwareTypeName } from '../engine/layout/e820';
import { bdf as pciBdf } from '../engine/layout/pci';
import { parseKeyvals } from '../engine/syntax/qemu-args';
import { MStr } from '../engine/text/source';
import { parseQemuRamSize, parseQemuSize } from '../engine/text/sizes';
import { accelerator, findExecutable, qemuBinary } from './launch';
import { agentArgv } from './image';
import { qmpExchange, QmpAnswer } from './qmp';
import { keepFile, memfabricCacheDir } from './keep-file';

/** Bumped when the result format or the probe's own options change (old cache entries are then ignored). */
export const PROBE_FORMAT = 1;

export const DEFAULT_TIMEOUT_MS = 30_000;

// ---------------------------------------------------------------- result types

export interface ProbeE820Entry {
  start: bigint;
  /** Inclusive. */
  end: bigint;
  /** The name /sys/firmware/memmap prints (as NodeLayout.e820): 'System RAM', 'Reserved', ... */
  type: string;
  /** The E820 type number. */
  code: number;
}

export interface ProbeBar {
  /** 0000:bb:dd.f, as NodeLayout's bars. */
  bdf: string;
  /** 0-5, 6 = the expansion ROM. */
  bar: number;
  start: bigint;
  /** As the firmware allocates it: SeaBIOS pads a memory BAR smaller than 4 KiB to 4 KiB. */
  size: bigint;
  kind: 'mem' | 'prefmem' | 'io';
}

/** An address range, end inclusive. */
export interface ProbeRange {
  start: bigint;
  end: bigint;
}

/** One memory region of QEMU's 'memory' address space (info mtree), depth 0 = children of 'system'. */
export interface ProbeRegion {
  depth: number;
  start: bigint;
  /** Inclusive. */
  end: bigint;
  priority: number;
  /** 'ram', 'rom', 'i/o', 'romd', 'nv-ram', ... as mtree prints it. */
  kind: string;
  name: string;
  alias?: { target: string; start: bigint; end: bigint };
  disabled?: boolean;
}

/** An entry of query-memory-devices (pc-dimm, nvdimm, virtio-mem, ...). */
export interface ProbeMemoryDevice {
  type: string;
  id?: string;
  memdev?: string;
  addr?: bigint;
  size?: bigint;
  slot?: number;
  node?: number;
}

export type StandInKind = 'file' | 'absent' | 'directory' | 'char-device' | 'block-device' | 'other';

/** What the probe put in place of a host file the configuration names. */
export interface StandIn {
  /** The option as the caller wrote it ('-object memory-backend-file,...'). */
  option: string;
  /** Index of the option's name in the caller's argv. */
  argIndex: number;
  /** The property or role ('mem-path', 'file', 'path', '-hda'...). */
  role: string;
  /** The user's path (resolved). */
  path: string;
  /** What the user's path is (what the stand-in imitates). */
  kind: StandInKind;
  /** Size of the stand-in, when it is a file. */
  size?: bigint;
  /** Set when the stand-in could make QEMU decide otherwise than with the real thing. */
  caveat?: string;
}

export interface ProbeOk {
  ok: true;
  /** QEMU's version (query-version), e.g. '10.0.2'. */
  qemuVersion: string;
  qemuPackage?: string;
  /** The firmware's version line, e.g. 'SeaBIOS (version 1.16.3-debian-1.16.3-2~bpo12+1)' → '1.16.3-debian-1.16.3-2~bpo12+1'. */
  firmware: string;
  /** The firmware's final E820 table. */
  e820: ProbeE820Entry[];
  /** The table QEMU gave the firmware (etc/e820), when the firmware printed it. */
  qemuE820: { start: bigint; end: bigint; type: string }[];
  /** Every BAR the firmware mapped, ROMs (bar 6) and I/O BARs included. */
  bars: ProbeBar[];
  windowIo?: ProbeRange;
  windows32: ProbeRange[];
  windows64: ProbeRange[];
  /** The CPU as SeaBIOS 1.16.3+ sees it (vendor signature, phys-bits). */
  cpu?: { vendor: string; physBits: number };
  /** QEMU's 64-bit PCI hole after the firmware (qom pci-hole64-start/end), end inclusive. */
  hole64?: ProbeRange;
  /** QEMU's 32-bit PCI hole (qom pci-hole-start/end), end inclusive. */
  hole32?: ProbeRange;
  /** The 'memory' address space (info mtree). */
  regions: ProbeRegion[];
  /** Shortcuts into regions: CXL fixed memory windows, host registers, device memory. */
  cxlWindows: ProbeRange[];
  cxlHostRegisters: ProbeRange[];
  deviceMemory?: ProbeRange;
  memoryDevices: ProbeMemoryDevice[];
  standIns: StandIn[];
  /** Wall time of the probe that produced it (not of a cache hit). */
  ms: number;
  /** Where a cached result came from. */
  cached?: 'memory' | 'disk';
  key: string;
}

export type ProbeFailureReason =
  /** QEMU refused the configuration (exit status ≠ 0 before the firmware's table). */
  | 'refused'
  /** The firmware stopped (e.g. 'PCI: out of 32bit address space'). */
  | 'firmware'
  /** QEMU died of a signal or exited 0 before the firmware's table. */
  | 'crashed'
  | 'timeout'
  | 'aborted'
  /** The binary is missing, not executable or not QEMU. */
  | 'binary'
  /** The configuration needs something the probe does not stand in for (host devices, other firmware...). */
  | 'unsupported'
  /** The probe itself failed (temporary directory, socket path...). */
  | 'internal';

export interface ProbeFailure {
  ok: false;
  reason: ProbeFailureReason;
  /** QEMU's own text (without the 'qemu-system-x86_64: -device ...: ' prefix) or the probe's explanation. */
  message: string;
  /** The option QEMU names ('-device cxl-type3,...'), as the caller wrote it. */
  option?: string;
  /** Index of that option's name in the caller's argv. */
  argIndex?: number;
  /** True when QEMU named no option and the probe inferred it (a backing-store size message). */
  optionInferred?: boolean;
  exitCode?: number | null;
  signal?: string | null;
  /** QEMU's stderr (module-loading noise left out), stand-in paths replaced by the user's. */
  stderr?: string;
  /** The firmware's last lines (timeout, firmware stop). */
  firmwareTail?: string[];
  qemuVersion?: string;
  standIns: StandIn[];
  ms: number;
  cached?: 'memory' | 'disk';
  key?: string;
}

export type ProbeResult = ProbeOk | ProbeFailure;

// ---------------------------------------------------------------- options

export type SpawnHook = (file: string, args: string[], options: SpawnOptions) => ChildProcess;

export interface ProbeOptions {
  /** The QEMU binary (default: $MEMFABRIC_QEMU, else the argv's own binary, looked up in PATH). */
  qemu?: string;
  /** Whole-probe budget from QEMU's start (default 30 s: a 64 TiB backend takes QEMU 10-25 s under TCG). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Default: accelerator() ($MEMFABRIC_ACCEL), unless the argv chooses one. */
  accel?: 'kvm' | 'tcg';
  /** Directory relative paths of the argv are resolved against, and QEMU's cwd (default process.cwd()). */
  cwd?: string;
  /** Where the private directories are made (default os.tmpdir()). */
  tmpDir?: string;
  /** Default: the process-wide defaultProbeCache(); false: no cache at all. */
  cache?: ProbeCache | false;
  /** Replaces child_process.spawn (tests count spawns with it). */
  spawn?: SpawnHook;
  /** Between SIGTERM and SIGKILL, and for QEMU to leave after quit (default 1000 ms). */
  graceMs?: number;
  /** Add memfabric's guest agent device as `memfabric boot` does (default false). Compare with computeLayout(node, { agent }). */
  agent?: boolean;
  /** With `agent`: also the topology's <guest disk> as boot attaches it (a virtio-blk-pci after the agent; NodeModel.bootDisk). */
  bootDisk?: boolean;
}

// ---------------------------------------------------------------- the plan: argv → template with stand-ins

const TOKEN = (i: number) => `\u0000S${i}\u0000`;
const TOKEN_RE = /\u0000S(\d+)\u0000/g;

interface StandInSpec extends StandIn {
  /** How the scratch is made: a sparse file, a directory, or a path left to QEMU (absent). */
  make: 'file' | 'dir' | 'absent' | 'absent-parent';
  /** The size the backend names (size=, or -m for -mem-path). */
  backendSize?: bigint;
}

export interface ProbePlan {
  /** The options after the binary, with stand-in tokens in place of paths. */
  template: string[];
  /** template index → index in the caller's argv (option name). */
  origin: number[];
  standIns: StandInSpec[];
  accelGiven: boolean;
  unsupported?: { message: string; argIndex: number };
}

const DROP_WITH_ARG = new Set([
  'name', 'uuid', 'serial', 'parallel', 'monitor', 'mon', 'qmp', 'qmp-pretty', 'debugcon', 'display', 'vnc', 'spice',
  'pidfile', 'D', 'd', 'runas', 'chroot', 'kernel', 'initrd', 'append', 'dtb', 'trace', 'gdb', 'loadvm', 'qtest',
  'qtest-log', 'writeconfig', 'plugin', 'overcommit', 'dfilter', 'k', 'usbdevice', 'echr', 'msg',
]);
const DROP_NO_ARG = new Set(['nographic', 'daemonize', 's', 'full-screen', 'mem-prealloc', 'sdl', 'curses']);
const WITHOUT_ARG = new Set([
  'S', 's', 'nographic', 'enable-kvm', 'no-reboot', 'no-shutdown', 'daemonize', 'snapshot', 'nodefaults', 'no-acpi',
  'no-hpet', 'full-screen', 'no-user-config', 'usb', 'only-migratable', 'preconfig', 'mem-prealloc', 'no-fd-bootchk',
  'sdl', 'curses', 'enable-sync-profile', 'async-teardown', 'xen-attach', 'xen-domid-restrict', 'semihosting', 'win2k-hack',
  'singlestep', 'portrait', 'old-param',
]);
const DISK_OPTIONS = new Set(['hda', 'hdb', 'hdc', 'hdd', 'cdrom', 'fda', 'fdb', 'sd', 'mtdblock']);
const HOST_DEVICES = new Set(['vfio-pci', 'vfio-pci-nohotplug', 'vfio-platform', 'vfio-ccw', 'vfio-ap', 'usb-host', 'pci-assign', 'vfio-user-pci']);
const IMAGE_FORMATS = new Set(['qcow2', 'qcow', 'vmdk', 'vdi', 'vpc', 'vhdx', 'qed', 'luks', 'parallels', 'dmg', 'cloop', 'bochs']);
const HUGETLBFS_MAGIC = 0x958458f6;

interface KV {
  key: string;
  value: string;
  implied: boolean;
  bare: boolean;
}

function keyvals(text: string, impliedKey?: string): KV[] {
  return parseKeyvals(MStr.source(text, 0), impliedKey).map((k) => ({ key: k.key, value: k.value.text, implied: k.implied, bare: k.bare }));
}

function joinKeyvals(kvs: KV[]): string {
  return kvs.map((k) => (k.implied ? esc(k.value) : k.bare ? k.key : `${k.key}=${esc(k.value)}`)).join(',');
}

const esc = (v: string) => v.replace(/,/g, ',,');

/** Normalize an option word: '--device' → 'device'. */
function optName(w: string): string | undefined {
  if (!w.startsWith('-') || w === '-' || w === '--') return undefined;
  return w.replace(/^--?/, '');
}

/**
 * Turn the caller's argv (binary first) into the probe's template: host files
 * replaced by stand-in tokens, outputs and guest dropped. Only stat()s files.
 */
export function planProbe(argv: string[], cwd: string = process.cwd()): ProbePlan {
  const template: string[] = [];
  const origin: number[] = [];
  const standIns: StandInSpec[] = [];
  let accelGiven = false;
  let unsupported: ProbePlan['unsupported'];
  const chardevs = new Map<string, { at: number; backend: string; path: string }>();
  const peers: { at: number; driver: string; chardev: string }[] = [];
  const ramSize = ramSizeOf(argv);
  const push = (i: number, ...words: string[]) => {
    for (const w of words) {
      template.push(w);
      origin.push(i);
    }
  };
  const optionText = (i: number) => (i + 1 < argv.length && !WITHOUT_ARG.has(optName(argv[i]) ?? '') ? `${argv[i]} ${argv[i + 1]}` : argv[i]);
  const stand = (i: number, role: string, path: string, backendSize: bigint | undefined, purpose: 'memory' | 'disk' | 'dir' | 'output'): string => {
    const full = isAbsolute(path) ? path : resolve(cwd, path);
    const spec = standInFor(full, backendSize, purpose);
    const n = standIns.length;
    standIns.push({ ...spec, option: optionText(i), argIndex: i, role, path: full, backendSize });
    return TOKEN(n);
  };
  const refuse = (i: number, message: string) => {
    if (!unsupported) unsupported = { message, argIndex: i };
  };

  for (let i = 1; i < argv.length; i++) {
    const name = optName(argv[i]);
    if (name === undefined) {
      // QEMU reads a bare word as -hda.
      push(i, stand(i, 'hda', argv[i], undefined, 'disk'));
      continue;
    }
    const hasArg = !WITHOUT_ARG.has(name);
    const value = hasArg ? argv[i + 1] : undefined;
    const at = i;
    if (hasArg) i++;
    if (value === undefined && hasArg) {
      push(at, argv[at]); // QEMU says it requires an argument
      continue;
    }
    if (DROP_NO_ARG.has(name) && !hasArg) continue;
    if (DROP_WITH_ARG.has(name)) continue;
    switch (name) {
      case 'accel':
        accelGiven = true;
        push(at, argv[at], value!);
        break;
      case 'enable-kvm':
        accelGiven = true;
        push(at, argv[at]);
        break;
      case 'machine':
      case 'M': {
        if (keyvals(value!, 'type').some((k) => k.key === 'accel')) accelGiven = true;
        push(at, argv[at], value!);
        break;
      }
      case 'object': {
        const qt = value!.trimStart().startsWith('{') ? safeJson(value!)?.['qom-type'] : keyvals(value!, 'qom-type')[0]?.value;
        if (qt === 'input-linux') refuse(at, 'the probe does not grab a host input device (-object input-linux)');
        push(at, argv[at], rewriteObject(value!, at, ramSize, stand));
        break;
      }
      case 'device': {
        const driver = value!.trimStart().startsWith('{') ? safeJson(value!)?.driver : keyvals(value!, 'driver')[0]?.value;
        if (typeof driver === 'string' && HOST_DEVICES.has(driver)) refuse(at, `the probe does not pass a host device through (-device ${driver}); it cannot stand in for it`);
        const cd = value!.trimStart().startsWith('{') ? safeJson(value!)?.chardev : keyvals(value!, 'driver').find((k) => k.key === 'chardev')?.value;
        if (typeof driver === 'string' && typeof cd === 'string' && (driver.startsWith('vhost-user') || driver === 'ivshmem-doorbell' || driver === 'ivshmem')) peers.push({ at, driver, chardev: cd });
        push(at, argv[at], value!);
        break;
      }
      case 'chardev': {
        const kv = keyvals(value!, 'backend');
        const id = kv.find((k) => k.key === 'id')?.value;
        if (id !== undefined) chardevs.set(id, { at, backend: kv[0]?.value ?? '', path: kv.find((k) => k.key === 'path')?.value ?? '' });
        push(at, argv[at], id !== undefined ? `null,id=${esc(id)}` : 'null');
        break;
      }
      case 'tpmdev': {
        if (keyvals(value!, 'type')[0]?.value === 'passthrough') refuse(at, 'the probe does not pass a host device through (-tpmdev passthrough); it cannot stand in for it');
        push(at, argv[at], value!);
        break;
      }
      case 'netdev': {
        const kv = keyvals(value!, 'type');
        const type = kv[0]?.value;
        const id = kv.find((k) => k.key === 'id')?.value;
        if (type === 'user' || type === 'hubport' || id === undefined) push(at, argv[at], value!);
        else push(at, argv[at], `hubport,id=${esc(id)},hubid=0`);
        break;
      }
      case 'nic': {
        const kv = keyvals(value!, 'type');
        if (kv.length && kv[0].implied && !['user', 'none'].includes(kv[0].value)) kv[0].value = 'user';
        push(at, argv[at], joinKeyvals(kv.filter((k) => !['ifname', 'script', 'downscript', 'fd', 'fds', 'vhostfd', 'vhostfds', 'br', 'helper', 'sock', 'path'].includes(k.key))));
        break;
      }
      case 'net': {
        const type = keyvals(value!, 'type')[0]?.value;
        if (type === 'nic' || type === 'user' || type === 'none') push(at, argv[at], value!);
        break;
      }
      case 'audiodev': {
        // (libvirt writes it as JSON: {"id":"audio1","driver":"none"}.)
        const json = value!.trimStart().startsWith('{') ? safeJson(value!) : undefined;
        const id = json ? (typeof json.id === 'string' ? json.id : undefined) : keyvals(value!, 'driver').find((k) => k.key === 'id')?.value;
        push(at, argv[at], id !== undefined ? `none,id=${esc(id)}` : 'none');
        break;
      }
      case 'drive': {
        const kv = keyvals(value!, 'file');
        if (kv.some((k) => k.key === 'if' && k.value === 'pflash')) refuse(at, 'the probe reads SeaBIOS; a -drive if=pflash (UEFI firmware) is not probed');
        const file = kv.find((k) => k.key === 'file');
        if (file && file.value !== '' && !/^[a-z+]+:/.test(file.value)) {
          file.value = stand(at, 'file', file.value, undefined, 'disk');
          const fmt = kv.find((k) => k.key === 'format');
          if (fmt) fmt.value = 'raw';
          else kv.push({ key: 'format', value: 'raw', implied: false, bare: false });
        }
        push(at, argv[at], joinKeyvals(kv));
        break;
      }
      case 'blockdev': {
        if (value!.trimStart().startsWith('{')) {
          const o = safeJson(value!);
          if (!o) push(at, argv[at], value!);
          else push(at, argv[at], JSON.stringify(rewriteBlockdevJson(o, at, stand)));
        } else {
          const kv = keyvals(value!);
          for (const k of kv) {
            if (k.key === 'filename' || k.key.endsWith('.filename')) k.value = stand(at, k.key, k.value, undefined, 'disk');
            else if ((k.key === 'driver' || k.key.endsWith('.driver')) && IMAGE_FORMATS.has(k.value)) k.value = 'raw';
          }
          push(at, argv[at], joinKeyvals(kv));
        }
        break;
      }
      case 'fsdev':
      case 'virtfs': {
        const kv = keyvals(value!, 'fsdriver');
        for (const k of kv) if (k.key === 'path' || k.key === 'socket') k.value = stand(at, k.key, k.value, undefined, k.key === 'path' ? 'dir' : 'output');
        push(at, argv[at], joinKeyvals(kv));
        break;
      }
      case 'mem-path':
        push(at, argv[at], stand(at, 'mem-path', value!, ramSize, 'memory'));
        break;
      case 'pflash':
        refuse(at, 'the probe reads SeaBIOS; -pflash (UEFI firmware) is not probed');
        break;
      case 'incoming':
        refuse(at, 'the probe cannot run a configuration that waits for an incoming migration (-incoming)');
        break;
      case 'readconfig':
        refuse(at, 'the probe cannot vouch for what a -readconfig file contains (host files it names would be used)');
        break;
      case 'add-fd':
        refuse(at, 'the probe cannot stand in for file descriptors passed with -add-fd');
        break;
      default:
        if (DISK_OPTIONS.has(name)) push(at, argv[at], stand(at, name, value!, undefined, 'disk'));
        else if (hasArg) push(at, argv[at], value!);
        else push(at, argv[at]);
    }
  }
  // devices that need the program at the other end of their chardev
  for (const p of peers) {
    const c = chardevs.get(p.chardev);
    standIns.push({
      option: optionText(c?.at ?? p.at), argIndex: c?.at ?? p.at, role: 'chardev', path: c?.path ?? '', kind: 'other', make: 'absent',
      caveat: `${p.driver} talks to the program behind chardev '${p.chardev}'${c?.path ? ` (${c.path})` : ''}; the probe gives it a null chardev, so QEMU may refuse the device or map it differently than with its peer`,
    });
  }
  return { template, origin, standIns, accelGiven, unsupported };
}

type StandFn = (i: number, role: string, path: string, backendSize: bigint | undefined, purpose: 'memory' | 'disk' | 'dir' | 'output') => string;

function rewriteObject(value: string, at: number, ramSize: bigint | undefined, stand: StandFn): string {
  if (value.trimStart().startsWith('{')) {
    const o = safeJson(value);
    if (!o) return value;
    if (o['qom-type'] === 'memory-backend-file' && typeof o['mem-path'] === 'string') {
      const size = typeof o.size === 'number' ? BigInt(o.size) : typeof o.size === 'string' ? sizeOr(o.size) : undefined;
      o['mem-path'] = stand(at, 'mem-path', o['mem-path'], size, 'memory');
      if (o.prealloc === true || o.prealloc === 'on') o.prealloc = false;
    } else if (o['qom-type'] === 'filter-dump' && typeof o.file === 'string') o.file = stand(at, 'file', o.file, undefined, 'output');
    return JSON.stringify(o);
  }
  const kv = keyvals(value, 'qom-type');
  const type = kv[0]?.value;
  if (type === 'memory-backend-file') {
    const mp = kv.find((k) => k.key === 'mem-path');
    const size = kv.filter((k) => k.key === 'size').pop();
    if (mp) mp.value = stand(at, 'mem-path', mp.value, size ? sizeOr(size.value) : undefined, 'memory');
    for (const k of kv) if (k.key === 'prealloc') { k.value = 'off'; k.bare = false; }
    return joinKeyvals(kv);
  }
  if (type?.startsWith('memory-backend-')) {
    for (const k of kv) if (k.key === 'prealloc') { k.value = 'off'; k.bare = false; }
    return joinKeyvals(kv);
  }
  if (type === 'filter-dump') {
    const f = kv.find((k) => k.key === 'file');
    if (f) f.value = stand(at, 'file', f.value, undefined, 'output');
    return joinKeyvals(kv);
  }
  return value;
}

function rewriteBlockdevJson(o: Record<string, unknown>, at: number, stand: StandFn): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    if (k === 'filename' && typeof v === 'string') out[k] = stand(at, 'filename', v, undefined, 'disk');
    else if (k === 'driver' && typeof v === 'string' && IMAGE_FORMATS.has(v)) out[k] = 'raw';
    else if (v && typeof v === 'object' && !Array.isArray(v)) out[k] = rewriteBlockdevJson(v as Record<string, unknown>, at, stand);
    else out[k] = v;
  }
  return out;
}

function safeJson(v: string): Record<string, unknown> | undefined {
  try {
    const o = JSON.parse(v);
    return o && typeof o === 'object' && !Array.isArray(o) ? o : undefined;
  } catch {
    return undefined;
  }
}

function sizeOr(text: string): bigint | undefined {
  const r = parseQemuSize(text);
  return r.ok ? r.value : undefined;
}

function ramSizeOf(argv: string[]): bigint | undefined {
  let size: bigint | undefined;
  for (let i = 1; i < argv.length - 1; i++) {
    if (optName(argv[i]) !== 'm') continue;
    const kv = keyvals(argv[i + 1], 'size');
    const s = kv.find((k) => k.key === 'size');
    if (s) {
      const r = parseQemuRamSize(s.value);
      if (r.ok) size = r.value;
    }
  }
  return size ?? 128n << 20n;
}

/** What stands in for a host path: only stat()/statfs(), never open(). */
function standInFor(path: string, backendSize: bigint | undefined, purpose: 'memory' | 'disk' | 'dir' | 'output'): Omit<StandInSpec, 'option' | 'argIndex' | 'role' | 'path' | 'backendSize'> {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const parentOk = (() => {
        try {
          return statSync(dirname(path)).isDirectory();
        } catch {
          return false;
        }
      })();
      if (purpose === 'dir') return { kind: 'absent', make: 'absent', caveat: undefined };
      return parentOk ? { kind: 'absent', make: 'absent' } : { kind: 'absent', make: 'absent-parent' };
    }
    // cannot even stat it: QEMU would most likely fail to open it too
    const size = purpose === 'memory' ? backendSize : undefined;
    return { kind: 'other', make: size !== undefined ? 'file' : 'absent', size, caveat: `the path cannot be examined (${code ?? (e as Error).message}); the stand-in is ${size !== undefined ? 'a sparse file of the size the backend names' : 'a missing file'}` };
  }
  const hugetlb = (() => {
    try {
      return statfsSync(st.isDirectory() ? path : dirname(path)).type === HUGETLBFS_MAGIC;
    } catch {
      return false;
    }
  })();
  const hugeNote = hugetlb ? 'the path is on hugetlbfs: the stand-in has 4 KiB pages, so page-size alignment checks and the hugepage pool are not tested' : undefined;
  if (st.isDirectory()) return { kind: 'directory', make: 'dir', caveat: hugeNote };
  if (st.isFile()) {
    const size = BigInt(st.size);
    return { kind: 'file', make: 'file', size, caveat: hugeNote };
  }
  const size = backendSize ?? 0n;
  if (st.isCharacterDevice()) {
    return {
      kind: 'char-device', make: 'file', size,
      caveat: `a character device (${/\/dax\d/.test(path) ? 'device DAX' : 'device'}): the stand-in is a sparse file of the size the backend names, so the device's own size, its alignment (device DAX needs align= of at least its own, often 2 MiB) and its permissions are not tested`,
    };
  }
  if (st.isBlockDevice()) return { kind: 'block-device', make: 'file', size, caveat: 'a block device: the stand-in is a sparse file of the size the backend names, so the device\'s own size and permissions are not tested' };
  return { kind: 'other', make: 'file', size, caveat: 'not a regular file, directory or device (a FIFO or socket?): the stand-in is a sparse file, QEMU may decide otherwise with the real thing' };
}

// ---------------------------------------------------------------- parsers

export interface FirmwareLog extends Pick<ProbeOk, 'qemuE820' | 'bars' | 'windowIo' | 'windows32' | 'windows64' | 'cpu'> {
  firmware?: string;
  e820?: ProbeE820Entry[];
  /** The log printed 'e820 map has N items:' and all N lines. */
  complete: boolean;
  /** The firmware stopped with this message. */
  stopped?: string;
}

const FIRMWARE_STOPS = [/^.*out of (?:32bit |64bit )?address space.*$/m, /^No space for init relocation.*$/m, /^.*[Pp]anic.*$/m];

/** SeaBIOS's debug console (isa-debugcon on port 0x402). */
export function parseFirmwareLog(text: string): FirmwareLog {
  const t = text.replace(/\r/g, '');
  const out: FirmwareLog = { complete: false, qemuE820: [], bars: [], windows32: [], windows64: [] };
  const v = /^SeaBIOS \(version ([^)\n]+)\)/m.exec(t);
  if (v) out.firmware = v[1];
  for (const m of t.matchAll(/^qemu\/e820: addr 0x([0-9a-f]+) len 0x([0-9a-f]+) \[(\w+)\]/gm)) {
    const start = BigInt('0x' + m[1]);
    out.qemuE820.push({ start, end: start + BigInt('0x' + m[2]) - 1n, type: m[3] });
  }
  const pb = /^physbits: signature="([^"]*)".*phys-bits=(\d+)/m.exec(t);
  if (pb) out.cpu = { vendor: pb[1], physBits: Number(pb[2]) };
  const io = /^PCI: IO: ([0-9a-f]+) - ([0-9a-f]+)/m.exec(t);
  if (io) out.windowIo = { start: BigInt('0x' + io[1]), end: BigInt('0x' + io[2]) };
  for (const m of t.matchAll(/^PCI: (32|64): ([0-9a-f]+) - ([0-9a-f]+)/gm)) {
    (m[1] === '32' ? out.windows32 : out.windows64).push({ start: BigInt('0x' + m[2]), end: BigInt('0x' + m[3]) - 1n });
  }
  for (const m of t.matchAll(/^PCI: map device bdf=(?:([0-9a-f]{4}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])\s+bar (\d+), addr ([0-9a-f]+), size ([0-9a-f]+) \[(\w+)\]/gm)) {
    out.bars.push({
      bdf: `${m[1] ?? '0000'}:${m[2]}:${m[3]}.${m[4]}`,
      bar: Number(m[5]),
      start: BigInt('0x' + m[6]),
      size: BigInt('0x' + m[7]),
      kind: m[8] === 'io' ? 'io' : m[8] === 'prefmem' ? 'prefmem' : 'mem',
    });
  }
  const head = /^e820 map has (\d+) items:\n/m.exec(t);
  if (head) {
    const n = Number(head[1]);
    const lines = t.slice(head.index + head[0].length).split('\n');
    const e820: ProbeE820Entry[] = [];
    for (let k = 0; k < n && k < lines.length - 1; k++) {
      const m = /^\s*\d+: ([0-9a-f]+) - ([0-9a-f]+) = (\d+)/.exec(lines[k]);
      if (!m) break;
      const code = Number(m[3]);
      e820.push({ start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]) - 1n, type: firmwareTypeName(BigInt(code)), code });
    }
    out.e820 = e820;
    out.complete = e820.length === n;
  }
  if (!out.complete) {
    for (const re of FIRMWARE_STOPS) {
      const m = re.exec(t);
      if (m) {
        out.stopped = m[0].trim();
        break;
      }
    }
  }
  return out;
}

/** The 'memory' address space of `info mtree` (its regions in print order, depth 0 = children of 'system'). */
export function parseMtree(text: string): ProbeRegion[] {
  const lines = text.replace(/\r/g, '').split('\n');
  const start = lines.findIndex((l) => /^address-space: memory\s*$/.test(l));
  if (start < 0) return [];
  const out: ProbeRegion[] = [];
  for (let k = start + 1; k < lines.length; k++) {
    const l = lines[k];
    if (!l.trim() || /^\S/.test(l)) break;
    const m = /^(\s*)([0-9a-f]+)-([0-9a-f]+) \(prio (-?\d+), ([^)]+)\): (.*)$/.exec(l);
    if (!m) continue;
    const depth = m[1].length / 2 - 2;
    if (depth < 0) continue; // 'system' itself
    let rest = m[6];
    let disabled = false;
    if (/ \[disabled\]$/.test(rest)) {
      disabled = true;
      rest = rest.replace(/ \[disabled\]$/, '');
    }
    const r: ProbeRegion = { depth, start: BigInt('0x' + m[2]), end: BigInt('0x' + m[3]), priority: Number(m[4]), kind: m[5], name: rest };
    const a = /^alias (.*) @(\S+) ([0-9a-f]+)-([0-9a-f]+)$/.exec(rest);
    if (a) {
      r.name = a[1];
      r.alias = { target: a[2], start: BigInt('0x' + a[3]), end: BigInt('0x' + a[4]) };
    }
    if (disabled) r.disabled = true;
    out.push(r);
  }
  return out;
}

export interface QemuError {
  /** QEMU's message without its 'binary: -option value: ' prefix. */
  message: string;
  /** The location QEMU gave ('-device cxl-type3,...'), as it printed it. */
  location?: string;
  /** Index of that option's name in argv, when it could be matched. */
  argIndex?: number;
}

const NOISE = [/failed to (?:initialize|open) module/, /^Only modules from the same build can be loaded/];

/** Lines of QEMU's stderr without the module-loading noise of a mixed installation. */
export function qemuStderrLines(stderr: string): string[] {
  return stderr.replace(/\r/g, '').split('\n').filter((l) => l.trim() && !NOISE.some((re) => re.test(l)));
}

/**
 * QEMU's "binary: -opt value: message" form. argv (binary first) is what
 * QEMU was given; the location is matched against its option pairs.
 */
export function parseQemuError(stderr: string, argv: string[]): QemuError | undefined {
  const lines = qemuStderrLines(stderr);
  const prog = /^([^\s:]*qemu[^\s:]*|[^\s:]+): /;
  const errors = lines.filter((l) => prog.test(l) && !/^[^\s:]+: warning: /.test(l) && !/terminating on signal/.test(l));
  const line = errors[0] ?? lines.find((l) => !/warning: /.test(l)) ?? lines[lines.length - 1];
  if (!line) return undefined;
  const pm = prog.exec(line);
  const body = pm ? line.slice(pm[0].length) : line;
  // the location: the longest "-opt value" of argv the body starts with, followed by ": "
  let best: { text: string; index: number } | undefined;
  for (let i = 1; i < argv.length; i++) {
    if (!argv[i].startsWith('-')) continue;
    for (const text of [i + 1 < argv.length ? `${argv[i]} ${argv[i + 1]}` : undefined, argv[i]]) {
      if (text && body.startsWith(text + ': ') && (!best || text.length > best.text.length)) best = { text, index: i };
    }
  }
  const follow = lines.slice(lines.indexOf(line) + 1).filter((l) => !prog.test(l));
  const more = follow.length ? '\n' + follow.join('\n') : '';
  if (best) return { message: body.slice(best.text.length + 2) + more, location: best.text, argIndex: best.index };
  // "-device foo: msg" with a location the argv does not spell the same way
  const loc = /^(-[\w-]+ [^:]*): (.*)$/.exec(body);
  if (loc) return { message: loc[2] + more, location: loc[1] };
  return { message: body + more };
}

// ---------------------------------------------------------------- the run

/** A probe result before it is given to a caller: stand-in tokens in texts, template indexes. */
interface RawResult {
  ok: boolean;
  data: Record<string, unknown>;
  /** Template index of the option QEMU names. */
  templateIndex?: number;
  /** The stand-in index inferred for a backing-store message. */
  inferredStandIn?: number;
}

const live = new Map<number, { proc: ChildProcess; dir: string }>();
let exitHook = false;

function ensureExitHook() {
  if (exitHook) return;
  exitHook = true;
  // A signal ends Node without 'exit' handlers: where nobody else handles it, exit properly so that the probe
  // QEMUs go too (the language server is ended with SIGTERM when the editor closes; they would run on forever).
  for (const [sig, n] of [['SIGTERM', 15], ['SIGINT', 2], ['SIGHUP', 1]] as const) {
    if (process.listenerCount(sig) === 0) process.once(sig, () => process.exit(128 + n));
  }
  process.on('exit', () => {
    for (const [pid, l] of live) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        try {
          l.proc.kill('SIGKILL');
        } catch { /* gone */ }
      }
      try {
        rmSync(l.dir, { recursive: true, force: true });
      } catch { /* best effort */ }
    }
  });
}

/** Process ids of probe QEMUs alive now (for tests and `memfabric` diagnostics). */
export function liveProbePids(): number[] {
  return [...live.keys()];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exitedP(proc: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (proc.exitCode !== null || proc.signalCode !== null) r();
    else proc.once('exit', () => r());
  });
}

/** SIGTERM to the process group, SIGKILL after graceMs; resolves once it is gone. */
async function terminate(proc: ChildProcess, graceMs: number, hard = false): Promise<void> {
  const gone = exitedP(proc);
  const sig = (s: NodeJS.Signals) => {
    if (proc.pid === undefined) return;
    try {
      process.kill(-proc.pid, s);
    } catch {
      try {
        proc.kill(s);
      } catch { /* gone */ }
    }
  };
  // once reaped, its pid (and group id) may belong to someone else: signal nothing
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  if (!hard) {
    sig('SIGTERM');
    if (await Promise.race([gone.then(() => true), sleep(graceMs).then(() => false)])) {
      sig('SIGKILL');
      return;
    }
  }
  sig('SIGKILL');
  await gone;
}

interface VersionInfo {
  ok: boolean;
  version?: string;
  message?: string;
}
const versionCache = new Map<string, VersionInfo>();

/** Runs `binary -version` once per binary identity: is it QEMU at all? */
async function checkBinary(bin: string, identity: string, spawn: SpawnHook, signal: AbortSignal | undefined, timeoutMs: number): Promise<VersionInfo> {
  const c = versionCache.get(identity);
  if (c) return c;
  const res = await new Promise<VersionInfo & { transient?: boolean }>((resolvePromise) => {
    let out = '';
    let proc: ChildProcess;
    try {
      proc = spawn(bin, ['-version'], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    } catch (e) {
      resolvePromise({ ok: false, message: `cannot run '${bin}': ${(e as Error).message}` });
      return;
    }
    const onAbort = () => void terminate(proc, 0, true);
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => void terminate(proc, 0, true), Math.min(timeoutMs, 10_000));
    proc.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    proc.once('error', (e) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolvePromise({ ok: false, message: `cannot run '${bin}': ${(e as Error).message}` });
    });
    proc.once('close', (code, sig) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      const m = /QEMU emulator version (\S+)/.exec(out);
      if (m && code === 0) resolvePromise({ ok: true, version: m[1] });
      else if (signal?.aborted) resolvePromise({ ok: false, transient: true, message: 'aborted' });
      else if (sig) resolvePromise({ ok: false, transient: true, message: `'${bin} -version' did not answer (${sig})` });
      else {
        const first = qemuStderrLines(out)[0];
        resolvePromise({ ok: false, message: `'${bin}' is not QEMU: '${bin} -version' ${code === 0 ? 'printed' : `exited with status ${code} and printed`} ${first ? `'${first.slice(0, 160)}'` : 'nothing'}, not 'QEMU emulator version …'` });
      }
    });
  });
  if (!res.transient) versionCache.set(identity, res);
  return res;
}

interface RunContext {
  plan: ProbePlan;
  bin: string;
  cwd: string;
  opts: ProbeOptions;
  spawn: SpawnHook;
  accel: 'kvm' | 'tcg';
}

/** Run QEMU once for a plan. Always removes its directory and leaves no process. */
async function runOnce(ctx: RunContext): Promise<RawResult> {
  const t0 = Date.now();
  const { plan, opts } = ctx;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const graceMs = opts.graceMs ?? 1000;
  const signal = opts.signal;
  const fail = (reason: ProbeFailureReason, message: string, extra: Record<string, unknown> = {}, templateIndex?: number): RawResult => ({
    ok: false, data: { reason, message, ms: Date.now() - t0, ...extra }, templateIndex,
  });
  if (signal?.aborted) return fail('aborted', 'the probe was aborted before QEMU started');

  let dir: string;
  try {
    const root = opts.tmpDir ?? scratchRoot(plan);
    dir = mkdtempSync(join(root, 'memfabric-probe-'));
    chmodSync(dir, 0o700);
  } catch (e) {
    return fail('internal', `cannot create the probe's private directory: ${(e as Error).message}`);
  }
  let proc: ChildProcess | undefined;
  try {
    // stand-ins
    const paths: string[] = [];
    for (let n = 0; n < plan.standIns.length; n++) {
      const s = plan.standIns[n];
      const base = `standin-${n}${s.path.endsWith('/') ? '' : '-' + basename(s.path).replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40)}`;
      let p = join(dir, base);
      if (s.make === 'file') {
        const fd = openSync(p, 'wx', 0o600);
        try {
          ftruncateSync(fd, Number(s.size ?? 0n));
        } finally {
          closeSync(fd);
        }
      } else if (s.make === 'dir') mkdirSync(p, { mode: 0o700 });
      else if (s.make === 'absent-parent') p = join(dir, `missing-${n}`, base);
      paths.push(p);
    }
    const fwLog = join(dir, 'firmware.log');
    const qmpSock = join(dir, 'qmp.sock');
    if (Buffer.byteLength(qmpSock) > 107) return fail('internal', `the probe's socket path is too long (${qmpSock}); set TMPDIR to a shorter directory`);
    if (/,/.test(dir)) return fail('internal', `the probe's directory must not contain ',': ${dir}`);
    const subst = (w: string) => w.replace(TOKEN_RE, (_, n) => paths[Number(n)]);
    const q35 = plan.template.some((w, k) => /^--?(machine|M)$/.test(plan.template[k - 1] ?? '') && /^(type=)?(q35|pc-q35)/.test(w));
    const args = [
      ...plan.template.map(subst),
      ...(plan.accelGiven ? [] : ['-accel', ctx.accel]),
      '-display', 'none',
      '-serial', 'none',
      '-parallel', 'none',
      '-monitor', 'none',
      '-chardev', `file,id=mfprobe-fw,path=${fwLog}`,
      '-device', 'isa-debugcon,iobase=0x402,chardev=mfprobe-fw',
      '-qmp', `unix:${qmpSock},server=on,wait=off`,
      ...(opts.agent ? agentArgv(join(dir, 'agent.sock'), q35 ? 'pcie.0' : 'pci.0') : []),
      // The user's disk stands in as a null block device: SeaBIOS drives it as it drives the disk.
      ...(opts.agent && opts.bootDisk ? ['-drive', 'if=none,id=mfdisk,driver=null-co,read-zeroes=on', '-device', `virtio-blk-pci,drive=mfdisk,bus=${q35 ? 'pcie.0' : 'pci.0'}`] : []),
    ];
    const spawnedArgv = [ctx.bin, ...args];
    let stderr = '';
    // (the exit hook first, and the process known to it as soon as it has a pid: a SIGTERM that came
    // before the 'spawn' event ended the process with no handler, and left its first probe's QEMU running)
    ensureExitHook();
    try {
      proc = ctx.spawn(ctx.bin, args, { cwd: ctx.cwd, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    } catch (e) {
      return fail('binary', `cannot start '${ctx.bin}': ${(e as Error).message}`);
    }
    if (proc.pid !== undefined) live.set(proc.pid, { proc, dir });
    const spawnErr = await new Promise<Error | undefined>((r) => {
      proc!.once('error', (e) => r(e));
      proc!.once('spawn', () => r(undefined));
    });
    if (spawnErr || proc.pid === undefined) {
      if (proc.pid !== undefined) live.delete(proc.pid);
      return fail('binary', `cannot start '${ctx.bin}': ${spawnErr?.message ?? 'no process id'}`);
    }
    proc.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    const closed = new Promise<void>((r) => proc!.once('close', () => r()));
    let aborted = false;
    const onAbort = () => (aborted = true);
    signal?.addEventListener('abort', onAbort, { once: true });
    const deadline = t0 + timeoutMs;
    const mapBack = (s: string) => tokenize(s, paths);
    try {
      let log: FirmwareLog | undefined;
      let text = '';
      for (;;) {
        text = readIfAny(fwLog);
        log = parseFirmwareLog(text);
        if (log.complete) break;
        if (proc.exitCode !== null || proc.signalCode !== null) {
          await Promise.race([closed, sleep(200)]);
          const e = parseQemuError(stderr, spawnedArgv);
          const clean = mapBack(qemuStderrLines(stderr).join('\n'));
          const tIndex = e?.argIndex !== undefined && e.argIndex - 1 < plan.template.length ? e.argIndex - 1 : undefined;
          if (proc.exitCode !== null && proc.exitCode !== 0) {
            const raw = fail('refused', mapBack(e?.message ?? `QEMU exited with status ${proc.exitCode}`), { exitCode: proc.exitCode, signal: null, stderr: clean }, tIndex);
            if (tIndex === undefined && e && /backing store/.test(e.message)) raw.inferredStandIn = inferBackingStore(plan, e.message);
            return raw;
          }
          return fail('crashed', proc.signalCode
            ? `QEMU died of ${proc.signalCode} before the firmware printed its memory map${clean ? ': ' + clean.split('\n').pop() : ''}`
            : `QEMU exited (status 0) before the firmware printed its memory map${clean ? ': ' + clean.split('\n').pop() : ''}`, { exitCode: proc.exitCode, signal: proc.signalCode, stderr: clean, firmwareTail: tailLines(text) });
        }
        if (log.stopped) {
          return fail('firmware', `the firmware stopped: ${log.stopped}`, { firmwareTail: tailLines(text), firmware: log.firmware });
        }
        if (aborted) return fail('aborted', 'the probe was aborted', { firmwareTail: tailLines(text) });
        if (Date.now() > deadline) {
          return fail('timeout', `the firmware did not print its memory map within ${(timeoutMs / 1000).toFixed(1)} s${text ? '' : ' (it printed nothing: is the guest CPU stopped, e.g. -S?)'}`, { firmwareTail: tailLines(text), stderr: mapBack(qemuStderrLines(stderr).join('\n')) });
        }
        await sleep(text ? 5 : 10);
      }
      // QEMU's side, over QMP
      const hostPath = q35 ? '/machine/q35' : '/machine/i440fx';
      const qomGet = (property: string) => ({ execute: 'qom-get', arguments: { path: hostPath, property } });
      const qmpBudget = Math.max(1000, Math.min(10_000, deadline - Date.now()));
      const qmp = await qmpExchange(qmpSock, [
        'stop',
        'query-version',
        { execute: 'human-monitor-command', arguments: { 'command-line': 'info mtree' } },
        'query-memory-devices',
        qomGet('pci-hole64-start'),
        qomGet('pci-hole64-end'),
        qomGet('pci-hole-start'),
        qomGet('pci-hole-end'),
        'quit',
      ], qmpBudget, { continueOnError: true });
      if (aborted) return fail('aborted', 'the probe was aborted');
      const ans = (k: number): unknown => (qmp.answers[k] && 'return' in qmp.answers[k] ? (qmp.answers[k] as { return: unknown }).return : undefined);
      if (qmp.answers.length < 3) {
        return fail(qmp.timedOut ? 'timeout' : 'crashed', `QEMU did not answer on QMP after the firmware's table (${qmp.timedOut ? 'timeout' : qmp.answers.map(qmpErr).filter(Boolean).join('; ') || 'socket closed'})`, { stderr: mapBack(qemuStderrLines(stderr).join('\n')) });
      }
      const ver = ans(1) as { qemu?: { major: number; minor: number; micro: number }; package?: string } | undefined;
      const regions = parseMtree(typeof ans(2) === 'string' ? (ans(2) as string) : '');
      const num = (v: unknown) => (typeof v === 'number' ? BigInt(v) : undefined);
      const range = (s: unknown, e: unknown): ProbeRange | undefined => {
        const a = num(s);
        const b = num(e);
        return a !== undefined && b !== undefined && b > a ? { start: a, end: b - 1n } : undefined;
      };
      const devs = Array.isArray(ans(3)) ? (ans(3) as { type: string; data: Record<string, unknown> }[]) : [];
      const top = regions.filter((r) => r.depth === 0);
      const dm = top.find((r) => r.name === 'device-memory');
      // Everything is answered: QEMU's orderly exit after quit (10.0 takes tens of ms) is not waited
      // for; the process group is killed now, and the finally waits until it is gone.
      await terminate(proc, 0, true);
      return {
        ok: true,
        data: {
          qemuVersion: ver?.qemu ? `${ver.qemu.major}.${ver.qemu.minor}.${ver.qemu.micro}` : 'unknown',
          qemuPackage: ver?.package || undefined,
          firmware: log.firmware ?? 'unknown',
          e820: log.e820 ?? [],
          qemuE820: log.qemuE820,
          bars: log.bars,
          windowIo: log.windowIo,
          windows32: log.windows32,
          windows64: log.windows64,
          cpu: log.cpu,
          hole64: range(ans(4), ans(5)),
          hole32: range(ans(6), ans(7)),
          regions,
          cxlWindows: top.filter((r) => r.name === 'cxl-fixed-memory-region').map((r) => ({ start: r.start, end: r.end })),
          cxlHostRegisters: top.filter((r) => r.name === 'cxl_host_reg').map((r) => ({ start: r.start, end: r.end })),
          deviceMemory: dm ? { start: dm.start, end: dm.end } : undefined,
          memoryDevices: devs.map((d) => ({
            type: d.type,
            id: typeof d.data?.id === 'string' ? d.data.id : undefined,
            memdev: typeof d.data?.memdev === 'string' ? d.data.memdev : undefined,
            addr: num(d.data?.addr),
            size: num(d.data?.size),
            slot: typeof d.data?.slot === 'number' ? d.data.slot : undefined,
            node: typeof d.data?.node === 'number' ? d.data.node : undefined,
          })),
          ms: Date.now() - t0,
        },
      };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      await terminate(proc, graceMs, aborted);
      await Promise.race([closed, sleep(500)]);
      live.delete(proc.pid);
    }
  } catch (e) {
    return fail('internal', `the probe failed: ${(e as Error).message}`);
  } finally {
    if (proc && proc.pid !== undefined && proc.exitCode === null && proc.signalCode === null) await terminate(proc, 0, true);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * os.tmpdir(), unless a stand-in is larger than ext4 allows (16 TiB) and
 * /dev/shm (tmpfs, sparse files of any size) is there.
 */
function scratchRoot(plan: ProbePlan): string {
  const big = plan.standIns.some((s) => (s.size ?? 0n) >= 1n << 44n || (s.make !== 'file' && s.role === 'mem-path' && (s.backendSize ?? 0n) >= 1n << 44n));
  if (big) {
    try {
      if (statSync('/dev/shm').isDirectory()) return '/dev/shm';
    } catch { /* no /dev/shm */ }
  }
  return tmpdir();
}

function qmpErr(a: QmpAnswer): string | undefined {
  return 'error' in a ? a.error.desc : undefined;
}

/** The one backend stand-in whose existing file is smaller than its size= (QEMU 7.2 names no option for it). */
function inferBackingStore(plan: ProbePlan, message: string): number | undefined {
  const m = /size 0x([0-9a-f]+) (?:does not match|is too small for) 'size' option 0x([0-9a-f]+)/.exec(message);
  if (!m) return undefined;
  const have = BigInt('0x' + m[1]);
  const cands = plan.standIns.map((s, n) => ({ s, n })).filter(({ s }) => s.role === 'mem-path' && s.kind === 'file' && s.size === have);
  return cands.length === 1 ? cands[0].n : undefined;
}

function readIfAny(p: string): string {
  try {
    const fd = openSync(p, 'r');
    try {
      const chunks: Buffer[] = [];
      const b = Buffer.alloc(65536);
      let n: number;
      while ((n = readSync(fd, b, 0, b.length, null)) > 0) chunks.push(Buffer.from(b.subarray(0, n)));
      return Buffer.concat(chunks).toString('latin1');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

function tailLines(text: string, n = 12): string[] {
  return text.replace(/\r/g, '').split('\n').filter((l) => l.trim()).slice(-n);
}

/** Scratch paths → stand-in tokens (longest first, so standin-1 never eats standin-12). */
function tokenize(s: string, paths: string[]): string {
  const order = paths.map((p, n) => ({ p, n })).sort((a, b) => b.p.length - a.p.length);
  let out = s;
  for (const { p, n } of order) out = out.split(p).join(TOKEN(n));
  return out;
}

// ---------------------------------------------------------------- cache

/** The on-disk cache's directory: $XDG_CACHE_HOME/memfabric/probe, else ~/.cache/memfabric/probe. */
export function probeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return memfabricCacheDir('probe', env);
}

function encode(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? { $n: '0x' + x.toString(16) } : x));
}

/** x with every { $n } in it made the bigint it stands for (in place). */
function bigints(x: unknown): unknown {
  if (x === null || typeof x !== 'object') return x;
  if (Array.isArray(x)) {
    for (let i = 0; i < x.length; i++) x[i] = bigints(x[i]);
    return x;
  }
  const o = x as Record<string, unknown>;
  if (typeof o.$n === 'string') {
    let n = 0;
    for (const _ in o) n++;
    if (n === 1) return BigInt(o.$n);
  }
  for (const k in o) {
    const v = o[k];
    const w = bigints(v);
    if (w !== v) o[k] = w;
  }
  return o;
}

/** encode's JSON read back. (Walked after the parse: a reviver, called for every value, made the warm probe of the 40-node example spend 17% of its time here, 2.5 times as long.) */
function decode(s: string): unknown {
  return bigints(JSON.parse(s));
}

/**
 * Probe results by key: in memory (and probes in flight, so concurrent
 * callers of one shape share a QEMU), and as JSON files in `dir` (false:
 * memory only). Only answers QEMU gave (ok, refused, firmware stop) are kept.
 */
export class ProbeCache {
  readonly dir: string | false;
  private readonly mem = new Map<string, RawResult>();
  readonly inflight = new Map<string, Promise<RawResult>>();

  constructor(opts: { dir?: string | false } = {}) {
    this.dir = opts.dir === undefined ? probeCacheDir() : opts.dir;
  }

  get(key: string): { raw: RawResult; from: 'memory' | 'disk' } | undefined {
    const m = this.mem.get(key);
    if (m) return { raw: m, from: 'memory' };
    if (!this.dir) return undefined;
    try {
      const o = decode(readFileSync(join(this.dir, `${key}.json`), 'utf8')) as { format: number; key: string; raw: RawResult };
      if (o.format !== PROBE_FORMAT || o.key !== key) return undefined;
      this.mem.set(key, o.raw);
      return { raw: o.raw, from: 'disk' };
    } catch {
      return undefined;
    }
  }

  set(key: string, raw: RawResult): void {
    this.mem.set(key, raw);
    if (this.dir) keepFile(join(this.dir, `${key}.json`), encode({ format: PROBE_FORMAT, key, raw }) + '\n', { private: true });
  }

  /** Forget everything in memory (the disk stays). */
  clearMemory(): void {
    this.mem.clear();
  }
}

let defaultCache: ProbeCache | undefined;
/** The process-wide cache used when ProbeOptions.cache is not given. */
export function defaultProbeCache(): ProbeCache {
  return (defaultCache ??= new ProbeCache());
}

// ---------------------------------------------------------------- the concurrency limit

const MAX_QEMUS = 2;
let running = 0;
const waiting: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_QEMUS) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

// ---------------------------------------------------------------- public entry points

interface Prepared {
  argv: string[];
  plan: ProbePlan;
  bin?: string;
  binError?: string;
  identity?: string;
  accel: 'kvm' | 'tcg';
  cwd: string;
  key?: string;
}

/** The binary and accelerator a probe uses: looked up once per probeNodes call, not once per node. */
interface Resolved {
  accel: 'kvm' | 'tcg';
  want: string;
  bin?: string;
  identity?: string;
}

function resolveFor(argv: string[], opts: ProbeOptions): Resolved {
  let accel: 'kvm' | 'tcg';
  try {
    accel = opts.accel ?? accelerator();
  } catch {
    accel = 'tcg';
  }
  const want = opts.qemu ?? qemuBinary(argv[0]);
  const bin = findExecutable(want);
  if (!bin) return { accel, want };
  const abs = resolve(bin);
  const st = statSync(abs);
  return { accel, want, bin: abs, identity: `${abs}\u0000${st.size}\u0000${st.mtimeMs}` };
}

function prepare(argv: string[], opts: ProbeOptions, resolved: Resolved = resolveFor(argv, opts)): Prepared {
  const cwd = opts.cwd ?? process.cwd();
  const plan = planProbe(argv, cwd);
  const { accel, want } = resolved;
  const p: Prepared = { argv, plan, accel, cwd };
  if (!resolved.bin || !resolved.identity) {
    p.binError = existsSync(want)
      ? `the QEMU binary '${want}' is not an executable file`
      : `the QEMU binary '${want}' is not ${want.includes('/') ? 'there' : 'found in PATH'}; install qemu-system-x86 or set MEMFABRIC_QEMU to the binary`;
    return p;
  }
  p.bin = resolved.bin;
  p.identity = resolved.identity;
  p.key = createHash('sha256')
    .update(JSON.stringify({
      format: PROBE_FORMAT,
      binary: p.identity,
      accel: plan.accelGiven ? undefined : accel,
      agent: !!opts.agent,
      ...(opts.agent && opts.bootDisk ? { bootDisk: true } : {}),
      template: plan.template,
      standIns: plan.standIns.map((s) => [s.make, s.kind, s.size?.toString()]),
    }))
    .digest('hex')
    .slice(0, 32);
  return p;
}

/** The cache key of an argv (undefined when the binary is not there). Two argvs of one shape have one key. */
export function probeKey(argv: string[], opts: ProbeOptions = {}): string | undefined {
  return prepare(argv, opts).key;
}

/** A raw result made the caller's: its stand-ins, its paths, its option text. */
function finish(raw: RawResult, p: Prepared, key: string | undefined, from?: 'memory' | 'disk'): ProbeResult {
  const standIns: StandIn[] = p.plan.standIns.map(publicStandIn);
  const untoken = (s: string) => s.replace(TOKEN_RE, (_, n) => p.plan.standIns[Number(n)]?.path ?? '?');
  const d = structuredClone(raw.data); // cached objects are shared: each caller gets its own
  if (raw.ok) return { ...(d as Omit<ProbeOk, 'ok' | 'standIns' | 'key'>), ok: true, standIns, key: key ?? '', ...(from ? { cached: from } : {}) } as ProbeOk;
  const f: ProbeFailure = {
    ok: false,
    reason: d.reason as ProbeFailureReason,
    message: untoken(String(d.message ?? '')),
    standIns,
    ms: Number(d.ms ?? 0),
  };
  for (const k of ['exitCode', 'signal', 'firmwareTail', 'qemuVersion'] as const) if (d[k] !== undefined) (f as unknown as Record<string, unknown>)[k] = d[k];
  if (typeof d.stderr === 'string') f.stderr = untoken(d.stderr);
  if (raw.templateIndex !== undefined) {
    const ai = p.plan.origin[raw.templateIndex];
    if (ai !== undefined) {
      f.argIndex = ai;
      f.option = ai + 1 < p.argv.length ? `${p.argv[ai]} ${p.argv[ai + 1]}` : p.argv[ai];
    }
  } else if (raw.inferredStandIn !== undefined) {
    const s = p.plan.standIns[raw.inferredStandIn];
    if (s) {
      f.argIndex = s.argIndex;
      f.option = s.option;
      f.optionInferred = true;
    }
  }
  if (key) f.key = key;
  if (from) f.cached = from;
  return f;
}

function publicStandIn({ make: _m, backendSize: _b, ...s }: StandInSpec): StandIn {
  return s;
}

/** Counts for tests and reports: probes run (QEMUs started for a configuration) in this process. */
export const probeStats = { runs: 0, cacheHits: 0 };

/**
 * Probe one configuration: argv as memfabric plans it (binary first). Never
 * throws and never rejects: every failure is a ProbeFailure.
 */
export async function probeArgv(argv: string[], opts: ProbeOptions = {}): Promise<ProbeResult> {
  return probePrepared(argv, opts);
}

async function probePrepared(argv: string[], opts: ProbeOptions, prepared?: Prepared): Promise<ProbeResult> {
  const t0 = Date.now();
  let p: Prepared;
  try {
    p = prepared ?? prepare(argv, opts);
  } catch (e) {
    return { ok: false, reason: 'internal', message: `the probe failed: ${(e as Error).message}`, standIns: [], ms: Date.now() - t0 };
  }
  const standIns = p.plan.standIns.map(publicStandIn);
  if (p.binError || !p.bin || !p.identity) return { ok: false, reason: 'binary', message: p.binError ?? 'no QEMU binary', standIns, ms: Date.now() - t0 };
  if (p.plan.unsupported) {
    const ai = p.plan.unsupported.argIndex;
    return { ok: false, reason: 'unsupported', message: p.plan.unsupported.message, argIndex: ai, option: ai + 1 < argv.length ? `${argv[ai]} ${argv[ai + 1]}` : argv[ai], standIns, ms: Date.now() - t0 };
  }
  const cache = opts.cache === false ? undefined : opts.cache ?? defaultProbeCache();
  const key = p.key!;
  const hit = cache?.get(key);
  if (hit) {
    probeStats.cacheHits++;
    return finish(hit.raw, p, key, hit.from);
  }
  const spawn: SpawnHook = opts.spawn ?? ((f, a, o) => nodeSpawn(f, a, o));
  const run = async (): Promise<RawResult> => {
    if (opts.signal?.aborted) return { ok: false, data: { reason: 'aborted', message: 'the probe was aborted before QEMU started', ms: 0 } };
    const v = await checkBinary(p.bin!, p.identity!, spawn, opts.signal, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    if (!v.ok) return { ok: false, data: { reason: opts.signal?.aborted ? 'aborted' : 'binary', message: v.message ?? 'not QEMU', ms: 0 } };
    return slot(async () => {
      probeStats.runs++;
      const raw = await runOnce({ plan: p.plan, bin: p.bin!, cwd: existsDir(p.cwd) ? p.cwd : tmpdir(), opts, spawn, accel: p.accel });
      if (!raw.ok) raw.data.qemuVersion = v.version;
      return raw;
    });
  };
  let raw: RawResult;
  if (cache) {
    let pending = cache.inflight.get(key);
    if (!pending) {
      pending = run().finally(() => cache.inflight.delete(key));
      cache.inflight.set(key, pending);
    } else probeStats.cacheHits++;
    raw = await pending;
    const reason = raw.ok ? undefined : (raw.data.reason as ProbeFailureReason);
    if (raw.ok || reason === 'refused' || reason === 'firmware') cache.set(key, raw);
  } else raw = await run();
  return finish(raw, p, key);
}

function existsDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Probe one node: its argv as `memfabric plan` emits it, relative paths against the node's document. */
export function probeNode(node: NodeModel, opts: ProbeOptions = {}): Promise<ProbeResult> {
  return probeArgv(nodeArgv(node), { cwd: node.baseDir, ...opts });
}

export interface ProbeNodesOptions extends ProbeOptions {
  /** QEMUs at a time (at most 2, default 2). */
  concurrency?: number;
}

/**
 * Probe many nodes: each distinct shape once (nodes of one shape share the
 * result), at most `concurrency` (≤ 2) QEMUs at a time. Results in input order.
 */
export async function probeNodes(nodes: NodeModel[], opts: ProbeNodesOptions = {}): Promise<{ name: string; key?: string; result: ProbeResult }[]> {
  const cache = opts.cache === false ? new ProbeCache({ dir: false }) : opts.cache ?? defaultProbeCache();
  const o: ProbeOptions = { ...opts, cache };
  // One lookup of the binary and the accelerator for all the nodes; one plan per node (its own stand-ins and paths).
  const resolved = nodes.length ? resolveFor(nodeArgv(nodes[0]), o) : undefined;
  // Nodes with the very same argv (a fabric shared by every node) share one plan too.
  const plans = new Map<string, Prepared | undefined>();
  const keyed = nodes.map((n) => {
    const argv = nodeArgv(n);
    const bootDisk = !!n.bootDisk;
    const same = `${n.baseDir}\u0001${bootDisk}\u0001${argv.join('\u0000')}`;
    let prepared = plans.get(same);
    if (!plans.has(same)) {
      try {
        prepared = prepare(argv, { ...o, bootDisk, cwd: n.baseDir }, resolved);
      } catch {
        prepared = undefined;
      }
      plans.set(same, prepared);
    }
    return { n, argv, bootDisk, prepared, key: prepared?.key };
  });
  const order: string[] = [];
  const first = new Map<string, (typeof keyed)[number]>();
  for (const k of keyed) {
    const id = k.key ?? `nokey:${k.n.name}`;
    if (!first.has(id)) {
      first.set(id, k);
      order.push(id);
    }
  }
  const conc = Math.max(1, Math.min(MAX_QEMUS, opts.concurrency ?? MAX_QEMUS));
  const byKey = new Map<string, ProbeResult>();
  let next = 0;
  const worker = async () => {
    while (next < order.length) {
      const id = order[next++];
      const k = first.get(id)!;
      byKey.set(id, await probePrepared(k.argv, { ...o, bootDisk: k.bootDisk, cwd: k.n.baseDir }, k.prepared));
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, order.length) }, worker));
  // Every other node of a shape: the shape's result with its own stand-ins (its paths); no QEMU.
  return Promise.all(keyed.map(async (k) => {
    const id = k.key ?? `nokey:${k.n.name}`;
    const r0 = byKey.get(id)!;
    if (first.get(id) === k) return { name: k.n.name, key: k.key, result: r0 };
    const standIns = (k.prepared?.plan.standIns ?? []).map(publicStandIn);
    // An answer QEMU gave names no path of the node when it is a memory map (shared, never changed by callers);
    // a refusal may name one: made the node's own from the cache.
    if (r0.ok) return { name: k.n.name, key: k.key, result: { ...r0, standIns, cached: r0.cached ?? 'memory' } };
    if (k.key && cache.get(k.key)) return { name: k.n.name, key: k.key, result: await probePrepared(k.argv, { ...o, cwd: k.n.baseDir }, k.prepared) };
    return { name: k.n.name, key: k.key, result: { ...structuredClone(r0), standIns } };
  }));
}

// ---------------------------------------------------------------- comparison with the prediction

export type ProbeDisagreement =
  | { kind: 'outcome'; layout: string; probe: string; option?: string; message: string }
  | { kind: 'e820'; start: bigint; layout?: { start: bigint; end: bigint; type: string }; probe?: { start: bigint; end: bigint; type: string }; message: string }
  | { kind: 'bar'; bdf: string; bar: number; device?: string; layout?: { start: bigint; size: bigint }; probe?: { start: bigint; size: bigint }; message: string }
  | { kind: 'hole64'; layout: ProbeRange; probe: ProbeRange; message: string }
  | { kind: 'cxl-window'; index: number; layout?: ProbeRange; probe?: ProbeRange; message: string };

const hx = (v: bigint) => '0x' + v.toString(16);

/**
 * Where memfabric's prediction (computeLayout, SeaBIOS 1.16.2 / QEMU 7.2)
 * and the real QEMU disagree, with both values. Compare a probe run with
 * `agent: x` with computeLayout(node, { agent: x }). A probe that could not
 * tell (timeout, abort, binary, unsupported) gives no disagreement.
 */
export function compareWithLayout(layout: NodeLayout, probe: ProbeResult): ProbeDisagreement[] {
  const out: ProbeDisagreement[] = [];
  if (!probe.ok) {
    if (probe.reason === 'refused') {
      out.push({ kind: 'outcome', layout: 'QEMU starts', probe: `QEMU refuses: ${probe.message}`, option: probe.option, message: `memfabric predicts a memory map, but QEMU refuses the configuration: ${probe.message}` });
    } else if (probe.reason === 'firmware') {
      if (!layout.exhausted32) out.push({ kind: 'outcome', layout: 'the firmware maps every BAR', probe: probe.message, message: `memfabric predicts the firmware maps every BAR, but ${probe.message}` });
    }
    return out;
  }
  if (layout.exhausted32) out.push({ kind: 'outcome', layout: 'the firmware runs out of 32-bit PCI space', probe: 'the firmware maps every BAR', message: `memfabric predicts SeaBIOS runs out of 32-bit PCI space (needs ${hx(layout.exhausted32.need)}), but it printed its memory map` });

  // E820: by start address
  const lm = new Map(layout.e820.map((e) => [e.start, e]));
  const pm = new Map(probe.e820.map((e) => [e.start, e]));
  const starts = [...new Set([...lm.keys(), ...pm.keys()])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const s of starts) {
    const l = lm.get(s);
    const p = pm.get(s);
    const lv = l && { start: l.start, end: l.end, type: l.type };
    const pv = p && { start: p.start, end: p.end, type: p.type };
    if (l && p && l.end === p.end && l.type === p.type) continue;
    const show = (e?: { start: bigint; end: bigint; type: string }) => (e ? `[${hx(e.start)}-${hx(e.end)}] ${e.type}` : 'nothing');
    out.push({ kind: 'e820', start: s, layout: lv, probe: pv, message: `E820 at ${hx(s)}: memfabric predicts ${show(lv)}, the firmware has ${show(pv)}` });
  }

  // memory BARs where the firmware put them (the layout's firmwareStart when the kernel moved one)
  const lb = new Map<string, { device?: string; start: bigint; size: bigint }>();
  if (layout.functions?.length) {
    for (const f of layout.functions) {
      for (const b of f.bars) {
        const start = b.firmwareStart ?? b.start;
        if (b.rom || start === undefined) continue;
        lb.set(`${pciBdf(f)}/${b.bar}`, { device: f.device, start, size: b.size });
      }
    }
  } else for (const b of layout.bars) lb.set(`${b.bdf}/${b.bar}`, { device: b.device, start: b.start, size: b.size });
  const pb = new Map<string, ProbeBar>();
  for (const b of probe.bars) if (b.kind !== 'io' && b.bar !== 6) pb.set(`${b.bdf}/${b.bar}`, b);
  const keys = [...new Set([...lb.keys(), ...pb.keys()])].sort();
  for (const k of keys) {
    const [bdf, bar] = k.split('/');
    const l = lb.get(k);
    const p = pb.get(k);
    // SeaBIOS allocates (and prints) a memory BAR smaller than 4 KiB as 4 KiB
    if (l && p && l.start === p.start && (l.size < 0x1000n ? 0x1000n : l.size) === p.size) continue;
    const show = (v?: { start: bigint; size: bigint }) => (v ? `${hx(v.start)} (size ${hx(v.size)})` : 'no BAR');
    out.push({
      kind: 'bar', bdf, bar: Number(bar), device: l?.device,
      layout: l && { start: l.start, size: l.size }, probe: p && { start: p.start, size: p.size },
      message: `BAR ${bar} of ${bdf}${l?.device ? ` (${l.device})` : ''}: memfabric predicts ${show(l)}, the firmware put ${show(p)}`,
    });
  }

  // QEMU's 64-bit hole after the firmware
  if (probe.hole64 && layout.hole64) {
    const l = { start: layout.hole64.start, end: layout.hole64.end - 1n };
    if (l.start !== probe.hole64.start || l.end !== probe.hole64.end) {
      out.push({ kind: 'hole64', layout: l, probe: probe.hole64, message: `64-bit PCI hole: memfabric predicts [${hx(l.start)}-${hx(l.end)}], QEMU has [${hx(probe.hole64.start)}-${hx(probe.hole64.end)}]` });
    }
  }

  // CXL fixed memory windows, in order
  const lw = (layout.platform.cxl?.windows ?? []).filter((w) => w.size > 0n).map((w) => ({ index: w.index, start: w.base, end: w.base + w.size - 1n }));
  const n = Math.max(lw.length, probe.cxlWindows.length);
  for (let k = 0; k < n; k++) {
    const l = lw[k];
    const p = probe.cxlWindows[k];
    if (l && p && l.start === p.start && l.end === p.end) continue;
    const show = (v?: ProbeRange) => (v ? `[${hx(v.start)}-${hx(v.end)}]` : 'none');
    out.push({ kind: 'cxl-window', index: l?.index ?? k, layout: l && { start: l.start, end: l.end }, probe: p, message: `CXL fixed memory window ${l?.index ?? k}: memfabric predicts ${show(l)}, QEMU has ${show(p)}` });
  }
  return out;
}
