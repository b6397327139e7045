/**
 * The layout model against the real firmware, under both modelled QEMUs:
 * QEMU 7.2 with SeaBIOS 1.16.2 (the system's qemu-system-x86_64) and QEMU
 * 10.0 with SeaBIOS 1.16.3 (scripts/qemu10-setup.sh; MEMFABRIC_QEMU10 names
 * another binary). Each configuration is started without a guest; SeaBIOS's
 * debug console gives its E820 table, every memory BAR it maps and its 64-bit
 * window (test/support/firmware-oracle.ts, run by memfabric's own probe), QMP `info mtree` QEMU's own
 * regions (device memory, CXL host registers and fixed windows), and
 * computeLayout with the matching profile must give the same, entry by entry.
 *
 * Configurations: every recorded test/layout/configs/*.qemu, and the ones
 * below, chosen where 7.2 and 10.0 differ (RAM above 4 GiB with a fabric,
 * phys-bits, Intel models, -nodefaults, several ivshmem BARs, hotplug ports,
 * CXL with and without maxmem, the AMD 1 TiB relocation, drives SeaBIOS
 * keeps tables for). Runs at most two QEMUs at a time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { analyzeDocument } from '../server/src/engine/index';
import { computeLayout, LayoutQemu } from '../server/src/engine/layout/index';
import { REPO } from './support/cli';
import { importEsm } from './support/esm';
import { FirmwareView, compareFirmware, qemuVersionOf, runFirmware } from './support/firmware-oracle';

const DIR = join(REPO, 'test', 'layout', 'configs');
interface RecordModule { parseConfig(text: string): { what: string; append: string; argv: string[] } }

const shm = (id: string, size: string, bus = 'pcie.0') =>
  `-object memory-backend-file,id=${id},mem-path=${id}.raw,size=${size},share=on -device ivshmem-plain,memdev=${id},bus=${bus}`;
const fame = (m: string, extra = '') => `qemu-system-x86_64 -M q35 -m ${m} -smp 1 ${extra} ${shm('shm0', '32G')}`;
const cxl = (m: string, extra = '') =>
  `qemu-system-x86_64 -M q35,cxl=on -m ${m} -smp 1 ${extra} ` +
  '-object memory-backend-file,id=cxl-mem1,share=on,mem-path=cxl.raw,size=256M ' +
  '-object memory-backend-file,id=cxl-lsa1,share=on,mem-path=lsa.raw,size=256M ' +
  '-device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 -device cxl-rp,port=0,bus=cxl.1,id=rp13,chassis=0,slot=2 ' +
  '-device cxl-type3,bus=rp13,memdev=cxl-mem1,lsa=cxl-lsa1,id=cxl-pmem0 -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=4G';

/** Configurations beyond the recorded ones (name → command line). */
export const EXTRA: Record<string, string> = {
  'fame-1g': fame('1G'),
  'fame-3g': fame('3G'),
  'fame-16g': fame('16G'),
  'fame-64g': fame('64G', '-object memory-backend-ram,id=ram,size=64G,reserve=off -M memory-backend=ram'),
  'fame-16g-physbits40': fame('16G', '-cpu qemu64,phys-bits=40'),
  'fame-16g-physbits43': fame('16G', '-cpu qemu64,phys-bits=43'),
  'fame-16g-physbits46': fame('16G', '-cpu qemu64,phys-bits=46'),
  'fame-2g-physbits46': fame('2G', '-cpu qemu64,phys-bits=46'),
  'fame-16g-physbits48': fame('16G', '-cpu qemu64,phys-bits=48'),
  'fame-16g-physbits39': fame('16G', '-cpu qemu64,phys-bits=39'),
  'fame-16g-skylake': fame('16G', '-cpu Skylake-Client-v1'),
  'fame-16g-skylake-physbits39': fame('16G', '-cpu Skylake-Client-v1,phys-bits=39'),
  'fame-16g-skylake-physbits46': fame('16G', '-cpu Skylake-Client-v1,phys-bits=46'),
  'fame-16g-intel-vendor': fame('16G', '-cpu qemu64,vendor=GenuineIntel,phys-bits=36'),
  'qemu32-4g-ivshmem-1g': `qemu-system-x86_64 -M q35 -m 4G -smp 1 -cpu qemu32 ${shm('shm0', '1G')}`,
  'q35-4g-agent-fame': fame('4G', '-device virtio-serial-pci,id=mfserial,bus=pcie.0'),
  'q35-2g-agent': 'qemu-system-x86_64 -M q35 -m 2G -smp 1 -device virtio-serial-pci,id=mfserial,bus=pcie.0',
  'q35-2g-nodefaults': 'qemu-system-x86_64 -M q35 -m 2G -smp 1 -nodefaults',
  'q35-8g-nodefaults-fame': fame('8G', '-nodefaults'),
  'pc-8g-nodefaults-fame': `qemu-system-x86_64 -M pc -m 8G -smp 1 -nodefaults ${shm('shm0', '32G', 'pci.0')}`,
  'q35-4g-3ivshmem': `qemu-system-x86_64 -M q35 -m 4G -smp 1 ${shm('a', '1G')} ${shm('b', '2G')} ${shm('c', '8G')}`,
  'q35-2g-3ivshmem': `qemu-system-x86_64 -M q35 -m 2G -smp 1 ${shm('a', '256M')} ${shm('b', '2G')} ${shm('c', '8G')}`,
  'q35-4g-rootports': 'qemu-system-x86_64 -M q35 -m 4G -smp 1 -device pcie-root-port,id=rp1,chassis=1,slot=1 -device pcie-root-port,id=rp2,chassis=2,slot=2 ' + shm('shm0', '4G', 'rp1'),
  'q35-2g-rootports': 'qemu-system-x86_64 -M q35 -m 2G -smp 1 -device pcie-root-port,id=rp1,chassis=1,slot=1 -device pcie-root-port,id=rp2,chassis=2,slot=2 ' + shm('shm0', '4G', 'rp1'),
  'q35-8g-maxmem-fame': fame('8G,maxmem=16G,slots=2'),
  'cxl-3584m-nomaxmem': cxl('3584M'),
  'cxl-3584m-maxmem': cxl('3584M,maxmem=8G,slots=2'),
  'cxl-16g-nomaxmem-fame': cxl('16G', shm('shm0', '32G')),
  'cxl-1g-nomaxmem-2g-bar': cxl('1G', shm('shm0', '2G')),
  'amd-relocation-4g': 'qemu-system-x86_64 -M q35 -m 4G -smp 1 -cpu qemu64,phys-bits=42 -global q35-pcihost.pci-hole64-size=1010G',
  'amd-relocation-2g-maxmem': 'qemu-system-x86_64 -M q35 -m 2G,maxmem=4G,slots=1 -smp 1 -cpu qemu64,phys-bits=42 -global q35-pcihost.pci-hole64-size=1010G ' + shm('shm0', '1G'),
  'q35-ahci-4-drives': 'qemu-system-x86_64 -M q35 -m 1G -smp 1 -drive if=ide,media=cdrom,index=0 -drive if=ide,media=cdrom,index=1 -drive if=ide,media=cdrom,index=3',
  'q35-nodefaults-1-cdrom': 'qemu-system-x86_64 -M q35 -m 1G -smp 1 -nodefaults -drive if=ide,media=cdrom',
  'q35-virtio-blk': 'qemu-system-x86_64 -M q35 -m 1G -smp 1 -drive if=virtio,driver=null-co,read-zeroes=on',
  'pc-virtio-blk-2': 'qemu-system-x86_64 -M pc -m 1G -smp 1 -drive if=virtio,driver=null-co,read-zeroes=on -drive if=virtio,driver=null-co,read-zeroes=on',
  'q35-nvdimm-vmgenid': 'qemu-system-x86_64 -M q35,nvdimm=on -m 1G,maxmem=4G,slots=2 -smp 1 -device vmgenid',
  // USB controllers without devices: allocated and freed again, but their place pushes the disks' queues down
  // (libvirt's q35 domains carry a qemu-xhci, its pc domains a piix3-usb-uhci)
  'q35-xhci-virtio-blk': 'qemu-system-x86_64 -M q35 -m 512 -smp 1 -nodefaults -device qemu-xhci -drive if=virtio,driver=null-co,read-zeroes=on',
  'q35-xhci-alone': 'qemu-system-x86_64 -M q35 -m 512 -smp 1 -nodefaults -device qemu-xhci',
  'pc-uhci-virtio-blk': 'qemu-system-x86_64 -M pc -m 512 -smp 1 -nodefaults -device piix3-usb-uhci -drive if=virtio,driver=null-co,read-zeroes=on',
  'pc-usb-virtio-blk': 'qemu-system-x86_64 -M pc -m 512 -smp 1 -usb -drive if=virtio,driver=null-co,read-zeroes=on',
  'q35-2-xhci-2-virtio-blk': 'qemu-system-x86_64 -M q35 -m 1G -smp 1 -device qemu-xhci -device nec-usb-xhci,slots=16 -drive if=virtio,driver=null-co,read-zeroes=on -drive if=virtio,driver=null-co,read-zeroes=on',
  'q35-xhci-uhci-virtio-blk': 'qemu-system-x86_64 -M q35 -m 1G -smp 1 -device nec-usb-xhci,slots=1 -device piix3-usb-uhci -drive if=virtio,driver=null-co,read-zeroes=on',
};

