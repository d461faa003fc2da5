//! The lock order as data, so the rule can be checked (debug builds of hv
//! check every acquisition) and tested on the host.
//!
//! Each lock has a [`Level`]; a CPU may take a lock only while every lock it
//! holds has a lower level. Levels, lowest first, follow `DESIGN.md`: the
//! domain table, a vCPU, a domain's grant table, its state, its event
//! channels, the frame allocator, the heap, the console. The grant table
//! comes before the domain's state (a grant's frame is looked up in the
//! granter's P2M with its table held). The event channels come after the
//! domain's state (nothing holding them needs the state). The frame table
//! has no lock (per-frame atomic words, `crate::page_info`), so it may be
//! used under any of them. A CPU's run queue comes after the
//! event channels (raising an event wakes the vCPU it is for) and takes
//! nothing but the heap and the console. A CPU's timer queue comes after
//! it (a vCPU's timers are set with the vCPU, the domain's state or the
//! run queue locked) and is held only to change the queue: expired timers
//! are taken out and run after it is let go, so a timer's work may take
//! any lock. The console is last because any code
//! may log; the heap because any code may allocate.

/// A lock's place in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    DomainTable = 0,
    Vcpu = 1,
    Grants = 2,
    DomainState = 3,
    Events = 4,
    RunQueue = 5,
    Timers = 6,
    FrameAllocator = 7,
    BootModules = 8,
    Heap = 9,
    Console = 10,
}

/// Taking `wanted` while `held` (the highest level held) is out of order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    pub held: Level,
    pub wanted: Level,
}

/// The set of levels one CPU holds (bit n = level n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held(pub u32);

impl Held {
    fn highest(self) -> Option<Level> {
        const ALL: [Level; 11] = [
            Level::DomainTable,
            Level::Vcpu,
            Level::Grants,
            Level::DomainState,
            Level::Events,
            Level::RunQueue,
            Level::Timers,
            Level::FrameAllocator,
            Level::BootModules,
            Level::Heap,
            Level::Console,
        ];
        ALL.iter()
            .rev()
            .copied()
            .find(|l| self.0 & (1 << *l as u32) != 0)
    }

    /// The set after taking `wanted`, or the violation.
    pub fn acquire(self, wanted: Level) -> Result<Self, Violation> {
        match self.highest() {
            Some(held) if held >= wanted => Err(Violation { held, wanted }),
            _ => Ok(Self(self.0 | 1 << wanted as u32)),
        }
    }

    /// The set after releasing `level`.
    pub fn release(self, level: Level) -> Self {
        Self(self.0 & !(1 << level as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_is_allowed_and_release_undoes() {
        let h = Held::default();
        let h = h.acquire(Level::DomainTable).unwrap();
        let h = h.acquire(Level::DomainState).unwrap();
        let h = h.acquire(Level::FrameAllocator).unwrap();
        let h = h.acquire(Level::Console).unwrap();
        let h = h
            .release(Level::Console)
            .release(Level::FrameAllocator)
            .release(Level::DomainState)
            .release(Level::DomainTable);
        assert_eq!(h, Held::default());
    }

    #[test]
    fn reverse_or_same_level_is_a_violation() {
        let h = Held::default().acquire(Level::FrameAllocator).unwrap();
        assert_eq!(
            h.acquire(Level::DomainState),
            Err(Violation {
                held: Level::FrameAllocator,
                wanted: Level::DomainState
            })
        );
        assert!(h.acquire(Level::FrameAllocator).is_err());
        assert!(h.acquire(Level::Heap).is_ok());
    }

    #[test]
    fn event_channels_sit_between_the_domain_state_and_the_frame_allocator() {
        let h = Held::default().acquire(Level::Vcpu).unwrap();
        let h = h.acquire(Level::Events).unwrap();
        assert!(h.acquire(Level::FrameAllocator).is_ok());
        assert!(h.acquire(Level::DomainState).is_err());
    }

    #[test]
    fn after_release_a_lower_level_is_allowed_again() {
        let h = Held::default().acquire(Level::Vcpu).unwrap();
        let h = h.acquire(Level::FrameAllocator).unwrap();
        let h = h.release(Level::FrameAllocator);
        assert!(h.acquire(Level::DomainState).is_ok());
        let h = h.release(Level::Vcpu);
        assert!(h.acquire(Level::DomainTable).is_ok());
    }
}
