//! What the toolstack writes into the store for a domU, laid out and
//! permitted as Xen's `libxl` does:
//!
//! - its home `/local/domain/<id>`, dom0's with read access for the domU,
//!   holding `name`, `domid`, `memory/target` (KiB) and
//!   `cpu/<n>/availability`; `control` read-only, with
//!   `control/shutdown` the domU's own; `data`, `drivers`, `attr` and
//!   `error` the domU's own;
//! - a virtual block device ([`add_vbd`]): the front-end directory
//!   `/local/domain/<id>/device/vbd/<dev>` owned by the domU and readable
//!   by the back end's domain, and the back-end directory
//!   `/local/domain/<backend>/backend/vbd/<id>/<dev>` owned by the back
//!   end's domain and readable by the domU, each naming the other, both
//!   `Initialising`.

use alloc::format;
use alloc::string::String;

use super::{Access, Conn, Perm, Store, XsError};

const TOOLSTACK: Conn = Conn {
    domid: 0,
    privileged: true,
};

fn perm(access: Access, domid: u16) -> Perm {
    Perm { access, domid }
}

/// Makes `path` with `perms` and `value`.
fn node(s: &mut Store, path: &str, value: &[u8], perms: &[Perm]) -> Result<(), XsError> {
    s.write(TOOLSTACK, path, value)?;
    s.set_perms(TOOLSTACK, path, perms)
}

/// The domU's home (see the module documentation).
pub fn skeleton(
    s: &mut Store,
    id: u16,
    name: &str,
    memory_kib: u64,
    vcpus: u32,
) -> Result<(), XsError> {
    let home = format!("/local/domain/{id}");
    let ro = [perm(Access::None, 0), perm(Access::Read, id)];
    let rw = [perm(Access::None, id)];
    node(s, &home, b"", &ro)?;
    node(s, &format!("{home}/name"), name.as_bytes(), &ro)?;
    node(s, &format!("{home}/domid"), format!("{id}").as_bytes(), &ro)?;
    node(s, &format!("{home}/memory"), b"", &ro)?;
    node(
        s,
        &format!("{home}/memory/target"),
        format!("{memory_kib}").as_bytes(),
        &ro,
    )?;
    for n in 0..vcpus {
        node(s, &format!("{home}/cpu/{n}/availability"), b"online", &ro)?;
    }
    node(s, &format!("{home}/control"), b"", &ro)?;
    node(s, &format!("{home}/control/shutdown"), b"", &rw)?;
    for dir in ["data", "drivers", "attr", "error", "device"] {
        let perms: &[Perm] = if dir == "device" { &ro } else { &rw };
        node(s, &format!("{home}/{dir}"), b"", perms)?;
    }
    Ok(())
}

/// Paths of a virtual block device: (front end, back end).
pub fn vbd_paths(id: u16, backend: u16, dev: u32) -> (String, String) {
    (
        format!("/local/domain/{id}/device/vbd/{dev}"),
        format!("/local/domain/{backend}/backend/vbd/{id}/{dev}"),
    )
}

/// Adds virtual block device `dev` of domain `id`, served by domain
/// `backend` from `params` (read-only if `!writable`).
pub fn add_vbd(
    s: &mut Store,
    id: u16,
    backend: u16,
    dev: u32,
    params: &str,
    writable: bool,
) -> Result<(), XsError> {
    let (front, back) = vbd_paths(id, backend, dev);
    let fp = [perm(Access::None, id), perm(Access::Read, backend)];
    let bp = [perm(Access::None, backend), perm(Access::Read, id)];
    node(s, &front, b"", &fp)?;
    node(s, &format!("{front}/backend"), back.as_bytes(), &fp)?;
    node(
        s,
        &format!("{front}/backend-id"),
        format!("{backend}").as_bytes(),
        &fp,
    )?;
    node(
        s,
        &format!("{front}/virtual-device"),
        format!("{dev}").as_bytes(),
        &fp,
    )?;
    node(s, &format!("{front}/state"), b"1", &fp)?;
    node(s, &back, b"", &bp)?;
    node(s, &format!("{back}/frontend"), front.as_bytes(), &bp)?;
    node(
        s,
        &format!("{back}/frontend-id"),
        format!("{id}").as_bytes(),
        &bp,
    )?;
    node(s, &format!("{back}/params"), params.as_bytes(), &bp)?;
    node(
        s,
        &format!("{back}/mode"),
        if writable { b"w" } else { b"r" },
        &bp,
    )?;
    node(s, &format!("{back}/state"), b"1", &bp)
}

#[cfg(test)]
mod tests;
