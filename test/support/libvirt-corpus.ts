/**
 * The libvirt corpus (test/corpus/libvirt/NNN.xml): what libvirt 9.0 and the
 * QEMU it runs do with a domain, found by really doing it on a private
 * libvirtd: define, the command line (domxml-to-native), a real start, then
 * destroy and undefine. Shared by record.mjs (writes NNN.expected.json) and
 * test/libvirt-corpus.test.ts (compares a live run with the record).
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PrivateLibvirtd, normalizeStartError, qemuWords } from './libvirtd';
import { virshError } from '../../server/src/host/libvirt';

export interface DomainOutcome {
  libvirt: string;
  qemu: string;
  /** 'ok' or libvirt's reason. */
  define: string;
  argv: string;
  /** 'ok' (QEMU ran) or the start error, time stamps removed. */
  start: string;
  /** QEMU's own words in the start error, if QEMU refused. */
  qemuSays?: string;
  /** libvirt defined the domain but kept none of its <qemu:commandline> (dumpxml has none). */
  droppedCommandline?: true;
}

/** The domain text with @DIR@ replaced by dir. */
export function domainText(file: string, dir: string): string {
  return readFileSync(file, 'utf8').split('@DIR@').join(dir);
}

/**
 * Files the domain needs, from its first comment: "files: nvdimm0=256M FAM=64M"
 * (sparse, in the scratch directory; M = MiB). Returns their sizes.
 */
export function makeFiles(text: string, dir: string): Map<string, bigint> {
  const made = new Map<string, bigint>();
  const spec = /^<!--[^]*?files: ([^\n]*?)\s*-->/.exec(text)?.[1] ?? /files: ([^\n]*?)\s*-->/.exec(text.split('\n')[0])?.[1];
  for (const m of (spec ?? '').matchAll(/([\w.-]+)=(\d+)M\b/g)) {
    const size = BigInt(m[2]) << 20n;
    const f = join(dir, m[1]);
    writeFileSync(f, '');
    truncateSync(f, Number(size));
    made.set(m[1], size);
  }
  return made;
}

export function domainName(text: string): string {
  return /<name>([^<]+)<\/name>/.exec(text)?.[1] ?? 'unnamed';
}

/**
 * Define, translate, start, destroy and undefine the domain in file. With
 * emulator, the domain's <emulator> is that QEMU binary instead (QEMU 10.0).
 */
export function runDomain(d: PrivateLibvirtd, file: string, emulator?: string): DomainOutcome {
  const scratch = mkdtempSync(join(tmpdir(), 'memfabric-lvcorpus-'));
  let out: DomainOutcome | undefined;
  chmodSync(scratch, 0o755);
  try {
    let text = domainText(file, scratch);
    if (emulator) text = text.replace(/<emulator>[^<]*<\/emulator>/, `<emulator>${emulator}</emulator>`);
    makeFiles(text, scratch);
    const xml = join(scratch, 'domain.xml');
    writeFileSync(xml, text);
    const name = domainName(text);
    const ver = d.virsh('version');
    out = {
      libvirt: /Using library: libvirt (\S+)/.exec(ver.stdout)?.[1] ?? '?',
      qemu: (emulator ? /QEMU emulator version (\S+)/.exec(spawnSync(emulator, ['--version'], { encoding: 'utf8' }).stdout ?? '')?.[1] : /Running hypervisor: QEMU (\S+)/.exec(ver.stdout)?.[1]) ?? '?',
      define: 'ok',
      argv: 'ok',
      start: 'ok',
    };
    const def = d.virsh('define', xml);
    if (def.status !== 0) {
      out.define = virshError(def.stderr);
      out.argv = out.start = 'not reached';
      return out;
    }
    try {
      if (/<[\w-]+:commandline/.test(text) && !d.virsh('dumpxml', name).stdout.includes('commandline>')) out.droppedCommandline = true;
      const nat = d.virsh('domxml-to-native', 'qemu-argv', '--domain', name);
      if (nat.status !== 0) out.argv = virshError(nat.stderr);
      const st = d.virsh('start', name);
      if (st.status !== 0) {
        out.start = normalizeStartError(virshError(st.stderr));
        const q = qemuWords(out.start);
        if (q) out.qemuSays = q;
      } else {
        // Running: QEMU took the command line. (No disk: SeaBIOS finds nothing to boot, which is fine.)
        d.virsh('destroy', name);
      }
    } finally {
      d.virsh('undefine', name);
    }
    return out;
  } finally {
    for (const k of ['define', 'argv', 'start', 'qemuSays'] as const) if (out?.[k]) out[k] = out[k]!.split(scratch).join('@DIR@').split(emulator ?? '\u0000').join('@QEMU@');
    rmSync(scratch, { recursive: true, force: true });
  }
}
