use super::*;

fn id(dom: u16, vcpu: u32) -> UnitId {
    UnitId { dom, vcpu }
}

/// A queue for CPU 0 holding `n` runnable vCPUs of domain 0.
fn queue(n: u32) -> RunQueue {
    let mut q = RunQueue::new(0);
    for v in 0..n {
        q.add(Unit::new(id(0, v), State::Runnable, 0), 0);
    }
    q
}

/// Runs `ticks` ticks of 10 ms from `now`, switching when the queue says
/// so; returns the time at the end and how many ticks each unit ran.
fn run(q: &mut RunQueue, mut now: u64, ticks: u32, ran: &mut [(UnitId, u32)]) -> u64 {
    for _ in 0..ticks {
        if let Some(cur) = q.current() {
            if let Some(r) = ran.iter_mut().find(|r| r.0 == cur) {
                r.1 += 1;
            }
        }
        now += TICK_NS;
        if q.tick(now) {
            q.schedule(now);
        }
    }
    now
}

#[test]
fn fifo_round_robin_and_yield() {
    let mut q = queue(3);
    assert_eq!(q.schedule(0).next, Some(id(0, 0)));
    assert_eq!(q.waiting(), 2);
    q.yield_current();
    let d = q.schedule(1);
    assert_eq!(
        d,
        Decision {
            prev: Some(id(0, 0)),
            next: Some(id(0, 1))
        }
    );
    assert_eq!(q.schedule(2).next, Some(id(0, 2)));
    assert_eq!(q.schedule(3).next, Some(id(0, 0)));
    // Alone, a unit keeps the CPU.
    let mut q = queue(1);
    q.schedule(0);
    q.yield_current();
    assert_eq!(q.schedule(5).next, Some(id(0, 0)));
}

#[test]
fn blocked_and_offline_units_never_run() {
    let mut q = queue(3);
    assert!(q.set_state(id(0, 1), State::Blocked, 0));
    assert!(q.set_state(id(0, 2), State::Offline, 0));
    assert_eq!(q.schedule(0).next, Some(id(0, 0)));
    for t in 1..10 {
        assert_eq!(q.schedule(t).next, Some(id(0, 0)));
    }
    // The running unit blocks: nothing is left, the CPU idles.
    q.set_state(id(0, 0), State::Blocked, 10);
    assert_eq!(q.current(), Some(id(0, 0)), "current until schedule");
    assert_eq!(
        q.schedule(10),
        Decision {
            prev: Some(id(0, 0)),
            next: None
        }
    );
    assert_eq!(q.schedule(11).next, None);
    // A wake-up makes it runnable again.
    q.set_state(id(0, 2), State::Runnable, 12);
    assert_eq!(q.schedule(12).next, Some(id(0, 2)));
    assert!(!q.set_state(id(9, 9), State::Runnable, 12), "unknown unit");
}

#[test]
fn runstate_times_add_up() {
    let mut q = queue(2);
    q.schedule(0);
    q.schedule(100);
    q.set_state(id(0, 1), State::Blocked, 250);
    q.schedule(250);
    q.set_state(id(0, 0), State::Offline, 400);
    let a = q.get(id(0, 0)).unwrap().runstate;
    let b = q.get(id(0, 1)).unwrap().runstate;
    // vCPU 0: running 0-100, runnable 100-250, running 250-400.
    assert_eq!(a.time, [250, 150, 0, 0]);
    assert_eq!((a.state, a.entry_time), (State::Offline, 400));
    // vCPU 1: runnable 0-100, running 100-250, blocked since.
    assert_eq!(b.time, [150, 100, 0, 0]);
    assert_eq!((b.state, b.entry_time), (State::Blocked, 250));
    for r in [a, b] {
        assert_eq!(r.time.iter().sum::<u64>(), r.entry_time);
    }
    // A clock going back adds nothing and does not move the entry back.
    let mut r = Runstate::new(State::Running, 100);
    r.change(State::Runnable, 50);
    assert_eq!((r.time, r.entry_time), ([0; 4], 100));
}

#[test]
fn time_slice_preempts_only_when_another_waits() {
    let mut q = queue(1);
    q.schedule(0);
    let mut now = 0;
    for _ in 0..10 {
        now += TICK_NS;
        assert!(!q.tick(now), "alone it is never preempted");
    }
    let mut q = queue(2);
    q.schedule(0);
    assert!(!q.tick(TICK_NS));
    assert!(!q.tick(2 * TICK_NS));
    assert!(q.tick(3 * TICK_NS), "30 ms slice over");
    assert_eq!(q.schedule(3 * TICK_NS).next, Some(id(0, 1)));
}

#[test]
fn equal_weights_share_equally() {
    let mut q = queue(3);
    q.schedule(0);
    let mut ran: Vec<_> = (0..3).map(|v| (id(0, v), 0)).collect();
    run(&mut q, 0, 300, &mut ran);
    // Round robin by slices: within a slice of a third each.
    for r in &ran {
        assert!(r.1.abs_diff(100) <= 3, "{ran:?}");
    }
}