interface Version {
  label: string;
  bin: string;
  profile: LayoutQemu;
}

function versions(): Version[] {
  const out: Version[] = [];
  const v72 = qemuVersionOf('qemu-system-x86_64');
  if (v72?.startsWith('7.2.')) out.push({ label: '7.2', bin: 'qemu-system-x86_64', profile: { version: v72, firmware: '1.16.2' } });
  const bin10 = process.env.MEMFABRIC_QEMU10 ?? join(homedir(), '.cache', 'memfabric', 'qemu-10.0', 'bin', 'qemu-system-x86_64');
  const v10 = existsSync(bin10) ? qemuVersionOf(bin10) : undefined;
  if (v10?.startsWith('10.0.')) out.push({ label: '10.0', bin: bin10, profile: { version: v10, firmware: '1.16.3' } });
  return out;
}

const VERSIONS = versions();

interface Case {
  name: string;
  text: string;
}

function cases(): Case[] {
  const recorded = readdirSync(DIR)
    .filter((f) => f.endsWith('.qemu') && existsSync(join(DIR, f.replace(/\.qemu$/, '.guest.json'))))
    .sort()
    .map((f) => ({ name: f.replace(/\.qemu$/, ''), text: readFileSync(join(DIR, f), 'utf8') }));
  const all = [...recorded, ...Object.entries(EXTRA).map(([name, line]) => ({ name, text: `${line}\n` }))];
  // MEMFABRIC_FIRMWARE_ONLY=regex runs a subset (while working on the model).
  const only = process.env.MEMFABRIC_FIRMWARE_ONLY;
  return only ? all.filter((c) => new RegExp(only).test(c.name)) : all;
}

