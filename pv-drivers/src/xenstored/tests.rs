//! Host tests of the store: paths, permissions as Xen's, each request's
//! answer and errors, and the wire framing of replies.

extern crate std;

use super::*;
use crate::xs_wire::Header;
use std::string::String;

const DOM0: Conn = Conn {
    domid: 0,
    privileged: true,
};
const D1: Conn = Conn {
    domid: 1,
    privileged: false,
};
const D2: Conn = Conn {
    domid: 2,
    privileged: false,
};

fn perms(list: &[&str]) -> Vec<Perm> {
    list.iter().map(|s| Perm::parse(s).unwrap()).collect()
}

/// The toolstack's skeleton for domain `d`: its home, owned by it.
fn home(s: &mut Store, d: u16) {
    let p = format!("/local/domain/{d}");
    s.mkdir(DOM0, &p).unwrap();
    s.set_perms(DOM0, &p, &perms(&[&format!("n{d}")])).unwrap();
}

#[test]
fn paths_are_checked_and_relative_ones_are_the_callers() {
    assert_eq!(
        Store::canonical(D1, "device/vbd").unwrap(),
        "/local/domain/1/device/vbd"
    );
    assert_eq!(Store::canonical(D1, "/").unwrap(), "/");
    for bad in [
        "",
        "/a/",
        "/a//b",
        "a b",
        "/a\u{e9}",
        "/@introduceDomain",
        "/a/.",
    ] {
        assert_eq!(Store::canonical(D1, bad), Err("EINVAL"), "{bad:?}");
    }
    let long = "a".repeat(REL_PATH_MAX + 1);
    assert_eq!(Store::canonical(D1, &long), Err("EINVAL"));
    assert!(Store::canonical(D1, &"a".repeat(REL_PATH_MAX)).is_ok());
    let abs = format!("/{}", "a".repeat(ABS_PATH_MAX));
    assert_eq!(Store::canonical(D1, &abs), Err("EINVAL"));
}

#[test]
fn a_domain_reads_and_writes_its_home_and_nothing_else() {
    let mut s = Store::new();
    home(&mut s, 1);
    home(&mut s, 2);
    s.write(D1, "name", b"guest1").unwrap();
    assert_eq!(s.read(D1, "name").unwrap(), b"guest1");
    assert_eq!(s.read(DOM0, "/local/domain/1/name").unwrap(), b"guest1");
    // Another domain's home: no access, and no telling what is missing.
    assert_eq!(s.read(D2, "/local/domain/1/name"), Err("EACCES"));
    assert_eq!(s.read(D2, "/local/domain/1/nothing"), Err("EACCES"));
    assert_eq!(s.write(D2, "/local/domain/1/name", b"x"), Err("EACCES"));
    assert_eq!(s.read(D1, "nothing"), Err("ENOENT"));
    // The root is dom0's.
    assert_eq!(s.write(D1, "/tool", b"x"), Err("EACCES"));
    assert_eq!(s.directory(D1, "/"), Err("EACCES"));
}

#[test]
fn created_nodes_inherit_their_parents_permissions_and_their_creator_owns_them() {
    let mut s = Store::new();
    home(&mut s, 1);
    // dom0 writes a backend-readable device directory for domain 1.
    s.mkdir(DOM0, "/local/domain/1/device").unwrap();
    s.set_perms(DOM0, "/local/domain/1/device", &perms(&["n1", "r2"]))
        .unwrap();
    s.write(D1, "device/vbd/768/ring-ref", b"8").unwrap();
    assert_eq!(
        s.get_perms(DOM0, "/local/domain/1/device/vbd/768").unwrap(),
        perms(&["n1", "r2"]),
        "the intermediate node inherits, domain 1 owns it"
    );
    assert_eq!(
        s.read(D2, "/local/domain/1/device/vbd/768/ring-ref")
            .unwrap(),
        b"8"
    );
    assert_eq!(
        s.write(D2, "/local/domain/1/device/vbd/768/state", b"4"),
        Err("EACCES")
    );
    // A privileged creator keeps the parent's owner.
    s.write(DOM0, "/local/domain/1/device/vbd/768/backend", b"/x")
        .unwrap();
    assert_eq!(
        s.get_perms(DOM0, "/local/domain/1/device/vbd/768/backend")
            .unwrap()[0],
        Perm {
            access: Access::None,
            domid: 1
        }
    );
}

