/**
 * CXL RAS, poison and dynamic capacity over QMP: `memfabric cxl poison|error|event|dc`.
 *
 * Pure parts first: the request from the command line (parseCxlArgs), the
 * Type 3 device it names as the topology model describes it (type3Device),
 * the QMP command with every argument checked against that device
 * (buildCxlCommand), and whether the node's QEMU has the command at all
 * (missingCxlCommand, from its profile's query-commands list and the table
 * CXL_QMP_SINCE). Only then sendCxlCommand talks to the node's QMP socket.
 * A check that fails throws CxlArgError naming its rule and the numbers, and
 * nothing is sent.
 *
 * The argument shapes are QEMU 10.0's qapi/cxl.json (the same in 10.2);
 * QEMU 7.2 has none of these commands.
 */
import { NodeModel, prop } from '../engine/model/model';
import { sizeOf } from '../engine/model/facts';
import { hexHuman, human, parseQemuSize } from '../engine/text/sizes';
import { QemuProfile, compareVersions, hasQmpCommand } from '../engine/qemu/profile';
import { qmpExchange } from './qmp';

/** The CXL QMP commands and the QEMU release each arrived in (the `Since:` tag of qapi/cxl.json). */
export const CXL_QMP_SINCE = {
  'cxl-inject-uncorrectable-errors': '8.0',
  'cxl-inject-correctable-error': '8.0',
  'cxl-inject-poison': '8.1',
  'cxl-inject-general-media-event': '8.1',
  'cxl-inject-dram-event': '8.1',
  'cxl-inject-memory-module-event': '8.1',
  // feature 'unstable' in qapi: the shape may still change
  'cxl-add-dynamic-capacity': '9.1',
  'cxl-release-dynamic-capacity': '9.1',
} as const;

export type CxlQmpCommand = keyof typeof CXL_QMP_SINCE;

/** A request refused before anything is sent: `rule` names the check (cxl-poison-align, …). */
export class CxlArgError extends Error {
  constructor(public readonly rule: string, message: string) {
    super(message);
    this.name = 'CxlArgError';
  }
}

// ---------------------------------------------------------------------------
// The command line

export const CXL_ACTIONS = ['poison', 'error', 'event', 'dc'] as const;
export type CxlAction = (typeof CXL_ACTIONS)[number];
const KINDS: Record<CxlAction, readonly string[]> = {
  poison: [],
  error: ['uncorrectable', 'correctable'],
  event: ['general-media', 'dram', 'memory-module'],
  dc: ['add', 'release'],
};

export interface CxlRequest {
  action: CxlAction;
  /** uncorrectable|correctable, general-media|dram|memory-module, add|release ('' for poison). */
  kind: string;
  file: string;
  node: string;
  device: string;
  /** Options by name; repeatable ones (--type of uncorrectable, --extent) keep every value. */
  options: Map<string, string[]>;
}

/** Options each request takes ('switch' = no value). */
const EVENT_COMMON = ['log', 'flags'];
const OPTIONS: Record<string, Record<string, 'value' | 'switch'>> = {
  'poison': { start: 'value', length: 'value' },
  'error uncorrectable': { type: 'value', header: 'value' },
  'error correctable': { type: 'value' },
  'event general-media': Object.fromEntries([...EVENT_COMMON, 'dpa', 'descriptor', 'type', 'transaction-type', 'channel', 'rank', 'device', 'component-id'].map((k) => [k, 'value'])),
  'event dram': Object.fromEntries([...EVENT_COMMON, 'dpa', 'descriptor', 'type', 'transaction-type', 'channel', 'rank', 'nibble-mask', 'bank-group', 'bank', 'row', 'column', 'correction-mask'].map((k) => [k, 'value'])),
  'event memory-module': Object.fromEntries([...EVENT_COMMON, 'type', 'health-status', 'media-status', 'additional-status', 'life-used', 'temperature', 'dirty-shutdown-count', 'corrected-volatile-error-count', 'corrected-persistent-error-count'].map((k) => [k, 'value'])),
  'dc add': { extent: 'value', 'host-id': 'value', policy: 'value', tag: 'value', region: 'value' },
  'dc release': { extent: 'value', 'host-id': 'value', policy: 'value', tag: 'value', region: 'value', 'forced-removal': 'switch', 'sanitize-on-release': 'switch' },
};
/** Options that may be given more than once. */
const REPEATABLE = new Set(['error uncorrectable --type', 'dc add --extent', 'dc release --extent']);
const SWITCHES = new Set(Object.values(OPTIONS).flatMap((o) => Object.keys(o).filter((k) => o[k] === 'switch')));
/** Options every request takes (the CLI's, not QEMU's). */
const GENERAL: Record<string, 'value' | 'switch'> = { format: 'value', timeout: 'value' };

