use core::cell::RefCell;

use guest_abi::memory::XenMemoryExchange;
use guest_abi::xen::{MmuUpdate, MulticallEntry};

use super::*;

/// A guest address space: `bytes` mapped at `base`, nothing else.
struct Fake {
    base: u64,
    bytes: RefCell<Vec<u8>>,
}

impl Fake {
    fn new(base: u64, len: usize) -> Self {
        Self {
            base,
            bytes: RefCell::new((0..len).map(|i| u8::try_from(i % 256).unwrap()).collect()),
        }
    }

    fn index(&self, va: u64, len: usize) -> Option<core::ops::Range<usize>> {
        if len == 0 {
            return Some(0..0);
        }
        let start = usize::try_from(va.checked_sub(self.base)?).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.bytes.borrow().len()).then_some(start..end)
    }
}

impl GuestMemory for Fake {
    fn read_bytes(&self, va: u64, out: &mut [u8]) -> Result<(), Fault> {
        // As the kernel's copies: the range is checked here.
        if !range_ok(va, out.len() as u64) {
            return Err(Fault);
        }
        let r = self.index(va, out.len()).ok_or(Fault)?;
        out.copy_from_slice(&self.bytes.borrow()[r]);
        Ok(())
    }

    fn write_bytes(&self, va: u64, data: &[u8]) -> Result<(), Fault> {
        assert!(
            range_ok(va, data.len() as u64),
            "a copy outside guest space"
        );
        let r = self.index(va, data.len()).ok_or(Fault)?;
        self.bytes.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }
}

const HV_START: u64 = guest_abi::arch::HYPERVISOR_VIRT_START;

#[test]
fn a_pointer_must_lie_in_guest_space() {
    assert!(GuestPtr::<u64>::new(0).is_ok());
    assert!(GuestPtr::<u64>::new(LOWER_END - 8).is_ok());
    // Across the top of the lower half, into the hole, into hv's slots.
    assert!(GuestPtr::<u64>::new(LOWER_END - 7).is_err());
    assert!(GuestPtr::<u64>::new(LOWER_END).is_err());
    assert!(GuestPtr::<u64>::new(HV_START).is_err());
    assert!(GuestPtr::<u64>::new(HV_END - 1).is_err());
    assert!(GuestPtr::<u64>::new(HV_END).is_ok());
    // Wrapping past the top of the address space.
    assert!(GuestPtr::<u64>::new(u64::MAX - 7).is_ok());
    assert!(GuestPtr::<u64>::new(u64::MAX - 6).is_err());
}

#[test]
fn no_alignment_is_required_as_on_xen() {
    for va in 1..8 {
        assert!(GuestPtr::<MmuUpdate>::new(0x1000 + va).is_ok());
        assert!(GuestSlice::<MmuUpdate>::new(0x1000 + va, 4).is_ok());
    }
}

#[test]
fn an_array_is_checked_at_its_ends_and_for_overflow() {
    assert!(GuestSlice::<MmuUpdate>::new(0x1000, 0).is_ok());
    // An empty array is not checked at all (nothing will be copied).
    assert!(GuestSlice::<MmuUpdate>::new(HV_START, 0).is_ok());
    assert!(GuestSlice::<MmuUpdate>::new(HV_START, 1).is_err());
    assert!(GuestSlice::<MmuUpdate>::new(LOWER_END - 32, 2).is_ok());
    assert!(GuestSlice::<MmuUpdate>::new(LOWER_END - 32, 3).is_err());
    // count * 16 overflows.
    assert!(GuestSlice::<MmuUpdate>::new(0, u64::MAX / 8).is_err());
    assert!(GuestSlice::<MmuUpdate>::new(u64::MAX - 15, 1).is_ok());
    assert!(GuestSlice::<MmuUpdate>::new(u64::MAX - 15, 2).is_err());
}

#[test]
fn per_element_arrays_fail_at_the_element() {
    let s = GuestSlice::<u64>::per_element(u64::MAX - 15, 4);
    assert!(s.at(0).is_ok());
    assert!(s.at(1).is_ok());
    assert_eq!(s.at(2).unwrap_err(), Fault);
    assert_eq!(s.element_addr(3), Err(Fault));
    assert_eq!(s.at(4).unwrap_err(), Fault);
    assert_eq!(s.element_addr(5), Err(Fault));
    let s = GuestSlice::<u64>::per_element(LOWER_END - 16, 4);
    assert!(s.at(1).is_ok());
    assert!(s.at(2).is_err());
    assert_eq!(s.element_addr(2), Ok(LOWER_END));
}