#[test]
fn set_perms_is_the_owners_and_an_unprivileged_owner_cannot_give_a_node_away() {
    let mut s = Store::new();
    home(&mut s, 1);
    s.write(D1, "data", b"v").unwrap();
    assert_eq!(s.set_perms(D1, "data", &perms(&["n1", "b2"])), Ok(()));
    assert_eq!(
        s.write(D2, "/local/domain/1/data", b"w"),
        Ok(()),
        "b2 writes"
    );
    assert_eq!(
        s.set_perms(D2, "/local/domain/1/data", &perms(&["b2"])),
        Err("EACCES")
    );
    assert_eq!(s.set_perms(D1, "data", &perms(&["n2"])), Err("EPERM"));
    assert_eq!(s.set_perms(D1, "data", &[]), Err("EINVAL"));
    assert_eq!(
        s.set_perms(DOM0, "/local/domain/1/data", &perms(&["n3"])),
        Ok(())
    );
    assert_eq!(
        s.read(D1, "data"),
        Err("EACCES"),
        "dom0 gave it to domain 3"
    );
}

#[test]
fn rm_takes_the_subtree_and_a_missing_node_under_an_existing_parent_is_fine() {
    let mut s = Store::new();
    home(&mut s, 1);
    s.write(D1, "a/b/c", b"1").unwrap();
    s.write(D1, "a/bb", b"2").unwrap();
    s.write(D1, "ab", b"3").unwrap();
    assert_eq!(s.directory(D1, "a").unwrap(), ["b", "bb"]);
    assert_eq!(s.rm(D1, "a/b"), Ok(()));
    assert_eq!(s.read(D1, "a/b/c"), Err("ENOENT"));
    assert_eq!(
        s.read(D1, "a/bb").unwrap(),
        b"2",
        "a sibling with the same prefix stays"
    );
    assert_eq!(s.read(D1, "ab").unwrap(), b"3");
    assert_eq!(s.rm(D1, "a/b"), Ok(()), "missing, its parent exists");
    assert_eq!(s.rm(D1, "x/y"), Err("ENOENT"));
    assert_eq!(s.rm(DOM0, "/"), Err("EINVAL"));
    assert_eq!(s.mkdir(D1, "a"), Ok(()), "mkdir of an existing node");
    assert_eq!(s.read(D1, "a").unwrap(), b"");
}

fn request(kind: u32, payload: &[u8]) -> Message {
    Message::new(kind, 42, 0, payload).unwrap()
}

#[test]
fn requests_get_xens_replies_and_error_names() {
    let mut s = Store::new();
    home(&mut s, 1);
    let r = s.handle(D1, &request(ty::WRITE, b"name\0guest\0one"));
    assert_eq!(
        (r.header.type_, r.header.req_id, r.payload.as_slice()),
        (ty::WRITE, 42, &b"OK\0"[..])
    );
    let r = s.handle(D1, &request(ty::READ, b"name\0"));
    assert_eq!(
        r.payload, b"guest\0one",
        "values keep their bytes, NULs included"
    );
    let r = s.handle(D1, &request(ty::READ, b"nothing\0"));
    assert_eq!(
        (r.header.type_, r.payload.as_slice()),
        (ty::ERROR, &b"ENOENT\0"[..])
    );
    let r = s.handle(D1, &request(ty::READ, b"name"));
    assert_eq!(r.payload, b"EINVAL\0", "no NUL at the end");
    let r = s.handle(D1, &request(ty::READ, b"a\0b\0"));
    assert_eq!(r.payload, b"EINVAL\0", "two arguments");
    let r = s.handle(DOM0, &request(ty::DIRECTORY, b"/local/domain/1\0"));
    assert_eq!(r.payload, b"name\0");
    let r = s.handle(DOM0, &request(ty::GET_PERMS, b"/local/domain/1\0"));
    assert_eq!(r.payload, b"n1\0");
    let r = s.handle(
        DOM0,
        &request(ty::SET_PERMS, b"/local/domain/1/name\0n1\0r7\0"),
    );
    assert_eq!(r.payload, b"OK\0");
    let r = s.handle(DOM0, &request(ty::SET_PERMS, b"/local/domain/1/name\0x1\0"));
    assert_eq!(r.payload, b"EINVAL\0");
    let r = s.handle(D1, &request(ty::GET_DOMAIN_PATH, b"5\0"));
    assert_eq!(r.payload, b"/local/domain/5\0");
    let r = s.handle(D1, &request(ty::RESUME, b"3\0"));
    assert_eq!(r.payload, b"ENOSYS\0");
    let r = s.handle(D1, &request(99, b""));
    assert_eq!(r.payload, b"EINVAL\0");
    let r = s.handle(D1, &request(ty::MKDIR, b"dir\0"));
    assert_eq!(r.payload, b"OK\0");
    let r = s.handle(D1, &request(ty::RM, b"dir\0"));
    assert_eq!(r.payload, b"OK\0");
}

