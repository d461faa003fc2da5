//! Host tests: who may read and write what the toolstack lays out.

use super::*;

fn conn(domid: u16) -> Conn {
    Conn {
        domid,
        privileged: false,
    }
}

#[test]
fn a_domu_reads_its_home_and_writes_only_its_own_parts() {
    let mut s = Store::new();
    skeleton(&mut s, 3, "guest", 8192, 2).unwrap();
    let d = conn(3);
    assert_eq!(s.read(d, "name").unwrap(), b"guest");
    assert_eq!(s.read(d, "memory/target").unwrap(), b"8192");
    assert_eq!(s.read(d, "cpu/1/availability").unwrap(), b"online");
    assert_eq!(s.read(d, "domid").unwrap(), b"3");
    assert_eq!(s.write(d, "name", b"x"), Err("EACCES"));
    assert_eq!(s.write(d, "memory/target", b"1"), Err("EACCES"));
    assert_eq!(s.write(d, "control/shutdown", b"poweroff"), Ok(()));
    assert_eq!(s.write(d, "data/x", b"1"), Ok(()));
    assert_eq!(s.write(d, "new", b"1"), Err("EACCES"), "its home is dom0's");
    assert_eq!(s.read(conn(4), "/local/domain/3/name"), Err("EACCES"));
}

#[test]
fn a_vbd_is_shared_between_its_front_and_back_ends_only() {
    let mut s = Store::new();
    skeleton(&mut s, 3, "guest", 8192, 1).unwrap();
    // A driver domain (5, unprivileged) serves it.
    add_vbd(&mut s, 3, 5, 51712, "disk.img", true).unwrap();
    let (front, back) = vbd_paths(3, 5, 51712);
    let (fe, be, other) = (conn(3), conn(5), conn(7));
    assert_eq!(
        s.read(fe, &format!("{front}/backend")).unwrap(),
        back.as_bytes()
    );
    assert_eq!(
        s.read(be, &format!("{back}/frontend")).unwrap(),
        front.as_bytes()
    );
    assert_eq!(s.read(be, &format!("{back}/mode")).unwrap(), b"w");
    // The front end publishes its ring; the back end reads it.
    s.write(fe, &format!("{front}/ring-ref"), b"8").unwrap();
    s.write(fe, &format!("{front}/state"), b"3").unwrap();
    assert_eq!(s.read(be, &format!("{front}/ring-ref")).unwrap(), b"8");
    assert_eq!(s.write(be, &format!("{front}/state"), b"6"), Err("EACCES"));
    // The back end publishes its state; the front end reads it.
    s.write(be, &format!("{back}/state"), b"4").unwrap();
    assert_eq!(s.read(fe, &format!("{back}/state")).unwrap(), b"4");
    assert_eq!(s.write(fe, &format!("{back}/state"), b"6"), Err("EACCES"));
    // Nobody else.
    assert_eq!(s.read(other, &format!("{front}/ring-ref")), Err("EACCES"));
    assert_eq!(s.read(other, &format!("{back}/state")), Err("EACCES"));
}

#[test]
fn a_vif_names_its_mac_on_both_sides() {
    let mut s = Store::new();
    skeleton(&mut s, 2, "guest", 8192, 1).unwrap();
    add_vif(&mut s, 2, 0, 0, [0x00, 0x16, 0x3e, 0, 0, 0x0a]).unwrap();
    let (front, back) = device_paths("vif", 2, 0, 0);
    assert_eq!(front, "/local/domain/2/device/vif/0");
    assert_eq!(back, "/local/domain/0/backend/vif/2/0");
    let fe = conn(2);
    assert_eq!(
        s.read(fe, &format!("{front}/mac")).unwrap(),
        b"00:16:3e:00:00:0a"
    );
    assert_eq!(s.read(fe, &format!("{front}/handle")).unwrap(), b"0");
    assert_eq!(s.read(fe, &format!("{front}/state")).unwrap(), b"1");
    assert_eq!(s.read(fe, &format!("{back}/online")).unwrap(), b"1");
    assert_eq!(s.write(fe, &format!("{back}/state"), b"4"), Err("EACCES"));
    s.write(fe, &format!("{front}/tx-ring-ref"), b"9").unwrap();
    assert_eq!(
        s.read(conn(3), &format!("{front}/tx-ring-ref")),
        Err("EACCES")
    );
}

#[test]
fn an_extra_console_is_laid_out_as_a_device() {
    let mut s = Store::new();
    skeleton(&mut s, 3, "guest", 8192, 1).unwrap();
    add_console(&mut s, 3, 0, 1, "guest").unwrap();
    let (front, back) = device_paths("console", 3, 0, 1);
    assert_eq!(front, "/local/domain/3/device/console/1");
    assert_eq!(back, "/local/domain/0/backend/console/3/1");
    let fe = conn(3);
    assert_eq!(
        s.read(fe, &format!("{front}/backend")).unwrap(),
        back.as_bytes()
    );
    assert_eq!(s.read(fe, &format!("{front}/state")).unwrap(), b"1");
    assert_eq!(s.read(fe, &format!("{back}/protocol")).unwrap(), b"vt100");
    // The front end publishes its ring and channel; the back end reads them.
    s.write(fe, &format!("{front}/ring-ref"), b"8").unwrap();
    s.write(fe, &format!("{front}/port"), b"5").unwrap();
    assert_eq!(s.read(conn(0), &format!("{front}/port")).unwrap(), b"5");
    assert_eq!(s.write(fe, &format!("{back}/state"), b"4"), Err("EACCES"));
    assert_eq!(s.read(conn(4), &format!("{front}/port")), Err("EACCES"));
}
