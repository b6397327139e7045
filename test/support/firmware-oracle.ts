/**
 * The firmware oracle: runs a QEMU configuration with no guest and reads what
 * SeaBIOS prints on its debug console (isa-debugcon at 0x402) – its final
 * E820 table, every BAR it maps, its 64-bit window, the CPU physical address
 * bits it accepted and how much of its 16 MiB ZoneHigh it gave back.
 * SeaBIOS prints all of that within about a second, long before a boot
 * device is tried; the QEMU process is then killed.
 *
 * Relative `mem-path=`/`path=` values of the configuration are resolved in
 * a private temporary directory (QEMU creates the backing files sparse) that
 * is removed afterwards. Every QEMU started is killed, also on failure,
 * timeout or when the test process exits.
 */
import { spawn, ChildProcess, spawnSync } from 'node:child_process';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, isAbsolute } from 'node:path';

export interface OracleE820 {
  start: bigint;
  /** Exclusive, as SeaBIOS prints it. */
  end: bigint;
  type: number;
}

export interface OracleBar {
  /** bus:slot.fn as SeaBIOS prints it, e.g. 00:01.0 */
  bdf: string;
  bar: number;
  addr: bigint;
  size: bigint;
  type: 'io' | 'mem' | 'prefmem';
}

export interface FirmwareView {
  /** The "SeaBIOS (version …)" line. */
  seabios: string;
  /** CPU physical address bits as SeaBIOS 1.16.3 reads them (absent in 1.16.2). */
  physbits?: { signature: string; pae: boolean; lm: boolean; bits: number; valid: boolean };
  e820: OracleE820[];
  bars: OracleBar[];
  /** "PCI: 64: start - end" (only when SeaBIOS used a 64-bit window). */
  window64?: { start: bigint; end: bigint };
  /** Bytes of ZoneHigh given back ("Returned N bytes of ZoneHigh"). */
  zoneHighReturned?: bigint;
  /** Set when SeaBIOS stopped (e.g. "PCI: out of 32bit address space"). */
  panic?: string;
  /**
   * QEMU's own regions from `info mtree` (QMP), once each: the device-memory
   * region, cxl_host_reg, each pxb-cxl-host register block and each
   * cxl-fixed-memory-region, in address order. End inclusive.
   */
  regions?: { name: string; start: bigint; end: bigint }[];
  log: string;
}

const REGION_NAMES = new Set(['device-memory', 'cxl_host_reg', 'pxb-cxl-host', 'cxl-fixed-memory-region']);

/** One QMP human-monitor-command over a unix socket. */
async function hmp(sock: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(sock);
    let buf = '';
    let step = 0;
    const timer = setTimeout(() => { c.destroy(); reject(new Error(`QMP ${command}: timeout`)); }, 10_000);
    c.setEncoding('utf8');
    c.on('error', (e) => { clearTimeout(timer); reject(e); });
    c.on('data', (d: string) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (!line) continue;
        const msg = JSON.parse(line);
        if (msg.event) continue;
        if (step === 0) c.write('{"execute":"qmp_capabilities"}\n');
        else if (step === 1) c.write(JSON.stringify({ execute: 'human-monitor-command', arguments: { 'command-line': command } }) + '\n');
        else {
          clearTimeout(timer);
          c.destroy();
          if (msg.error) reject(new Error(msg.error.desc));
          else resolve(String(msg.return));
        }
        step++;
      }
    });
  });
}

export function parseMtreeRegions(tree: string): { name: string; start: bigint; end: bigint }[] {
  const seen = new Map<string, { name: string; start: bigint; end: bigint }>();
  for (const l of tree.split('\n')) {
    const m = /^\s*([0-9a-f]+)-([0-9a-f]+) \(prio -?\d+, [^)]*\): ([^\s]+)/.exec(l);
    if (m && REGION_NAMES.has(m[3])) seen.set(`${m[3]} ${m[1]}`, { name: m[3], start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]) });
  }
  return [...seen.values()].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
}

