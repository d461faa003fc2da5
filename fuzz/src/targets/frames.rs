//! `frames`: the frame allocator's bitmap against a model (a `bool` per
//! frame): allocations, contiguous allocations, frees and range marks.

use crate::input::Input;
use hv::frames::{FrameBitmap, FrameError};

const WORDS: usize = 4;
const SPAN: u64 = WORDS as u64 * 64 + 40;

pub fn frames(data: &[u8]) {
    let mut input = Input::new(data);
    let mut b = FrameBitmap::<WORDS>::new();
    let nframes = u64::from(input.u16()) % (SPAN + 1);
    b.reset(nframes);
    let n = nframes.min(WORDS as u64 * 64);
    assert_eq!(b.nframes(), n);
    let mut model = vec![false; usize::try_from(SPAN).unwrap()];
    let at = |p: u64| usize::try_from(p).unwrap();
    let span = |input: &mut Input<'_>| {
        let a = u64::from(input.u16()) % SPAN;
        (a, a + u64::from(input.below(80)))
    };
    let mut ops = 0;
    while !input.is_empty() && ops < 200 {
        ops += 1;
        match input.below(6) {
            0 => {
                let (a, z) = span(&mut input);
                b.mark_free(a, z);
                (a..z.min(n)).for_each(|p| model[at(p)] = true);
            }
            1 => {
                let (a, z) = span(&mut input);
                b.mark_used(a, z);
                (a..z.min(n)).for_each(|p| model[at(p)] = false);
            }
            2 => match b.alloc() {
                Some(p) => {
                    assert!(p < n && model[at(p)], "alloc gave {p}, not free");
                    model[at(p)] = false;
                }
                None => assert!(!model.contains(&true), "alloc failed with frames free"),
            },
            3 => {
                let count = u64::from(input.below(70));
                let align = input.pick(&[1, 2, 4, 8, 64, 3, 0]);
                let fits = |s: u64| s + count <= n && (s..s + count).all(|p| model[at(p)]);
                match b.alloc_contiguous(count, align) {
                    Some(s) => {
                        assert!(count > 0 && align.is_power_of_two() && s % align == 0);
                        assert!(fits(s), "alloc_contiguous({count}, {align}) gave {s}");
                        (s..s + count).for_each(|p| model[at(p)] = false);
                    }
                    None if count > 0 && align.is_power_of_two() => {
                        let any = (0..n).step_by(usize::try_from(align).unwrap()).any(fits);
                        assert!(!any, "alloc_contiguous({count}, {align}) missed a run");
                    }
                    None => {}
                }
            }
            _ => {
                let p = u64::from(input.u16()) % SPAN;
                match b.free(p) {
                    Ok(()) => {
                        assert!(p < n && !model[at(p)]);
                        model[at(p)] = true;
                    }
                    Err(FrameError::DoubleFree) => assert!(model[at(p)]),
                    Err(FrameError::OutOfRange) => assert!(p >= n),
                }
            }
        }
        let free = model.iter().filter(|&&f| f).count();
        assert_eq!(b.free_frames(), u64::try_from(free).unwrap());
        for p in 0..SPAN {
            assert_eq!(b.is_free(p), model[at(p)], "frame {p}");
        }
    }
}
