//! The xenbus device handshake (`io/xenbus.h`): each end of a split
//! device publishes its `state` node, and reacts to the other's. The two
//! machines here decide what an end does next; the caller does the
//! xenstore writes and the ring work they ask for ([`Step`]).
//!
//! - [`Backend`]: `Initialising` → `InitWait` (its features published);
//!   once the front end is `Initialised` (or `Connected`) it connects
//!   (maps the ring, binds the channel) → `Connected`; the front end
//!   `Closing` or `Closed` → it disconnects → `Closing`, and `Closed`
//!   once the front end is; a front end `Initialising` again after that
//!   → `InitWait` (reconnect).
//! - [`Frontend`]: `Initialising`; once the back end is `InitWait` (or
//!   later) it sets up (grants the ring, allocates the channel, writes
//!   their references) → `Initialised`; the back end `Connected` →
//!   `Connected`; the back end `Closing` or `Closed` → it tears down →
//!   `Closing`, then `Closed` (as Linux's front ends, which close once
//!   the back end is closing); [`Frontend::reset`] starts it over.
//!
//! Either end may start first: each machine looks only at the other's
//! state now. A state value that is none of Xen's is `UNKNOWN`, which
//! changes nothing. The states are `guest_abi::io::xenbus::XenbusState`.

pub use guest_abi::io::xenbus::XenbusState as State;

/// The state a `state` node's value names (a decimal number);
/// `UNKNOWN` for anything else.
pub fn parse_state(value: &[u8]) -> State {
    let n = core::str::from_utf8(value)
        .ok()
        .and_then(|s| s.trim_end_matches('\0').parse::<u32>().ok());
    match n {
        Some(n @ 1..=8) => State(n),
        _ => State::UNKNOWN,
    }
}

/// The value the `state` node holds for `s` (one digit).
pub fn state_value(s: State) -> u8 {
    b'0' + u8::try_from(s.0 % 10).unwrap_or(0)
}

/// What an end must do before publishing its next state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing: stay.
    Stay,
    /// Back end: publish the features, then `InitWait`.
    Publish,
    /// Back end: read the front end's references, map, bind, then
    /// `Connected`.
    Connect,
    /// Front end: grant the ring, allocate the channel, write their
    /// references, then `Initialised`.
    Setup,
    /// Front end: the back end is connected: `Connected`.
    Connected,
    /// Either: unmap / revoke, unbind, then `Closing` (and `Closed` when
    /// the machine says so).
    Teardown,
    /// Either: publish `Closed`.
    Close,
}

/// A back end's side of the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backend {
    pub state: State,
}

impl Default for Backend {
    fn default() -> Self {
        Self {
            state: State::INITIALISING,
        }
    }
}

impl Backend {
    /// What to do given the front end's state now; the caller does it and
    /// then calls [`done`](Self::done).
    pub fn next(&self, front: State) -> Step {
        match (self.state, front) {
            (State::INITIALISING, _) => Step::Publish,
            (State::INIT_WAIT, State::INITIALISED | State::CONNECTED) => Step::Connect,
            (State::INIT_WAIT | State::CONNECTED, State::CLOSING | State::CLOSED) => Step::Teardown,
            (State::CLOSING, State::CLOSED) => Step::Close,
            (State::CLOSED, State::INITIALISING) => Step::Publish,
            _ => Step::Stay,
        }
    }

    /// Records that `step` was done: the state to publish.
    pub fn done(&mut self, step: Step) -> State {
        self.state = match step {
            Step::Publish => State::INIT_WAIT,
            Step::Connect => State::CONNECTED,
            Step::Teardown => State::CLOSING,
            Step::Close => State::CLOSED,
            _ => self.state,
        };
        self.state
    }
}

/// A front end's side of the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frontend {
    pub state: State,
}

impl Default for Frontend {
    fn default() -> Self {
        Self {
            state: State::INITIALISING,
        }
    }
}

impl Frontend {
    /// What to do given the back end's state now.
    pub fn next(&self, back: State) -> Step {
        match (self.state, back) {
            (State::INITIALISING, State::INIT_WAIT | State::INITIALISED | State::CONNECTED) => {
                Step::Setup
            }
            (State::INITIALISED, State::CONNECTED) => Step::Connected,
            (State::INITIALISED | State::CONNECTED, State::CLOSING | State::CLOSED) => {
                Step::Teardown
            }
            (State::CLOSING, State::CLOSING | State::CLOSED) => Step::Close,
            _ => Step::Stay,
        }
    }

    /// Starts over after a close (the device probed again): the state
    /// to publish, `Initialising`.
    pub fn reset(&mut self) -> State {
        self.state = State::INITIALISING;
        self.state
    }

    /// Records that `step` was done: the state to publish.
    pub fn done(&mut self, step: Step) -> State {
        self.state = match step {
            Step::Setup => State::INITIALISED,
            Step::Connected => State::CONNECTED,
            Step::Teardown => State::CLOSING,
            Step::Close => State::CLOSED,
            _ => self.state,
        };
        self.state
    }
}

#[cfg(test)]
mod tests;