#[test]
fn whole_values_are_copied_in_and_out() {
    let m = Fake::new(0x10_000, 256);
    let p = GuestPtr::<MmuUpdate>::new(0x10_008).unwrap();
    let v = p.read(&m).unwrap();
    assert_eq!(v.ptr, u64::from_le_bytes([8, 9, 10, 11, 12, 13, 14, 15]));
    p.write(&m, &MmuUpdate { ptr: 1, val: 2 }).unwrap();
    assert_eq!(p.read(&m).unwrap(), MmuUpdate { ptr: 1, val: 2 });
    // Unmapped: the copy faults.
    let q = GuestPtr::<MmuUpdate>::new(0x10_0f8).unwrap();
    assert_eq!(q.read(&m), Err(Fault));
}

#[test]
fn one_field_is_written_alone() {
    let m = Fake::new(0x20_000, 256);
    let p = GuestPtr::<XenMemoryExchange>::new(0x20_000).unwrap();
    let before = p.read(&m).unwrap();
    let f = guest_field!(p, XenMemoryExchange, nr_exchanged);
    assert_eq!(f.addr(), 0x20_000 + 64);
    f.write(&m, &7).unwrap();
    let after = p.read(&m).unwrap();
    assert_eq!(after.nr_exchanged, 7);
    assert_eq!(after.in_, before.in_);
    assert_eq!(after.out, before.out);
}

#[test]
fn part_of_an_array_field_is_written() {
    let m = Fake::new(0x30_000, 64);
    let e = GuestPtr::<MulticallEntry>::new(0x30_000).unwrap();
    let before = e.read(&m).unwrap();
    let args = guest_field!(e, MulticallEntry, args).as_slice();
    assert_eq!(args.len(), 6);
    args.write_from(&m, 0, &[1, 2, 3, 4, 5]).unwrap();
    let after = e.read(&m).unwrap();
    assert_eq!(after.args[..5], [1, 2, 3, 4, 5]);
    assert_eq!(after.args[5], before.args[5]);
    assert_eq!((after.op, after.result), (before.op, before.result));
    assert!(args.write_from(&m, 2, &[0; 5]).is_err());
}

#[test]
fn slices_copy_runs_and_stay_in_bounds() {
    let m = Fake::new(0x40_000, 128);
    let s = GuestSlice::<u64>::new(0x40_000, 16).unwrap();
    s.write_from(&m, 2, &[10, 11, 12]).unwrap();
    let mut out = [0u64; 4];
    s.read_into(&m, 1, &mut out).unwrap();
    assert_eq!(out[1..], [10, 11, 12]);
    assert_eq!(s.get(&m, 3), Ok(11));
    s.set(&m, 15, &99).unwrap();
    assert_eq!(s.get(&m, 15), Ok(99));
    assert_eq!(s.get(&m, 16), Err(Fault));
    assert_eq!(s.read_into(&m, 14, &mut out), Err(Fault));
    let rest = s.skip(10).unwrap();
    assert_eq!((rest.addr(), rest.len()), (0x40_000 + 80, 6));
    assert_eq!(rest.get(&m, 5), Ok(99));
}

#[test]
fn fault_is_efault() {
    assert_eq!(i64::from(Fault), -guest_abi::errno::EFAULT);
}

struct Held(u64);
impl HeldFrame for Held {
    fn mfn(&self) -> u64 {
        self.0
    }
}

#[test]
fn a_frame_value_stays_inside_its_frame() {
    let f = Held(3);
    assert_eq!(frame_value_addr::<u64>(f.mfn(), 0), Some(3 * 4096));
    assert_eq!(
        frame_value_addr::<u64>(f.mfn(), 4088),
        Some(3 * 4096 + 4088)
    );
    assert_eq!(frame_value_addr::<u64>(f.mfn(), 4089), None);
    assert_eq!(frame_value_addr::<MulticallEntry>(f.mfn(), 4033), None);
    assert_eq!(frame_value_addr::<u64>(f.mfn(), u64::MAX), None);
    assert_eq!(frame_value_addr::<u64>(u64::MAX, 0), None);
}

#[test]
fn elements_past_the_top_fault_without_a_copy() {
    let m = Fake::new(u64::MAX - 31, 32);
    let s = GuestSlice::<MmuUpdate>::per_element(u64::MAX - 31, 5);
    assert!(s.get(&m, 0).is_ok());
    assert!(s.get(&m, 1).is_ok());
    for i in 2..6 {
        assert_eq!(s.get(&m, i), Err(Fault));
    }
    let mut two = [MmuUpdate::default(); 2];
    assert!(s.read_into(&m, 0, &mut two).is_ok());
    assert_eq!(s.read_into(&m, 1, &mut two), Err(Fault));
    assert_eq!(s.read_into(&m, 5, &mut []), Ok(()));
    // set_gdt with no frames reads an empty list.
    let none = GuestSlice::<u64>::per_element(0x1234, 0);
    assert_eq!(none.read_into(&m, 0, &mut []), Ok(()));
    // An element that starts below the top but ends past it: the copy's
    // range check refuses it.
    let odd = GuestSlice::<MmuUpdate>::per_element(u64::MAX - 23, 2);
    assert!(odd.at(1).is_err());
    assert_eq!(odd.element_addr(1), Ok(u64::MAX - 7));
}
