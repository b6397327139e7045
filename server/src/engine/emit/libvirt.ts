/**
 * Model → libvirt domain XML (libvirt 9.0 schema), built with xmlbuilder2.
 * What libvirt models natively (memory, vCPUs, NUMA cells, kernel boot) is
 * written natively; every QEMU option libvirt has no element for (memory
 * backends, ivshmem, CXL) goes into <qemu:commandline>, in order.
 */
import { isPciDriver } from '../readers/libvirt-slots';
import type * as XmlBuilder from 'xmlbuilder2';

/** xmlbuilder2, loaded on first use: it is a third of the modules a language server or a `memfabric boot` would load otherwise (52 ms, 16 MB here). */
let builder: typeof XmlBuilder | undefined;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const create: typeof XmlBuilder.create = ((...args: unknown[]) => ((builder ??= require('xmlbuilder2') as typeof XmlBuilder).create as (...a: unknown[]) => unknown)(...args)) as typeof XmlBuilder.create;
import { NodeModel, machineBase, qemuBool } from '../model/model';
import { KiB, MiB } from '../text/sizes';

export const QEMU_NS = 'http://libvirt.org/schemas/domain/qemu/1.0';

/** Options libvirt generates itself from the elements we write. */
const NATIVE = new Set(['m', 'smp', 'kernel', 'initrd', 'append', 'name']);

/** What a running cluster adds to a node's domain (runtime/cluster.ts, the libvirt backend). */
export interface DomainRuntime {
  /** The domain's name in libvirt (unique per cluster and user). */
  name: string;
  /** 'kvm' when KVM is used, else 'qemu' (TCG). */
  type: 'qemu' | 'kvm';
  /** Kernel, initrd and command line to boot (they replace the node's own). */
  boot?: { kernel?: string; initrd?: string; cmdline: string };
  /** A disk image attached as /dev/vda (virtio). */
  disk?: { path: string; format: 'raw' | 'qcow2'; boot: boolean };
  /** The serial console, written to this file (none for a node on another host: its console is `virsh console`). */
  consoleLog?: string;
}