export const CXL_USAGE = `usage:
  memfabric cxl poison FILE NODE DEVICE --start ADDR --length LEN
  memfabric cxl error uncorrectable FILE NODE DEVICE --type T [--type T…] [--header DW,DW,…]
  memfabric cxl error correctable FILE NODE DEVICE --type T
  memfabric cxl event general-media|dram FILE NODE DEVICE --dpa ADDR [--log L] [--flags N] [--descriptor N] [--type N] [--transaction-type N] …
  memfabric cxl event memory-module FILE NODE DEVICE [--log L] [--flags N] [--type N] [--health-status N] … [--temperature C]
  memfabric cxl dc add|release FILE NODE DEVICE --extent START:LEN [--extent …] [--region N] [--host-id N] [--policy P] [--tag T]
  (every one takes --format text|json and --timeout S; see docs/cxl.md)`;

/**
 * The request on the command line after `cxl`: the action, its kind (right
 * after the action, or after DEVICE), FILE NODE DEVICE, and the options.
 */
export function parseCxlArgs(args: string[]): CxlRequest {
  const [action, ...rest] = args;
  if (!CXL_ACTIONS.includes(action as CxlAction)) throw new CxlArgError('usage', `cxl needs an action: ${CXL_ACTIONS.join(', ')}\n${CXL_USAGE}`);
  const act = action as CxlAction;
  const positional: string[] = [];
  const raw: [string, string | undefined][] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const [k, inline] = a.slice(2).split(/=(.*)/s, 2);
    // A switch takes no value from the next word (that is FILE, NODE or DEVICE).
    if (SWITCHES.has(k)) raw.push([k, inline]);
    else raw.push([k, inline ?? (rest[i + 1] !== undefined && !rest[i + 1].startsWith('--') ? rest[++i] : undefined)]);
  }
  let kind = '';
  const kinds = KINDS[act];
  if (kinds.length) {
    const at = KINDS[act].includes(positional[0]) ? 0 : KINDS[act].includes(positional[3]) ? 3 : -1;
    if (at < 0) throw new CxlArgError('usage', `cxl ${act} needs one of ${kinds.join(', ')} (memfabric cxl ${act} ${kinds.join('|')} FILE NODE DEVICE …)`);
    kind = positional.splice(at, 1)[0];
  }
  const key = kind ? `${act} ${kind}` : act;
  if (positional.length !== 3) throw new CxlArgError('usage', `cxl ${key} needs FILE NODE DEVICE (got ${positional.length ? positional.map((p) => `'${p}'`).join(' ') : 'none'})`);
  const allowed = { ...OPTIONS[key], ...GENERAL };
  const options = new Map<string, string[]>();
  for (const [k, v] of raw) {
    const how = allowed[k];
    if (!how) throw new CxlArgError('usage', `cxl ${key} takes no option --${k} (it takes ${Object.keys(allowed).map((o) => `--${o}`).join(', ')})`);
    if (how === 'switch') {
      if (v !== undefined && !['on', 'true', 'yes'].includes(v)) throw new CxlArgError('usage', `--${k} is a switch: it takes no value`);
      options.set(k, ['on']);
      continue;
    }
    if (v === undefined) throw new CxlArgError('usage', `--${k} needs a value`);
    if (options.has(k) && !REPEATABLE.has(`${key} --${k}`)) throw new CxlArgError('usage', `--${k} is given twice`);
    options.set(k, [...(options.get(k) ?? []), v]);
  }
  const fmt = options.get('format')?.[0];
  if (fmt !== undefined && fmt !== 'text' && fmt !== 'json') throw new CxlArgError('usage', `--format must be text or json, not '${fmt}'`);
  return { action: act, kind, file: positional[0], node: positional[1], device: positional[2], options };
}