#[test]
fn a_reply_too_long_for_a_message_is_e2big() {
    let mut s = Store::new();
    home(&mut s, 1);
    for i in 0..400 {
        s.mkdir(D1, &format!("many/child-number-{i:04}")).unwrap();
    }
    let r = s.handle(D1, &request(ty::DIRECTORY, b"many\0"));
    assert_eq!(
        (r.header.type_, r.payload.as_slice()),
        (ty::ERROR, &b"E2BIG\0"[..])
    );
    let h: Header = r.header;
    assert_eq!(h.len as usize, r.payload.len());
}

/// The events queued, as (domain, path, token).
fn events(s: &mut Store) -> Vec<(u16, String, String)> {
    s.take_events()
        .into_iter()
        .map(|(d, m)| {
            assert_eq!(m.header.type_, ty::WATCH_EVENT);
            let parts: Vec<&[u8]> = m.payload.split(|&b| b == 0).collect();
            assert_eq!(parts.len(), 3, "path\\0token\\0");
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            (d, text(parts[0]), text(parts[1]))
        })
        .collect()
}

fn ev(d: u16, p: &str, t: &str) -> (u16, String, String) {
    (d, p.to_string(), t.to_string())
}

#[test]
fn a_watch_fires_once_at_once_then_for_changes_at_or_under_it() {
    let mut s = Store::new();
    home(&mut s, 1);
    let r = s.handle(D1, &request(ty::WATCH, b"device\0tok\0"));
    assert_eq!(r.payload, b"OK\0", "the reply first");
    assert_eq!(
        events(&mut s),
        [ev(1, "device", "tok")],
        "relative stays relative"
    );
    s.write(D1, "device/vbd/768/state", b"1").unwrap();
    assert_eq!(events(&mut s), [ev(1, "device/vbd/768/state", "tok")]);
    s.write(D1, "devices", b"x").unwrap();
    assert_eq!(events(&mut s), [], "a sibling sharing the prefix");
    s.mkdir(D1, "device/vif").unwrap();
    assert_eq!(events(&mut s), [ev(1, "device/vif", "tok")]);
    s.mkdir(D1, "device/vif").unwrap();
    assert_eq!(
        events(&mut s),
        [],
        "mkdir of an existing node changes nothing"
    );
    // An absolute watch hears absolute paths.
    s.watch(DOM0, "/local/domain/1/device", "abs").unwrap();
    let _ = events(&mut s);
    s.set_perms(D1, "device/vif", &perms(&["n1", "r0"]))
        .unwrap();
    assert_eq!(
        events(&mut s),
        [
            ev(1, "device/vif", "tok"),
            ev(0, "/local/domain/1/device/vif", "abs")
        ]
    );
    assert_eq!(s.watch(D1, "device", "tok"), Err("EEXIST"));
    assert_eq!(s.unwatch(D1, "device", "tok"), Ok(()));
    assert_eq!(s.unwatch(D1, "device", "tok"), Err("ENOENT"));
    s.write(D1, "device/vif/0", b"x").unwrap();
    assert_eq!(
        events(&mut s),
        [ev(0, "/local/domain/1/device/vif/0", "abs")]
    );
}

