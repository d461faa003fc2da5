//! Layout and constant checks for the headers beyond `xen.h`: event
//! channels, grant tables, memory, vCPUs, callbacks, physdev, NMI, the
//! domctl/sysctl subset, and the `io/` protocols.

use std::mem::{offset_of, size_of};

use guest_abi::io::{blkif, console, netif, ring, xenbus, xs_wire};
use guest_abi::{
    callback, domctl, event_channel, grant_table, memory, nmi, physdev, sysctl, vcpu, xen,
};

use super::{sv, v, Checks};

pub fn struct_checks(c: &mut Checks) {
    use xen::*;
    layout!(c, IretContext, "struct iret_context" {
        rax, r11, rcx, flags, rip, cs, rflags, rsp, ss,
    });
    layout!(c, VcpuGuestContext, "struct vcpu_guest_context" {
        fpu_ctxt, flags, user_regs, trap_ctxt, ldt_base, ldt_ents, gdt_frames, gdt_ents,
        kernel_ss, kernel_sp, ctrlreg, debugreg, event_callback_eip, failsafe_callback_eip,
        syscall_callback_eip, vm_assist, fs_base, gs_base_kernel, gs_base_user,
    });
    c.add(
        "sizeof(((struct vcpu_guest_context *)0)->trap_ctxt)",
        v(size_of::<[TrapInfo; VGC_TRAP_ENTRIES]>()),
    );
    c.add(
        "sizeof(((struct vcpu_guest_context *)0)->gdt_frames)",
        v(size_of::<[u64; 16]>()),
    );
    layout!(c, XenCpuidLeaf, "struct xen_cpuid_leaf" { leaf, subleaf, a, b, c, d });
    layout!(c, XenMsrEntry, "struct xen_msr_entry" { idx, flags, val });
    layout!(c, XenctlBitmap, "struct xenctl_bitmap" { bitmap, nr_bits });
    c.add("sizeof(xen_pfn_t)", v(size_of::<XenPfn>()));
    c.add("sizeof(xen_ulong_t)", v(size_of::<XenUlong>()));

    use event_channel::*;
    layout!(c, EvtchnAllocUnbound, "struct evtchn_alloc_unbound" { dom, remote_dom, port });
    layout!(c, EvtchnBindInterdomain, "struct evtchn_bind_interdomain" {
        remote_dom, remote_port, local_port,
    });
    layout!(c, EvtchnBindVirq, "struct evtchn_bind_virq" { virq, vcpu, port });
    layout!(c, EvtchnBindPirq, "struct evtchn_bind_pirq" { pirq, flags, port });
    layout!(c, EvtchnBindIpi, "struct evtchn_bind_ipi" { vcpu, port });
    layout!(c, EvtchnClose, "struct evtchn_close" { port });
    layout!(c, EvtchnSend, "struct evtchn_send" { port });
    layout!(c, EvtchnStatus, "struct evtchn_status" { dom, port, status, vcpu, u });
    let u = offset_of!(EvtchnStatus, u);
    c.add(
        "sizeof(((struct evtchn_status *)0)->u)",
        v(size_of::<[u32; 2]>()),
    );
    c.add("offsetof(struct evtchn_status, u.unbound.dom)", v(u));
    c.add("offsetof(struct evtchn_status, u.interdomain.dom)", v(u));
    c.add(
        "offsetof(struct evtchn_status, u.interdomain.port)",
        v(u + 4),
    );
    c.add("offsetof(struct evtchn_status, u.pirq)", v(u));
    c.add("offsetof(struct evtchn_status, u.virq)", v(u));
    layout!(c, EvtchnBindVcpu, "struct evtchn_bind_vcpu" { port, vcpu });
    layout!(c, EvtchnUnmask, "struct evtchn_unmask" { port });
    layout!(c, EvtchnReset, "struct evtchn_reset" { dom });
    layout!(c, EvtchnInitControl, "struct evtchn_init_control" {
        control_gfn, offset, vcpu, link_bits, _pad,
    });
    layout!(c, EvtchnExpandArray, "struct evtchn_expand_array" { array_gfn });
    layout!(c, EvtchnSetPriority, "struct evtchn_set_priority" { port, priority });
    layout!(c, EvtchnOp, "struct evtchn_op" { cmd, u });
    c.add(
        "sizeof(((struct evtchn_op *)0)->u)",
        v(size_of::<[u32; 6]>()),
    );
    layout!(c, EvtchnFifoControlBlock, "struct evtchn_fifo_control_block" {
        ready, _rsvd, head,
    });
    c.add("sizeof(event_word_t)", v(size_of::<u32>()));

    use grant_table::*;
    layout!(c, GrantEntryV1, "struct grant_entry_v1" { flags, domid, frame });
    layout!(c, GnttabMapGrantRef, "struct gnttab_map_grant_ref" {
        host_addr, flags, ref_ => "ref", dom, status, handle, dev_bus_addr,
    });
    layout!(c, GnttabUnmapGrantRef, "struct gnttab_unmap_grant_ref" {
        host_addr, dev_bus_addr, handle, status,
    });
    layout!(c, GnttabSetupTable, "struct gnttab_setup_table" {
        dom, nr_frames, status, frame_list,
    });
    layout!(c, GnttabDumpTable, "struct gnttab_dump_table" { dom, status });
    layout!(c, GnttabTransfer, "struct gnttab_transfer" { mfn, domid, ref_ => "ref", status });
    layout!(c, GnttabCopyPtr, "struct gnttab_copy_ptr" { u, domid, offset });
    c.add(
        "offsetof(struct gnttab_copy_ptr, u.ref)",
        v(offset_of!(GnttabCopyPtr, u)),
    );
    c.add(
        "offsetof(struct gnttab_copy_ptr, u.gmfn)",
        v(offset_of!(GnttabCopyPtr, u)),
    );
    c.add(
        "sizeof(((struct gnttab_copy_ptr *)0)->u)",
        v(size_of::<u64>()),
    );
    layout!(c, GnttabCopy, "struct gnttab_copy" { source, dest, len, flags, status });
    layout!(c, GnttabQuerySize, "struct gnttab_query_size" {
        dom, nr_frames, max_nr_frames, status,
    });
    layout!(c, GnttabUnmapAndReplace, "struct gnttab_unmap_and_replace" {
        host_addr, new_addr, handle, status,
    });
    layout!(c, GnttabSetVersion, "struct gnttab_set_version" { version });
    layout!(c, GnttabGetStatusFrames, "struct gnttab_get_status_frames" {
        nr_frames, dom, status, frame_list,
    });
    layout!(c, GnttabGetVersion, "struct gnttab_get_version" { dom, pad, version });
    layout!(c, GnttabSwapGrantRef, "struct gnttab_swap_grant_ref" { ref_a, ref_b, status });
    layout!(c, GnttabCacheFlush, "struct gnttab_cache_flush" { a, offset, length, op });
    c.add("offsetof(struct gnttab_cache_flush, a.ref)", 0);
    c.add("offsetof(struct gnttab_cache_flush, a.dev_bus_addr)", 0);
    c.add("sizeof(grant_handle_t)", v(size_of::<u32>()));

    use memory::*;
    layout!(c, XenMemoryReservation, "struct xen_memory_reservation" {
        extent_start, nr_extents, extent_order, mem_flags, domid,
    });
    layout!(c, XenMemoryExchange, "struct xen_memory_exchange" {
        in_ => "in", out, nr_exchanged,
    });
    layout!(c, XenMemoryDomain, "struct xen_memory_domain" { domid });
    layout!(c, XenMachphysMfnList, "struct xen_machphys_mfn_list" {
        max_extents, extent_start, nr_extents,
    });
    layout!(c, XenMachphysMapping, "struct xen_machphys_mapping" { v_start, v_end, max_mfn });
    layout!(c, XenAddToPhysmap, "struct xen_add_to_physmap" { domid, size, space, idx, gpfn });
    layout!(c, XenAddToPhysmapBatch, "struct xen_add_to_physmap_batch" {
        domid, space, size, u, idxs, gpfns, errs,
    });
    c.add(
        "offsetof(struct xen_add_to_physmap_batch, u.foreign_domid)",
        v(offset_of!(XenAddToPhysmapBatch, u)),
    );
    c.add(
        "offsetof(struct xen_add_to_physmap_batch, u.res0)",
        v(offset_of!(XenAddToPhysmapBatch, u)),
    );
    c.add(
        "sizeof(((struct xen_add_to_physmap_batch *)0)->u)",
        v(size_of::<u16>()),
    );
    layout!(c, XenRemoveFromPhysmap, "struct xen_remove_from_physmap" { domid, gpfn });
    layout!(c, XenMemoryMap, "struct xen_memory_map" { nr_entries, buffer });
    layout!(c, XenForeignMemoryMap, "struct xen_foreign_memory_map" { domid, map });
    // The E820 record has no C definition in Xen's public headers; the test
    // declares the BIOS format itself (see `c_prelude`).
    layout!(c, E820Entry, "struct test_e820entry" { addr, size, type_ => "type" });

    use vcpu::*;
    layout!(c, VcpuRunstateInfo, "struct vcpu_runstate_info" { state, state_entry_time, time });
    layout!(c, VcpuRegisterRunstateMemoryArea, "struct vcpu_register_runstate_memory_area" {
        addr,
    });
    c.add(
        "sizeof(((struct vcpu_register_runstate_memory_area *)0)->addr)",
        8,
    );
    c.add(
        "offsetof(struct vcpu_register_runstate_memory_area, addr.p)",
        0,
    );
    layout!(c, VcpuSetPeriodicTimer, "struct vcpu_set_periodic_timer" { period_ns });
    layout!(c, VcpuSetSingleshotTimer, "struct vcpu_set_singleshot_timer" {
        timeout_abs_ns, flags,
    });
    layout!(c, VcpuRegisterVcpuInfo, "struct vcpu_register_vcpu_info" { mfn, offset, rsvd });
    layout!(c, VcpuGetPhysid, "struct vcpu_get_physid" { phys_id });
    layout!(c, VcpuRegisterTimeMemoryArea, "struct vcpu_register_time_memory_area" { addr });
    c.add("offsetof(struct vcpu_register_time_memory_area, addr.p)", 0);

    use callback::*;
    layout!(c, CallbackRegister, "struct callback_register" {
        type_ => "type", flags, address,
    });
    layout!(c, CallbackUnregister, "struct callback_unregister" { type_ => "type", _unused });

    use nmi::*;
    layout!(c, XennmiCallback, "struct xennmi_callback" { handler_address, pad });

    use physdev::*;
    layout!(c, PhysdevEoi, "struct physdev_eoi" { irq });
    layout!(c, PhysdevPirqEoiGmfn, "struct physdev_pirq_eoi_gmfn" { gmfn });
    layout!(c, PhysdevIrqStatusQuery, "struct physdev_irq_status_query" { irq, flags });
    layout!(c, PhysdevSetIopl, "struct physdev_set_iopl" { iopl });
    layout!(c, PhysdevSetIobitmap, "struct physdev_set_iobitmap" { bitmap, nr_ports });
    layout!(c, PhysdevApic, "struct physdev_apic" { apic_physbase, reg, value });
    layout!(c, PhysdevIrq, "struct physdev_irq" { irq, vector });
    layout!(c, PhysdevMapPirq, "struct physdev_map_pirq" {
        domid, type_ => "type", index, pirq, bus, devfn, entry_nr, table_base,
    });
    layout!(c, PhysdevUnmapPirq, "struct physdev_unmap_pirq" { domid, pirq });
    layout!(c, PhysdevManagePci, "struct physdev_manage_pci" { bus, devfn });
    layout!(c, PhysdevRestoreMsi, "struct physdev_restore_msi" { bus, devfn });
    layout!(c, PhysdevManagePciExt, "struct physdev_manage_pci_ext" {
        bus, devfn, is_extfn, is_virtfn, physfn,
    });
    layout_in!(c, PhysdevPhysfn, "struct physdev_manage_pci_ext", "physfn",
        offset_of!(PhysdevManagePciExt, physfn); { bus, devfn });
    layout_in!(c, PhysdevPhysfn, "struct physdev_pci_device_add", "physfn",
        offset_of!(PhysdevPciDeviceAdd, physfn); { bus, devfn });
    layout!(c, PhysdevOp, "struct physdev_op" { cmd, u });
    c.add(
        "sizeof(((struct physdev_op *)0)->u)",
        v(size_of::<[u64; 2]>()),
    );
    layout!(c, PhysdevSetupGsi, "struct physdev_setup_gsi" { gsi, triggering, polarity });
    layout!(c, PhysdevGetFreePirq, "struct physdev_get_free_pirq" { type_ => "type", pirq });
    layout!(c, PhysdevPciMmcfgReserved, "struct physdev_pci_mmcfg_reserved" {
        address, segment, start_bus, end_bus, flags,
    });
    layout!(c, PhysdevPciDeviceAdd, "struct physdev_pci_device_add" {
        seg, bus, devfn, flags, physfn,
    });
    c.add(
        "offsetof(struct physdev_pci_device_add, optarr)",
        v(size_of::<PhysdevPciDeviceAdd>()),
    );
    layout!(c, PhysdevPciDevice, "struct physdev_pci_device" { seg, bus, devfn });
    layout!(c, PhysdevDbgpOp, "struct physdev_dbgp_op" { op, bus, u });
    c.add(
        "offsetof(struct physdev_dbgp_op, u.pci)",
        v(offset_of!(PhysdevDbgpOp, u)),
    );

    use domctl::*;
    layout!(c, XenArchDomainconfig, "struct xen_arch_domainconfig" {
        emulation_flags, misc_flags,
    });
    layout!(c, XenDomctlCreatedomain, "struct xen_domctl_createdomain" {
        ssidref, handle, flags, iommu_opts, max_vcpus, max_evtchn_port, max_grant_frames,
        max_maptrack_frames, grant_opts, vmtrace_size, cpupool_id, arch,
    });
    layout!(c, XenDomctlGetdomaininfo, "struct xen_domctl_getdomaininfo" {
        domain, pad1, flags, tot_pages, max_pages, outstanding_pages, shr_pages, paged_pages,
        shared_info_frame, cpu_time, nr_online_vcpus, max_vcpu_id, ssidref, handle, cpupool,
        gpaddr_bits, pad2, arch_config,
    });
    layout!(c, XenDomctlGetpageframeinfo3, "struct xen_domctl_getpageframeinfo3" { num, array });
    layout!(c, XenDomctlShadowOpStats, "struct xen_domctl_shadow_op_stats" {
        fault_count, dirty_count,
    });
    layout!(c, XenDomctlShadowOp, "struct xen_domctl_shadow_op" {
        op, mode, mb, dirty_bitmap, pages, stats,
    });
    layout!(c, XenDomctlMaxMem, "struct xen_domctl_max_mem" { max_memkb });
    layout!(c, XenDomctlVcpucontext, "struct xen_domctl_vcpucontext" { vcpu, ctxt });
    layout!(c, XenDomctlGetvcpuinfo, "struct xen_domctl_getvcpuinfo" {
        vcpu, online, blocked, running, cpu_time, cpu,
    });
    layout!(c, XenDomctlMaxVcpus, "struct xen_domctl_max_vcpus" { max });
    layout!(c, XenDomctlSetdomainhandle, "struct xen_domctl_setdomainhandle" { handle });
    layout!(c, XenDomctlSetdebugging, "struct xen_domctl_setdebugging" { enable });
    layout!(c, XenDomctlHypercallInit, "struct xen_domctl_hypercall_init" { gmfn });
    layout!(c, XenDomctlSettimeoffset, "struct xen_domctl_settimeoffset" {
        time_offset_seconds,
    });
    layout!(c, XenDomctlAddressSize, "struct xen_domctl_address_size" { size });
    layout!(c, XenDomctlSchedulerOp, "struct xen_domctl_scheduler_op" {
        sched_id, cmd, weight => "u.credit.weight", cap => "u.credit.cap",
    });
    layout!(c, XenDomctl, "struct xen_domctl" { cmd, interface_version, domain, _pad, u });
    layout_in!(c, DomctlPayload, "struct xen_domctl", "u", offset_of!(XenDomctl, u); {
        words => "pad",
    });
    c.add(
        "_Alignof(struct xen_domctl)",
        v(std::mem::align_of::<XenDomctl>()),
    );

    use sysctl::*;
    layout!(c, XenSysctlReadconsole, "struct xen_sysctl_readconsole" {
        clear, incremental, pad0, pad1, index, buffer, count,
    });
    layout!(c, XenSysctlPhysinfo, "struct xen_sysctl_physinfo" {
        threads_per_core, cores_per_socket, nr_cpus, max_cpu_id, nr_nodes, max_node_id, cpu_khz,
        capabilities, arch_capabilities, pad, total_pages, free_pages, scrub_pages,
        outstanding_pages, max_mfn, hw_cap,
    });
    layout!(c, XenSysctlSchedId, "struct xen_sysctl_sched_id" { sched_id });
    layout!(c, XenSysctlGetdomaininfolist, "struct xen_sysctl_getdomaininfolist" {
        first_domain, max_domains, buffer, num_domains,
    });
    layout!(c, XenSysctl, "struct xen_sysctl" { cmd, interface_version, u });
    c.add(
        "sizeof(((struct xen_sysctl *)0)->u)",
        v(size_of::<DomctlPayload>()),
    );
    c.add(
        "_Alignof(struct xen_sysctl)",
        v(std::mem::align_of::<XenSysctl>()),
    );

    use ring::*;
    // The header of every DEFINE_RING_TYPES ring; checked on blkif's.
    // C has no header-only struct: the header's size is where `ring` starts.
    for (f, off) in [
        ("req_prod", offset_of!(SringHeader, req_prod)),
        ("req_event", offset_of!(SringHeader, req_event)),
        ("rsp_prod", offset_of!(SringHeader, rsp_prod)),
        ("rsp_event", offset_of!(SringHeader, rsp_event)),
        ("pvt", offset_of!(SringHeader, pvt)),
        ("__pad", offset_of!(SringHeader, _pad)),
    ] {
        c.add(format!("offsetof(struct blkif_sring, {f})"), v(off));
    }
    c.cover::<SringHeader>(&[
        "req_prod",
        "req_event",
        "rsp_prod",
        "rsp_event",
        "pvt",
        "_pad",
    ]);
    c.add(
        "offsetof(struct blkif_sring, ring)",
        v(size_of::<SringHeader>()),
    );
    c.add(
        "offsetof(struct xen_netif_ctrl_sring, ring)",
        v(SRING_HEADER_SIZE),
    );
    c.add(
        "offsetof(struct netif_tx_sring, ring)",
        v(SRING_HEADER_SIZE),
    );
    c.add("sizeof(((struct blkif_sring *)0)->pvt)", 4);
    c.add("sizeof(RING_IDX)", v(size_of::<RingIdx>()));

    use xs_wire::*;
    layout!(c, XsdSockmsg, "struct xsd_sockmsg" { type_ => "type", req_id, tx_id, len });
    c.cover::<XsType>(&[]);
    c.add("sizeof(enum xsd_sockmsg_type)", v(size_of::<XsType>()));
    layout!(c, XenstoreDomainInterface, "struct xenstore_domain_interface" {
        req, rsp, req_cons, req_prod, rsp_cons, rsp_prod, server_features, connection, error,
    });

    use console::*;
    layout!(c, XenconsInterface, "struct xencons_interface" {
        in_ => "in", out, in_cons, in_prod, out_cons, out_prod,
    });

    use blkif::*;
    layout!(c, BlkifRequestSegment, "struct blkif_request_segment" {
        gref, first_sect, last_sect,
    });
    layout!(c, BlkifRequest, "struct blkif_request" {
        operation, nr_segments, handle, id, sector_number, seg,
    });
    layout!(c, BlkifRequestDiscard, "struct blkif_request_discard" {
        operation, flag, handle, id, sector_number, nr_sectors,
    });
    layout!(c, BlkifRequestIndirect, "struct blkif_request_indirect" {
        operation, indirect_op, nr_segments, id, sector_number, handle, indirect_grefs,
    });
    layout!(c, BlkifResponse, "struct blkif_response" { id, operation, status });
    c.add("sizeof(union blkif_sring_entry)", v(BLKIF_SLOT_SIZE));
    c.add("__CONST_RING_SIZE(blkif, 4096)", v(BLKIF_RING_SIZE));

    use netif::*;
    layout!(c, NetifTxRequest, "struct netif_tx_request" { gref, offset, flags, id, size });
    layout!(c, NetifTxResponse, "struct netif_tx_response" { id, status });
    layout!(c, NetifRxRequest, "struct netif_rx_request" { id, pad, gref });
    layout!(c, NetifRxResponse, "struct netif_rx_response" { id, offset, flags, status });
    layout!(c, NetifExtraInfo, "struct netif_extra_info" { type_ => "type", flags, u });
    let u = offset_of!(NetifExtraInfo, u);
    c.add("sizeof(((struct netif_extra_info *)0)->u)", 6);
    c.add("offsetof(struct netif_extra_info, u.gso.size)", v(u));
    c.add("offsetof(struct netif_extra_info, u.gso.type)", v(u + 2));
    c.add(
        "offsetof(struct netif_extra_info, u.gso.features)",
        v(u + 4),
    );
    c.add("offsetof(struct netif_extra_info, u.mcast.addr)", v(u));
    c.add("offsetof(struct netif_extra_info, u.hash.type)", v(u));
    c.add(
        "offsetof(struct netif_extra_info, u.hash.algorithm)",
        v(u + 1),
    );
    c.add("offsetof(struct netif_extra_info, u.hash.value)", v(u + 2));
    c.add("__CONST_RING_SIZE(netif_tx, 4096)", v(NET_TX_RING_SIZE));
    c.add("__CONST_RING_SIZE(netif_rx, 4096)", v(NET_RX_RING_SIZE));
}

