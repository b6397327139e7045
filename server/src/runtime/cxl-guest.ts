/**
 * What the guest saw of a CXL QMP command (memfabric cxl …): the record the
 * guest's kernel traced for it (6.12: the cxl trace events the built-in guest
 * enables at boot, /sys/kernel/tracing/trace) and, for poison, the device's
 * poison list as the guest reads it (`cxl list -L --media-errors`, ndctl 81).
 * The guest's memdev is found by the device's serial number.
 */
import type { CxlQmpCommand } from './cxl-control';

export type GuestRun = (argv: string[]) => Promise<{ exitCode: number; stdout: string; stderr: string }>;

/** The trace event each command shows up as in the guest (Linux 6.12's drivers/cxl/core/trace.h). */
export const TRACE_EVENT: Partial<Record<CxlQmpCommand, string>> = {
  'cxl-inject-poison': 'cxl_poison',
  'cxl-inject-general-media-event': 'cxl_general_media',
  'cxl-inject-dram-event': 'cxl_dram',
  'cxl-inject-memory-module-event': 'cxl_memory_module',
  'cxl-inject-correctable-error': 'cxl_aer_correctable_error',
  'cxl-inject-uncorrectable-errors': 'cxl_aer_uncorrectable_error',
};

export interface GuestView {
  memdev?: string;
  /** Trace records of the command's event for this memdev that arrived after it was sent. */
  records: string[];
  /** The poison list as the guest reads it (cxl list --media-errors). */
  mediaErrors?: { offset: number; length: number; source?: string }[];
  /** The memdev as the guest lists it (cxl list -m), for dynamic capacity. */
  memdevInfo?: Record<string, unknown>;
  /** What the guest cannot show, and why. */
  notes: string[];
}

const DC_COMMANDS: readonly string[] = ['cxl-add-dynamic-capacity', 'cxl-release-dynamic-capacity'];

const TRACE = '/sys/kernel/tracing';

/** The guest's memdev with this serial number (cxl list -M). */
export async function guestMemdev(run: GuestRun, serial: bigint): Promise<string | undefined> {
  const r = await run(['cxl', 'list', '-M']);
  if (r.exitCode !== 0 || !r.stdout.trim()) return undefined;
  const list = JSON.parse(r.stdout) as { memdev: string; serial?: number }[];
  return (Array.isArray(list) ? list : [list]).find((m) => m.serial !== undefined && BigInt(m.serial) === serial)?.memdev;
}

/** The guest's memdev with this serial number and its PCI address (cxl list -M "host"). */
export async function guestMemdevInfo(run: GuestRun, serial: bigint): Promise<{ memdev: string; host?: string } | undefined> {
  const r = await run(['cxl', 'list', '-M']);
  if (r.exitCode !== 0 || !r.stdout.trim()) return undefined;
  const list = JSON.parse(r.stdout) as { memdev: string; serial?: number; host?: string }[];
  const m = (Array.isArray(list) ? list : [list]).find((x) => x.serial !== undefined && BigInt(x.serial) === serial);
  return m ? { memdev: m.memdev, ...(m.host ? { host: m.host } : {}) } : undefined;
}

/**
 * QEMU raises an injected CXL RAS error as a PCIe internal error (uncorrectable
 * bit 22, correctable bit 14), which the device's AER mask registers mask by
 * default and Linux 6.12 leaves masked for a CXL 2.0 device: the guest then
 * sees nothing. Clear those two mask bits (setpci value:mask writes) so that
 * the error reaches the AER driver and its cxl_aer_* record. Returns a note.
 */
export async function unmaskInternalErrors(run: GuestRun, host: string): Promise<string> {
  const r = await run(['sh', '-c', `setpci -s ${host} ECAP_AER+0x08.L=0:00400000 && setpci -s ${host} ECAP_AER+0x14.L=0:00004000`]);
  return r.exitCode === 0
    ? `unmasked internal errors in ${host}'s AER masks (uncorrectable bit 22, correctable bit 14: masked by default, and QEMU injects CXL RAS errors as internal errors)`
    : `could not unmask internal errors in ${host}'s AER masks (${(r.stderr || r.stdout).trim()}): the error may stay masked in the guest`;
}

