/**
 * Facts of a node's machine that more than one stage reads: the layout
 * (layout/) and the rules (rules/) both ask them, so they live with the model
 * rather than in either.
 */
import { NodeModel, Prop, SizeValue, prop, qemuBool } from './model';
import { MiB } from '../text/sizes';

/** The RAM size QEMU uses: -m (8 KiB aligned), or the machine default of 128 MiB. */
export function ramSize(node: NodeModel): bigint {
  const s = node.memory.size?.parsed;
  if (s?.ok && s.value > 0n) return (s.value + 8191n) & ~8191n;
  return 128n * MiB;
}

export function sizeOf(v: SizeValue | undefined): bigint | undefined {
  return v?.parsed.ok ? v.parsed.value : undefined;
}

export function isOn(p: Prop | undefined, dflt = false): boolean {
  if (!p) return dflt;
  return qemuBool(p.value.text) ?? dflt;
}

/** The machine's cxl=on. */
export function cxlOn(node: NodeModel): Prop | undefined {
  const p = prop(node.machine.props, 'cxl');
  return p && isOn(p) ? p : undefined;
}


/**
 * The versioned machine type a node runs: q35/pc (or no -M) resolved through
 * the QEMU's aliases to e.g. pc-q35-10.0, as [major, minor]; undefined for
 * other machines or an unknown type.
 */
export function machineTypeVersion(node: NodeModel, machines: Record<string, { alias: string | null; isDefault?: boolean }>): [number, number] | undefined {
  let t = node.machine.type?.text;
  if (t === undefined) t = Object.keys(machines).find((k) => machines[k].isDefault && machines[k].alias) ?? 'pc';
  const real = (Object.hasOwn(machines, t) ? machines[t].alias : null) ?? t;
  const m = /^pc-(?:q35|i440fx)-(\d+)\.(\d+)$/.exec(real);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * How pc/q35 split the RAM around the 32-bit PCI hole (hw/i386/pc_q35.c
 * pc_q35_init, pc_piix.c pc_init1; the same in QEMU 7.2 and 10.0, for the
 * machine types from 2.2 on): below4g at 0, above4g from 4 GiB.
 */
export function ramSplit(node: NodeModel): { below4g: bigint; above4g: bigint } {
  const ram = ramSize(node);
  const q35 = (node.machine.type?.text ?? 'pc').includes('q35');
  const mrbProp = prop(node.machine.props, 'max-ram-below-4g');
  const mrb = mrbProp ? sizeOf(node.sizes.find((s) => s.m === mrbProp.value)) : undefined;
  let lowmem: bigint;
  if (q35) {
    lowmem = ram >= 0xb0000000n ? 0x80000000n : 0xb0000000n;
    if (mrb && lowmem > mrb) lowmem = mrb;
  } else {
    lowmem = mrb || 0xe0000000n;
    if (ram >= lowmem && lowmem > 0xc0000000n) lowmem = 0xc0000000n;
  }
  return ram >= lowmem ? { below4g: lowmem, above4g: ram - lowmem } : { below4g: ram, above4g: 0n };
}

/** A CPU feature switched on or off on -cpu (+f, -f, f=on|off), or undefined. */
export function cpuFeature(node: NodeModel, name: string): boolean | undefined {
  let v: boolean | undefined;
  for (const p of node.cpu?.props ?? []) {
    if (p.key === `+${name}`) v = true;
    else if (p.key === `-${name}`) v = false;
    else if (p.key === name) v = p.bare ? true : qemuBool(p.value.text);
  }
  return v;
}

/** x86 CPU models without long mode, with whether they have PSE36 and PAE (target/i386/cpu.c builtin_x86_defs, the same in 7.2 and 10.0). */
const CPU32: Record<string, { pse36: boolean; pae: boolean }> = {
  qemu32: { pse36: false, pae: true },
  kvm32: { pse36: true, pae: true },
  coreduo: { pse36: false, pae: true },
  '486': { pse36: false, pae: false },
  pentium: { pse36: false, pae: false },
  pentium2: { pse36: true, pae: true },
  pentium3: { pse36: true, pae: true },
  athlon: { pse36: true, pae: true },
  n270: { pse36: false, pae: true },
};
const AMD_MODELS = /^(qemu64|phenom|athlon|Opteron_G\d|EPYC)/;
const KNOWN_MODELS = /^(qemu64|phenom|core2duo|kvm64|qemu32|kvm32|coreduo|486|pentium[23]?|athlon|n270|Conroe|Penryn|Nehalem|Westmere|SandyBridge|IvyBridge|Haswell|Broadwell|Skylake|Cascadelake|Cooperlake|Icelake|SapphireRapids|GraniteRapids|SierraForest|ClearwaterForest|Denverton|Snowridge|KnightsMill|Opteron_G\d|EPYC|Dhyana|YongFeng)/;

/**
 * What the guest CPU is, as far as the address-space check needs it:
 * long mode, the physical address bits QEMU gives it (target/i386/cpu.c
 * x86_cpu_realizefn: 64-bit CPUs phys-bits= or 40; 32-bit CPUs 36 with PSE36
 * (from 8.2 also with PAE), else 32) and an AMD vendor. Undefined when it
 * depends on the host (host, max, host-phys-bits=on) or the model is unknown.
 */
export function cpuAddressing(node: NodeModel, atLeast82: boolean): { model: string; lm: boolean; physBits: number; amd: boolean; physBitsProp?: Prop } | undefined {
  const model = (node.cpu?.model.text ?? 'qemu64').replace(/-v\d+$/, '');
  if (!KNOWN_MODELS.test(model)) return undefined;
  if (cpuFeature(node, 'host-phys-bits')) return undefined;
  const base = CPU32[model];
  const lm = cpuFeature(node, 'lm') ?? !base;
  const vendor = node.cpu ? prop(node.cpu.props, 'vendor')?.value.text : undefined;
  const amd = vendor ? vendor === 'AuthenticAMD' : AMD_MODELS.test(model);
  const pb = node.cpu ? prop(node.cpu.props, 'phys-bits') : undefined;
  if (lm) {
    if (!pb) return { model, lm, physBits: 40, amd };
    if (!/^\d+$/.test(pb.value.text)) return undefined;
    const n = Number(pb.value.text);
    // Out of 32..52 the CPU itself is refused ("phys-bits should be between 32 and 52").
    return n >= 32 && n <= 52 ? { model, lm, physBits: n, amd, physBitsProp: pb } : undefined;
  }
  if (pb) return undefined; // "phys-bits is not user-configurable in 32 bit"
  const pse36 = cpuFeature(node, 'pse36') ?? base?.pse36 ?? true; // the 64-bit models have PSE36 and PAE
  const pae = cpuFeature(node, 'pae') ?? base?.pae ?? true;
  return { model, lm, physBits: pse36 || (atLeast82 && pae) ? 36 : 32, amd };
}