export function nodeLibvirtXml(node: NodeModel, opts: { emulator?: string; runtime?: DomainRuntime } = {}): string {
  const rt = opts.runtime;
  const ram = node.memory.size?.parsed.ok ? node.memory.size.parsed.value : 1024n * MiB;
  const maxmem = node.memory.maxmem?.parsed.ok ? node.memory.maxmem.parsed.value : undefined;
  const slots = node.memory.slots?.n;
  const machineType = node.machine.type?.text ?? 'pc';
  const base = machineBase(machineType);
  const type = machineType === 'q35' ? 'q35' : machineType === 'pc' ? 'pc' : machineType;

  const doc = create({ version: '1.0' });
  const dom = doc.ele('domain', { type: rt?.type ?? 'qemu', 'xmlns:qemu': QEMU_NS });
  dom.ele('name').txt(rt?.name ?? node.name);
  if (maxmem !== undefined && slots && slots > 0) dom.ele('maxMemory', { slots: String(slots), unit: 'KiB' }).txt(String(maxmem / KiB));
  dom.ele('memory', { unit: 'KiB' }).txt(String(ram / KiB));
  dom.ele('currentMemory', { unit: 'KiB' }).txt(String(ram / KiB));
  dom.ele('vcpu', { placement: 'static' }).txt(String(node.smp?.cpus ?? 1));
  const os = dom.ele('os');
  os.ele('type', { arch: 'x86_64', machine: type }).txt('hvm');
  if (rt?.boot) {
    if (rt.boot.kernel) os.ele('kernel').txt(rt.boot.kernel);
    if (rt.boot.initrd) os.ele('initrd').txt(rt.boot.initrd);
    if (rt.boot.kernel) os.ele('cmdline').txt(rt.boot.cmdline);
  } else {
    if (node.kernel) os.ele('kernel').txt(node.kernel.text);
    if (node.initrd) os.ele('initrd').txt(node.initrd.text);
    if (node.append) os.ele('cmdline').txt(node.append.text);
  }
  if (rt?.disk?.boot) os.ele('boot', { dev: 'hd' });
  dom.ele('features').ele('acpi');

  // NUMA: libvirt needs cells for memory hotplug on x86; their memory comes from our backends.
  const cells = node.numa;
  const numaMemdevs = new Set<string>();
  if (cells.length || (maxmem !== undefined && slots)) {
    const cpu = dom.ele('cpu', { mode: 'custom', match: 'exact', check: 'none' });
    cpu.ele('model', { fallback: 'forbid' }).txt('qemu64');
    const numa = cpu.ele('numa');
    if (cells.length) {
      cells.forEach((c, i) => {
        const b = c.memdev ? node.backends.get(c.memdev.text) : undefined;
        const size = b?.size?.parsed.ok ? b.size.parsed.value : c.mem?.parsed.ok ? c.mem.parsed.value : ram / BigInt(cells.length);
        if (c.memdev) numaMemdevs.add(c.memdev.text);
        const id = String(c.nodeid?.n ?? i);
        const shared = b?.share && qemuBool(b.share.value.text) === true;
        // libvirt backs a cell with memory-backend-ram, or with memAccess='shared' with a shared memory-backend-file
        // under its memory_backing_dir (checked with libvirt 9.0 domxml-to-native): it cannot put a cell's memory in
        // a file of our choosing. Keep the sharing, and say what is lost.
        if (b && b.obj.qomType !== 'memory-backend-ram') {
          numa.com(
            ` cell ${id}: wanted ${b.obj.qomType}${b.memPath ? ` mem-path=${b.memPath.text}` : ''}${shared ? ' share=on' : ''}; libvirt cannot choose a NUMA cell's backing file: this cell gets ${shared ? "a shared file of its own under libvirt's memory_backing_dir" : 'private anonymous RAM'} `.replace(/--/g, '- -'),
          );
        }
        numa.ele('cell', { id, cpus: c.cpus?.text ?? String(i), memory: String(size / KiB), unit: 'KiB', ...(shared ? { memAccess: 'shared' } : {}) });
      });
    } else {
      numa.ele('cell', { id: '0', cpus: `0-${Math.max(0, (node.smp?.cpus ?? 1) - 1)}`, memory: String(ram / KiB), unit: 'KiB' });
    }
  }
  const devices = dom.ele('devices');
  devices.ele('emulator').txt(opts.emulator ?? '/usr/bin/qemu-system-x86_64');
  if (rt?.disk) {
    const disk = devices.ele('disk', { type: 'file', device: 'disk' });
    disk.ele('driver', { name: 'qemu', type: rt.disk.format });
    disk.ele('source', { file: rt.disk.path });
    disk.ele('target', { dev: 'vda', bus: 'virtio' });
  }
  if (rt) {
    // The console on a pty (virsh console, virt-manager), logged to a file that memfabric tails; the guest agent
    // on its standard port (libvirt connects to it: virsh qemu-agent-command, virDomainQemuAgentCommand).
    const serial = devices.ele('serial', { type: 'pty' });
    if (rt.consoleLog) serial.ele('log', { file: rt.consoleLog, append: 'off' });
    serial.ele('target', { port: '0' });
    devices.ele('console', { type: 'pty' }).ele('target', { type: 'serial', port: '0' });
    devices.ele('channel', { type: 'unix' }).ele('target', { type: 'virtio', name: 'org.qemu.guest_agent.0' });
  } else {
    const serial = devices.ele('serial', { type: 'pty' });
    serial.ele('target', { port: '0' });
    devices.ele('console', { type: 'pty' }).ele('target', { type: 'serial', port: '0' });
  }

  // Everything else as raw QEMU arguments. -machine properties beyond the type, -object/-device, -global, -numa
  // whose memdev is ours (libvirt would otherwise allocate the cell's memory itself).
  const cl: string[] = [];
  // A PCI device without addr= would take the root-bus slot libvirt gives its own devices (QEMU creates
  // key=value -device options first: rules/libvirt-passthrough-slot.ts): give each one a slot from 0x10 on.
  const fixedSlots = new Set(node.args.filter((a) => a.name === 'device' && a.value).map((a) => /(?:^|,)addr=(0x[0-9a-f]+|\d+)/i.exec(a.value!.text)?.[1]).filter((x): x is string => !!x).map((x) => Number(x)));
  let nextSlot = 0x10;
  const withSlot = (v: string): string => {
    const parts = v.split(',');
    const bus = parts.find((p) => p.startsWith('bus='))?.slice(4);
    if (!isPciDriver(parts[0]) || parts.some((p) => p.startsWith('addr=')) || (bus !== undefined && bus !== 'pcie.0' && bus !== 'pci.0')) return v;
    while (fixedSlots.has(nextSlot) && nextSlot < 0x1e) nextSlot++;
    fixedSlots.add(nextSlot);
    return `${v},addr=0x${nextSlot.toString(16)}`;
  };
  for (const a of node.args) {
    if (NATIVE.has(a.name)) continue;
    if (a.name === 'numa') continue; // written as <cell>
    if (a.name === 'machine' && a.value) {
      const rest = a.value.text.split(',').filter((p, i) => !(i === 0 && !p.includes('=')));
      if (!rest.length) continue;
      cl.push('-machine', rest.join(','));
      continue;
    }
    if (a.name === 'object' && a.value && cells.length && [...numaMemdevs].some((id) => new RegExp(`(^|,)id=${id}(,|$)`).test(a.value!.text))) continue;
    cl.push(`-${a.name}`);
    if (a.value) cl.push(a.name === 'device' ? withSlot(a.value.text) : a.value.text);
  }
  if (cl.length) {
    const q = dom.ele('qemu:commandline');
    for (const arg of cl) q.ele('qemu:arg', { value: arg });
  }
  void base;
  // One document per node: end each with a newline so that several can be printed one after the other.
  return doc.end({ prettyPrint: true }) + '\n';
}