pub fn constant_checks(c: &mut Checks) {
    use xen::*;
    konst!(c,
        VIRQ_ARCH_0 => "VIRQ_ARCH_0", VIRQ_ARCH_1 => "VIRQ_ARCH_1", VIRQ_ARCH_2 => "VIRQ_ARCH_2",
        VIRQ_ARCH_3 => "VIRQ_ARCH_3", VIRQ_ARCH_4 => "VIRQ_ARCH_4", VIRQ_ARCH_5 => "VIRQ_ARCH_5",
        VIRQ_ARCH_6 => "VIRQ_ARCH_6", VIRQ_ARCH_7 => "VIRQ_ARCH_7", VIRQ_MCA => "VIRQ_MCA",
        XEN_HVM_DEBUGCONS_IOPORT => "XEN_HVM_DEBUGCONS_IOPORT",
        XEN_CPUID_NO_SUBLEAF => "XEN_CPUID_NO_SUBLEAF",
    );

    use event_channel::*;
    konst!(c,
        EVTCHNOP_BIND_INTERDOMAIN => "EVTCHNOP_bind_interdomain",
        EVTCHNOP_BIND_VIRQ => "EVTCHNOP_bind_virq", EVTCHNOP_BIND_PIRQ => "EVTCHNOP_bind_pirq",
        EVTCHNOP_CLOSE => "EVTCHNOP_close", EVTCHNOP_SEND => "EVTCHNOP_send",
        EVTCHNOP_STATUS => "EVTCHNOP_status", EVTCHNOP_ALLOC_UNBOUND => "EVTCHNOP_alloc_unbound",
        EVTCHNOP_BIND_IPI => "EVTCHNOP_bind_ipi", EVTCHNOP_BIND_VCPU => "EVTCHNOP_bind_vcpu",
        EVTCHNOP_UNMASK => "EVTCHNOP_unmask", EVTCHNOP_RESET => "EVTCHNOP_reset",
        EVTCHNOP_INIT_CONTROL => "EVTCHNOP_init_control",
        EVTCHNOP_EXPAND_ARRAY => "EVTCHNOP_expand_array",
        EVTCHNOP_SET_PRIORITY => "EVTCHNOP_set_priority",
        BIND_PIRQ_WILL_SHARE => "BIND_PIRQ__WILL_SHARE",
        EVTCHNSTAT_CLOSED => "EVTCHNSTAT_closed", EVTCHNSTAT_UNBOUND => "EVTCHNSTAT_unbound",
        EVTCHNSTAT_INTERDOMAIN => "EVTCHNSTAT_interdomain", EVTCHNSTAT_PIRQ => "EVTCHNSTAT_pirq",
        EVTCHNSTAT_VIRQ => "EVTCHNSTAT_virq", EVTCHNSTAT_IPI => "EVTCHNSTAT_ipi",
        EVTCHN_2L_NR_CHANNELS => "EVTCHN_2L_NR_CHANNELS",
        EVTCHN_FIFO_PRIORITY_MAX => "EVTCHN_FIFO_PRIORITY_MAX",
        EVTCHN_FIFO_PRIORITY_DEFAULT => "EVTCHN_FIFO_PRIORITY_DEFAULT",
        EVTCHN_FIFO_PRIORITY_MIN => "EVTCHN_FIFO_PRIORITY_MIN",
        EVTCHN_FIFO_MAX_QUEUES => "EVTCHN_FIFO_MAX_QUEUES",
        EVTCHN_FIFO_PENDING => "EVTCHN_FIFO_PENDING", EVTCHN_FIFO_MASKED => "EVTCHN_FIFO_MASKED",
        EVTCHN_FIFO_LINKED => "EVTCHN_FIFO_LINKED", EVTCHN_FIFO_BUSY => "EVTCHN_FIFO_BUSY",
        EVTCHN_FIFO_LINK_BITS => "EVTCHN_FIFO_LINK_BITS",
        EVTCHN_FIFO_LINK_MASK => "EVTCHN_FIFO_LINK_MASK",
        EVTCHN_FIFO_NR_CHANNELS => "EVTCHN_FIFO_NR_CHANNELS",
    );

    use grant_table::*;
    konst!(c,
        GNTTABOP_MAP_GRANT_REF => "GNTTABOP_map_grant_ref",
        GNTTABOP_UNMAP_GRANT_REF => "GNTTABOP_unmap_grant_ref",
        GNTTABOP_SETUP_TABLE => "GNTTABOP_setup_table",
        GNTTABOP_DUMP_TABLE => "GNTTABOP_dump_table", GNTTABOP_TRANSFER => "GNTTABOP_transfer",
        GNTTABOP_COPY => "GNTTABOP_copy", GNTTABOP_QUERY_SIZE => "GNTTABOP_query_size",
        GNTTABOP_UNMAP_AND_REPLACE => "GNTTABOP_unmap_and_replace",
        GNTTABOP_SET_VERSION => "GNTTABOP_set_version",
        GNTTABOP_GET_STATUS_FRAMES => "GNTTABOP_get_status_frames",
        GNTTABOP_GET_VERSION => "GNTTABOP_get_version",
        GNTTABOP_SWAP_GRANT_REF => "GNTTABOP_swap_grant_ref",
        GNTTABOP_CACHE_FLUSH => "GNTTABOP_cache_flush",
        GNTTAB_NR_RESERVED_ENTRIES => "GNTTAB_NR_RESERVED_ENTRIES",
        GNTTAB_RESERVED_CONSOLE => "GNTTAB_RESERVED_CONSOLE",
        GNTTAB_RESERVED_XENSTORE => "GNTTAB_RESERVED_XENSTORE",
        GTF_INVALID => "GTF_invalid", GTF_PERMIT_ACCESS => "GTF_permit_access",
        GTF_ACCEPT_TRANSFER => "GTF_accept_transfer", GTF_TRANSITIVE => "GTF_transitive",
        GTF_TYPE_MASK => "GTF_type_mask", GTF_READONLY => "GTF_readonly",
        GTF_READING => "GTF_reading", GTF_WRITING => "GTF_writing", GTF_PWT => "GTF_PWT",
        GTF_PCD => "GTF_PCD", GTF_PAT => "GTF_PAT", GTF_SUB_PAGE => "GTF_sub_page",
        GTF_TRANSFER_COMMITTED => "GTF_transfer_committed",
        GTF_TRANSFER_COMPLETED => "GTF_transfer_completed",
        GNTCOPY_SOURCE_GREF => "GNTCOPY_source_gref", GNTCOPY_DEST_GREF => "GNTCOPY_dest_gref",
        GNTTAB_CACHE_CLEAN => "GNTTAB_CACHE_CLEAN", GNTTAB_CACHE_INVAL => "GNTTAB_CACHE_INVAL",
        GNTTAB_CACHE_SOURCE_GREF => "GNTTAB_CACHE_SOURCE_GREF",
        GNTMAP_DEVICE_MAP => "GNTMAP_device_map", GNTMAP_HOST_MAP => "GNTMAP_host_map",
        GNTMAP_READONLY => "GNTMAP_readonly", GNTMAP_APPLICATION_MAP => "GNTMAP_application_map",
        GNTMAP_CONTAINS_PTE => "GNTMAP_contains_pte", GNTMAP_GUEST_AVAIL0 => "_GNTMAP_guest_avail0",
        GNTMAP_GUEST_AVAIL_MASK => "GNTMAP_guest_avail_mask",
    );
    for (r, name) in [
        (GNTST_OKAY, "GNTST_okay"),
        (GNTST_GENERAL_ERROR, "GNTST_general_error"),
        (GNTST_BAD_DOMAIN, "GNTST_bad_domain"),
        (GNTST_BAD_GNTREF, "GNTST_bad_gntref"),
        (GNTST_BAD_HANDLE, "GNTST_bad_handle"),
        (GNTST_BAD_VIRT_ADDR, "GNTST_bad_virt_addr"),
        (GNTST_BAD_DEV_ADDR, "GNTST_bad_dev_addr"),
        (GNTST_NO_DEVICE_SPACE, "GNTST_no_device_space"),
        (GNTST_PERMISSION_DENIED, "GNTST_permission_denied"),
        (GNTST_BAD_PAGE, "GNTST_bad_page"),
        (GNTST_BAD_COPY_ARG, "GNTST_bad_copy_arg"),
        (GNTST_ADDRESS_TOO_BIG, "GNTST_address_too_big"),
        (GNTST_EAGAIN, "GNTST_eagain"),
        (GNTST_NO_SPACE, "GNTST_no_space"),
    ] {
        c.add(format!("(long long){name}"), sv(r));
        // The message table is indexed by -status.
        c.add(
            format!(
                "strcmp(gnttab_msgs[-({name})], \"{}\") == 0",
                status_message(r)
            ),
            1,
        );
    }

    use memory::*;
    konst!(c,
        XENMEM_INCREASE_RESERVATION => "XENMEM_increase_reservation",
        XENMEM_DECREASE_RESERVATION => "XENMEM_decrease_reservation",
        XENMEM_MAXIMUM_RAM_PAGE => "XENMEM_maximum_ram_page",
        XENMEM_CURRENT_RESERVATION => "XENMEM_current_reservation",
        XENMEM_MAXIMUM_RESERVATION => "XENMEM_maximum_reservation",
        XENMEM_MACHPHYS_MFN_LIST => "XENMEM_machphys_mfn_list",
        XENMEM_POPULATE_PHYSMAP => "XENMEM_populate_physmap",
        XENMEM_ADD_TO_PHYSMAP => "XENMEM_add_to_physmap",
        XENMEM_MEMORY_MAP => "XENMEM_memory_map",
        XENMEM_MACHINE_MEMORY_MAP => "XENMEM_machine_memory_map",
        XENMEM_EXCHANGE => "XENMEM_exchange", XENMEM_MACHPHYS_MAPPING => "XENMEM_machphys_mapping",
        XENMEM_SET_MEMORY_MAP => "XENMEM_set_memory_map",
        XENMEM_MAXIMUM_GPFN => "XENMEM_maximum_gpfn",
        XENMEM_REMOVE_FROM_PHYSMAP => "XENMEM_remove_from_physmap",
        XENMEM_SET_POD_TARGET => "XENMEM_set_pod_target",
        XENMEM_GET_POD_TARGET => "XENMEM_get_pod_target",
        XENMEM_GET_SHARING_FREED_PAGES => "XENMEM_get_sharing_freed_pages",
        XENMEM_GET_SHARING_SHARED_PAGES => "XENMEM_get_sharing_shared_pages",
        XENMEM_PAGING_OP => "XENMEM_paging_op", XENMEM_ACCESS_OP => "XENMEM_access_op",
        XENMEM_SHARING_OP => "XENMEM_sharing_op",
        XENMEM_ADD_TO_PHYSMAP_BATCH => "XENMEM_add_to_physmap_batch",
        XENMEM_CLAIM_PAGES => "XENMEM_claim_pages",
        XENMEM_MACHPHYS_COMPAT_MFN_LIST => "XENMEM_machphys_compat_mfn_list",
        XENMEM_GET_VNUMAINFO => "XENMEM_get_vnumainfo",
        XENMEM_RESERVED_DEVICE_MEMORY_MAP => "XENMEM_reserved_device_memory_map",
        XENMEM_ACQUIRE_RESOURCE => "XENMEM_acquire_resource",
        xenmemf_address_bits(32) => "XENMEMF_address_bits(32)",
        xenmemf_get_address_bits(0x1_2320) => "XENMEMF_get_address_bits(0x12320)",
        xenmemf_node(3) => "XENMEMF_node(3)", xenmemf_get_node(0x400) => "XENMEMF_get_node(0x400)",
        XENMEMF_POPULATE_ON_DEMAND => "XENMEMF_populate_on_demand",
        XENMEMF_EXACT_NODE_REQUEST => "XENMEMF_exact_node_request",
        XENMEMF_VNODE => "XENMEMF_vnode",
        XENMAPSPACE_SHARED_INFO => "XENMAPSPACE_shared_info",
        XENMAPSPACE_GRANT_TABLE => "XENMAPSPACE_grant_table",
        XENMAPSPACE_GMFN => "XENMAPSPACE_gmfn", XENMAPSPACE_GMFN_RANGE => "XENMAPSPACE_gmfn_range",
        XENMAPSPACE_GMFN_FOREIGN => "XENMAPSPACE_gmfn_foreign",
        XENMAPSPACE_DEV_MMIO => "XENMAPSPACE_dev_mmio",
        XENMAPIDX_GRANT_TABLE_STATUS => "XENMAPIDX_grant_table_status",
        XENMEM_ACCESS_N => "XENMEM_access_n", XENMEM_ACCESS_RWX => "XENMEM_access_rwx",
        XENMEM_ACCESS_DEFAULT => "XENMEM_access_default",
    );

    use vcpu::*;
    konst!(c,
        VCPUOP_INITIALISE => "VCPUOP_initialise", VCPUOP_UP => "VCPUOP_up",
        VCPUOP_DOWN => "VCPUOP_down", VCPUOP_IS_UP => "VCPUOP_is_up",
        VCPUOP_GET_RUNSTATE_INFO => "VCPUOP_get_runstate_info",
        VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => "VCPUOP_register_runstate_memory_area",
        VCPUOP_SET_PERIODIC_TIMER => "VCPUOP_set_periodic_timer",
        VCPUOP_STOP_PERIODIC_TIMER => "VCPUOP_stop_periodic_timer",
        VCPUOP_SET_SINGLESHOT_TIMER => "VCPUOP_set_singleshot_timer",
        VCPUOP_STOP_SINGLESHOT_TIMER => "VCPUOP_stop_singleshot_timer",
        VCPUOP_REGISTER_VCPU_INFO => "VCPUOP_register_vcpu_info",
        VCPUOP_SEND_NMI => "VCPUOP_send_nmi", VCPUOP_GET_PHYSID => "VCPUOP_get_physid",
        VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA => "VCPUOP_register_vcpu_time_memory_area",
        RUNSTATE_RUNNING => "RUNSTATE_running", RUNSTATE_RUNNABLE => "RUNSTATE_runnable",
        RUNSTATE_BLOCKED => "RUNSTATE_blocked", RUNSTATE_OFFLINE => "RUNSTATE_offline",
        XEN_RUNSTATE_UPDATE => "XEN_RUNSTATE_UPDATE",
        VCPU_SSHOTTMR_FUTURE => "VCPU_SSHOTTMR_future",
    );
    let p = VcpuGetPhysid {
        phys_id: 0x1234_5678_9abc_def0,
    };
    konst!(c,
        p.apic_id() => "xen_vcpu_physid_to_x86_apicid(0x123456789abcdef0ULL)",
        p.acpi_id() => "xen_vcpu_physid_to_x86_acpiid(0x123456789abcdef0ULL)",
    );

    use callback::*;
    konst!(c,
        CALLBACKTYPE_EVENT => "CALLBACKTYPE_event", CALLBACKTYPE_FAILSAFE => "CALLBACKTYPE_failsafe",
        CALLBACKTYPE_SYSCALL => "CALLBACKTYPE_syscall",
        CALLBACKTYPE_SYSENTER_DEPRECATED => "CALLBACKTYPE_sysenter_deprecated",
        CALLBACKTYPE_NMI => "CALLBACKTYPE_nmi", CALLBACKTYPE_SYSENTER => "CALLBACKTYPE_sysenter",
        CALLBACKTYPE_SYSCALL32 => "CALLBACKTYPE_syscall32",
        CALLBACKF_MASK_EVENTS => "CALLBACKF_mask_events",
        CALLBACKOP_REGISTER => "CALLBACKOP_register",
        CALLBACKOP_UNREGISTER => "CALLBACKOP_unregister",
    );

    use nmi::*;
    konst!(c,
        XEN_NMIREASON_IO_ERROR => "XEN_NMIREASON_io_error",
        XEN_NMIREASON_PCI_SERR => "XEN_NMIREASON_pci_serr",
        XEN_NMIREASON_UNKNOWN => "XEN_NMIREASON_unknown",
        XENNMI_REGISTER_CALLBACK => "XENNMI_register_callback",
        XENNMI_UNREGISTER_CALLBACK => "XENNMI_unregister_callback",
    );

    use physdev::*;
    konst!(c,
        PHYSDEVOP_EOI => "PHYSDEVOP_eoi", PHYSDEVOP_PIRQ_EOI_GMFN_V1 => "PHYSDEVOP_pirq_eoi_gmfn_v1",
        PHYSDEVOP_PIRQ_EOI_GMFN_V2 => "PHYSDEVOP_pirq_eoi_gmfn_v2",
        PHYSDEVOP_PIRQ_EOI_GMFN => "PHYSDEVOP_pirq_eoi_gmfn",
        PHYSDEVOP_IRQ_STATUS_QUERY => "PHYSDEVOP_irq_status_query",
        PHYSDEVOP_SET_IOPL => "PHYSDEVOP_set_iopl", PHYSDEVOP_SET_IOBITMAP => "PHYSDEVOP_set_iobitmap",
        PHYSDEVOP_APIC_READ => "PHYSDEVOP_apic_read", PHYSDEVOP_APIC_WRITE => "PHYSDEVOP_apic_write",
        PHYSDEVOP_ALLOC_IRQ_VECTOR => "PHYSDEVOP_alloc_irq_vector",
        PHYSDEVOP_FREE_IRQ_VECTOR => "PHYSDEVOP_free_irq_vector",
        PHYSDEVOP_MAP_PIRQ => "PHYSDEVOP_map_pirq", PHYSDEVOP_UNMAP_PIRQ => "PHYSDEVOP_unmap_pirq",
        PHYSDEVOP_MANAGE_PCI_ADD => "PHYSDEVOP_manage_pci_add",
        PHYSDEVOP_MANAGE_PCI_REMOVE => "PHYSDEVOP_manage_pci_remove",
        PHYSDEVOP_RESTORE_MSI => "PHYSDEVOP_restore_msi",
        PHYSDEVOP_MANAGE_PCI_ADD_EXT => "PHYSDEVOP_manage_pci_add_ext",
        PHYSDEVOP_SETUP_GSI => "PHYSDEVOP_setup_gsi",
        PHYSDEVOP_GET_FREE_PIRQ => "PHYSDEVOP_get_free_pirq",
        PHYSDEVOP_PCI_MMCFG_RESERVED => "PHYSDEVOP_pci_mmcfg_reserved",
        PHYSDEVOP_PCI_DEVICE_ADD => "PHYSDEVOP_pci_device_add",
        PHYSDEVOP_PCI_DEVICE_REMOVE => "PHYSDEVOP_pci_device_remove",
        PHYSDEVOP_RESTORE_MSI_EXT => "PHYSDEVOP_restore_msi_ext",
        PHYSDEVOP_DBGP_OP => "PHYSDEVOP_dbgp_op", PHYSDEVOP_PREPARE_MSIX => "PHYSDEVOP_prepare_msix",
        PHYSDEVOP_RELEASE_MSIX => "PHYSDEVOP_release_msix",
        PHYSDEVOP_IRQ_UNMASK_NOTIFY => "PHYSDEVOP_IRQ_UNMASK_NOTIFY",
        XENIRQSTAT_NEEDS_EOI => "XENIRQSTAT_needs_eoi", XENIRQSTAT_SHARED => "XENIRQSTAT_shared",
        MAP_PIRQ_TYPE_MSI => "MAP_PIRQ_TYPE_MSI", MAP_PIRQ_TYPE_GSI => "MAP_PIRQ_TYPE_GSI",
        MAP_PIRQ_TYPE_UNKNOWN => "MAP_PIRQ_TYPE_UNKNOWN",
        MAP_PIRQ_TYPE_MSI_SEG => "MAP_PIRQ_TYPE_MSI_SEG",
        MAP_PIRQ_TYPE_MULTI_MSI => "MAP_PIRQ_TYPE_MULTI_MSI",
        XEN_PCI_MMCFG_RESERVED => "XEN_PCI_MMCFG_RESERVED",
        XEN_PCI_DEV_EXTFN => "XEN_PCI_DEV_EXTFN", XEN_PCI_DEV_VIRTFN => "XEN_PCI_DEV_VIRTFN",
        XEN_PCI_DEV_PXM => "XEN_PCI_DEV_PXM",
        PHYSDEVOP_DBGP_RESET_PREPARE => "PHYSDEVOP_DBGP_RESET_PREPARE",
        PHYSDEVOP_DBGP_RESET_DONE => "PHYSDEVOP_DBGP_RESET_DONE",
        PHYSDEVOP_DBGP_BUS_UNKNOWN => "PHYSDEVOP_DBGP_BUS_UNKNOWN",
        PHYSDEVOP_DBGP_BUS_PCI => "PHYSDEVOP_DBGP_BUS_PCI",
    );

    use domctl::*;
    konst!(c,
        XEN_DOMCTL_INTERFACE_VERSION => "XEN_DOMCTL_INTERFACE_VERSION",
        XEN_DOMCTL_CDF_HVM => "XEN_DOMCTL_CDF_hvm", XEN_DOMCTL_CDF_HAP => "XEN_DOMCTL_CDF_hap",
        XEN_DOMCTL_CDF_S3_INTEGRITY => "XEN_DOMCTL_CDF_s3_integrity",
        XEN_DOMCTL_CDF_OOS_OFF => "XEN_DOMCTL_CDF_oos_off",
        XEN_DOMCTL_CDF_XS_DOMAIN => "XEN_DOMCTL_CDF_xs_domain",
        XEN_DOMCTL_CDF_IOMMU => "XEN_DOMCTL_CDF_iommu",
        XEN_DOMCTL_CDF_NESTED_VIRT => "XEN_DOMCTL_CDF_nested_virt",
        XEN_DOMCTL_CDF_VPMU => "XEN_DOMCTL_CDF_vpmu", XEN_DOMCTL_CDF_MAX => "XEN_DOMCTL_CDF_MAX",
        XEN_DOMCTL_IOMMU_NO_SHAREPT => "XEN_DOMCTL_IOMMU_no_sharept",
        XEN_DOMCTL_IOMMU_MAX => "XEN_DOMCTL_IOMMU_MAX",
        XEN_DOMCTL_GRANT_VERSION_MASK => "XEN_DOMCTL_GRANT_version_mask",
        XEN_X86_EMU_LAPIC => "XEN_X86_EMU_LAPIC", XEN_X86_EMU_HPET => "XEN_X86_EMU_HPET",
        XEN_X86_EMU_PM => "XEN_X86_EMU_PM", XEN_X86_EMU_RTC => "XEN_X86_EMU_RTC",
        XEN_X86_EMU_IOAPIC => "XEN_X86_EMU_IOAPIC", XEN_X86_EMU_PIC => "XEN_X86_EMU_PIC",
        XEN_X86_EMU_VGA => "XEN_X86_EMU_VGA", XEN_X86_EMU_IOMMU => "XEN_X86_EMU_IOMMU",
        XEN_X86_EMU_PIT => "XEN_X86_EMU_PIT", XEN_X86_EMU_USE_PIRQ => "XEN_X86_EMU_USE_PIRQ",
        XEN_X86_EMU_VPCI => "XEN_X86_EMU_VPCI", XEN_X86_EMU_ALL => "XEN_X86_EMU_ALL",
        XEN_X86_MSR_RELAXED => "XEN_X86_MSR_RELAXED",
        XEN_DOMINF_DYING => "XEN_DOMINF_dying", XEN_DOMINF_HVM_GUEST => "XEN_DOMINF_hvm_guest",
        XEN_DOMINF_SHUTDOWN => "XEN_DOMINF_shutdown", XEN_DOMINF_PAUSED => "XEN_DOMINF_paused",
        XEN_DOMINF_BLOCKED => "XEN_DOMINF_blocked", XEN_DOMINF_RUNNING => "XEN_DOMINF_running",
        XEN_DOMINF_DEBUGGED => "XEN_DOMINF_debugged",
        XEN_DOMINF_XS_DOMAIN => "XEN_DOMINF_xs_domain", XEN_DOMINF_HAP => "XEN_DOMINF_hap",
        XEN_SCHEDULER_CREDIT => "XEN_SCHEDULER_CREDIT",
        XEN_SCHEDULER_CREDIT2 => "XEN_SCHEDULER_CREDIT2",
        XEN_SCHEDULER_RTDS => "XEN_SCHEDULER_RTDS", XEN_SCHEDULER_NULL => "XEN_SCHEDULER_NULL",
        XEN_DOMINF_SHUTDOWNMASK => "XEN_DOMINF_shutdownmask",
        XEN_DOMINF_SHUTDOWNSHIFT => "XEN_DOMINF_shutdownshift",
        XEN_INVALID_MAX_VCPU_ID => "XEN_INVALID_MAX_VCPU_ID",
        XEN_DOMCTL_PFINFO_LTAB_SHIFT => "XEN_DOMCTL_PFINFO_LTAB_SHIFT",
        XEN_DOMCTL_PFINFO_NOTAB => "XEN_DOMCTL_PFINFO_NOTAB",
        XEN_DOMCTL_PFINFO_L1TAB => "XEN_DOMCTL_PFINFO_L1TAB",
        XEN_DOMCTL_PFINFO_L2TAB => "XEN_DOMCTL_PFINFO_L2TAB",
        XEN_DOMCTL_PFINFO_L3TAB => "XEN_DOMCTL_PFINFO_L3TAB",
        XEN_DOMCTL_PFINFO_L4TAB => "XEN_DOMCTL_PFINFO_L4TAB",
        XEN_DOMCTL_PFINFO_LTABTYPE_MASK => "XEN_DOMCTL_PFINFO_LTABTYPE_MASK",
        XEN_DOMCTL_PFINFO_LPINTAB => "XEN_DOMCTL_PFINFO_LPINTAB",
        XEN_DOMCTL_PFINFO_XTAB => "XEN_DOMCTL_PFINFO_XTAB",
        XEN_DOMCTL_PFINFO_XALLOC => "XEN_DOMCTL_PFINFO_XALLOC",
        XEN_DOMCTL_PFINFO_BROKEN => "XEN_DOMCTL_PFINFO_BROKEN",
        XEN_DOMCTL_PFINFO_LTAB_MASK => "XEN_DOMCTL_PFINFO_LTAB_MASK",
        XEN_DOMCTL_SHADOW_OP_OFF => "XEN_DOMCTL_SHADOW_OP_OFF",
        XEN_DOMCTL_SHADOW_OP_ENABLE => "XEN_DOMCTL_SHADOW_OP_ENABLE",
        XEN_DOMCTL_SHADOW_OP_CLEAN => "XEN_DOMCTL_SHADOW_OP_CLEAN",
        XEN_DOMCTL_SHADOW_OP_PEEK => "XEN_DOMCTL_SHADOW_OP_PEEK",
        XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION => "XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION",
        XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION => "XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION",
        XEN_DOMCTL_SHADOW_OP_ENABLE_TEST => "XEN_DOMCTL_SHADOW_OP_ENABLE_TEST",
        XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY => "XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY",
        XEN_DOMCTL_SHADOW_ENABLE_REFCOUNT => "XEN_DOMCTL_SHADOW_ENABLE_REFCOUNT",
        XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY => "XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY",
        XEN_DOMCTL_SHADOW_ENABLE_TRANSLATE => "XEN_DOMCTL_SHADOW_ENABLE_TRANSLATE",
        XEN_DOMCTL_SHADOW_ENABLE_EXTERNAL => "XEN_DOMCTL_SHADOW_ENABLE_EXTERNAL",
        XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL => "XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL",
        PAYLOAD_BYTES => "sizeof(((struct xen_domctl *)0)->u)",
    );

    use sysctl::*;
    konst!(c,
        XEN_SYSCTL_INTERFACE_VERSION => "XEN_SYSCTL_INTERFACE_VERSION",
        XEN_SYSCTL_PHYSCAP_HVM => "XEN_SYSCTL_PHYSCAP_hvm",
        XEN_SYSCTL_PHYSCAP_PV => "XEN_SYSCTL_PHYSCAP_pv",
        XEN_SYSCTL_PHYSCAP_DIRECTIO => "XEN_SYSCTL_PHYSCAP_directio",
        XEN_SYSCTL_PHYSCAP_HAP => "XEN_SYSCTL_PHYSCAP_hap",
        XEN_SYSCTL_PHYSCAP_SHADOW => "XEN_SYSCTL_PHYSCAP_shadow",
        XEN_SYSCTL_PHYSCAP_IOMMU_HAP_PT_SHARE => "XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share",
        XEN_SYSCTL_PHYSCAP_VMTRACE => "XEN_SYSCTL_PHYSCAP_vmtrace",
        XEN_SYSCTL_PHYSCAP_VPMU => "XEN_SYSCTL_PHYSCAP_vpmu",
        XEN_SYSCTL_PHYSCAP_GNTTAB_V1 => "XEN_SYSCTL_PHYSCAP_gnttab_v1",
        XEN_SYSCTL_PHYSCAP_GNTTAB_V2 => "XEN_SYSCTL_PHYSCAP_gnttab_v2",
        XEN_SYSCTL_PHYSCAP_MAX => "XEN_SYSCTL_PHYSCAP_MAX",
    );

    use xs_wire::*;
    for (i, &(errno, name)) in XS_ERRORS.iter().enumerate() {
        c.add(format!("xsd_errors[{i}].errnum"), sv(errno));
        c.add(
            format!("strcmp(xsd_errors[{i}].errstring, \"{name}\") == 0"),
            1,
        );
    }
    c.add(
        "sizeof(xsd_errors) / sizeof(xsd_errors[0])",
        v(XS_ERRORS.len()),
    );
    konst!(c,
        XsType::CONTROL.0 => "XS_CONTROL", XsType::DEBUG.0 => "XS_DEBUG",
        XsType::DIRECTORY.0 => "XS_DIRECTORY", XsType::READ.0 => "XS_READ",
        XsType::GET_PERMS.0 => "XS_GET_PERMS", XsType::WATCH.0 => "XS_WATCH",
        XsType::UNWATCH.0 => "XS_UNWATCH", XsType::TRANSACTION_START.0 => "XS_TRANSACTION_START",
        XsType::TRANSACTION_END.0 => "XS_TRANSACTION_END", XsType::INTRODUCE.0 => "XS_INTRODUCE",
        XsType::RELEASE.0 => "XS_RELEASE", XsType::GET_DOMAIN_PATH.0 => "XS_GET_DOMAIN_PATH",
        XsType::WRITE.0 => "XS_WRITE", XsType::MKDIR.0 => "XS_MKDIR", XsType::RM.0 => "XS_RM",
        XsType::SET_PERMS.0 => "XS_SET_PERMS", XsType::WATCH_EVENT.0 => "XS_WATCH_EVENT",
        XsType::ERROR.0 => "XS_ERROR", XsType::IS_DOMAIN_INTRODUCED.0 => "XS_IS_DOMAIN_INTRODUCED",
        XsType::RESUME.0 => "XS_RESUME", XsType::SET_TARGET.0 => "XS_SET_TARGET",
        XsType::RESET_WATCHES.0 => "XS_RESET_WATCHES",
        XsType::DIRECTORY_PART.0 => "XS_DIRECTORY_PART", XsType::TYPE_COUNT.0 => "XS_TYPE_COUNT",
        XsType::INVALID.0 => "XS_INVALID",
        XS_WATCH_PATH => "XS_WATCH_PATH", XS_WATCH_TOKEN => "XS_WATCH_TOKEN",
        XENSTORE_RING_SIZE => "XENSTORE_RING_SIZE",
        mask_xenstore_idx(0x1234_5678) => "MASK_XENSTORE_IDX(0x12345678U)",
        XENSTORE_PAYLOAD_MAX => "XENSTORE_PAYLOAD_MAX",
        XENSTORE_ABS_PATH_MAX => "XENSTORE_ABS_PATH_MAX",
        XENSTORE_REL_PATH_MAX => "XENSTORE_REL_PATH_MAX",
        XENSTORE_SERVER_FEATURE_RECONNECTION => "XENSTORE_SERVER_FEATURE_RECONNECTION",
        XENSTORE_SERVER_FEATURE_ERROR => "XENSTORE_SERVER_FEATURE_ERROR",
        XENSTORE_CONNECTED => "XENSTORE_CONNECTED", XENSTORE_RECONNECT => "XENSTORE_RECONNECT",
        XENSTORE_ERROR_NONE => "XENSTORE_ERROR_NONE", XENSTORE_ERROR_COMM => "XENSTORE_ERROR_COMM",
        XENSTORE_ERROR_RINGIDX => "XENSTORE_ERROR_RINGIDX",
        XENSTORE_ERROR_PROTO => "XENSTORE_ERROR_PROTO",
    );
    for (r, name) in [
        (XS_WRITE_NONE, "XS_WRITE_NONE"),
        (XS_WRITE_CREATE, "XS_WRITE_CREATE"),
        (XS_WRITE_CREATE_EXCL, "XS_WRITE_CREATE_EXCL"),
    ] {
        c.add(format!("strcmp({name}, \"{r}\") == 0"), 1);
    }

    use console::*;
    konst!(c,
        XENCONS_IN_SIZE => "sizeof(((struct xencons_interface *)0)->in)",
        XENCONS_OUT_SIZE => "sizeof(((struct xencons_interface *)0)->out)",
        mask_xencons_idx(0x1234_5678, XENCONS_OUT_SIZE)
            => "MASK_XENCONS_IDX(0x12345678U, ((struct xencons_interface *)0)->out)",
        mask_xencons_idx(0x1234_5678, XENCONS_IN_SIZE)
            => "MASK_XENCONS_IDX(0x12345678U, ((struct xencons_interface *)0)->in)",
    );

    use blkif::*;
    konst!(c,
        BLKIF_OP_READ => "BLKIF_OP_READ", BLKIF_OP_WRITE => "BLKIF_OP_WRITE",
        BLKIF_OP_WRITE_BARRIER => "BLKIF_OP_WRITE_BARRIER",
        BLKIF_OP_FLUSH_DISKCACHE => "BLKIF_OP_FLUSH_DISKCACHE",
        BLKIF_OP_RESERVED_1 => "BLKIF_OP_RESERVED_1", BLKIF_OP_DISCARD => "BLKIF_OP_DISCARD",
        BLKIF_OP_INDIRECT => "BLKIF_OP_INDIRECT",
        BLKIF_MAX_SEGMENTS_PER_REQUEST => "BLKIF_MAX_SEGMENTS_PER_REQUEST",
        BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST => "BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST",
        BLKIF_DISCARD_SECURE => "BLKIF_DISCARD_SECURE",
        VDISK_CDROM => "VDISK_CDROM", VDISK_REMOVABLE => "VDISK_REMOVABLE",
        VDISK_READONLY => "VDISK_READONLY",
        BLKIF_SEGS_PER_INDIRECT_FRAME => "4096 / sizeof(struct blkif_request_segment)",
    );
    for (r, name) in [
        (BLKIF_RSP_EOPNOTSUPP, "BLKIF_RSP_EOPNOTSUPP"),
        (BLKIF_RSP_ERROR, "BLKIF_RSP_ERROR"),
        (BLKIF_RSP_OKAY, "BLKIF_RSP_OKAY"),
    ] {
        c.add(format!("(long long)({name})"), sv(r));
    }

    use netif::*;
    konst!(c,
        XEN_NETIF_NR_SLOTS_MIN => "XEN_NETIF_NR_SLOTS_MIN",
        XEN_NETIF_MAX_TX_SIZE => "XEN_NETIF_MAX_TX_SIZE",
        NETTXF_CSUM_BLANK => "NETTXF_csum_blank", NETTXF_DATA_VALIDATED => "NETTXF_data_validated",
        NETTXF_MORE_DATA => "NETTXF_more_data", NETTXF_EXTRA_INFO => "NETTXF_extra_info",
        NETRXF_DATA_VALIDATED => "NETRXF_data_validated", NETRXF_CSUM_BLANK => "NETRXF_csum_blank",
        NETRXF_MORE_DATA => "NETRXF_more_data", NETRXF_EXTRA_INFO => "NETRXF_extra_info",
        NETRXF_GSO_PREFIX => "NETRXF_gso_prefix",
        XEN_NETIF_EXTRA_TYPE_NONE => "XEN_NETIF_EXTRA_TYPE_NONE",
        XEN_NETIF_EXTRA_TYPE_GSO => "XEN_NETIF_EXTRA_TYPE_GSO",
        XEN_NETIF_EXTRA_TYPE_MCAST_ADD => "XEN_NETIF_EXTRA_TYPE_MCAST_ADD",
        XEN_NETIF_EXTRA_TYPE_MCAST_DEL => "XEN_NETIF_EXTRA_TYPE_MCAST_DEL",
        XEN_NETIF_EXTRA_TYPE_HASH => "XEN_NETIF_EXTRA_TYPE_HASH",
        XEN_NETIF_EXTRA_TYPE_MAX => "XEN_NETIF_EXTRA_TYPE_MAX",
        XEN_NETIF_EXTRA_FLAG_MORE => "XEN_NETIF_EXTRA_FLAG_MORE",
        XEN_NETIF_GSO_TYPE_NONE => "XEN_NETIF_GSO_TYPE_NONE",
        XEN_NETIF_GSO_TYPE_TCPV4 => "XEN_NETIF_GSO_TYPE_TCPV4",
        XEN_NETIF_GSO_TYPE_TCPV6 => "XEN_NETIF_GSO_TYPE_TCPV6",
        XEN_NETIF_CTRL_HASH_TYPE_IPV4 => "XEN_NETIF_CTRL_HASH_TYPE_IPV4",
        XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP => "XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP",
        XEN_NETIF_CTRL_HASH_TYPE_IPV6 => "XEN_NETIF_CTRL_HASH_TYPE_IPV6",
        XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP => "XEN_NETIF_CTRL_HASH_TYPE_IPV6_TCP",
        XEN_NETIF_CTRL_HASH_ALGORITHM_NONE => "XEN_NETIF_CTRL_HASH_ALGORITHM_NONE",
        XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ => "XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ",
    );
    for (r, name) in [
        (NETIF_RSP_DROPPED, "NETIF_RSP_DROPPED"),
        (NETIF_RSP_ERROR, "NETIF_RSP_ERROR"),
        (NETIF_RSP_OKAY, "NETIF_RSP_OKAY"),
        (NETIF_RSP_NULL, "NETIF_RSP_NULL"),
    ] {
        c.add(format!("(long long)({name})"), sv(r));
    }

    use xenbus::XenbusState as S;
    konst!(c,
        S::UNKNOWN.0 => "XenbusStateUnknown", S::INITIALISING.0 => "XenbusStateInitialising",
        S::INIT_WAIT.0 => "XenbusStateInitWait", S::INITIALISED.0 => "XenbusStateInitialised",
        S::CONNECTED.0 => "XenbusStateConnected", S::CLOSING.0 => "XenbusStateClosing",
        S::CLOSED.0 => "XenbusStateClosed", S::RECONFIGURING.0 => "XenbusStateReconfiguring",
        S::RECONFIGURED.0 => "XenbusStateReconfigured",
    );
}
