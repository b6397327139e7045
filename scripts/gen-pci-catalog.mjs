#!/usr/bin/env node
// Records, from the real QEMU binary, the PCI functions each machine type
// creates by default (slot, ids, BARs) and the BARs of every device type the
// layout engine places, as QEMU reports them before the firmware runs
// (QMP query-pci on a -S machine). The layout engine feeds them to its model
// of SeaBIOS's allocator.
//   node scripts/gen-pci-catalog.mjs > server/src/engine/layout/pci-catalog-7.2.json
//   node scripts/gen-pci-catalog.mjs ~/.cache/memfabric/qemu-10.0/bin/qemu-system-x86_64 \
//     > server/src/engine/layout/pci-catalog-10.0.json
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const qemu = process.argv[2] ?? 'qemu-system-x86_64';
const dir = mkdtempSync(join(tmpdir(), 'mf-pcicat-'));

/**
 * query-pci after SeaBIOS has numbered the buses (devices behind a bridge are
 * only listed once their bus has a number): run the firmware for a moment.
 */
function queryPci(args) {
  return new Promise((resolve, reject) => {
    const p = spawn(qemu, ['-display', 'none', '-nodefaults', '-qmp', 'stdio', ...args], { cwd: dir, stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stdin.write('{"execute":"qmp_capabilities"}\n');
    setTimeout(() => p.stdin.write('{"execute":"query-pci"}\n{"execute":"quit"}\n'), 1500);
    p.on('close', () => {
      for (const line of out.split('\n')) if (line.includes('"return": [')) return resolve(JSON.parse(line).return);
      reject(new Error(`no query-pci answer for ${args.join(' ')}`));
    });
  });
}

const fn = (d) => ({
  slot: d.slot,
  function: d.function,
  id: `${d.id.vendor.toString(16).padStart(4, '0')}:${d.id.device.toString(16).padStart(4, '0')}`,
  class: d.class_info.class,
  qdev: d.qdev_id || undefined,
  bridge: d.pci_bridge ? true : undefined,
  regions: d.regions.map((r) => ({ bar: r.bar, type: r.type === 'io' ? 'io' : 'mem', prefetch: !!r.prefetch, is64: !!r.mem_type_64, size: r.size })),
});
const flatten = (buses) => buses.flatMap((b) => b.devices.flatMap((d) => [fn(d), ...(d.pci_bridge?.devices ? flatten([{ devices: d.pci_bridge.devices }]) : [])]));

const machines = {};
// With the default devices (no -nodefaults here): what a plain '-M q35' has.
function queryDefaults(m) {
  const input = ['{"execute":"qmp_capabilities"}', '{"execute":"query-pci"}', '{"execute":"quit"}'].join('\n') + '\n';
  const out = execFileSync(qemu, ['-S', '-display', 'none', '-qmp', 'stdio', '-M', m], { input, encoding: 'utf8', cwd: dir });
  for (const line of out.split('\n')) if (line.includes('"return": [')) return JSON.parse(line).return;
  throw new Error('no query-pci answer');
}
for (const m of ['q35', 'pc']) machines[m] = flatten(queryDefaults(m));

// Device types, each probed on q35 with the smallest configuration that creates it.
const probes = {
  'ivshmem-plain': ['-object', 'memory-backend-ram,id=m,size=1M,share=on', '-device', 'ivshmem-plain,memdev=m,id=probe'],
  'virtio-serial-pci': ['-device', 'virtio-serial-pci,id=probe'],
  'virtio-blk-pci': ['-drive', 'if=none,id=d,driver=null-co', '-device', 'virtio-blk-pci,drive=d,id=probe'],
  'pcie-root-port': ['-device', 'pcie-root-port,id=probe,chassis=9,slot=9'],
  'pxb-pcie': ['-device', 'pxb-pcie,bus_nr=40,id=probe'],
  'pxb-cxl': ['-M', 'q35,cxl=on', '-device', 'pxb-cxl,bus_nr=12,bus=pcie.0,id=probe'],
  'cxl-rp': ['-M', 'q35,cxl=on', '-device', 'pxb-cxl,bus_nr=12,bus=pcie.0,id=hb', '-device', 'cxl-rp,port=0,bus=hb,id=probe,chassis=0,slot=2'],
  'cxl-upstream': ['-M', 'q35,cxl=on', '-device', 'pxb-cxl,bus_nr=12,bus=pcie.0,id=hb', '-device', 'cxl-rp,port=0,bus=hb,id=rp,chassis=0,slot=2', '-device', 'cxl-upstream,bus=rp,id=probe'],
  'cxl-downstream': ['-M', 'q35,cxl=on', '-device', 'pxb-cxl,bus_nr=12,bus=pcie.0,id=hb', '-device', 'cxl-rp,port=0,bus=hb,id=rp,chassis=0,slot=2', '-device', 'cxl-upstream,bus=rp,id=us', '-device', 'cxl-downstream,port=0,bus=us,id=probe,chassis=0,slot=4'],
  'cxl-type3': ['-M', 'q35,cxl=on', '-object', 'memory-backend-ram,id=m,size=256M', '-object', 'memory-backend-ram,id=l,size=1M', '-device', 'pxb-cxl,bus_nr=12,bus=pcie.0,id=hb', '-device', 'cxl-rp,port=0,bus=hb,id=rp,chassis=0,slot=2', '-device', 'cxl-type3,bus=rp,memdev=m,lsa=l,id=probe'],
  'virtio-mem-pci': ['-m', '1G,maxmem=2G', '-object', 'memory-backend-ram,id=m,size=256M', '-device', 'virtio-mem-pci,memdev=m,id=probe'],
  // What libvirt adds to a domain on its own (its USB controller, balloon, video) and common domain devices.
  'qemu-xhci': ['-device', 'qemu-xhci,id=probe'],
  'nec-usb-xhci': ['-device', 'nec-usb-xhci,id=probe'],
  'piix3-usb-uhci': ['-device', 'piix3-usb-uhci,id=probe'],
  'virtio-balloon-pci': ['-device', 'virtio-balloon-pci,id=probe'],
  'cirrus-vga': ['-device', 'cirrus-vga,id=probe'],
  'VGA': ['-device', 'VGA,id=probe'],
  'virtio-rng-pci': ['-device', 'virtio-rng-pci,id=probe'],
  'virtio-net-pci': ['-netdev', 'user,id=n', '-device', 'virtio-net-pci,netdev=n,id=probe'],
  'virtio-pmem-pci': ['-m', '1G,maxmem=2G', '-object', 'memory-backend-ram,id=m,size=256M', '-device', 'virtio-pmem-pci,memdev=m,id=probe'],
};
const devices = {};
for (const [type, args] of Object.entries(probes)) {
  const all = flatten(await queryPci(args.includes('-M') ? args : ['-M', 'q35', ...args]));
  const d = all.find((x) => x.qdev === 'probe');
  if (!d) throw new Error(`no ${type} in query-pci`);
  delete d.slot;
  delete d.function;
  delete d.qdev;
  devices[type] = d;
}
rmSync(dir, { recursive: true, force: true });
const version = execFileSync(qemu, ['--version'], { encoding: 'utf8' }).split('\n')[0];
process.stdout.write(JSON.stringify({ version, machines, devices }, null, 1) + '\n');