function model(c: Case, profile: LayoutQemu) {
  const r = analyzeDocument(c.text, join(DIR, `${c.name}.qemu`));
  return computeLayout(r.nodes[0], { agent: false, qemu: profile });
}

/** One firmware run per configuration and QEMU, shared by the tests below. */
const views = new Map<string, Promise<FirmwareView>>();
async function oracle(c: Case, v: Version): Promise<FirmwareView> {
  const key = `${v.label} ${c.name}`;
  if (!views.has(key)) {
    const { parseConfig } = await importEsm<RecordModule>(join(REPO, 'test', 'layout', 'record.mjs'));
    // (The probe runs at most two QEMUs at a time.)
    views.set(key, runFirmware(v.bin, parseConfig(c.text).argv));
  }
  return views.get(key)!;
}

test('both QEMUs are there (7.2 with SeaBIOS 1.16.2, 10.0 with 1.16.3)', { skip: VERSIONS.length < 2 && `found ${VERSIONS.map((v) => v.label).join(', ') || 'none'}` }, () => {
  assert.deepEqual(VERSIONS.map((v) => v.label), ['7.2', '10.0']);
});

for (const v of VERSIONS) {
  test(`SeaBIOS under QEMU ${v.label} equals the layout model`, { concurrency: 2, timeout: 300_000 }, async (t) => {
    const all = cases();
    if (!process.env.MEMFABRIC_FIRMWARE_ONLY) assert.ok(all.length >= 70, `${all.length} configurations`);
    await Promise.all(
      all.map((c) =>
        t.test(c.name, async () => {
          const real = await oracle(c, v);
          assert.match(real.seabios, new RegExp(`version ${v.profile.firmware!.replace(/\./g, '\\.')}`), 'the SeaBIOS this QEMU loads');
          const L = model(c, v.profile);
          assert.equal(L.qemuVersion, v.profile.version);
          assert.equal(L.firmware, v.profile.firmware);
          assert.deepEqual(compareFirmware(real, L), []);
        }),
      ),
    );
  });
}

