/**
 * Start one node of a plan under real QEMU with the guest image, and stop it.
 * Each node gets a private (0700) run directory holding its console log and
 * agent socket. QEMU is spawned with an argv array, never a shell string, and
 * every process started here is killed by stop().
 */
import { ChildProcess, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { agentArgv, GuestImage, guestArgv, guestCmdline } from './image';
import { guestExec, GuestExecResult } from './agent';

export interface LaunchOptions {
  name: string;
  /** The node's argv from `plan` (binary first). */
  argv: string[];
  image: Pick<GuestImage, 'kernel' | 'initrd'>;
  /** Private directory for this node's run state; created 0700. */
  runDir: string;
  readyTimeoutMs?: number;
}

export interface RunningNode {
  name: string;
  proc: ChildProcess;
  runDir: string;
  consoleLog: string;
  agentSocket: string;
  argv: string[];
  bootMs: number;
  exec(cmd: string[], timeoutMs?: number): Promise<GuestExecResult>;
  stop(): Promise<void>;
}

/** What the host offers: KVM only when the CPU has vmx/svm and /dev/kvm is usable; TCG otherwise. */
export function kvmUsable(): boolean {
  try {
    if (!/\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'))) return false;
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The accelerator the nodes run with: $MEMFABRIC_ACCEL (auto, kvm or tcg;
 * default auto = KVM when usable, else TCG). A bad value, or kvm where KVM is
 * not usable, throws an Error whose message says so.
 */
export function accelerator(env: NodeJS.ProcessEnv = process.env): 'kvm' | 'tcg' {
  const want = (env.MEMFABRIC_ACCEL ?? '').trim() || 'auto';
  if (want === 'tcg') return 'tcg';
  if (want === 'kvm') {
    if (!kvmUsable()) throw new Error('MEMFABRIC_ACCEL=kvm, but KVM is not usable here (the CPU shows no vmx/svm or /dev/kvm cannot be opened read-write); use auto or tcg');
    return 'kvm';
  }
  if (want === 'auto') return kvmUsable() ? 'kvm' : 'tcg';
  throw new Error(`MEMFABRIC_ACCEL must be auto, kvm or tcg, not '${want}'`);
}

/** The QEMU binary: $MEMFABRIC_QEMU when set, else the plan's (qemu-system-x86_64, looked up in PATH). */
export function qemuBinary(planBinary = 'qemu-system-x86_64', env: NodeJS.ProcessEnv = process.env): string {
  return (env.MEMFABRIC_QEMU ?? '').trim() || planBinary;
}

/** The executable a binary name stands for (PATH lookup without a '/'), or undefined. */
export function findExecutable(bin: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = bin.includes('/') ? [bin] : (env.PATH ?? '').split(':').filter(Boolean).map((d) => join(d, bin));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch { /* next */ }
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What a node boots, paths absolute. memfabric's own image gives kernel and
 * initrd; a topology's <guest kernel initrd disk> may replace either or add a
 * disk. Without a kernel the firmware boots the disk (or finds nothing).
 */
export interface NodeGuest {
  kernel?: string;
  initrd?: string;
  /** Attached as a virtio disk (bootindex 1); format from the file's magic. */
  disk?: string;
}

/** qcow2 when the file starts with QCOW2's magic, else raw. */
export function diskFormat(path: string): 'qcow2' | 'raw' {
  try {
    const fd = openSync(path, 'r');
    const b = Buffer.alloc(4);
    try {
      readSync(fd, b, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
    return b.toString('latin1') === 'QFI\xfb' ? 'qcow2' : 'raw';
  } catch {
    return 'raw';
  }
}

export interface BootArgvOptions {
  /**
   * For a QEMU that outlives its starter (memfabric boot): the serial console on
   * a unix socket (console.sock) mirrored to console.log, a QMP socket (qmp.sock)
   * and a pid file (qemu.pid), all in runDir. Default: console to console.log only.
   */
  detached?: boolean;
  /** Default: accelerator() ($MEMFABRIC_ACCEL). */
  accel?: 'kvm' | 'tcg';
  /** Default: qemuBinary(plan's binary) ($MEMFABRIC_QEMU). */
  qemu?: string;
}

/**
 * The plan's argv with the guest attached: the plan's own -append (kernel
 * options such as memmap= for SPM) is merged into the guest's command line.
 */
export function bootArgv(planArgv: string[], guest: NodeGuest, runDir: string, opts: BootArgvOptions = {}): string[] {
  const [bin, ...rest] = planArgv;
  const args: string[] = [];
  let append: string | undefined;
  let q35 = false;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '-append' || rest[i] === '--append') {
      append = rest[++i];
      continue;
    }
    if ((rest[i] === '-machine' || rest[i] === '-M') && /^(q35|pc-q35)/.test(rest[i + 1] ?? '')) q35 = true;
    args.push(rest[i]);
  }
  const rootBus = q35 ? 'pcie.0' : 'pci.0';
  const agentSocket = join(runDir, 'agent.sock');
  let guestArgs: string[];
  if (guest.kernel && guest.initrd) guestArgs = guestArgv({ kernel: guest.kernel, initrd: guest.initrd }, { agentSocket, append, rootBus });
  else {
    guestArgs = [];
    if (guest.kernel) guestArgs.push('-kernel', guest.kernel, '-append', guestCmdline(append));
    guestArgs.push(...agentArgv(agentSocket, rootBus));
  }
  if (guest.disk) {
    guestArgs.push(
      '-drive', `file=${guest.disk.replace(/,/g, ',,')},format=${diskFormat(guest.disk)},if=none,id=mfdisk`,
      '-device', `virtio-blk-pci,drive=mfdisk,bus=${rootBus}${guest.kernel ? '' : ',bootindex=1'}`,
    );
  }
  return [
    opts.qemu ?? qemuBinary(bin),
    ...args,
    '-accel', opts.accel ?? accelerator(),
    '-display', 'none',
    '-no-reboot',
    ...(opts.detached
      ? [
        '-chardev', `socket,id=con,path=${join(runDir, 'console.sock')},server=on,wait=off,logfile=${join(runDir, 'console.log')}`,
        '-serial', 'chardev:con',
        '-qmp', `unix:${join(runDir, 'qmp.sock')},server=on,wait=off`,
        '-pidfile', join(runDir, 'qemu.pid'),
      ]
      : ['-serial', `file:${join(runDir, 'console.log')}`]),
    ...guestArgs,
  ];
}

export async function launchNode(opts: LaunchOptions): Promise<RunningNode> {
  mkdirSync(opts.runDir, { recursive: true, mode: 0o700 });
  const argv = bootArgv(opts.argv, opts.image, opts.runDir);
  const consoleLog = join(opts.runDir, 'console.log');
  const agentSocket = join(opts.runDir, 'agent.sock');
  const t0 = Date.now();
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const node: RunningNode = {
    name: opts.name,
    proc,
    runDir: opts.runDir,
    consoleLog,
    agentSocket,
    argv,
    bootMs: 0,
    exec: (cmd, timeoutMs = 30_000) => guestExec(agentSocket, cmd, timeoutMs),
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
  const timeout = opts.readyTimeoutMs ?? 120_000;
  while (Date.now() - t0 < timeout) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`node ${opts.name}: QEMU exited (${proc.exitCode ?? proc.signalCode}) before the guest was ready: ${stderr.trim()}\n${tail(consoleLog)}`);
    }
    if (/^MEMFABRIC-READY\r?$/m.test(safeRead(consoleLog))) {
      node.bootMs = Date.now() - t0;
      return node;
    }
    await sleep(200);
  }
  await node.stop();
  throw new Error(`node ${opts.name}: guest not ready within ${timeout / 1000} s; last console lines:\n${tail(consoleLog)}`);
}

function safeRead(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

export function tail(p: string, lines = 15): string {
  return safeRead(p).split('\n').slice(-lines).join('\n');
}
