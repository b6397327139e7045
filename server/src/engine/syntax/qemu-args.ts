/**
 * QEMU's command-line grammar: which options take a value, and the
 * `key=value,key=value` syntax of option values with `,,` escaping a comma.
 */
import { MStr, Span } from '../text/source';

/**
 * Options of qemu-system-x86_64 7.2 that take an argument (qemu-options.hx,
 * HAS_ARG), as the Debian 7.2 binary reads them: `-NAME` as the last word
 * makes it say "requires an argument" (test/shell.test.ts asks it).
 */
export const OPTIONS_WITH_ARG = new Set([
  'machine', 'M', 'm', 'smp', 'cpu', 'accel', 'object', 'device', 'numa', 'global', 'name', 'kernel', 'initrd',
  'append', 'dtb', 'drive', 'blockdev', 'netdev', 'nic', 'net', 'chardev', 'serial', 'parallel', 'monitor', 'mon',
  'qmp', 'qmp-pretty', 'display', 'vga', 'bios', 'L', 'boot', 'fw_cfg', 'pidfile', 'D', 'd', 'k', 'rtc', 'smbios',
  'incoming', 'loadvm', 'mem-path', 'overcommit', 'sandbox', 'msg', 'trace', 'icount', 'runas', 'chroot', 'uuid',
  'watchdog-action', 'action', 'cdrom', 'hda', 'hdb', 'hdc', 'hdd', 'fda', 'fdb', 'pflash', 'mtdblock', 'sd',
  'iscsi', 'audiodev', 'audio', 'spice', 'vnc', 'option-rom', 'semihosting-config', 'add-fd', 'plugin',
  'readconfig', 'virtfs', 'fsdev', 'tpmdev', 'compat', 'echr', 'gdb', 'debugcon', 'usbdevice', 'set', 'acpitable',
  'rotate', 'xen-domid', 'g', 'prom-env', 'dfilter', 'dump-vmstate', 'seed', 'qtest', 'qtest-log',
]);

/** Options without an argument (same source). */
export const OPTIONS_WITHOUT_ARG = new Set([
  'S', 's', 'nographic', 'enable-kvm', 'no-reboot', 'no-shutdown', 'daemonize', 'snapshot', 'nodefaults',
  'no-acpi', 'no-hpet', 'full-screen', 'no-user-config', 'version', 'help', 'h', 'usb', 'only-migratable',
  'preconfig', 'portrait', 'win2k-hack', 'singlestep', 'mem-prealloc', 'no-fd-bootchk', 'old-param', 'semihosting',
  'xen-attach', 'xen-domid-restrict', 'async-teardown', 'enable-sync-profile', 'audio-help',
]);

export interface QemuArg {
  /** Option name without dashes, e.g. "device" ("--device" and "-device" are the same to QEMU). */
  name: string;
  /** The option word as written. */
  option: MStr;
  value?: MStr;
}

export interface QemuArgv {
  /** The executable word, if the command names one. */
  binary?: MStr;
  args: QemuArg[];
  /** Words QEMU would reject as not being options. */
  strays: MStr[];
  /** Options QEMU does not know. */
  unknown: MStr[];
  /** An option that needs a value but is the last word. */
  missingValue: MStr[];
  /** Everything, for emission. */
  words: MStr[];
}

export function isQemuBinary(word: string): boolean {
  const base = word.slice(word.lastIndexOf('/') + 1);
  return /^qemu-system-[a-z0-9_]+$/.test(base) || base === 'qemu-kvm';
}

/** Split the words of a QEMU invocation (binary first, or only options) into options with their values. */
export function readQemuArgv(words: MStr[]): QemuArgv {
  const out: QemuArgv = { args: [], strays: [], unknown: [], missingValue: [], words };
  let i = 0;
  if (words.length && isQemuBinary(words[0].text)) {
    out.binary = words[0];
    i = 1;
  }
  for (; i < words.length; i++) {
    const w = words[i];
    if (!w.text.startsWith('-') || w.text === '-' || w.text === '--') {
      // QEMU treats a non-option as the hda image (deprecated), which is never what a topology means.
      out.strays.push(w);
      continue;
    }
    const name = w.text.replace(/^--?/, '');
    if (OPTIONS_WITH_ARG.has(name)) {
      if (i + 1 >= words.length) {
        out.missingValue.push(w);
        out.args.push({ name, option: w });
      } else {
        out.args.push({ name, option: w, value: words[++i] });
      }
    } else if (OPTIONS_WITHOUT_ARG.has(name)) {
      out.args.push({ name, option: w });
    } else {
      out.unknown.push(w);
      out.args.push({ name, option: w });
    }
  }
  return out;
}

export interface KeyVal {
  /** Key as QEMU sees it; for the implied first value, the implied key name. */
  key: string;
  keySpan: Span;
  value: MStr;
  /** First element written without "key=" (driver, qom-type, machine type, size, ...). */
  implied: boolean;
  /** Written as a bare word "flag" (short-form boolean "flag=on"). */
  bare: boolean;
}

/**
 * Parse "a,b=c,d=e,,f" as QemuOpts/keyval do: commas separate, ",," is a
 * literal comma, the first element may omit its key (impliedKey).
 */
export function parseKeyvals(value: MStr, impliedKey?: string): KeyVal[] {
  const t = value.text;
  const out: KeyVal[] = [];
  // Split on single commas, keeping ",," as an escaped comma.
  const elems: MStr[] = [];
  let from = 0;
  let i = 0;
  const pieces: MStr[] = [];
  if (!t.includes(',,')) {
    // (no escaped comma, as nearly always: each element is a slice of the value)
    for (let c = t.indexOf(','); c >= 0; c = t.indexOf(',', from)) {
      elems.push(value.slice(from, c));
      from = c + 1;
    }
    elems.push(value.slice(from));
    i = t.length + 1;
  }
  while (i <= t.length) {
    if (i === t.length || t[i] === ',') {
      if (i < t.length && t[i + 1] === ',') {
        pieces.push(value.slice(from, i + 1)); // keep one comma
        i += 2;
        from = i;
        continue;
      }
      pieces.push(value.slice(from, i));
      elems.push(pieces.length === 1 ? pieces[0] : MStr.concat(pieces));
      pieces.length = 0;
      from = i + 1;
    }
    i++;
  }
  elems.forEach((e, idx) => {
    if (e.length === 0 && idx === elems.length - 1 && idx > 0) return; // trailing comma
    const eq = e.text.indexOf('=');
    if (idx === 0 && impliedKey && eq < 0) {
      out.push({ key: impliedKey, keySpan: e.span(), value: e, implied: true, bare: false });
      return;
    }
    if (eq < 0) {
      out.push({ key: e.text, keySpan: e.span(), value: MStr.synthetic('on', e.span()), implied: false, bare: true });
      return;
    }
    out.push({ key: e.text.slice(0, eq), keySpan: e.span(0, eq), value: e.slice(eq + 1), implied: false, bare: false });
  });
  return out;
}
