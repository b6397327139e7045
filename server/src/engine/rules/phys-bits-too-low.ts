import { Rule } from './rule';
import { NodeModel, machineBase, X86_ARCHES } from '../model/model';
import { cpuAddressing, cxlOn, machineTypeVersion, ramSize, ramSplit, sizeOf } from '../model/facts';
import { GiB, MiB, alignUp, qemuSizeString } from '../text/sizes';
import { QemuProfile, qemuAtLeast } from '../qemu/profile';
import { hexHuman, qemuName } from './util';
import { Fix } from '../diagnostics';

const AMD_HT_START = 0xfd00000000n;
const AMD_ABOVE_1TB_START = 1n << 40n;

interface Gpa { value: bigint; what: string; fromDeviceMemory: boolean }

/**
 * hw/i386/pc.c pc_memory_init(): QEMU refuses to start when the highest
 * guest-physical address it will use (pc_max_used_gpa) is beyond what the
 * CPU's physical address bits reach, 2^phys-bits − 1.
 *  - QEMU 7.2: a CPU of at most 32 phys-bits is never refused (2^phys-bits −
 *    1 is returned); otherwise, 64-bit CPU or not, the end of the 64-bit PCI
 *    hole (pc_pci_hole64_start() + pci-hole64-size − 1).
 *  - QEMU 8.2 and later: 64-bit CPUs the end of the 64-bit PCI hole; CPUs
 *    without long mode the end of the device-memory region (maxmem above
 *    RAM) or else of the RAM above 4 GiB — except machine types up to 8.1
 *    (broken_32bit_mem_addr_check), which keep 2^phys-bits − 1. 32-bit CPUs
 *    with PAE get 36 phys-bits (7.2: only with PSE36).
 * The 64-bit hole starts after the RAM above 4 GiB, the device-memory region
 * (maxmem − RAM + 1 GiB per slot, at a 1 GiB boundary) and the CXL host
 * registers and fixed windows, rounded up to 1 GiB. AMD CPUs (machine types
 * from 7.1) move the RAM above 4 GiB to 1 TiB when that end reaches the
 * HyperTransport hole at 0xfd00000000. Judged for pc and q35 from 2.2 on,
 * with a CPU model whose address bits do not come from the host.
 */
export function maxUsedGpa(node: NodeModel, qemu: QemuProfile, cpu: { lm: boolean; physBits: number; amd: boolean }): Gpa | undefined {
  const base = machineBase(node.machine.type?.text);
  if (base === 'other') return undefined;
  const mv = machineTypeVersion(node, qemu.machines);
  if (!mv) return undefined;
  const mt = mv[0] * 100 + mv[1];
  if (mt < 202) return undefined;
  if (node.machine.props.some((p) => p.key.startsWith('sgx-epc'))) return undefined;
  const new82 = qemuAtLeast(qemu, '8.2');
  const ram = ramSize(node);
  const maxmemV = sizeOf(node.memory.maxmem);
  const maxmem = maxmemV !== undefined && maxmemV > ram ? maxmemV : ram;
  const slots = node.memory.slots && node.memory.slots.n > 0 ? BigInt(node.memory.slots.n) : 0n;
  const { above4g } = ramSplit(node);
  const hole64Global = node.globals.find((g) => g.property === 'pci-hole64-size' && g.driver === (base === 'q35' ? 'q35-pcihost' : 'i440FX-pcihost'));
  const hole64Size = (hole64Global && sizeOf(node.sizes.find((s) => s.m === hole64Global.value))) ?? (base === 'q35' ? 32n * GiB : 2n * GiB);
  const brokenReservedEnd = mt <= 204;
  const hasDm = maxmem > ram;

  const gpa = (start: bigint): Gpa => {
    const above4gEnd = start + above4g;
    const dmBase = alignUp(above4gEnd, GiB);
    const dmSize = maxmem - ram + GiB * slots;
    if (!cpu.lm && new82) {
      if (mt <= 801) return { value: (1n << BigInt(cpu.physBits)) - 1n, what: '', fromDeviceMemory: false };
      if (hasDm) return { value: dmBase + dmSize - 1n, what: `the end of the device-memory region (${hexHuman(dmBase)} + maxmem − RAM + 1 GiB per slot = ${hexHuman(dmSize)}) − 1`, fromDeviceMemory: true };
      return { value: above4gEnd - 1n, what: 'the end of the RAM above 4 GiB − 1', fromDeviceMemory: false };
    }
    if (!new82 && cpu.physBits <= 32) return { value: (1n << BigInt(cpu.physBits)) - 1n, what: '', fromDeviceMemory: false };
    let hole: bigint;
    let after: string;
    if (cxlOn(node)) {
      const cxlStart = hasDm || !new82 ? dmBase + dmSize : above4gEnd;
      const windows = node.fmws.map((w) => sizeOf(w.size) ?? 0n);
      hole = windows.length ? alignUp(cxlStart + MiB, 256n * MiB) + windows.reduce((a, b) => a + b, 0n) : cxlStart + MiB;
      after = 'the CXL host registers and fixed memory windows';
    } else if (hasDm) {
      hole = dmBase + (brokenReservedEnd ? 0n : dmSize);
      after = 'the device-memory region';
    } else {
      hole = above4gEnd;
      after = 'the RAM above 4 GiB';
    }
    const h64 = alignUp(hole, GiB);
    return {
      value: h64 + hole64Size - 1n,
      what: `the end of the 64-bit PCI hole: it starts after ${after} at ${hexHuman(h64)} and is ${hexHuman(hole64Size)} long (pci-hole64-size)`,
      fromDeviceMemory: hasDm && !cxlOn(node),
    };
  };
  let g = gpa(4n * GiB);
  if (cpu.amd && mt >= 701 && g.value >= AMD_HT_START) {
    g = gpa(AMD_ABOVE_1TB_START);
    g.what += '; the RAM above 4 GiB moves to 1 TiB on this AMD CPU, past the HyperTransport hole';
  }
  return g;
}

