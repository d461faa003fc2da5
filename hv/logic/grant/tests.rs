use super::*;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const ME: u16 = 7;

fn entry(flags: u16, domid: u16) -> Words {
    Words {
        header: AtomicU32::new(u32::from(flags) | (u32::from(domid) << 16)),
        status: AtomicU16::new(0),
    }
}

fn want(readonly: bool) -> Want {
    Want {
        user: ME,
        readonly,
        map: true,
    }
}

fn access(e: &Words, v: Version) -> u16 {
    match v {
        Version::V1 => split(e.header()).0 & (GTF_READING | GTF_WRITING),
        Version::V2 => e.status.load(Ordering::SeqCst),
    }
}

#[test]
fn a_grant_to_the_user_is_acquired_with_the_right_bits() {
    for v in [Version::V1, Version::V2] {
        let e = entry(GTF_PERMIT_ACCESS, ME);
        assert_eq!(acquire(&e, v, false, want(true)), Ok(()));
        assert_eq!(access(&e, v), GTF_READING);
        assert_eq!(acquire(&e, v, true, want(false)), Ok(()));
        assert_eq!(access(&e, v), GTF_READING | GTF_WRITING);
    }
}

#[test]
fn refusals_leave_the_entry_as_it_was() {
    for v in [Version::V1, Version::V2] {
        let cases = [
            (GTF_PERMIT_ACCESS, ME + 1, false, "another domain's grant"),
            (0, ME, true, "no grant"),
            (
                GTF_PERMIT_ACCESS | GTF_READONLY,
                ME,
                false,
                "read-only grant mapped writable",
            ),
            (
                GTF_PERMIT_ACCESS | GTF_SUB_PAGE,
                ME,
                true,
                "sub-page grant mapped",
            ),
            (2, ME, true, "accept-transfer entry"),
        ];
        for (flags, domid, readonly, what) in cases {
            let e = entry(flags, domid);
            let before = e.header();
            assert_eq!(
                acquire(&e, v, false, want(readonly)),
                Err(GNTST_GENERAL_ERROR),
                "{what} ({v:?})"
            );
            assert_eq!(e.header(), before, "{what}");
            assert_eq!(e.status.load(Ordering::SeqCst), 0, "{what}");
        }
    }
}

#[test]
fn transitive_grants_exist_in_v2_only_and_sub_page_may_be_copied() {
    let e = entry(GTF_TRANSITIVE, ME);
    assert_eq!(
        acquire(&e, Version::V1, false, want(true)),
        Err(GNTST_GENERAL_ERROR)
    );
    assert_eq!(acquire(&e, Version::V2, false, want(true)), Ok(()));
    let e = entry(GTF_PERMIT_ACCESS | GTF_SUB_PAGE, ME);
    let copy = Want {
        map: false,
        ..want(true)
    };
    assert_eq!(acquire(&e, Version::V1, false, copy), Ok(()));
}

#[test]
fn a_pinned_entry_is_not_checked_again_except_for_readonly() {
    for v in [Version::V1, Version::V2] {
        // The granter revoked while it was in use: further uses go on.
        let e = entry(0, 0);
        assert_eq!(acquire(&e, v, true, want(true)), Ok(()));
        let e = entry(GTF_READONLY, 0);
        assert_eq!(acquire(&e, v, true, want(false)), Err(GNTST_GENERAL_ERROR));
    }
}

/// An entry whose granter rewrites it on every read: v1 gives up after five
/// compare-exchanges.
struct Unstable(AtomicU32);