// ---------------------------------------------------------------------------
// The device, as the topology model describes it

/** hw/mem/cxl_type3.c: dynamic capacity is handed out in blocks of 2 MiB (CXL_CAPACITY_MULTIPLIER is 256 MiB). */
export const DC_BLOCK_SIZE = 2n * 1024n * 1024n;

export interface Type3Device {
  id: string;
  /** The canonical QOM path QMP wants: a device with an id is /machine/peripheral/<id>. */
  qomPath: string;
  /** Bytes of volatile (volatile-memdev), persistent (memdev / persistent-memdev) and dynamic capacity (volatile-dc-memdev). */
  volatile: bigint;
  persistent: bigint;
  dynamic: bigint;
  /** Device physical addresses 0 … capacity-1: volatile, then persistent, then the DC regions (QEMU's order). */
  capacity: bigint;
  /** The DC regions (num-dc-regions equal parts of volatile-dc-memdev), empty without dynamic capacity. */
  dcRegions: { base: bigint; len: bigint }[];
  /** Its serial number (sn=), by which the guest's memdev is found. */
  serial?: bigint;
}

/** The cxl-type3 device `id` of a node (a topology <type3>, or a -device cxl-type3 in <qemu> or a .qemu file). */
export function type3Device(node: NodeModel, id: string): Type3Device {
  const d = node.devices.find((x) => x.id?.text === id);
  const type3s = node.devices.filter((x) => x.driver === 'cxl-type3' && x.id).map((x) => x.id!.text);
  if (!d) throw new CxlArgError('cxl-device', `node ${node.name} has no device '${id}'${type3s.length ? ` (its CXL Type 3 devices: ${type3s.join(', ')})` : ' and no CXL Type 3 device with an id'}`);
  if (d.driver !== 'cxl-type3') throw new CxlArgError('cxl-device', `'${id}' of node ${node.name} is a ${d.driver}, not a CXL Type 3 device (cxl-type3)${type3s.length ? `; its Type 3 devices: ${type3s.join(', ')}` : ''}`);
  const backendSize = (key: string): bigint => {
    const p = prop(d.props, key);
    if (!p) return 0n;
    const b = node.backends.get(p.value.text);
    const size = b && sizeOf(b.size);
    if (size === undefined) throw new CxlArgError('cxl-device', `the size of ${key}=${p.value.text} of '${id}' is not known from the topology`);
    return size;
  };
  const volatile = backendSize('volatile-memdev');
  const persistent = backendSize('memdev') + backendSize('persistent-memdev');
  const n = Number(prop(d.props, 'num-dc-regions')?.value.text ?? 0);
  // QEMU ignores volatile-dc-memdev when num-dc-regions is 0.
  const dynamic = n > 0 ? backendSize('volatile-dc-memdev') : 0n;
  const dcRegions: Type3Device['dcRegions'] = [];
  if (n > 0 && dynamic > 0n) {
    const len = dynamic / BigInt(n);
    for (let i = 0; i < n; i++) dcRegions.push({ base: volatile + persistent + BigInt(i) * len, len });
  }
  let serial: bigint | undefined;
  try {
    const sn = prop(d.props, 'sn')?.value.text;
    serial = sn === undefined ? undefined : BigInt(sn);
  } catch {
    serial = undefined;
  }
  return { id, qomPath: `/machine/peripheral/${id}`, volatile, persistent, dynamic, capacity: volatile + persistent + dynamic, dcRegions, ...(serial !== undefined ? { serial } : {}) };
}

