/**
 * What the real QEMU said of a node when memfabric ran it (the probe,
 * server/src/runtime/probe.ts, beside the runtime): its refusal, the firmware
 * stopping, where it disagrees with the model's prediction, and the stand-ins
 * that could make it decide otherwise. Plain data handed to the engine, as the
 * profile is; the rules qemu-refuses, probe-disagrees and probe-stand-in turn
 * it into diagnostics on the node's own text.
 */
import { Diagnostic } from '../diagnostics';
import { NodeModel } from '../model/model';
import { Span } from '../text/source';
import { Finding, makeDiagnostic, Rule } from '../rules/rule';
import { rule as refuses } from '../rules/qemu-refuses';
import { rule as disagrees } from '../rules/probe-disagrees';
import { rule as standIn } from '../rules/probe-stand-in';

export interface QemuVerdict {
  /** The QEMU that was run ("10.0.2") and its firmware's version line. */
  qemu: string;
  firmware?: string;
  /** QEMU refused to start: its own text, and the option it names (index in nodeArgv(node)). */
  refused?: { message: string; argIndex?: number; inferred?: boolean };
  /** The firmware stopped before its memory map ("PCI: out of 32bit address space"). */
  firmwareStop?: string;
  /** Where the model's prediction and QEMU's differ, each with both values. */
  disagreements: string[];
  /** A stand-in for a host file or device that could change the outcome, at its option. */
  caveats: { argIndex: number; message: string }[];
  /** The probe could not tell (timeout, a host device it does not stand in for...). */
  inconclusive?: string;
}

/** The option of nodeArgv(node) at argIndex (its name or its value): the span to report on. */
export function argSpan(node: NodeModel, argIndex: number | undefined): Span {
  if (argIndex !== undefined) {
    let i = 1;
    for (const a of node.args) {
      if (i === argIndex) return (a.value ?? a.option).span();
      if (a.value !== undefined && i + 1 === argIndex) return a.value.span();
      i += a.value !== undefined ? 2 : 1;
    }
  }
  return node.nameSpan;
}

/** The diagnostics of one node's verdict (they name the node, as the node rules' do). */
export function verdictDiagnostics(node: NodeModel, v: QemuVerdict): Diagnostic[] {
  const out: Diagnostic[] = [];
  const add = (rule: Rule, f: Finding) => out.push(makeDiagnostic(rule, f, node.name));
  if (v.refused) {
    add(refuses, {
      span: argSpan(node, v.refused.argIndex),
      message: `QEMU ${v.qemu} refuses to start this node (memfabric ran it, without a guest): "${v.refused.message}"${v.refused.inferred ? ' (QEMU names no option; this is the one the message is about)' : ''}`,
    });
  }
  if (v.firmwareStop) add(refuses, { span: node.nameSpan, message: `QEMU ${v.qemu} starts, but its firmware (${v.firmware ?? 'SeaBIOS'}) stops before booting: "${v.firmwareStop}"` });
  for (const d of v.disagreements) add(disagrees, { span: node.nameSpan, message: `QEMU ${v.qemu} (memfabric ran it) and memfabric's model disagree: ${d}. QEMU is right; the layout shown by --probe is QEMU's.` });
  for (const c of v.caveats) add(standIn, { span: argSpan(node, c.argIndex), message: c.message });
  if (v.inconclusive) add(standIn, { span: node.nameSpan, message: `QEMU ${v.qemu} could not be asked about this node: ${v.inconclusive}` });
  return out;
}