#[test]
fn weights_share_in_proportion() {
    let mut q = RunQueue::new(0);
    let mut a = Unit::new(id(1, 0), State::Runnable, 0);
    a.weight = 512;
    q.add(a, 0);
    q.add(Unit::new(id(2, 0), State::Runnable, 0), 0);
    q.schedule(0);
    let mut ran = [(id(1, 0), 0), (id(2, 0), 0)];
    run(&mut q, 0, 3000, &mut ran);
    // 2:1, within a slice or two of the ideal.
    let (heavy, light) = (ran[0].1, ran[1].1);
    assert_eq!(heavy + light, 3000);
    assert!(heavy.abs_diff(2000) <= 6, "{ran:?}");
    // A domain's share is per domain: two vCPUs of weight 256 against
    // one of another domain with 256 get half the CPU between them.
    let mut q = RunQueue::new(0);
    q.add(Unit::new(id(1, 0), State::Runnable, 0), 0);
    q.add(Unit::new(id(1, 1), State::Runnable, 0), 0);
    q.add(Unit::new(id(2, 0), State::Runnable, 0), 0);
    q.schedule(0);
    let mut ran = [(id(1, 0), 0), (id(1, 1), 0), (id(2, 0), 0)];
    run(&mut q, 0, 3000, &mut ran);
    // Xen's weight counts per active unit: each unit gets a third.
    for r in &ran {
        assert!(r.1.abs_diff(1000) <= 6, "{ran:?}");
    }
}

#[test]
fn cap_parks_a_domain() {
    let mut q = RunQueue::new(0);
    let mut capped = Unit::new(id(1, 0), State::Runnable, 0);
    capped.cap = 25;
    q.add(capped, 0);
    q.schedule(0);
    let mut ran = [(id(1, 0), 0)];
    run(&mut q, 0, 1200, &mut ran);
    // Alone with a 25% cap it runs about a quarter of the time; the rest
    // the CPU idles.
    assert!(ran[0].1.abs_diff(300) <= 30, "{ran:?}");
    assert!(q.get(id(1, 0)).unwrap().credit > -CREDITS_PER_ACCT * 2);
}

#[test]
fn over_unit_yields_to_waiting_under() {
    let mut q = queue(2);
    q.schedule(0);
    q.get_mut(id(0, 0)).unwrap().credit = -350;
    q.get_mut(id(0, 1)).unwrap().credit = 100;
    assert!(!q.tick(TICK_NS), "between accountings the slice decides");
    assert!(!q.tick(2 * TICK_NS));
    assert!(q.tick(3 * TICK_NS), "accounted, Over, an Under unit waits");
    assert_eq!(q.schedule(3 * TICK_NS).next, Some(id(0, 1)));
    // Under is ordered before Over.
    q.set_state(id(0, 1), State::Blocked, 2 * TICK_NS);
    q.add(Unit::new(id(0, 5), State::Runnable, 0), 2 * TICK_NS);
    q.schedule(2 * TICK_NS);
    assert_eq!(q.current(), Some(id(0, 5)));
}

#[test]
fn credit_saturates() {
    let mut q = queue(2);
    q.schedule(0);
    for _ in 0..100 {
        q.account();
    }
    assert!(q.get(id(0, 1)).unwrap().credit <= CREDITS_PER_ACCT);
}

#[test]
fn affinity_and_stealing() {
    let mut busy = RunQueue::new(0);
    for v in 0..3 {
        let mut u = Unit::new(id(0, v), State::Runnable, 0);
        if v == 1 {
            u.affinity = 1 << 0; // pinned to CPU 0
        }
        busy.add(u, 0);
    }
    busy.schedule(0);
    assert_eq!(busy.current(), Some(id(0, 0)));
    let mut idle = RunQueue::new(1);
    // CPU 1 takes the first waiter it may run: not the pinned one.
    let u = busy.steal(1).unwrap();
    assert_eq!(u.id, id(0, 2));
    idle.add(u, 5);
    assert_eq!(idle.schedule(5).next, Some(id(0, 2)));
    assert!(busy.steal(1).is_none(), "only the pinned one is left");
    assert!(busy.remove(id(0, 0)).is_none(), "the running unit stays");
    assert_eq!(busy.remove(id(0, 1)).map(|u| u.id), Some(id(0, 1)));
    // A unit pinned elsewhere never runs here.
    let mut q = RunQueue::new(0);
    let mut u = Unit::new(id(0, 0), State::Runnable, 0);
    u.affinity = 1 << 3;
    q.add(u, 0);
    assert_eq!(q.schedule(0).next, None);
}