const live = new Set<ChildProcess>();
let exitHook = false;
function killAll() {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Make relative mem-path= (and path=) option values absolute inside dir. */
export function resolvePaths(argv: string[], dir: string): string[] {
  return argv.map((a) => a.replace(/(^|,)(mem-path|path)=([^,]+)/g, (all, pre, k, v) => (isAbsolute(v) ? all : `${pre}${k}=${join(dir, v)}`)));
}

export function qemuVersionOf(bin: string): string | undefined {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? /version (\d+\.\d+\.\d+)/.exec(r.stdout)?.[1] : undefined;
}

/** Parse what SeaBIOS printed; undefined while its E820 table is not complete yet. */
export function parseFirmwareLog(log: string): FirmwareView | undefined {
  const lines = log.split('\n');
  const seabios = lines.find((l) => /^SeaBIOS \(version/.test(l)) ?? '';
  const panic = lines.find((l) => /panic|out of 32bit address space|out of I\/O address space/i.test(l));
  const at = lines.findIndex((l) => /^e820 map has \d+ items:/.test(l));
  if (at < 0 && !panic) return undefined;
  const e820: OracleE820[] = [];
  if (at >= 0) {
    const n = Number(/^e820 map has (\d+) items:/.exec(lines[at])![1]);
    for (let i = 1; i <= n; i++) {
      const m = /^\s*\d+: ([0-9a-f]+) - ([0-9a-f]+) = (\d+)/.exec(lines[at + i] ?? '');
      if (!m || lines[at + i + 1] === undefined) return undefined; // still being written
      e820.push({ start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]), type: Number(m[3]) });
    }
  }
  const bars: OracleBar[] = [];
  for (const l of lines) {
    const m = /^PCI: map device bdf=([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\s+bar (\d+), addr ([0-9a-f]+), size ([0-9a-f]+) \[(io|mem|prefmem)\]/.exec(l);
    if (m) bars.push({ bdf: m[1], bar: Number(m[2]), addr: BigInt('0x' + m[3]), size: BigInt('0x' + m[4]), type: m[5] as OracleBar['type'] });
  }
  const w = lines.map((l) => /^PCI: 64: ([0-9a-f]+) - ([0-9a-f]+)/.exec(l)).find(Boolean);
  const pb = lines.map((l) => /^physbits: signature="([^"]*)", pae=(yes|no), lm=(yes|no), phys-bits=(\d+), valid=(yes|no)/.exec(l)).find(Boolean);
  const zh = lines.map((l) => /^Returned (\d+) bytes of ZoneHigh/.exec(l)).find(Boolean);
  return {
    seabios,
    physbits: pb ? { signature: pb[1], pae: pb[2] === 'yes', lm: pb[3] === 'yes', bits: Number(pb[4]), valid: pb[5] === 'yes' } : undefined,
    e820,
    bars,
    window64: w ? { start: BigInt('0x' + w[1]), end: BigInt('0x' + w[2]) } : undefined,
    zoneHighReturned: zh ? BigInt(zh[1]) : undefined,
    panic,
    log,
  };
}

/**
 * Run `argv` (a QEMU command line; argv[0], the binary, is replaced by `qemu`)
 * until SeaBIOS has printed its E820 table, then kill it.
 */
export async function runFirmware(qemu: string, argv: string[], opts: { timeoutMs?: number } = {}): Promise<FirmwareView> {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', killAll);
  }
  const dir = mkdtempSync(join(tmpdir(), 'mf-fw-oracle-'));
  const logFile = join(dir, 'debugcon.log');
  const qmpSock = join(dir, 'qmp.sock');
  const args = [
    '-qmp', `unix:${qmpSock},server=on,wait=off`,
    ...resolvePaths(argv.slice(1), dir),
    '-display', 'none', '-monitor', 'none', '-serial', 'none', '-parallel', 'none',
    '-chardev', `file,id=mfdbg,path=${logFile}`,
    '-device', 'isa-debugcon,iobase=0x402,chardev=mfdbg',
  ];
  const child = spawn(qemu, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  let exited: number | null | undefined;
  const gone = new Promise<void>((res) => child.on('exit', (code) => { exited = code; res(); }));
  const t0 = Date.now();
  const timeoutMs = opts.timeoutMs ?? 20_000;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
      const view = parseFirmwareLog(log);
      if (view) {
        view.regions = parseMtreeRegions((await hmp(qmpSock, 'info mtree')).replace(/\r\n/g, '\n'));
        return view;
      }
      if (exited !== undefined) throw new Error(`QEMU exited (${exited}) before SeaBIOS printed its E820 table: ${stderr.trim()}\n${log.slice(-2000)}`);
      if (Date.now() - t0 > timeoutMs) throw new Error(`no E820 table from SeaBIOS within ${timeoutMs} ms\n${log.slice(-2000)}`);
    }
  } finally {
    if (exited === undefined) child.kill('SIGKILL');
    await gone;
    live.delete(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** At most `n` runs at a time. */
export function limiter(n: number): <T>(f: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(f: () => Promise<T>): Promise<T> => {
    if (active >= n) await new Promise<void>((r) => queue.push(r));
    active++;
    try {
      return await f();
    } finally {
      active--;
      queue.shift()?.();
    }
  };
}

/** The model's firmware view, in the oracle's terms. */
export interface ModelFirmware {
  platform: {
    deviceMemory?: { base: bigint; size: bigint };
    cxl?: { base: bigint; hostBridges: { base: bigint }[]; windows: { base: bigint; size: bigint }[] };
  };
  e820: { start: bigint; end: bigint; type: string }[];
  functions: { bus: number; slot: number; fn: number; bars: { bar: number; size: bigint; start?: bigint; firmwareStart?: bigint }[] }[];
  firmware64?: { start: bigint; end: bigint };
}

const TYPE_NUM: Record<string, number> = { 'System RAM': 1, Reserved: 2, 'ACPI Tables': 3, 'ACPI Non-volatile Storage': 4, 'Unusable memory': 5, 'Persistent Memory': 7, 'Persistent Memory (legacy)': 12 };
const hx = (v: bigint) => v.toString(16);

/**
 * Entry-by-entry differences between SeaBIOS's report and the model: the E820
 * table, every memory BAR (ROMs included) and the 64-bit window. Empty when
 * they agree.
 */
export function compareFirmware(real: FirmwareView, model: ModelFirmware): string[] {
  const out: string[] = [];
  const diffBy = (who: string) => (what: string, a: string[], b: string[]) => {
    const missing = b.filter((x) => !a.includes(x));
    const extra = a.filter((x) => !b.includes(x));
    if (missing.length || extra.length) out.push(`${what}: model has [${extra.join(', ')}], ${who} has [${missing.join(', ')}]`);
  };
  const diff = diffBy('SeaBIOS');
  const diffQ = diffBy('QEMU');
  if (real.panic) out.push(`SeaBIOS stopped: ${real.panic}`);
  diff(
    'e820',
    model.e820.map((e) => `${hx(e.start)}-${hx(e.end + 1n)} ${TYPE_NUM[e.type] ?? e.type}`),
    real.e820.map((e) => `${hx(e.start)}-${hx(e.end)} ${e.type}`),
  );
  const bdf = (b: number, s: number, f: number) => `${b.toString(16).padStart(2, '0')}:${s.toString(16).padStart(2, '0')}.${f}`;
  const modelBars: string[] = [];
  for (const f of model.functions) {
    for (const b of f.bars) {
      const at = b.firmwareStart ?? b.start;
      // SeaBIOS allocates (and prints) memory BARs of at least 4 KiB.
      if (at !== undefined) modelBars.push(`${bdf(f.bus, f.slot, f.fn)} bar${b.bar} ${hx(at)} size ${hx(b.size < 4096n ? 4096n : b.size)}`);
    }
  }
  diff('BARs', modelBars.sort(), real.bars.filter((b) => b.type !== 'io').map((b) => `${b.bdf} bar${b.bar} ${hx(b.addr)} size ${hx(b.size)}`).sort());
  const w = (x?: { start: bigint; end: bigint }) => (x ? `${hx(x.start)}-${hx(x.end)}` : 'none');
  if (w(model.firmware64) !== w(real.window64)) out.push(`64-bit window: model ${w(model.firmware64)}, SeaBIOS ${w(real.window64)}`);
  if (real.regions) {
    const p = model.platform;
    const mine: string[] = [];
    const r = (name: string, start: bigint, size: bigint) => mine.push(`${name} ${hx(start)}-${hx(start + size - 1n)}`);
    if (p.deviceMemory) r('device-memory', p.deviceMemory.base, p.deviceMemory.size);
    if (p.cxl) {
      r('cxl_host_reg', p.cxl.base, 1n << 20n);
      for (const h of p.cxl.hostBridges) r('pxb-cxl-host', h.base, 0x10000n);
      for (const x of p.cxl.windows) if (x.size > 0n) r('cxl-fixed-memory-region', x.base, x.size);
    }
    diffQ('QEMU regions (info mtree)', mine.sort(), real.regions.map((x) => `${x.name} ${hx(x.start)}-${hx(x.end)}`).sort());
  }
  return out;
}
