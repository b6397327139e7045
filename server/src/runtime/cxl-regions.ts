/**
 * Making the regions a topology asks for (<window region= dax=>) in a running
 * guest, with the guest's own tools over the guest agent, as a user would at
 * the console (the Tigon guide's flow):
 *
 *   cxl list -M                                  the memdevs, found by serial number
 *   cxl create-region -m -d decoder0.K -w WAYS -t ram|pmem -g GRAN -s SIZE memA memB…
 *   pmem: ndctl create-namespace -r regionN -m devdax|fsdax   (unless its labels brought one back)
 *   ram:  the kernel makes daxN.0 itself (cxl list -r regionN -X)
 *   daxctl reconfigure-device --mode=system-ram|devdax -f daxN.M   when dax= asks for the other mode
 *   daxctl list -d daxN.M                        what came of it (size, mode, NUMA node)
 *
 * The plan comes from the engine (engine/model/cxl-regions.ts). A step the
 * guest refuses stops with the guest's own words (and its last kernel lines).
 */
import type { RegionPlan } from '../engine/model/cxl-regions';

export type GuestRun = (argv: string[]) => Promise<{ exitCode: number; stdout: string; stderr: string }>;

export interface MadeRegion {
  window: number;
  decoder: string;
  region: string;
  type: 'ram' | 'pmem';
  /** Host physical address and size of the region (cxl's "resource", "size"). */
  resource: string;
  size: string;
  ways: number;
  memdevs: string[];
  /** The DAX device made of it (devdax or system-ram). */
  dax?: { device: string; mode: string; size: string; numaNode?: number };
  /** fsdax: the pmem block device. */
  blockdev?: string;
}

export class RegionError extends Error {}

function json(what: string, text: string): unknown {
  const t = text.trim();
  if (!t) return [];
  try {
    return JSON.parse(t);
  } catch {
    throw new RegionError(`${what} did not print JSON: ${t.slice(0, 400)}`);
  }
}

const asList = (v: unknown): Record<string, unknown>[] => (Array.isArray(v) ? v : v && typeof v === 'object' ? [v as Record<string, unknown>] : []);

async function failed(run: GuestRun, argv: string[], r: { exitCode: number; stdout: string; stderr: string }): Promise<RegionError> {
  const dmesg = await run(['sh', '-c', 'dmesg | tail -n 8']).catch(() => undefined);
  return new RegionError(`'${argv.join(' ')}' failed in the guest (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim()}${dmesg?.stdout.trim() ? `\nlast kernel lines:\n${dmesg.stdout.trimEnd()}` : ''}`);
}

/** Run a step; its stdout, or the guest's words when it fails (an exit status, or `ok` saying no). */
async function step(run: GuestRun, argv: string[], ok: (stdout: string) => boolean = () => true): Promise<string> {
  const r = await run(argv);
  if (r.exitCode !== 0 || !ok(r.stdout)) throw await failed(run, argv, r);
  return r.stdout;
}