impl SharedEntry for Unstable {
    fn header(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
    fn cmpxchg_header(&self, _old: u32, _new: u32) -> u32 {
        // The granter toggled GTF_PWT just before.
        self.0.fetch_xor(1 << 5, Ordering::SeqCst) ^ (1 << 5)
    }
    fn set_access(&self, _: Version, _: u16) {}
    fn clear_access(&self, _: Version, _: u16) {}
    fn set_flags(&self, _: u16) {}
}

#[test]
fn an_unstable_v1_entry_is_refused() {
    let e = Unstable(AtomicU32::new(
        u32::from(GTF_PERMIT_ACCESS) | (u32::from(ME) << 16),
    ));
    assert_eq!(
        acquire(&e, Version::V1, false, want(true)),
        Err(GNTST_GENERAL_ERROR)
    );
}

/// The granter's revocation as Linux does it: v1 swaps the flags to 0 only
/// while no access bit is set; v2 clears the flags, then looks at the
/// status. Whatever the interleaving, a use and a revocation never both
/// succeed.
fn revoke(e: &Words, v: Version) -> bool {
    match v {
        Version::V1 => {
            let mut seen = e.header();
            loop {
                if split(seen).0 & (GTF_READING | GTF_WRITING) != 0 {
                    return false;
                }
                let now = e.cmpxchg_header(seen, 0);
                if now == seen {
                    return true;
                }
                seen = now;
            }
        }
        Version::V2 => {
            e.header.store(0, Ordering::SeqCst);
            e.status.load(Ordering::SeqCst) & (GTF_READING | GTF_WRITING) == 0
        }
    }
}

#[test]
fn a_use_and_a_revocation_never_both_succeed() {
    for v in [Version::V1, Version::V2] {
        let mut both = 0;
        let mut used = 0;
        for _ in 0..2000 {
            let e = Arc::new(entry(GTF_PERMIT_ACCESS, ME));
            let go = Arc::new(AtomicBool::new(false));
            let (e2, go2) = (Arc::clone(&e), Arc::clone(&go));
            let granter = std::thread::spawn(move || {
                while !go2.load(Ordering::SeqCst) {}
                revoke(&e2, v)
            });
            go.store(true, Ordering::SeqCst);
            let got = acquire(&*e, v, false, want(false)).is_ok();
            let revoked = granter.join().unwrap_or(false);
            used += usize::from(got);
            if got && revoked {
                both += 1;
            }
        }
        assert_eq!(
            both, 0,
            "{v:?}: a revoked grant stayed in use ({used} uses)"
        );
    }
}

#[test]
fn pins_count_each_use_and_refuse_near_overflow() {
    let mut p = Pin::default();
    assert!(p.is_free());
    p = p.with(Use::HostRead).unwrap();
    assert!(!p.writable());
    p = p.with(Use::HostWrite).unwrap();
    assert!(p.writable());
    assert_eq!(p.count(Use::HostRead), 1);
    let before = p;
    let after = p.without(Use::HostWrite).unwrap();
    assert_eq!(access_to_clear(before, after), GTF_WRITING);
    let none = after.without(Use::HostRead).unwrap();
    assert_eq!(access_to_clear(after, none), GTF_READING | GTF_WRITING);
    assert_eq!(none.without(Use::DeviceRead), None);
    let mut q = Pin::default();
    for _ in 0..127 {
        q = q.with(Use::DeviceWrite).unwrap();
    }
    let mut full = q;
    while let Some(more) = full.with(Use::DeviceWrite) {
        full = more;
    }
    assert_eq!(full.count(Use::DeviceWrite), 255);
    assert_eq!(
        full.count(Use::DeviceRead),
        0,
        "no carry into the next count"
    );
    let act = Active {
        pin: q,
        user: ME,
        mfn: 1,
    };
    assert_eq!(check_pinned(&act, ME), Ok(()));
    let act = Active {
        pin: q.with(Use::DeviceWrite).unwrap(),
        ..act
    };
    assert_eq!(check_pinned(&act, ME), Err(GNTST_GENERAL_ERROR));
    let act = Active {
        pin: Pin::default().with(Use::HostRead).unwrap(),
        user: ME,
        mfn: 1,
    };
    assert_eq!(check_pinned(&act, ME + 1), Err(GNTST_GENERAL_ERROR));
    assert!(needs_acquire(&act, false));
    assert!(!needs_acquire(&act, true));
}

#[test]
fn maptrack_hands_out_lowest_handles_up_to_its_limit() {
    let m = Mapping {
        granter: 1,
        gref: 8,
        flags: 2,
        host_addr: 0x1000,
    };
    let mut t = Maptrack::new(2);
    // Two frames hold 512 entries; Xen keeps one of them free.
    assert_eq!(t.limit(), 511);
    for want in 0..511 {
        assert_eq!(t.insert(m), Ok(want));
    }
    assert_eq!(t.insert(m), Err(GNTST_NO_SPACE));
    assert_eq!(t.remove(3), Some(m));
    assert_eq!(t.remove(3), None, "double unmap");
    assert_eq!(t.get(3), None);
    assert_eq!(t.insert(m), Ok(3));
    assert_eq!(t.in_use(), 511);
    assert_eq!(t.remove(9999), None);
    assert_eq!(t.iter().count(), 511);
    // No frame at all: no mapping.
    assert_eq!(Maptrack::new(0).insert(m), Err(GNTST_NO_SPACE));
}

#[test]
fn sizes_follow_the_version() {
    assert_eq!(Version::V1.entries(1), 512);
    assert_eq!(Version::V2.entries(64), 64 * 256);
    assert_eq!(status_frames(1), 1);
    assert_eq!(status_frames(8), 1);
    assert_eq!(status_frames(9), 2);
    assert_eq!(status_frames(64), 8);
}

/// An entry whose granter revokes it at the worst moment: just before hv's
/// first write (v1: its compare-exchange; v2: its status bits).
struct RevokedMidway {
    e: Words,
    v: Version,
    revoked: AtomicBool,
    succeeded: AtomicBool,
}

impl RevokedMidway {
    fn granter_moves(&self) {
        if !self.revoked.swap(true, Ordering::SeqCst) {
            self.succeeded
                .store(revoke(&self.e, self.v), Ordering::SeqCst);
        }
    }
}

impl SharedEntry for RevokedMidway {
    fn set_flags(&self, _: u16) {}
    fn header(&self) -> u32 {
        self.e.header()
    }
    fn cmpxchg_header(&self, old: u32, new: u32) -> u32 {
        self.granter_moves();
        self.e.cmpxchg_header(old, new)
    }
    fn set_access(&self, v: Version, bits: u16) {
        self.granter_moves();
        self.e.set_access(v, bits);
    }
    fn clear_access(&self, v: Version, bits: u16) {
        self.e.clear_access(v, bits);
    }
}

#[test]
fn a_grant_revoked_between_read_and_write_is_refused_and_left_clear() {
    for v in [Version::V1, Version::V2] {
        let e = RevokedMidway {
            e: entry(GTF_PERMIT_ACCESS, ME),
            v,
            revoked: AtomicBool::new(false),
            succeeded: AtomicBool::new(false),
        };
        assert_eq!(
            acquire(&e, v, false, want(false)),
            Err(GNTST_GENERAL_ERROR),
            "{v:?}"
        );
        assert!(
            e.succeeded.load(Ordering::SeqCst),
            "{v:?}: the revocation stands"
        );
        assert_eq!(access(&e.e, v), 0, "{v:?}: no access bit left behind");
    }
}

#[test]
fn a_mapping_is_acted_on_by_one_operation_at_a_time() {
    let m = Mapping {
        granter: 1,
        gref: 8,
        flags: GNTMAP_HOST_MAP | GNTMAP_DEVICE_MAP,
        host_addr: 0x1000,
    };
    let mut t = Maptrack::new(1);
    let h = t.insert(m).unwrap();
    assert_eq!(t.claim(h), None, "still being made");
    t.release(h);
    assert_eq!(t.claim(h), Some(m));
    assert_eq!(t.claim(h), None, "a second unmap of the same handle");
    // The host mapping went; the device one stays, free for the next.
    t.finish(h, GNTMAP_DEVICE_MAP);
    assert_eq!(t.get(h).map(|m| m.flags), Some(GNTMAP_DEVICE_MAP));
    assert!(t.claim(h).is_some());
    t.finish(h, 0);
    assert_eq!(t.get(h), None);
    assert_eq!(t.claim(h), None);
    assert_eq!(t.claim(9999), None);
}

#[test]
fn a_transfer_is_committed_only_to_an_entry_accepting_it_from_the_sender() {
    let e = entry(GTF_ACCEPT_TRANSFER, ME);
    assert_eq!(commit_transfer(&e, ME), Ok(()));
    assert_eq!(
        split(e.header()).0,
        GTF_ACCEPT_TRANSFER | GTF_TRANSFER_COMMITTED
    );
    // Committed already (or completed): not again.
    assert_eq!(commit_transfer(&e, ME), Err(GNTST_GENERAL_ERROR));
    complete_transfer(&e);
    assert_eq!(
        split(e.header()),
        (
            GTF_ACCEPT_TRANSFER | GTF_TRANSFER_COMMITTED | GTF_TRANSFER_COMPLETED,
            ME
        )
    );
    for (flags, domid) in [
        (GTF_ACCEPT_TRANSFER, ME + 1),
        (GTF_PERMIT_ACCESS, ME),
        (GTF_ACCEPT_TRANSFER | GTF_READONLY, ME),
        (0, ME),
    ] {
        let e = entry(flags, domid);
        assert_eq!(commit_transfer(&e, ME), Err(GNTST_GENERAL_ERROR));
        assert_eq!(split(e.header()), (flags, domid), "unchanged");
    }
}