#[test]
fn a_removal_fires_the_watches_on_and_under_the_removed_node() {
    let mut s = Store::new();
    home(&mut s, 1);
    s.write(D1, "a/b/c", b"1").unwrap();
    s.watch(D1, "a", "top").unwrap();
    s.watch(D1, "a/b/c", "leaf").unwrap();
    s.watch(D1, "a/x", "other").unwrap();
    let _ = events(&mut s);
    s.rm(D1, "a/b").unwrap();
    let mut got = events(&mut s);
    got.sort();
    assert_eq!(got, [ev(1, "a/b", "top"), ev(1, "a/b/c", "leaf")]);
}

#[test]
fn an_event_reaches_only_a_watcher_that_may_read_the_node() {
    let mut s = Store::new();
    home(&mut s, 1);
    home(&mut s, 2);
    // Domain 2 watches domain 1's home: it may not read it.
    s.watch(D2, "/local/domain/1", "snoop").unwrap();
    let _ = events(&mut s);
    s.write(D1, "secret", b"x").unwrap();
    assert_eq!(events(&mut s), []);
    s.write(D1, "shared", b"y").unwrap();
    s.set_perms(D1, "shared", &perms(&["n1", "r2"])).unwrap();
    assert_eq!(events(&mut s), [ev(2, "/local/domain/1/shared", "snoop")]);
    s.rm(D1, "shared").unwrap();
    assert_eq!(events(&mut s), [ev(2, "/local/domain/1/shared", "snoop")]);
}

#[test]
fn watches_are_limited_per_domain_and_go_with_it() {
    let mut s = Store::new();
    home(&mut s, 1);
    for i in 0..WATCH_QUOTA {
        s.watch(D1, &format!("w{i}"), "t").unwrap();
    }
    assert_eq!(s.watch(D1, "one-more", "t"), Err("E2BIG"));
    assert_eq!(
        s.watch(DOM0, "/local/domain/1/w0", "t"),
        Ok(()),
        "dom0 is not limited"
    );
    s.forget(1);
    let _ = events(&mut s);
    s.write(D1, "w0", b"x").unwrap();
    assert_eq!(events(&mut s), [ev(0, "/local/domain/1/w0", "t")]);
    assert_eq!(s.watch(D1, "w0", "t"), Ok(()), "its quota is free again");
    assert_eq!(s.watch(D1, "@introduceDomain", "i"), Ok(()));
    let r = s.handle(D1, &request(ty::WATCH, b"only-one-arg\0"));
    assert_eq!(r.payload, b"EINVAL\0");
}

fn in_tx(kind: u32, tx: u32, payload: &[u8]) -> Message {
    Message::new(kind, 9, tx, payload).unwrap()
}

/// Starts a transaction through the wire: its id.
fn start(s: &mut Store, c: Conn) -> u32 {
    let r = s.handle(c, &request(ty::TRANSACTION_START, b"\0"));
    assert_eq!(r.header.type_, ty::TRANSACTION_START, "{:?}", r.payload);
    let text = String::from_utf8(r.payload[..r.payload.len() - 1].to_vec()).unwrap();
    text.parse().unwrap()
}

#[test]
fn a_transaction_sees_its_own_changes_and_lands_them_at_commit() {
    let mut s = Store::new();
    home(&mut s, 1);
    s.watch(D1, "dev", "w").unwrap();
    let _ = events(&mut s);
    let t = start(&mut s, D1);
    assert_ne!(t, 0);
    let r = s.handle(D1, &in_tx(ty::WRITE, t, b"dev/state\x004"));
    assert_eq!(r.payload, b"OK\0");
    assert_eq!(
        s.handle(D1, &in_tx(ty::READ, t, b"dev/state\0")).payload,
        b"4"
    );
    assert_eq!(s.read(D1, "dev/state"), Err("ENOENT"), "not outside it yet");
    assert_eq!(events(&mut s), [], "no event before the commit");
    let r = s.handle(D1, &in_tx(ty::TRANSACTION_END, t, b"T\0"));
    assert_eq!(r.payload, b"OK\0");
    assert_eq!(s.read(D1, "dev/state").unwrap(), b"4");
    let mut got = events(&mut s);
    got.sort();
    assert_eq!(got, [ev(1, "dev", "w"), ev(1, "dev/state", "w")]);
    // Ended: gone.
    let r = s.handle(D1, &in_tx(ty::READ, t, b"dev/state\0"));
    assert_eq!(r.payload, b"ENOENT\0");
    let r = s.handle(D1, &in_tx(ty::TRANSACTION_END, t, b"T\0"));
    assert_eq!(r.payload, b"ENOENT\0");
}

