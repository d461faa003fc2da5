//! dom0's back end for a domU's extra consoles (`device/console/<n>`, `n`
//! from 1; the first console is the start-of-day ring the builder set
//! up), as `xenconsoled` serves Linux's `hvc_xen` front end.
//!
//! - The handshake is [`crate::handshake`]'s. Nothing is offered at
//!   `InitWait`; once the front end is `Initialised` the back end maps the
//!   console page its `ring-ref` grants (an `xencons_interface`), binds
//!   its `port`, and is `Connected`.
//! - [`Vcon::serve`] drains the page's `out` ring line by line into the
//!   caller's lines (dom0 prints them as `domU<id>.<n>| ...`) and
//!   notifies the front end when it consumed something, so a writer
//!   waiting for room goes on. A producer index more than the ring ahead
//!   is a lie: what it claims is dropped, with a line saying so, and the
//!   console is still served (`toolstack::serve::Relay`).
//! - Serial input goes to the first console only; the extra ones get none.

use alloc::string::String;

use pv_drivers::xenstored::Store;
use toolstack::serve::Relay;

use crate::grants::{map_ring, unmap_ring};
use crate::handshake::{BackEnd, Handshake};

/// The console page once connected: its grant handle and our port.
struct Connection {
    handle: u32,
    port: u32,
}

/// Extra console `n` of domain `front`.
pub struct Vcon {
    pub n: u32,
    hs: Handshake,
    /// Our page the console page is mapped at.
    page_va: u64,
    connection: Option<Connection>,
    relay: Relay,
}

impl Vcon {
    /// Console `n` of domain `front` (its store nodes made by
    /// `xenstored::toolstack::add_console`), its page to be mapped at our
    /// page `page_va`.
    pub fn new(front: u16, n: u32, page_va: u64) -> Self {
        Self {
            n,
            hs: Handshake::new("console", front, n),
            page_va,
            connection: None,
            relay: Relay::default(),
        }
    }

    /// Our event channel, once connected.
    pub fn port(&self) -> Option<u32> {
        self.connection.as_ref().map(|c| c.port)
    }

    /// Hands what the front end wrote to `line`, line by line; notifies
    /// it if anything was consumed.
    pub fn serve(&mut self, line: impl FnMut(&[u8])) {
        let Some(c) = &self.connection else {
            return;
        };
        if self.relay.drain(self.page_va, line) {
            toolstack::serve::notify(c.port);
        }
    }
}

impl BackEnd for Vcon {
    fn handshake(&mut self) -> &mut Handshake {
        &mut self.hs
    }

    fn publish(&mut self, _: &mut Store) {}

    fn connect(&mut self, s: &Store) -> Result<(), String> {
        let gref = self.hs.front_number(s, "ring-ref")?;
        let remote = self.hs.front_number(s, "port")?;
        let front = self.hs.front;
        let handle = map_ring(self.page_va, front, gref)?;
        match toolstack::serve::bind(front, remote) {
            Ok(port) => {
                self.connection = Some(Connection { handle, port });
                self.relay = Relay::default();
                Ok(())
            }
            Err(e) => {
                unmap_ring(self.page_va, handle);
                Err(alloc::format!("binding its port {remote}: {e}"))
            }
        }
    }

    fn disconnect(&mut self) {
        if let Some(c) = self.connection.take() {
            toolstack::serve::close_port(c.port);
            unmap_ring(self.page_va, c.handle);
        }
    }
}