test('the comparison fails when the model is wrong: QEMU 10.0 runs checked against the 7.2 model', { skip: (VERSIONS.length < 2 && 'needs both QEMUs') || (!!process.env.MEMFABRIC_FIRMWARE_ONLY && 'subset'), timeout: 120_000 }, async () => {
  const [v72, v10] = VERSIONS;
  const all = cases();
  // Where the versions differ: a 64-bit fabric with RAM above 4 GiB (1.16.3 places it
  // below the top of the address space), CXL without maxmem at 3.5 GiB (8.2 moved the
  // host-register block), and the 64-bit window 1.16.3 opens whenever there is RAM above 4 GiB.
  for (const name of ['fame-16g', 'cxl-3584m-nomaxmem', '006-q35-4g']) {
    const c = all.find((x) => x.name === name)!;
    const real = await oracle(c, v10);
    const wrong = compareFirmware(real, model(c, v72.profile));
    assert.ok(wrong.length > 0, `${name}: the 7.2 model must not match QEMU 10.0`);
    // 8.2 moved the CXL registers and windows down by 512 MiB at -m 3584M without maxmem.
    if (name.startsWith('cxl')) assert.match(wrong.join('\n'), /QEMU regions \(info mtree\): model has \[.*cxl_host_reg 180000000-1800fffff.*\], QEMU has \[.*cxl_host_reg 160000000-1600fffff/);
    assert.deepEqual(compareFirmware(real, model(c, v10.profile)), [], `${name}: the 10.0 model matches`);
  }
  // And a single wrong BAR address or E820 entry is reported.
  const c = all.find((x) => x.name === '023-q35-2g-ivshmem-32g')!;
  const real = await oracle(c, v72);
  const L = model(c, v72.profile);
  const moved = { ...L, functions: L.functions.map((f) => ({ ...f, bars: f.bars.map((b) => (b.size === 32n << 30n ? { ...b, start: b.start! + (1n << 30n), firmwareStart: undefined } : b)) })) };
  assert.match(compareFirmware(real, moved).join('\n'), /BARs: model has \[00:03\.0 bar2 840000000/);
  const e820 = { ...L, e820: L.e820.map((e, i) => (i === 3 ? { ...e, end: e.end - 0x1000n } : e)) };
  assert.match(compareFirmware(real, e820).join('\n'), /^e820: /);
});