#[test]
fn a_conflicting_commit_is_eagain_and_an_abort_changes_nothing() {
    let mut s = Store::new();
    home(&mut s, 1);
    s.write(D1, "a", b"1").unwrap();
    // Read in the transaction, changed outside: EAGAIN.
    let t = start(&mut s, D1);
    assert_eq!(s.handle(D1, &in_tx(ty::READ, t, b"a\0")).payload, b"1");
    s.write(D1, "a", b"2").unwrap();
    s.handle(D1, &in_tx(ty::WRITE, t, b"b\0x"));
    let r = s.handle(D1, &in_tx(ty::TRANSACTION_END, t, b"T\0"));
    assert_eq!(r.payload, b"EAGAIN\0");
    assert_eq!(s.read(D1, "b"), Err("ENOENT"), "nothing of it landed");
    // A directory listed in the transaction gains a child outside.
    let t = start(&mut s, D1);
    s.handle(D1, &in_tx(ty::DIRECTORY, t, b"dir\0"));
    s.write(D1, "dir/new", b"").unwrap();
    let r = s.handle(D1, &in_tx(ty::TRANSACTION_END, t, b"T\0"));
    assert_eq!(r.payload, b"EAGAIN\0");
    // A sibling created outside while the transaction creates a node: the
    // parent's children changed, as Xen's generation count says.
    let t = start(&mut s, D1);
    s.handle(D1, &in_tx(ty::WRITE, t, b"new1\0n"));
    s.write(D1, "new2", b"n").unwrap();
    let r = s.handle(D1, &in_tx(ty::TRANSACTION_END, t, b"T\0"));
    assert_eq!(r.payload, b"EAGAIN\0");
    // Unrelated changes outside are no conflict, and survive the commit.
    s.write(D1, "mine", b"0").unwrap();
    let t = start(&mut s, D1);
    s.handle(D1, &in_tx(ty::WRITE, t, b"mine\0m"));
    s.write(D1, "theirs", b"t").unwrap();
    let r = s.handle(D1, &in_tx(ty::TRANSACTION_END, t, b"T\0"));
    assert_eq!(r.payload, b"OK\0");
    assert_eq!(
        (s.read(D1, "mine").unwrap(), s.read(D1, "theirs").unwrap()),
        (b"m".to_vec(), b"t".to_vec())
    );
    // An abort.
    let t = start(&mut s, D1);
    s.handle(D1, &in_tx(ty::RM, t, b"mine\0"));
    let r = s.handle(D1, &in_tx(ty::TRANSACTION_END, t, b"F\0"));
    assert_eq!(r.payload, b"OK\0");
    assert_eq!(s.read(D1, "mine").unwrap(), b"m");
    // A removal in a transaction lands.
    let t = start(&mut s, D1);
    s.handle(D1, &in_tx(ty::RM, t, b"mine\0"));
    s.handle(D1, &in_tx(ty::TRANSACTION_END, t, b"T\0"));
    assert_eq!(s.read(D1, "mine"), Err("ENOENT"));
}

#[test]
fn transactions_are_the_callers_and_limited() {
    let mut s = Store::new();
    home(&mut s, 1);
    home(&mut s, 2);
    let t = start(&mut s, D1);
    let r = s.handle(D2, &in_tx(ty::READ, t, b"/local/domain/1\0"));
    assert_eq!(r.payload, b"ENOENT\0", "another domain's transaction");
    let r = s.handle(D2, &in_tx(ty::TRANSACTION_END, t, b"T\0"));
    assert_eq!(r.payload, b"ENOENT\0");
    let r = s.handle(D1, &in_tx(ty::TRANSACTION_START, t, b"\0"));
    assert_eq!(r.payload, b"EBUSY\0", "no nesting");
    let r = s.handle(D1, &in_tx(ty::TRANSACTION_END, t, b"X\0"));
    assert_eq!(r.payload, b"EINVAL\0");
    for _ in 1..TRANSACTION_QUOTA {
        start(&mut s, D1);
    }
    let r = s.handle(D1, &request(ty::TRANSACTION_START, b"\0"));
    assert_eq!(r.payload, b"ENOSPC\0");
    // Permissions hold inside a transaction too.
    let t2 = start(&mut s, D2);
    let r = s.handle(D2, &in_tx(ty::WRITE, t2, b"/local/domain/1/x\0v"));
    assert_eq!(r.payload, b"EACCES\0");
}