/** The trace records of `event` for `memdev` so far (undefined: the guest's kernel has no such event). */
export async function traceRecords(run: GuestRun, event: string, memdev: string): Promise<string[] | undefined> {
  const r = await run(['sh', '-c', `[ -d ${TRACE}/events/cxl/${event} ] || exit 3; grep -F ': ${event}: memdev=${memdev} ' ${TRACE}/trace || true`]);
  if (r.exitCode === 3) return undefined;
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * After the command was accepted: the new trace records (waiting up to waitMs
 * for them to arrive) and, for poison, the poison list.
 */
export async function readBack(run: GuestRun, execute: CxlQmpCommand, memdev: string, before: string[] | undefined, waitMs = 5000): Promise<GuestView> {
  const view: GuestView = { memdev, records: [], notes: [] };
  const event = TRACE_EVENT[execute];
  if (execute === 'cxl-inject-poison') {
    // Listing the poison makes the kernel read the device's list (and trace each entry as cxl_poison).
    const r = await run(['cxl', 'list', '-m', memdev, '-L', '--media-errors']);
    if (r.exitCode !== 0) view.notes.push(`the guest's cxl cannot list media errors (${(r.stderr || r.stdout).trim().split('\n')[0]}): the 6.12 guest's ndctl 81 can`);
    else {
      const m = (JSON.parse(r.stdout || '[]') as { media_errors?: GuestView['mediaErrors'] }[])[0];
      view.mediaErrors = m?.media_errors ?? [];
    }
  }
  if (DC_COMMANDS.includes(execute)) {
    // Linux has no dynamic-capacity support through 6.12: the guest lists the memdev without it.
    const r = await run(['cxl', 'list', '-m', memdev]);
    if (r.exitCode === 0) view.memdevInfo = (JSON.parse(r.stdout || '[]') as Record<string, unknown>[])[0];
    const sizes = Object.keys(view.memdevInfo ?? {}).filter((k) => /_size$/.test(k));
    view.notes.push(`the guest lists ${memdev} with ${sizes.length ? sizes.join(', ') : 'no capacity'} and no dynamic capacity: its kernel has no DCD support (none in mainline Linux through 6.12)`);
    return view;
  }
  if (!event) {
    view.notes.push("no trace event of the guest's kernel records this command");
    return view;
  }
  if (before === undefined) {
    view.notes.push(`the guest's kernel has no ${event} trace event (Linux 6.3 and later have the CXL events; the 6.12 guest enables them at boot)`);
    return view;
  }
  const seen = new Set(before);
  const end = Date.now() + waitMs;
  for (;;) {
    const now = (await traceRecords(run, event, memdev)) ?? [];
    view.records = now.filter((l) => !seen.has(l));
    if (view.records.length || Date.now() >= end) break;
    await sleep(250);
  }
  if (!view.records.length) view.notes.push(`no ${event} record for ${memdev} arrived within ${waitMs / 1000} s`);
  return view;
}

// ---------------------------------------------------------------------------
// memfabric cxl events: every cxl_* record of the guest's trace buffer, parsed

/** One cxl_* trace record as `memfabric cxl events` prints it. */
export interface CxlTraceRecord {
  /**
   * Its number (from 1) among every record the guest's trace buffer has ever
   * taken: the header's entries-written, less the entries still in the buffer,
   * plus its index among those. A ring that wrapped keeps the numbers of what
   * it still holds, so `--since` neither repeats nor skips a record.
   */
  seq: number;
  /** The trace clock's timestamp, in seconds since the guest booted. */
  time: number;
  /** The trace event: cxl_general_media, cxl_dram, cxl_memory_module, cxl_poison, cxl_aer_… */
  event: string;
  memdev?: string;
  /** The record's key=value pairs (quoted values without their quotes). */
  fields: Record<string, string>;
  /** The line as the kernel printed it. */
  line: string;
}

/** `  TASK-PID  [CPU] FLAGS  TIME: EVENT: BODY` (the flags column is absent when irq-info is off). */
const TRACE_LINE = /^\s*(.*?)-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(?:(\S{4,5})\s+)?(\d+\.\d+):\s+(\w+):\s?(.*)$/;
/** Where a next key starts: whitespace, perhaps a ' : ' group separator, then key=. */
const NEXT_KEY = /\s+(?::\s+)?[A-Za-z_]\w*=/g;

/**
 * The key=value pairs of a trace record's body as the kernel prints them
 * (drivers/cxl/core/trace.h): values may be quoted ('ECC Error'), empty
 * (region=), or hold spaces (comp_id=00 00 …); ' : ' separates groups.
 */
export function parseTraceFields(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const n = body.length;
  while (i < n) {
    const key = /\s*(?::\s+)?([A-Za-z_]\w*)=/y;
    key.lastIndex = i;
    const k = key.exec(body);
    if (!k) {
      // not a key here (a stray word): skip to the next key, if any
      NEXT_KEY.lastIndex = i;
      const m = NEXT_KEY.exec(body);
      if (!m) break;
      i = m.index;
      continue;
    }
    i = key.lastIndex;
    let value: string;
    if (body[i] === "'") {
      // quoted: up to the quote followed by whitespace or the end
      let j = i + 1;
      while (j < n && !(body[j] === "'" && (j + 1 === n || /\s/.test(body[j + 1])))) j++;
      value = body.slice(i + 1, j);
      i = Math.min(n, j + 1);
    } else {
      NEXT_KEY.lastIndex = i;
      const m = NEXT_KEY.exec(body);
      const end = m ? m.index : n;
      value = body.slice(i, end).replace(/\s+:\s*$/, '').trim();
      i = end;
    }
    out[k[1]] = value;
  }
  return out;
}

/** `# entries-in-buffer/entries-written: 3/7   #P:1` (kernel/trace/trace.c, print_event_info). */
const ENTRIES = /^# entries-in-buffer\/entries-written: (\d+)\/(\d+)/m;

/** How many records the buffer lost to its ring wrapping, and the number of the last one written. */
export function traceCounts(text: string): { dropped: number; written: number } {
  const lines = text.split('\n').filter((l) => l.trim() && !l.startsWith('#')).length;
  const m = ENTRIES.exec(text);
  if (!m) return { dropped: 0, written: lines };
  const [inBuffer, written] = [Number(m[1]), Number(m[2])];
  return { dropped: Math.max(0, written - inBuffer), written: Math.max(written, lines) };
}

/** The cxl_* records of a trace buffer's text (`cat /sys/kernel/tracing/trace`), numbered as seq says. */
export function parseCxlTrace(text: string): CxlTraceRecord[] {
  const out: CxlTraceRecord[] = [];
  let seq = traceCounts(text).dropped;
  for (const raw of text.split('\n')) {
    if (!raw.trim() || raw.startsWith('#')) continue;
    seq++;
    const m = TRACE_LINE.exec(raw);
    if (!m || !m[6].startsWith('cxl_')) continue;
    const fields = parseTraceFields(m[7]);
    out.push({ seq, time: Number(m[5]), event: m[6], ...(fields.memdev !== undefined ? { memdev: fields.memdev } : {}), fields, line: raw.trim() });
  }
  return out;
}

export interface CxlEvents {
  records: CxlTraceRecord[];
  /** The number of the last record written (a client polls with --since this). */
  last: number;
  /** Why there are no records to be had (a guest whose kernel has no cxl trace events). */
  note?: string;
}

/** The guest's cxl_* trace records after seq `since` (0: all). */
export async function cxlEvents(run: GuestRun, since = 0): Promise<CxlEvents> {
  const r = await run(['sh', '-c', `[ -d ${TRACE}/events/cxl ] || exit 3; cat ${TRACE}/trace`]);
  if (r.exitCode === 3) {
    return { records: [], last: 0, note: "the guest's kernel has no cxl trace events (Linux 6.3 and later have them; the 6.12 guest, under QEMU 10.0, enables them at boot)" };
  }
  if (r.exitCode !== 0) throw new Error(`reading ${TRACE}/trace in the guest failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
  const all = parseCxlTrace(r.stdout);
  return { records: all.filter((x) => x.seq > since), last: traceCounts(r.stdout).written };
}