/** Make every planned region in the guest, in window order; returns what was made. */
export async function makeRegions(run: GuestRun, plans: RegionPlan[]): Promise<MadeRegion[]> {
  const made: MadeRegion[] = [];
  if (!plans.length) return made;
  const memdevs = asList(json('cxl list -M', await step(run, ['cxl', 'list', '-M'])));
  for (const plan of plans) {
    if (plan.size === undefined) throw new RegionError(`window ${plan.request.window}: the capacity of its devices is not known`);
    const names = plan.devices.map((d) => {
      const m = memdevs.find((x) => d.serial !== undefined && BigInt(x.serial as number) === d.serial);
      if (!m) throw new RegionError(`the guest shows no memdev with the serial number of '${d.id}' (${d.serial === undefined ? 'none' : `0x${d.serial.toString(16)}`}); cxl list -M shows ${memdevs.map((x) => `${x.memdev} (serial 0x${Number(x.serial).toString(16)})`).join(', ') || 'none'}`);
      return String(m.memdev);
    });
    // (The 6.1 guest's cxl exits 0 after "region type 'ram' not supported yet": no region printed is a failure.)
    const created = asList(json('cxl create-region', await step(run, [
      'cxl', 'create-region', '-m', '-d', plan.decoder, '-w', String(plan.devices.length), '-t', plan.type,
      '-g', plan.granularity.toString(), '-s', plan.size.toString(), ...names,
    ], (out) => /"region"/.test(out))))[0];
    const region = String(created.region);
    const out: MadeRegion = {
      window: plan.request.window, decoder: plan.decoder, region, type: plan.type,
      resource: `0x${BigInt(created.resource as number).toString(16)}`, size: BigInt(created.size as number).toString(),
      ways: Number(created.interleave_ways ?? plan.devices.length), memdevs: names,
    };
    let dev: string | undefined;
    if (plan.type === 'pmem') {
      if (plan.dax) {
        // Persistent capacity keeps its namespace labels (on the device's label storage) from one boot to
        // the next: a namespace the region already holds is used as it is, never destroyed.
        const want = plan.dax === 'fsdax' ? 'fsdax' : 'devdax';
        const held = asList(json('ndctl list', await step(run, ['ndctl', 'list', '-r', region, '-N', '-X'])));
        if (held.length && held.some((n) => n.mode !== want)) {
          throw new RegionError(`${region} already holds ${held.map((n) => `${n.dev} (${n.mode})`).join(', ')} from the labels on its devices' label storage, not a ${want} namespace: memfabric does not destroy persistent data (in the guest: ndctl destroy-namespace, or new label storage files)`);
        }
        const ns = held[0] ?? asList(json('ndctl create-namespace', await step(run, ['ndctl', 'create-namespace', '-r', region, '-m', want])))[0] ?? {};
        if (plan.dax === 'fsdax') out.blockdev = ns.blockdev ? String(ns.blockdev) : undefined;
        else dev = String(((ns.daxregion as { devices?: { chardev?: string }[] } | undefined)?.devices ?? [])[0]?.chardev ?? '');
      }
    } else {
      const listed = asList(json('cxl list -X', await step(run, ['cxl', 'list', '-r', region, '-X'])))[0];
      dev = String(((listed?.daxregion as { devices?: { chardev?: string }[] } | undefined)?.devices ?? [])[0]?.chardev ?? '');
    }
    if (dev === '') throw new RegionError(`${region}: no DAX device came of it`);
    if (dev) {
      const cur = asList(json('daxctl list', await step(run, ['daxctl', 'list', '-d', dev])))[0] ?? {};
      const want = plan.dax === 'system-ram' ? 'system-ram' : plan.dax === 'devdax' ? 'devdax' : undefined;
      const reconfigure = !!want && cur.mode !== want;
      // -f: to devdax, offline the memory first; to system-ram, go on although the
      // kernel's policy (auto_online_blocks=online in Debian's kernels) onlines the
      // memory itself: without it daxctl stops with "kernel policy will auto-online
      // memory, aborting" (daxctl/device.c, reconfig_mode_system_ram).
      if (reconfigure) await step(run, ['daxctl', 'reconfigure-device', `--mode=${want}`, '-f', dev]);
      const fin = reconfigure ? asList(json('daxctl list', await step(run, ['daxctl', 'list', '-d', dev])))[0] ?? {} : cur;
      out.dax = {
        device: dev, mode: String(fin.mode ?? 'unknown'), size: BigInt((fin.size as number) ?? 0).toString(),
        ...(typeof fin.target_node === 'number' ? { numaNode: fin.target_node } : {}),
      };
    }
    made.push(out);
  }
  return made;
}

/** One line per region: "region0 ram 512 MiB at 0x190000000 on decoder0.0 (2 ways: mem0 mem1) → /dev/dax0.0 system-ram 512 MiB, NUMA node 1". */
export function describeRegion(r: MadeRegion): string {
  const mib = (s: string) => `${Number(BigInt(s) >> 20n)} MiB`;
  const tail = r.dax ? ` → /dev/${r.dax.device} ${r.dax.mode} ${mib(r.dax.size)}${r.dax.numaNode !== undefined && r.dax.mode === 'system-ram' ? `, NUMA node ${r.dax.numaNode}` : ''}` : r.blockdev ? ` → /dev/${r.blockdev} fsdax` : '';
  return `${r.region} ${r.type} ${mib(r.size)} at ${r.resource} on ${r.decoder} (${r.ways} way${r.ways === 1 ? '' : 's'}: ${r.memdevs.join(' ')})${tail}`;
}