// ---------------------------------------------------------------------------
// Numbers

/** An address or length, parsed as QEMU parses sizes (64, 0x1000, 4K, 2M). */
export function parseAddress(what: string, text: string): bigint {
  const r = parseQemuSize(text.trim());
  if (!r.ok) throw new CxlArgError('usage', `${what} '${text}' is not a number or size (${r.detail ?? r.reason}; e.g. 4096, 0x1000, 4K)`);
  return r.value;
}

/** An integer field of QEMU's (decimal or 0x hex) within [min, max]. */
export function parseField(what: string, text: string, min: bigint, max: bigint, typeName: string): bigint {
  const t = text.trim();
  const m = /^(-?)(0x[0-9a-f]+|\d+)$/i.exec(t);
  if (!m) throw new CxlArgError('usage', `${what} '${text}' is not an integer (decimal or 0x hex)`);
  const v = (m[1] ? -1n : 1n) * BigInt(m[2]);
  if (v < min || v > max) throw new CxlArgError('cxl-field-range', `${what} ${t} is outside ${typeName} (${min}…${max === 0xffffffffffffffffn ? '2^64-1' : `0x${max.toString(16)}`})`);
  return v;
}

const U8 = [0n, 0xffn, 'uint8'] as const;
const U16 = [0n, 0xffffn, 'uint16'] as const;
const U24 = [0n, 0xffffffn, 'a 24-bit field'] as const;
const U32 = [0n, 0xffffffffn, 'uint32'] as const;
const I16 = [-0x8000n, 0x7fffn, 'int16'] as const;
const U64 = [0n, 0xffffffffffffffffn, 'uint64'] as const;

/** Numbers as QMP's JSON takes them: every value here was checked against the device, far below 2^53. */
function num(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CxlArgError('cxl-field-range', `${what} ${hexHuman(v)} is beyond what memfabric can send exactly (2^53)`);
  return Number(v);
}

/** "0x1001 (~4 KiB)" for addresses, as every message shows them. */
const hh = hexHuman;

// ---------------------------------------------------------------------------
// The QMP command

export const UNCOR_ERROR_TYPES = ['cache-data-parity', 'cache-address-parity', 'cache-be-parity', 'cache-data-ecc', 'mem-data-parity', 'mem-address-parity', 'mem-be-parity', 'mem-data-ecc', 'reinit-threshold', 'rsvd-encoding', 'poison-received', 'receiver-overflow', 'internal', 'cxl-ide-tx', 'cxl-ide-rx'] as const;
export const COR_ERROR_TYPES = ['cache-data-ecc', 'mem-data-ecc', 'crc-threshold', 'retry-threshold', 'cache-poison-received', 'mem-poison-received', 'physical'] as const;
export const EVENT_LOGS = ['informational', 'warning', 'failure', 'fatal'] as const;
export const DC_SELECTION_POLICIES = ['free', 'contiguous', 'prescriptive', 'enable-shared-access'] as const;
export const DC_REMOVAL_POLICIES = ['tag-based', 'prescriptive'] as const;
/** hw/cxl: a poison record and the alignment of its start are whole cache lines. */
export const CXL_CACHE_LINE = 64n;

export interface CxlQmp {
  execute: CxlQmpCommand;
  arguments: Record<string, unknown>;
}

function oneOf<T extends readonly string[]>(what: string, v: string, choices: T): T[number] {
  if (!choices.includes(v)) throw new CxlArgError('usage', `${what} '${v}' is not one of ${choices.join(', ')}`);
  return v;
}

/**
 * The QMP command for a request on a device, every argument checked first
 * (the rule names are in docs/cxl.md). Throws CxlArgError.
 */
