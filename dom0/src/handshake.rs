//! A back end's side of one device's xenbus handshake, as dom0's back ends
//! share it: the device's two store directories, and
//! `pv_drivers::xenbus::Backend` driven by the front end's `state` node
//! (dom0 serves the store in-process, so it reads the node after every
//! pass rather than watching it).

use alloc::format;
use alloc::string::String;

use guest_abi::println;
use pv_drivers::xenbus::{parse_state, state_value, Backend, State, Step};
use pv_drivers::xenstored::{Conn, Store};

const DOM0: Conn = Conn {
    domid: 0,
    privileged: true,
};

/// Device `dev` of kind `kind` of domain `front`, served by dom0.
pub struct Handshake {
    pub front: u16,
    kind: &'static str,
    front_path: String,
    back_path: String,
    machine: Backend,
}

impl Handshake {
    pub fn new(kind: &'static str, front: u16, dev: u32) -> Self {
        let (front_path, back_path) =
            pv_drivers::xenstored::toolstack::device_paths(kind, front, 0, dev);
        Self {
            front,
            kind,
            front_path,
            back_path,
            machine: Backend::default(),
        }
    }

    /// Writes our node `node`.
    pub fn write(&self, s: &mut Store, node: &str, value: &[u8]) {
        let _ = s.write(DOM0, &format!("{}/{node}", self.back_path), value);
    }

    /// The front end's node `node`, as text.
    pub fn front_value(&self, s: &Store, node: &str) -> Option<String> {
        let v = s.read(DOM0, &format!("{}/{node}", self.front_path)).ok()?;
        String::from_utf8(v).ok()
    }

    /// The front end's node `node`, a decimal number.
    pub fn front_number(&self, s: &Store, node: &str) -> Result<u32, String> {
        self.front_value(s, node)
            .and_then(|v| v.trim_end_matches('\0').parse::<u32>().ok())
            .ok_or_else(|| format!("no {node} from the front end"))
    }

    /// What the front end's state asks of us now, if anything.
    pub fn next(&self, s: &Store) -> Option<Step> {
        let front = self
            .front_value(s, "state")
            .map_or(State::UNKNOWN, |v| parse_state(v.as_bytes()));
        match self.machine.next(front) {
            Step::Stay => None,
            step => Some(step),
        }
    }

    /// `step` was done (`Ok`) and our next state is published, or it
    /// failed: the reason goes to our `error` node and we are `Closing`,
    /// as Linux's back ends do on a fatal error (the front end may close
    /// and start again; a front end that keeps its bad state gets no
    /// second try, nor a line per wake-up).
    pub fn finish(&mut self, s: &mut Store, step: Step, done: Result<(), String>) {
        let step = match done {
            Ok(()) => step,
            Err(why) => {
                println!("dom0: {} of domain {}: {why}", self.kind, self.front);
                self.write(s, "error", why.as_bytes());
                Step::Teardown
            }
        };
        let state = self.machine.done(step);
        self.write(s, "state", &[state_value(state)]);
    }
}

/// A back end of dom0's, driven through its [`Handshake`].
pub trait BackEnd {
    fn handshake(&mut self) -> &mut Handshake;
    /// Writes the features offered, before `InitWait`.
    fn publish(&mut self, s: &mut Store);
    /// Maps the front end's rings and binds its channel.
    fn connect(&mut self, s: &Store) -> Result<(), String>;
    /// Unmaps and unbinds.
    fn disconnect(&mut self);

    /// Takes the handshake one step if the front end's state asks for
    /// one; whether the store changed.
    fn poll(&mut self, s: &mut Store) -> bool {
        let Some(step) = self.handshake().next(s) else {
            return false;
        };
        let done = match step {
            Step::Publish => {
                self.publish(s);
                Ok(())
            }
            Step::Connect => self.connect(s),
            Step::Teardown => {
                self.disconnect();
                Ok(())
            }
            _ => Ok(()),
        };
        self.handshake().finish(s, step, done);
        true
    }
}
