/**
 * Every rule, by code. A diagnostic's code is the name of its file in this
 * folder (rules/<code>.ts).
 */
import { Rule } from './rule';
import { rule as r0 } from './backend-align-pow2';
import { rule as r1 } from './backend-missing-mem-path';
import { rule as r2 } from './backend-size-zero';
import { rule as r3 } from './backing-file-size';
import { rule as r4 } from './bus-nr-duplicate';
import { rule as r5 } from './chassis-slot-duplicate';
import { rule as r6 } from './comment-in-continuation';
import { rule as r7 } from './cxl-fmw-granularity';
import { rule as r8 } from './cxl-fmw-missing-property';
import { rule as r9 } from './cxl-fmw-size-256m';
import { rule as r10 } from './cxl-fmw-ways';
import { rule as r11 } from './cxl-fmw-without-cxl-on';
import { rule as r12 } from './cxl-rp-port-duplicate';
import { rule as r13 } from './cxl-type3-no-lsa';
import { rule as r14 } from './cxl-type3-no-memdev';
import { rule as r15 } from './cxl-type3-size-256m';
import { rule as r16 } from './dax-align';
import { rule as r17 } from './device-needs-bus';
import { rule as r18 } from './discard-data-shared';
import { rule as r19 } from './duplicate-id';
import { rule as r20 } from './fabric-region-mismatch';
import { rule as r21 } from './ivshmem-no-memdev';
import { rule as r22 } from './ivshmem-share-off';
import { rule as r23 } from './ivshmem-size-pow2';
import { rule as r24 } from './maxmem-below-ram';
import { rule as r25 } from './maxmem-not-page-aligned';
import { rule as r26 } from './mem-path-directory';
import { rule as r27 } from './memdev-busy';
import { rule as r28 } from './numa-node-missing';
import { rule as r29 } from './numa-sum';
import { rule as r30 } from './pxb-cxl-needs-pcie';
import { rule as r31 } from './pxb-cxl-without-cxl-on';
import { rule as r32 } from './shell-syntax';
import { rule as r33 } from './size-syntax';
import { rule as r34 } from './slots-maxmem-equal';
import { rule as r35 } from './slots-too-many';
import { rule as r36 } from './slots-without-maxmem';
import { rule as r37 } from './undefined-id';
import { rule as r38 } from './unknown-device-type';
import { rule as r39 } from './unknown-machine-type';
import { rule as r40 } from './unknown-object-type';
import { rule as r41 } from './unknown-option';
import { rule as r42 } from './unknown-property';
import { rule as r43 } from './unresolved-variable';
import { rule as r44 } from './xml-syntax';

export const RULES: Rule[] = [r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, r17, r18, r19, r20, r21, r22, r23, r24, r25, r26, r27, r28, r29, r30, r31, r32, r33, r34, r35, r36, r37, r38, r39, r40, r41, r42, r43, r44];

export const RULES_BY_CODE = new Map<string, Rule>(RULES.map((r) => [r.code, r]));