export const rule: Rule = {
  code: 'phys-bits-too-low',
  severity: 'error',
  arches: X86_ARCHES,
  summary:
    "The CPU's physical address bits must reach the highest guest-physical address QEMU uses: for 64-bit CPUs the end of the 64-bit PCI hole (after RAM, hotplug memory and CXL windows); for CPUs without long mode QEMU 7.2 checks the same only with more than 32 bits, QEMU 8.2 and later the end of the hotplug memory instead.",
  enforcedBy: 'Address space limit 0x1ffffffff < 0x97fffffff phys-bits too low (33)',
  check({ node, qemu, report }) {
    const cpu = cpuAddressing(node, qemuAtLeast(qemu, '8.2'));
    if (!cpu) return;
    const g = maxUsedGpa(node, qemu, cpu);
    if (!g) return;
    const limit = (1n << BigInt(cpu.physBits)) - 1n;
    if (g.value <= limit) return;
    const need = g.value.toString(2).length;
    const text = `Address space limit 0x${limit.toString(16)} < 0x${g.value.toString(16)} phys-bits too low (${cpu.physBits})`;
    const fixes: Fix[] = [];
    let span = node.cpu?.model.span() ?? node.memory.m?.span();
    if (cpu.physBitsProp) {
      span = cpu.physBitsProp.value.span();
      if (need <= 52) fixes.push({ title: `Set phys-bits=${need}`, edits: [{ span, newText: String(need) }] });
    } else if (!cpu.lm && g.fromDeviceMemory && node.memory.maxmem) {
      span = node.memory.maxmem.m.span();
      const fit = sizeOf(node.memory.maxmem)! - (g.value - limit);
      const fitDown = fit - (fit % GiB);
      if (fitDown > ramSize(node)) fixes.push({ title: `Lower maxmem to ${qemuSizeString(fitDown)}`, edits: [{ span, newText: qemuSizeString(fitDown) }] });
    }
    if (!span) return;
    const cpuLabel = `${cpu.lm ? '' : '32-bit '}CPU ${cpu.model}`;
    report({
      span,
      message: `${cpuLabel} has ${cpu.physBits} physical address bits (up to ${hexHuman(limit)}), but the highest guest-physical address QEMU uses is ${hexHuman(g.value)}, ${g.what}; ${need} bits are needed. QEMU: "${text}" (${qemuName(qemu)})`,
      related: node.memory.m ? [{ span: node.memory.m.span(), message: 'memory options (-m)' }] : [],
      fixes,
    });
  },
};
