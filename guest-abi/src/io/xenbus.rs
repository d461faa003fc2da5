//! The xenbus device state machine (`io/xenbus.h`): each side of a split
//! device publishes its state in its xenstore `state` node.

/// `enum xenbus_state`: a device end's state, as written in decimal to
/// xenstore. Unknown values are representable; treat them as `UNKNOWN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct XenbusState(pub u32);

impl XenbusState {
    /// No state yet (or unrecognised).
    pub const UNKNOWN: Self = Self(0);
    /// Setting up.
    pub const INITIALISING: Self = Self(1);
    /// Backend: waiting for the frontend's details (or hotplug).
    pub const INIT_WAIT: Self = Self(2);
    /// Frontend: details published, waiting for the backend.
    pub const INITIALISED: Self = Self(3);
    /// Working.
    pub const CONNECTED: Self = Self(4);
    /// Shutting down.
    pub const CLOSING: Self = Self(5);
    /// Shut down.
    pub const CLOSED: Self = Self(6);
    /// Reconfiguring (e.g. changing the number of queues).
    pub const RECONFIGURING: Self = Self(7);
    /// Reconfiguration done.
    pub const RECONFIGURED: Self = Self(8);

    /// Xen's name for the state (`"Connected"`), or `"Unknown"`.
    pub const fn name(self) -> &'static str {
        match self.0 {
            1 => "Initialising",
            2 => "InitWait",
            3 => "Initialised",
            4 => "Connected",
            5 => "Closing",
            6 => "Closed",
            7 => "Reconfiguring",
            8 => "Reconfigured",
            _ => "Unknown",
        }
    }
}