export function buildCxlCommand(req: Pick<CxlRequest, 'action' | 'kind' | 'options'>, dev: Type3Device): CxlQmp {
  const opt = (k: string) => req.options.get(k)?.[0];
  const all = (k: string) => req.options.get(k) ?? [];
  const need = (k: string) => {
    const v = opt(k);
    if (v === undefined) throw new CxlArgError('usage', `cxl ${req.action}${req.kind ? ` ${req.kind}` : ''} needs --${k}`);
    return v;
  };
  const field = (k: string, range: readonly [bigint, bigint, string], dflt?: bigint): bigint | undefined => {
    const v = opt(k);
    return v === undefined ? dflt : parseField(`--${k}`, v, range[0], range[1], range[2]);
  };
  const path = dev.qomPath;
  const where = `device '${dev.id}' (capacity ${hh(dev.capacity)}${dev.dynamic ? `, of which ${hh(dev.dynamic)} dynamic` : ''})`;

  if (req.action === 'poison') {
    const start = parseAddress('--start', need('start'));
    const length = parseAddress('--length', need('length'));
    if (length === 0n) throw new CxlArgError('cxl-poison-length', `poison --length must be more than 0 bytes`);
    if (start % CXL_CACHE_LINE) throw new CxlArgError('cxl-poison-align', `poison --start ${hh(start)} is not a multiple of 64 bytes (a cache line): QEMU wants it 64-byte aligned (the nearest are ${hh(start - (start % 64n))} and ${hh(start - (start % 64n) + 64n)})`);
    if (length % CXL_CACHE_LINE) throw new CxlArgError('cxl-poison-align', `poison --length ${hh(length)} is not a multiple of 64 bytes (a cache line)`);
    if (start + length > dev.capacity) {
      throw new CxlArgError('cxl-poison-capacity', `poison ${hh(start)}…${hh(start + length - 1n)} (${human(length)}) is not inside ${where}: device physical addresses end at ${hh(dev.capacity - 1n)}`);
    }
    return { execute: 'cxl-inject-poison', arguments: { path, start: num(start, '--start'), length: num(length, '--length') } };
  }

  if (req.action === 'error') {
    const types = all('type');
    if (!types.length) throw new CxlArgError('usage', `cxl error ${req.kind} needs --type (${(req.kind === 'correctable' ? COR_ERROR_TYPES : UNCOR_ERROR_TYPES).join(', ')})`);
    if (req.kind === 'correctable') return { execute: 'cxl-inject-correctable-error', arguments: { path, type: oneOf('--type', types[0], COR_ERROR_TYPES) } };
    const headerText = opt('header');
    const header = headerText === undefined ? [] : headerText.split(',').filter((s) => s.trim() !== '').map((s, i) => Number(parseField(`--header DWORD ${i}`, s, ...U32)));
    // QEMU keeps 32 DWORDs and drops the rest without a word; the CXL header log is 16 DWORDs.
    if (header.length > 32) throw new CxlArgError('cxl-error-header', `--header has ${header.length} DWORDs; QEMU keeps at most 32 (the CXL header log holds 16) and would drop the rest silently`);
    return { execute: 'cxl-inject-uncorrectable-errors', arguments: { path, errors: types.map((t) => ({ type: oneOf('--type', t, UNCOR_ERROR_TYPES), header })) } };
  }

  if (req.action === 'event') {
    const log = oneOf('--log', opt('log') ?? 'informational', EVENT_LOGS);
    // Event Record Flags bits 1:0 are the record's severity: by default the log's own.
    const flags = Number(field('flags', U8, BigInt(EVENT_LOGS.indexOf(log)))!);
    if (req.kind === 'memory-module') {
      const life = field('life-used', U8, 0n)!;
      if (life > 100n) throw new CxlArgError('cxl-field-range', `--life-used ${life} is a percentage of the expected life span (0…100)`);
      return {
        execute: 'cxl-inject-memory-module-event',
        arguments: {
          path, log, flags,
          type: Number(field('type', U8, 0n)), 'health-status': Number(field('health-status', U8, 0n)), 'media-status': Number(field('media-status', U8, 0n)),
          'additional-status': Number(field('additional-status', U8, 0n)), 'life-used': Number(life), temperature: Number(field('temperature', I16, 0n)),
          'dirty-shutdown-count': Number(field('dirty-shutdown-count', U32, 0n)), 'corrected-volatile-error-count': Number(field('corrected-volatile-error-count', U32, 0n)),
          'corrected-persistent-error-count': Number(field('corrected-persistent-error-count', U32, 0n)),
        },
      };
    }
    // The DPA's low 6 bits carry flags (volatile, not repairable); the address is the rest.
    const dpa = parseAddress('--dpa', need('dpa'));
    const addr = dpa & ~(CXL_CACHE_LINE - 1n);
    if (addr >= dev.capacity) throw new CxlArgError('cxl-event-dpa', `--dpa ${hh(dpa)} (address ${hh(addr)}, the low 6 bits being flags) is not inside ${where}: device physical addresses end at ${hh(dev.capacity - 1n)}`);
    const a: Record<string, unknown> = {
      path, log, flags, dpa: num(dpa, '--dpa'),
      descriptor: Number(field('descriptor', U8, 0n)), type: Number(field('type', U8, 0n)), 'transaction-type': Number(field('transaction-type', U8, 0n)),
    };
    const optional = (k: string, range: readonly [bigint, bigint, string]) => {
      const v = field(k, range);
      if (v !== undefined) a[k] = Number(v);
    };
    optional('channel', U8);
    optional('rank', U8);
    if (req.kind === 'general-media') {
      // QEMU stores device in 3 bytes (st24_le_p): higher bits would be lost.
      optional('device', U24);
      const cid = opt('component-id');
      if (cid !== undefined) {
        if (Buffer.byteLength(cid) > 15) throw new CxlArgError('cxl-event-component-id', `--component-id '${cid}' is ${Buffer.byteLength(cid)} bytes; the record holds 16 and QEMU keeps at most 15`);
        a['component-id'] = cid;
      }
      return { execute: 'cxl-inject-general-media-event', arguments: a };
    }
    optional('nibble-mask', U24);
    optional('bank-group', U8);
    optional('bank', U8);
    optional('row', U24);
    optional('column', U16);
    const cm = opt('correction-mask');
    if (cm !== undefined) {
      const masks = cm.split(',').map((s, i) => parseField(`--correction-mask ${i}`, s, ...U64));
      if (masks.length > 4) throw new CxlArgError('cxl-field-range', `--correction-mask has ${masks.length} values; the DRAM event record holds 4 (QEMU drops the rest)`);
      a['correction-mask'] = masks.map((m, i) => num(m, `--correction-mask ${i}`));
    }
    return { execute: 'cxl-inject-dram-event', arguments: a };
  }

  // dc add | release
  if (!dev.dcRegions.length) throw new CxlArgError('cxl-dc-none', `${where} has no dynamic capacity: it needs num-dc-regions=N and volatile-dc-memdev=BACKEND (QEMU 9.1 and later)`);
  const region = Number(field('region', U8, 0n));
  if (region >= dev.dcRegions.length) throw new CxlArgError('cxl-dc-region', `--region ${region}: device '${dev.id}' has ${dev.dcRegions.length} DC region(s), numbered 0…${dev.dcRegions.length - 1}`);
  const r = dev.dcRegions[region];
  const texts = all('extent');
  if (!texts.length) throw new CxlArgError('usage', `cxl dc ${req.kind} needs at least one --extent START:LEN (offsets within DC region ${region}, ${hh(r.len)})`);
  const extents = texts.map((t) => {
    const m = /^([^:]+):([^:]+)$/.exec(t.trim());
    if (!m) throw new CxlArgError('usage', `--extent '${t}' is not START:LEN (e.g. 0:2M)`);
    return { offset: parseAddress('--extent start', m[1]), len: parseAddress('--extent length', m[2]) };
  });
  const seen: { offset: bigint; len: bigint }[] = [];
  for (const e of extents) {
    const label = `extent 0x${e.offset.toString(16)}:0x${e.len.toString(16)} (${human(e.len)} at offset ${human(e.offset)})`;
    if (e.len === 0n) throw new CxlArgError('cxl-dc-extent-length', `${label} has length 0`);
    if (e.offset % DC_BLOCK_SIZE || e.len % DC_BLOCK_SIZE) throw new CxlArgError('cxl-dc-extent-align', `${label}: start and length must be multiples of the DC block size ${hh(DC_BLOCK_SIZE)}`);
    if (e.offset + e.len > r.len) throw new CxlArgError('cxl-dc-extent-range', `${label} ends at ${hh(e.offset + e.len)}, past the end of DC region ${region} of '${dev.id}' (${hh(r.len)}; offsets are relative to the region, which starts at DPA ${hh(r.base)})`);
    const other = seen.find((s) => e.offset < s.offset + s.len && s.offset < e.offset + e.len);
    if (other) throw new CxlArgError('cxl-dc-extent-overlap', `${label} overlaps extent ${hh(other.offset)}:${hh(other.len)} of the same request`);
    seen.push(e);
  }
  const base: Record<string, unknown> = { path, 'host-id': Number(field('host-id', U16, 0n)) };
  const tail: Record<string, unknown> = { region, ...(opt('tag') !== undefined ? { tag: opt('tag') } : {}), extents: extents.map((e) => ({ offset: num(e.offset, '--extent start'), len: num(e.len, '--extent length') })) };
  if (req.kind === 'add') {
    return { execute: 'cxl-add-dynamic-capacity', arguments: { ...base, 'selection-policy': oneOf('--policy', opt('policy') ?? 'prescriptive', DC_SELECTION_POLICIES), ...tail } };
  }
  return {
    execute: 'cxl-release-dynamic-capacity',
    arguments: {
      ...base, 'removal-policy': oneOf('--policy', opt('policy') ?? 'prescriptive', DC_REMOVAL_POLICIES),
      ...(opt('forced-removal') ? { 'forced-removal': true } : {}), ...(opt('sanitize-on-release') ? { 'sanitize-on-release': true } : {}),
      ...tail,
    },
  };
}