#[test]
fn dom0_max_vcpus_forms() {
    assert_eq!(parse_dom0_max_vcpus("4"), Some((4, 4)));
    assert_eq!(parse_dom0_max_vcpus("0"), Some((1, 1)));
    assert_eq!(parse_dom0_max_vcpus("2-8"), Some((2, 8)));
    assert_eq!(parse_dom0_max_vcpus("2-"), Some((2, u32::MAX)));
    assert_eq!(parse_dom0_max_vcpus("-3"), Some((1, 3)));
    assert_eq!(parse_dom0_max_vcpus("x"), None);
    assert_eq!(parse_dom0_max_vcpus("2-x"), None);
    // The default: one per CPU; bounds and hv's limit.
    assert_eq!(dom0_vcpus(1, (1, u32::MAX), 32), 1);
    assert_eq!(dom0_vcpus(1, (4, 4), 32), 4);
    assert_eq!(dom0_vcpus(8, (1, 3), 32), 3);
    assert_eq!(dom0_vcpus(1, (64, 64), 32), 32);
}

#[test]
fn block_running_and_wake_change_only_what_they_name() {
    let mut q = queue(2);
    assert_eq!(q.schedule(0).next, Some(id(0, 0)));
    assert_eq!(
        q.block_running(id(0, 1), 1),
        None,
        "a waiting unit is not the running one"
    );
    assert_eq!(q.block_running(id(0, 0), 1), Some(false));
    assert_eq!(q.block_running(id(0, 0), 2), Some(true), "blocked already");
    assert_eq!(q.wake(id(0, 1), 3), Some(false), "runnable: left as it is");
    assert_eq!(q.wake(id(7, 0), 3), None, "not in this queue");
    let (d, prev, next) = q.schedule_runstates(10);
    assert_eq!(d.next, Some(id(0, 1)));
    assert_eq!(prev.map(|r| r.state), Some(State::Blocked));
    assert_eq!(
        next.map(|r| (r.state, r.entry_time)),
        Some((State::Running, 10))
    );
    assert_eq!(q.wake(id(0, 0), 20), Some(true));
    assert_eq!(q.waiting(), 1);
    q.yield_current();
    assert_eq!(q.schedule(30).next, Some(id(0, 0)));
}

#[test]
fn a_paused_domain_never_runs_and_resumes_as_it_was() {
    let mut q = queue(1);
    for v in 0..3 {
        let state = [State::Runnable, State::Blocked, State::Offline][v as usize];
        q.add(Unit::new(id(1, v), state, 0), 0);
    }
    for v in 0..3 {
        assert_eq!(q.pause(id(1, v), 1), Some(false));
    }
    assert_eq!(q.pause(id(9, 0), 1), None, "not in this queue");
    assert_eq!(q.waiting(), 1, "only domain 0's unit waits");
    assert_eq!(
        q.get(id(1, 0)).map(|u| u.runstate.state),
        Some(State::Offline)
    );
    assert_eq!(
        q.get(id(1, 1)).map(|u| u.runstate.state),
        Some(State::Blocked)
    );
    // Woken or brought up while paused: still not picked.
    assert_eq!(q.wake(id(1, 1), 2), Some(true));
    assert!(q.set_state(id(1, 2), State::Runnable, 2));
    let mut now = 0;
    for _ in 0..10 {
        now += TICK_NS;
        assert_eq!(q.schedule(now).next, Some(id(0, 0)));
    }
    for v in 0..3 {
        assert_eq!(
            q.get(id(1, v)).map(|u| u.runstate.state),
            Some(State::Offline)
        );
    }
    // Blocked again while paused: stays blocked after the pause.
    q.set_state(id(1, 1), State::Blocked, now);
    for v in 0..3 {
        assert!(q.unpause(id(1, v), now));
    }
    assert!(!q.unpause(id(9, 0), now));
    let states: Vec<State> = (0..3)
        .filter_map(|v| q.get(id(1, v)).map(|u| u.runstate.state))
        .collect();
    assert_eq!(states, [State::Runnable, State::Blocked, State::Runnable]);
    assert_eq!(q.waiting(), 2);
}

#[test]
fn pausing_the_running_unit_takes_it_off_the_cpu() {
    let mut q = queue(1);
    q.add(Unit::new(id(1, 0), State::Runnable, 0), 0);
    q.yield_current();
    assert_eq!(q.schedule(0).next, Some(id(0, 0)));
    q.yield_current();
    assert_eq!(q.schedule(1).next, Some(id(1, 0)));
    assert_eq!(q.pause(id(1, 0), 2), Some(true), "it is the running one");
    assert!(q.tick(TICK_NS), "the tick switches away from it");
    let (d, prev, _) = q.schedule_runstates(TICK_NS);
    assert_eq!(d.next, Some(id(0, 0)));
    assert_eq!(prev.map(|r| r.state), Some(State::Offline));
    assert_eq!(q.waiting(), 0, "not put back in the order");
    assert!(q.unpause(id(1, 0), 2 * TICK_NS));
    assert_eq!(q.waiting(), 1);
    // Paused twice, unpaused once: the pause is a flag, the count is the caller's.
    assert_eq!(q.pause(id(1, 0), 3 * TICK_NS), Some(false));
    assert_eq!(q.pause(id(1, 0), 3 * TICK_NS), Some(false));
    assert!(q.unpause(id(1, 0), 4 * TICK_NS));
    assert_eq!(q.waiting(), 1);
}
