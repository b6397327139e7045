#!/bin/bash

QEMU=/usr/local/bin/qemu-system-x86_64

# Create DAX device in QEMU
$QEMU \
    --enable-kvm \
    -M q35,cxl=on \
    -m 16G,maxmem=128G,slots=8 \
    -smp 4 \
    \
    # CXL Root Port
    -device pxb-cxl,bus_nr=12,bus=pcie.0,id=cxl.1 \
    -device cxl-rp,port=0,bus=cxl.1,id=root_port13,chassis=0,slot=0 \
    \
    # CXL Type 3 device with DAX-backed memory
    -object memory-backend-file,id=cxl-mem1,share=on,mem-path=/dev/dax0.0,size=64G,align=2M \
    -device cxl-type3,bus=root_port13,persistent-memdev=cxl-mem1,id=cxl-pmem0,sn=0x1 \
    \
    # CXL Fixed Memory Window
    -M cxl-fmw.0.targets.0=cxl.1,cxl-fmw.0.size=64G \
    \
    # Other options...
    -nographic
