//! Host tests of the handshake: both start orders, a close from either
//! side, reconnection, and values that are no state.

use super::*;

/// Runs both machines until neither has anything to do (at most 20
/// rounds), the back end first if `back_first`.
fn settle(b: &mut Backend, f: &mut Frontend, back_first: bool) {
    for _ in 0..20 {
        let mut moved = false;
        for turn in 0..2 {
            if (turn == 0) == back_first {
                let step = b.next(f.state);
                if step != Step::Stay {
                    b.done(step);
                    moved = true;
                }
            } else {
                let step = f.next(b.state);
                if step != Step::Stay {
                    f.done(step);
                    moved = true;
                }
            }
        }
        if !moved {
            return;
        }
    }
    panic!("the handshake never settles: {b:?} {f:?}");
}

#[test]
fn both_start_orders_connect() {
    for back_first in [true, false] {
        let (mut b, mut f) = (Backend::default(), Frontend::default());
        settle(&mut b, &mut f, back_first);
        assert_eq!((b.state, f.state), (State::CONNECTED, State::CONNECTED));
    }
}

#[test]
fn the_front_end_waits_for_the_back_ends_features() {
    let f = Frontend::default();
    assert_eq!(f.next(State::INITIALISING), Step::Stay);
    assert_eq!(f.next(State::UNKNOWN), Step::Stay);
    assert_eq!(f.next(State::INIT_WAIT), Step::Setup);
    let b = Backend {
        state: State::INIT_WAIT,
    };
    assert_eq!(b.next(State::INITIALISING), Step::Stay, "no references yet");
    assert_eq!(b.next(State::INITIALISED), Step::Connect);
}

#[test]
fn a_close_from_either_side_ends_closed_and_a_reset_reconnects() {
    for front_closes in [true, false] {
        let (mut b, mut f) = (Backend::default(), Frontend::default());
        settle(&mut b, &mut f, true);
        if front_closes {
            assert_eq!(f.done(Step::Teardown), State::CLOSING);
        } else {
            assert_eq!(b.done(Step::Teardown), State::CLOSING);
        }
        settle(&mut b, &mut f, !front_closes);
        assert_eq!((b.state, f.state), (State::CLOSED, State::CLOSED));
        f.reset();
        settle(&mut b, &mut f, false);
        assert_eq!((b.state, f.state), (State::CONNECTED, State::CONNECTED));
    }
}

#[test]
fn state_values_are_xens() {
    assert_eq!(parse_state(b"4"), State::CONNECTED);
    assert_eq!(parse_state(b"6\0"), State::CLOSED);
    assert_eq!(parse_state(b"9"), State::UNKNOWN);
    assert_eq!(parse_state(b"x"), State::UNKNOWN);
    assert_eq!(parse_state(b""), State::UNKNOWN);
    assert_eq!(state_value(State::INIT_WAIT), b'2');
    assert_eq!(state_value(State::RECONFIGURED), b'8');
}
