//! Grant-table helpers the grant guests share.

use guest_abi::grant_table::{
    GnttabCopy, GnttabCopyPtr, GnttabUnmapGrantRef, GNTTABOP_UNMAP_GRANT_REF,
};
use guest_abi::hypercall::typed;
use guest_abi::xen::DOMID_SELF;

/// `grant_table_op(cmd)` on the array `op`.
pub fn gnt<T>(cmd: u32, op: &mut [T]) -> i64 {
    let n = u32::try_from(op.len()).unwrap_or(0);
    // SAFETY: `op` is a live array of the command's structs.
    unsafe { typed::grant_table_op(cmd, op.as_mut_ptr().cast(), n) }
}

/// Unmaps handle `handle` at `host_addr`: the result and the status.
pub fn unmap(handle: u32, host_addr: u64) -> (i64, i16) {
    let mut op = [GnttabUnmapGrantRef {
        host_addr,
        handle,
        status: 99,
        ..Default::default()
    }];
    let rc = gnt(GNTTABOP_UNMAP_GRANT_REF, &mut op);
    (rc, op[0].status)
}

/// A version 1 entry granting `frame` to `domid` with `flags`.
pub fn entry(domid: u16, flags: u16, frame: u64) -> u64 {
    u64::from(flags) | u64::from(domid) << 16 | (frame & 0xffff_ffff) << 32
}

/// The window of [`crate::pvmm::env_window_catching`] with dom0's own
/// grant table (one frame) mapped writable at its page 1 (`None` after a
/// failed check).
pub fn own_table(
    r: &mut guest_abi::rt::report::Report,
    si: guest_abi::rt::StartInfoRef,
) -> Option<(crate::pvmm::Env, crate::pvmm::Window)> {
    use crate::pvmm::{A, P, RW, US};
    let (env, w) = crate::pvmm::env_window_catching(r, si)?;
    let mut frames = [0u64; 1];
    let ok = crate::check!(r, "setup_table",
        crate::control::setup_table(0, &mut frames) => (0, guest_abi::grant_table::GNTST_OKAY))
        && crate::check!(r, "map the grant table", w.map(1, frames[0], P | RW | US | A) => 0);
    ok.then_some((env, w))
}

/// A copy end by frame number (of `DOMID_SELF`).
pub fn by_frame(mfn: u64, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: mfn,
        domid: DOMID_SELF,
        offset,
        ..Default::default()
    }
}

/// A copy end by grant reference of `dom`.
pub fn by_ref(dom: u16, gref: u32, offset: u16) -> GnttabCopyPtr {
    GnttabCopyPtr {
        u: u64::from(gref),
        domid: dom,
        offset,
        ..Default::default()
    }
}

/// A `GNTTABOP_copy` element (its status preset to 99).
pub fn copy_op(source: GnttabCopyPtr, dest: GnttabCopyPtr, len: u16, flags: u16) -> GnttabCopy {
    GnttabCopy {
        source,
        dest,
        len,
        flags,
        status: 99,
        ..Default::default()
    }
}

/// What a test guest that grants pages of its own to domUs starts from.
pub struct DomuGrants {
    /// The toolstack environment ([`crate::domu::toolstack_env`]).
    pub w: crate::pvmm::Window,
    pub shared: crate::fixup::SharedInfo,
    pub port: u32,
    /// Where its grant table (one frame) is mapped, writable.
    pub table: u64,
    /// A page of its own (a spare frame past the ones the window took),
    /// mapped writable at window page `w_page`.
    pub page: u64,
    /// Its environment, for more spare frames.
    pub env: crate::pvmm::Env,
}

/// [`DomuGrants`], the table at window page `w_table` and the page at
/// `w_page` (`None` after a failed check).
pub fn domu_grants(
    r: &mut guest_abi::rt::report::Report,
    si: guest_abi::rt::StartInfoRef,
    w_table: u64,
    w_page: u64,
) -> Option<DomuGrants> {
    use crate::pvmm::{A, D, P, RW, US};
    let (w, shared, port) = crate::domu::toolstack_env(r, si)?;
    let mut frames = [0u64; 1];
    let ok = crate::check!(r, "our grant table",
        crate::control::setup_table(DOMID_SELF, &mut frames) => (0, guest_abi::grant_table::GNTST_OKAY))
        && crate::check!(r, "map it", w.map(w_table, frames[0], P | RW | US | A | D) => 0);
    if !ok {
        return None;
    }
    let mut env = crate::pvmm::Env::new(r, si)?;
    for _ in 0..4 {
        let _ = env.spare();
    }
    let (_, page) = env.spare();
    crate::check!(r, "map our page", w.map(w_page, page, P | RW | US | A | D) => 0).then(|| {
        let table = w.va(w_table);
        DomuGrants {
            w,
            shared,
            port,
            table,
            page,
            env,
        }
    })
}