/**
 * Why the node's QEMU cannot take the command, or undefined when it can:
 * the profile's list of QMP commands decides; a profile without one, its version.
 */
export function missingCxlCommand(qemu: Pick<QemuProfile, 'version' | 'commands'>, command: CxlQmpCommand): string | undefined {
  const since = CXL_QMP_SINCE[command];
  const has = hasQmpCommand(qemu, command);
  if (has === true || (has === undefined && compareVersions(qemu.version, since) >= 0)) return undefined;
  return `${command} needs QEMU ≥ ${since} (this node runs QEMU ${qemu.version})`;
}

// ---------------------------------------------------------------------------
// QMP

export type CxlAnswer = { ok: true; return: unknown } | { ok: false; error: { class: string; desc: string } } | { ok: false; noAnswer: string };

/** Send one command on the node's QMP socket; QEMU's answer, its refusal, or why there was none. */
export async function sendCxlCommand(socket: string, cmd: CxlQmp, timeoutMs: number): Promise<CxlAnswer> {
  const r = await qmpExchange(socket, [cmd], timeoutMs, { continueOnError: true });
  const a = r.answers[0];
  if (a && 'return' in a) return { ok: true, return: a.return };
  if (a && 'error' in a) return { ok: false, error: a.error };
  const why = r.returned === 0 ? 'QEMU did not greet on its QMP socket' : r.timedOut ? `no answer within ${timeoutMs} ms` : r.closed ? 'QEMU closed its QMP socket' : 'no answer';
  return { ok: false, noAnswer: why };
}
