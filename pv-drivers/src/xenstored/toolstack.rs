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
//!   `Initialising`; a network interface ([`add_vif`]) the same way under
//!   `vif`, and an extra console ([`add_console`], `device/console/<n>`
//!   for `n` from 1: the first console is the start-of-day ring) under
//!   `console`.

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

/// Paths of device `dev` of kind `kind` (`vbd`, `vif`) of domain `id`
/// served by `backend`: (front end, back end).
pub fn device_paths(kind: &str, id: u16, backend: u16, dev: u32) -> (String, String) {
    (
        format!("/local/domain/{id}/device/{kind}/{dev}"),
        format!("/local/domain/{backend}/backend/{kind}/{id}/{dev}"),
    )
}

/// Paths of a virtual block device: (front end, back end).
pub fn vbd_paths(id: u16, backend: u16, dev: u32) -> (String, String) {
    device_paths("vbd", id, backend, dev)
}

/// Adds device `dev` of kind `kind` to domain `id`, served by domain
/// `backend`: both directories (see the module documentation), each naming
/// the other and `Initialising`, with the extra nodes given for each.
pub fn add_device(
    s: &mut Store,
    kind: &str,
    (id, backend, dev): (u16, u16, u32),
    front_nodes: &[(&str, &str)],
    back_nodes: &[(&str, &str)],
) -> Result<(), XsError> {
    let (front, back) = device_paths(kind, id, backend, dev);
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
    for (k, v) in front_nodes {
        node(s, &format!("{front}/{k}"), v.as_bytes(), &fp)?;
    }
    node(s, &format!("{front}/state"), b"1", &fp)?;
    node(s, &back, b"", &bp)?;
    node(s, &format!("{back}/frontend"), front.as_bytes(), &bp)?;
    node(
        s,
        &format!("{back}/frontend-id"),
        format!("{id}").as_bytes(),
        &bp,
    )?;
    for (k, v) in back_nodes {
        node(s, &format!("{back}/{k}"), v.as_bytes(), &bp)?;
    }
    node(s, &format!("{back}/state"), b"1", &bp)
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
    let virtual_device = format!("{dev}");
    add_device(
        s,
        "vbd",
        (id, backend, dev),
        &[("virtual-device", &virtual_device)],
        &[
            ("params", params),
            ("mode", if writable { "w" } else { "r" }),
        ],
    )
}

/// Adds network interface `handle` of domain `id` with MAC address `mac`,
/// served by domain `backend` (libxl's nodes: `handle` and `mac` on both
/// sides, the back end `online`).
pub fn add_vif(
    s: &mut Store,
    id: u16,
    backend: u16,
    handle: u32,
    mac: [u8; 6],
) -> Result<(), XsError> {
    let m = mac;
    let mac = format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    );
    let h = format!("{handle}");
    add_device(
        s,
        "vif",
        (id, backend, handle),
        &[("handle", &h), ("mac", &mac)],
        &[("handle", &h), ("mac", &mac), ("online", "1")],
    )
}

/// Adds extra console `n` (from 1) of domain `id`, served by domain
/// `backend` (libxl's nodes: the front end's `limit` and `type`, the back
/// end's `protocol`, `online` and `name`).
pub fn add_console(
    s: &mut Store,
    id: u16,
    backend: u16,
    n: u32,
    name: &str,
) -> Result<(), XsError> {
    add_device(
        s,
        "console",
        (id, backend, n),
        &[("limit", "1048576"), ("type", "xenconsoled")],
        &[("protocol", "vt100"), ("online", "1"), ("name", name)],
    )
}

#[cfg(test)]
mod tests;