#[test]
fn the_toolstack_introduces_and_releases_domains() {
    let mut s = Store::new();
    s.watch(DOM0, "@releaseDomain", "rel").unwrap();
    s.watch(D2, "@introduceDomain", "intro").unwrap();
    let _ = events(&mut s);
    let r = s.handle(D1, &request(ty::INTRODUCE, b"3\x00123\x005\0"));
    assert_eq!(r.payload, b"EACCES\0", "not the toolstack");
    let r = s.handle(DOM0, &request(ty::INTRODUCE, b"3\x00123\x005\0"));
    assert_eq!(r.payload, b"OK\0");
    assert_eq!(events(&mut s), [ev(2, "@introduceDomain", "intro")]);
    let r = s.handle(DOM0, &request(ty::INTRODUCE, b"3\x00x\x005\0"));
    assert_eq!(r.payload, b"EINVAL\0");
    let r = s.handle(DOM0, &request(ty::IS_DOMAIN_INTRODUCED, b"3\0"));
    assert_eq!(r.payload, b"T\0");
    // Domain 3 owns its home and watches; dom0 writes a node there too.
    home(&mut s, 3);
    let d3 = Conn {
        domid: 3,
        privileged: false,
    };
    s.write(d3, "data/x", b"1").unwrap();
    s.watch(d3, "data", "mine").unwrap();
    let t = s.transaction_start(d3).unwrap();
    let _ = events(&mut s);
    let r = s.handle(DOM0, &request(ty::RELEASE, b"3\0"));
    assert_eq!(r.payload, b"OK\0");
    assert_eq!(events(&mut s), [ev(0, "@releaseDomain", "rel")]);
    assert_eq!(
        s.read(DOM0, "/local/domain/3"),
        Err("ENOENT"),
        "its nodes went"
    );
    assert_eq!(s.read(DOM0, "/local/domain").unwrap(), b"", "dom0's stay");
    assert_eq!(
        s.transaction_end(d3, t, true),
        Err("ENOENT"),
        "its transaction went"
    );
    assert_eq!(
        s.unwatch(d3, "data", "mine"),
        Err("ENOENT"),
        "its watch went"
    );
    let r = s.handle(DOM0, &request(ty::RELEASE, b"3\0"));
    assert_eq!(r.payload, b"ENOENT\0");
    let r = s.handle(DOM0, &request(ty::IS_DOMAIN_INTRODUCED, b"3\0"));
    assert_eq!(r.payload, b"F\0");
}

#[test]
fn quotas_hold_at_the_limit_and_refuse_one_past_it() {
    let mut s = Store::new();
    home(&mut s, 1);
    // Its home counts: 999 more nodes are its 1000th.
    for i in 0..NODE_QUOTA - 1 {
        s.write(D1, &format!("n{i}"), b"").unwrap();
    }
    assert_eq!(s.write(D1, "one-more", b""), Err("ENOSPC"));
    assert_eq!(s.mkdir(D1, "a/b"), Err("ENOSPC"), "two at once");
    assert_eq!(s.write(D1, "n0", b"rewrite"), Ok(()), "no new node");
    s.rm(D1, "n0").unwrap();
    assert_eq!(s.write(D1, "one-more", b""), Ok(()), "room again");
    assert_eq!(
        s.write(DOM0, "/local/domain/1/dom0s", b""),
        Ok(()),
        "dom0 has no quota"
    );
    let big = [b'v'; NODE_SIZE_QUOTA];
    assert_eq!(s.write(D1, "n1", &big), Ok(()));
    assert_eq!(
        s.write(D1, "n1", &[b'v'; NODE_SIZE_QUOTA + 1]),
        Err("ENOSPC")
    );
    let five = perms(&["n1", "r2", "r3", "r4", "r5"]);
    assert_eq!(s.set_perms(D1, "n2", &five), Ok(()));
    let six = perms(&["n1", "r2", "r3", "r4", "r5", "r6"]);
    assert_eq!(s.set_perms(D1, "n2", &six), Err("ENOSPC"));
}
