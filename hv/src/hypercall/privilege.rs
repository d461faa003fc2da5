//! [`Privileged`]: the capability a privileged hypercall takes.
//!
//! Its own module, with nothing inside it, so that the private field keeps
//! every other module (the hypercall handlers included) from making one:
//! the only way to get the capability is the check here.

use crate::domain::{self, Domain};

/// Proof that the calling domain is privileged (what Xen's default XSM
/// policy asks of the hardware or control domain). A function that takes
/// one can only run for a privileged caller.
#[derive(Clone, Copy, Debug)]
pub struct Privileged {
    _only_from_check: (),
}

impl Privileged {
    /// The capability, if the running domain has the privilege.
    pub fn check() -> Option<Self> {
        domain::with_current(|d| Self::of(d.dom))
    }

    /// The capability, if domain `d` (the running one, already borrowed)
    /// has the privilege.
    pub fn of(d: &Domain) -> Option<Self> {
        d.privileged.then_some(Self {
            _only_from_check: (),
        })
    }
}
