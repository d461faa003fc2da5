//! The FIFO operations of the table: `init_control`, `expand_array` and
//! `set_priority`, each split where the glue maps a guest frame between
//! the checks (which may refuse) and the commit (which may not, but for
//! memory).

use guest_abi::errno::Errno;
use guest_abi::event_channel::EVTCHN_FIFO_PRIORITY_MIN;

use super::super::fifo::FifoState;
use super::super::memory::EventMemory;
use super::super::{
    two_level, Raised, FIFO_CONTROL_BLOCK_SIZE, FIFO_LINK_BITS, FIFO_MAX_PAGES, TWO_LEVEL_PORTS,
};
use super::{port_of, EventTable, ExpandArray, InitControl, DEFAULT_PRIORITY, PAGE_SIZE};

impl EventTable {
    /// `init_control`'s checks: `-ENOENT` for a vCPU the domain does not
    /// have, `-EINVAL` for an offset that would cross the page or is not
    /// 8-byte aligned, or a vCPU that registered a control block already.
    pub fn fifo_init_control_check(&self, vcpu: u32, offset: u32) -> Result<InitControl, Errno> {
        if !self.vcpu_ok(vcpu) {
            return Err(Errno::ENOENT);
        }
        if offset > PAGE_SIZE - FIFO_CONTROL_BLOCK_SIZE || !offset.is_multiple_of(8) {
            return Err(Errno::EINVAL);
        }
        if self
            .fifo
            .as_ref()
            .is_some_and(|f| f.has_control_block(vcpu))
        {
            return Err(Errno::EINVAL);
        }
        Ok(InitControl { vcpu })
    }

    /// `init_control` once the glue mapped the control block: the first
    /// one switches the domain to FIFO, carrying each valid port's
    /// 2-level pending bit over (raised when its event page is added) and
    /// giving it the default priority. Returns `link_bits`.
    pub fn fifo_init_control_commit<M: EventMemory + ?Sized>(
        &mut self,
        token: InitControl,
        mem: &M,
    ) -> Result<u8, Errno> {
        if self.fifo.is_none() {
            let fifo = FifoState::new(self.nr_vcpus)?;
            let limit = (self.channels.len()).min(TWO_LEVEL_PORTS as usize);
            for (i, c) in self.channels.iter_mut().enumerate().take(limit).skip(1) {
                if two_level::is_pending(port_of(i).get(), mem) {
                    c.fifo_pending = true;
                }
                c.priority = DEFAULT_PRIORITY;
            }
            self.fifo = Some(fifo);
        }
        if let Some(f) = &mut self.fifo {
            f.set_control_block(token.vcpu);
        }
        Ok(FIFO_LINK_BITS)
    }

    /// `expand_array`'s checks: `-EOPNOTSUPP` before `init_control`,
    /// `-ENOSPC` once every page the ABI can address was added.
    pub fn fifo_expand_check(&self) -> Result<ExpandArray, Errno> {
        let f = self.fifo.as_ref().ok_or(Errno::EOPNOTSUPP)?;
        if f.pages() >= FIFO_MAX_PAGES {
            return Err(Errno::ENOSPC);
        }
        Ok(ExpandArray { slot: f.pages() })
    }

    /// `expand_array` once the glue mapped page `token.slot()`: the ports
    /// it covers that were raised while it was missing are raised now;
    /// `on_raise` gets each outcome.
    pub fn fifo_expand_commit<M: EventMemory + ?Sized>(
        &mut self,
        token: ExpandArray,
        mem: &M,
        mut on_raise: impl FnMut(Raised),
    ) {
        let Some(f) = &mut self.fifo else {
            return;
        };
        if f.pages() != token.slot {
            return;
        }
        let first = f.nr_words() as usize;
        f.add_page();
        let end = (f.nr_words() as usize).min(self.channels.len());
        for i in first..end {
            let c = &mut self.channels[i];
            if c.fifo_pending && c.state.is_bound() {
                let vcpu = c.notify;
                on_raise(f.set_pending(c, port_of(i).get(), vcpu, mem));
            }
        }
    }

    /// `set_priority`: `-EINVAL` for an invalid port, `-ENOSYS` on
    /// 2-level, `-EACCES` for a port not bound, `-EINVAL` for a priority
    /// beyond the lowest. The port moves queue on its next link.
    pub fn fifo_set_priority(&mut self, port: u32, priority: u32) -> Result<(), Errno> {
        let i = self.slot(port).ok_or(Errno::EINVAL)?;
        if self.fifo.is_none() {
            return Err(Errno::ENOSYS);
        }
        let c = &mut self.channels[i];
        if !c.state.is_bound() {
            return Err(Errno::EACCES);
        }
        if priority > EVTCHN_FIFO_PRIORITY_MIN {
            return Err(Errno::EINVAL);
        }
        c.priority = u8::try_from(priority).map_err(|_| Errno::EINVAL)?;
        Ok(())
    }

    /// The last port hv linked on `vcpu`'s queue `queue` (FIFO only), for
    /// checking the queues against the guest's view ([`super::guest`]).
    pub fn fifo_tail(&self, vcpu: u32, queue: usize) -> Option<u32> {
        let f = self.fifo.as_ref()?;
        f.tails()
            .find(|&(v, q, _)| v == vcpu && q == queue)
            .map(|(_, _, t)| t)
    }

    /// A port's FIFO priority.
    pub fn fifo_priority(&self, port: u32) -> Option<u8> {
        self.slot(port).map(|i| self.channels[i].priority)
    }
}
