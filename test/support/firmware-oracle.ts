/**
 * The firmware oracle: a QEMU configuration run with no guest by memfabric's
 * probe (server/src/runtime/probe.ts), and what SeaBIOS printed on its debug
 * console (its final E820 table, every BAR it maps, its 64-bit window, the CPU
 * physical address bits it accepted) and QEMU's own regions (`info mtree`),
 * in SeaBIOS's terms, for comparison with the layout model entry by entry.
 * The probe resolves relative `mem-path=` values in a private temporary
 * directory, stands in for backing files, and ends every QEMU it starts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeArgv } from '../../server/src/runtime/probe';

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

export function qemuVersionOf(bin: string): string | undefined {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? /version (\d+\.\d+\.\d+)/.exec(r.stdout)?.[1] : undefined;
}

/**
 * Run `argv` (a QEMU command line; argv[0], the binary, is replaced by `qemu`)
 * with memfabric's own probe (server/src/runtime/probe.ts: SeaBIOS's debug
 * console until its E820 table, QMP `info mtree`, scratch stand-ins for the
 * backing files, every process ended), and give what it saw in SeaBIOS's own
 * terms. The layout tests so hold the model and the probe to the same firmware.
 */
export async function runFirmware(qemu: string, argv: string[], opts: { timeoutMs?: number } = {}): Promise<FirmwareView> {
  const dir = mkdtempSync(join(tmpdir(), 'mf-fw-oracle-'));
  try {
    const r = await probeArgv(argv, { qemu, cwd: dir, cache: false, agent: false, timeoutMs: opts.timeoutMs ?? 20_000 });
    if (!r.ok) {
      if (r.reason === 'firmware') return { seabios: '', e820: [], bars: [], panic: r.message, log: (r.firmwareTail ?? []).join('\n') };
      throw new Error(`the probe under ${qemu} failed (${r.reason}): ${r.message}\n${r.stderr ?? ''}\n${(r.firmwareTail ?? []).join('\n')}`);
    }
    const regions = new Map<string, { name: string; start: bigint; end: bigint }>();
    for (const x of r.regions) if (REGION_NAMES.has(x.name)) regions.set(`${x.name} ${x.start}`, { name: x.name, start: x.start, end: x.end });
    const w = r.windows64[0];
    return {
      seabios: `SeaBIOS (version ${r.firmware})`,
      physbits: r.cpu ? { signature: r.cpu.vendor, pae: true, lm: true, bits: r.cpu.physBits, valid: true } : undefined,
      e820: r.e820.map((e) => ({ start: e.start, end: e.end + 1n, type: e.code })),
      bars: r.bars.map((b) => ({ bdf: b.bdf.replace(/^[0-9a-f]{4}:/, ''), bar: b.bar, addr: b.start, size: b.size, type: b.kind })),
      window64: w ? { start: w.start, end: w.end + 1n } : undefined,
      regions: [...regions.values()].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0)),
      log: '',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
