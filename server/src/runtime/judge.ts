/**
 * The probe's answers as verdicts the engine reports (engine/qemu/verdict.ts):
 * one call for the CLI (`check --probe`, `layout --probe`) and the language
 * server (its background probe). Each distinct node shape runs QEMU once
 * (probeNodes), and every node's verdict compares QEMU's memory map with the
 * model's prediction for the same QEMU profile.
 */
import { NodeModel } from '../engine/model/model';
import { computeLayout, NodeLayout } from '../engine/layout/index';
import { QemuProfile, layoutQemu } from '../engine/qemu/profile';
import { QemuVerdict } from '../engine/qemu/verdict';
import { ProbeNodesOptions, ProbeResult, compareWithLayout, probeNodes } from './probe';
import type { LayoutProbe } from '../lsp/protocol';

export interface Judged {
  node: NodeModel;
  result: ProbeResult;
  layout: NodeLayout;
  verdict: QemuVerdict;
}

/** The verdict of one probe result against the model's layout of the same node. */
export function verdictOf(result: ProbeResult, layout: NodeLayout, qemu: QemuProfile, known?: string[]): QemuVerdict {
  const caveats = result.standIns.filter((s) => s.caveat).map((s) => ({ argIndex: s.argIndex, message: s.caveat! }));
  if (result.ok) {
    // (known: the disagreements of another node of the same shape, which are these.)
    const disagreements = known ?? compareWithLayout(layout, result).map((d) => d.message);
    return { qemu: result.qemuVersion, firmware: result.firmware, disagreements, caveats };
  }
  const v: QemuVerdict = { qemu: result.qemuVersion ?? qemu.version, disagreements: [], caveats };
  if (result.reason === 'refused') {
    // QEMU names no option in some messages ("can't open backing store PATH ..."): the one whose file it names.
    const named = result.argIndex === undefined ? result.standIns.find((s) => result.message.includes(s.path)) : undefined;
    v.refused = named ? { message: result.message, argIndex: named.argIndex, inferred: true } : { message: result.message, argIndex: result.argIndex, inferred: result.optionInferred };
  }
  else if (result.reason === 'firmware') {
    v.firmwareStop = result.message;
    if (layout.exhausted32 === undefined) v.disagreements.push(`memfabric predicts the firmware maps every BAR, but it stopped: ${result.message}`);
  } else v.inconclusive = `${result.reason}: ${result.message}`;
  return v;
}

/**
 * Probe the nodes with the QEMU of the profile (its binary; a bundled profile
 * has none, and then nothing is run) and judge each. `agent` as for
 * computeLayout: whether memfabric's guest agent device is part of the node.
 */
export async function judgeWithQemu(nodes: NodeModel[], qemu: QemuProfile, opts: ProbeNodesOptions & { agent?: boolean } = {}): Promise<Judged[]> {
  if (qemu.origin.kind !== 'binary') throw new Error(`there is no QEMU binary to probe with (judging with the bundled QEMU ${qemu.version} profile)`);
  const agent = opts.agent ?? false;
  const results = await probeNodes(nodes, { ...opts, agent, qemu: qemu.origin.path });
  // Nodes of one shape (one probe key) have one layout but for their names, and one memory map from QEMU.
  const shapes = new Map<string, { layout: NodeLayout; disagreements?: string[] }>();
  return nodes.map((node, i) => {
    const { result, key } = results[i];
    let shape = key !== undefined ? shapes.get(key) : undefined;
    let layout: NodeLayout;
    if (!shape) {
      layout = computeLayout(node, { agent, qemu: layoutQemu(qemu) });
      if (key !== undefined) shapes.set(key, (shape = { layout }));
    } else layout = { ...shape.layout, name: node.name };
    const verdict = verdictOf(result, layout, qemu, shape?.disagreements);
    if (shape && result.ok) shape.disagreements = verdict.disagreements;
    return { node, result, layout, verdict };
  });
}

/** What the probe says of a node in the layout report (`layout --probe`, the memory-map view). */
export function layoutProbe(j: Judged): LayoutProbe {
  const v = j.verdict;
  return {
    qemu: v.qemu,
    ...(v.firmware ? { firmware: v.firmware } : {}),
    confirmed: j.result.ok && v.disagreements.length === 0,
    ...(v.refused ? { refused: v.refused.message } : {}),
    ...(v.firmwareStop ? { firmwareStop: v.firmwareStop } : {}),
    ...(v.inconclusive ? { inconclusive: v.inconclusive } : {}),
    disagreements: v.disagreements,
  };
}
