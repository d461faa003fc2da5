//! Host fuzz targets for hv's parsers and validators, one function per
//! target in [`targets`]. Each takes arbitrary bytes and asserts what must
//! hold for every input: no panic (a panic is a finding, as is an overflow:
//! `cargo xtask fuzz` builds with overflow checks on) and the invariants the
//! code under test documents, checked independently of it where that is
//! possible (a model of the frame allocator, a recount of every page-table
//! reference, round trips through the bundle writer).
//!
//! `cargo xtask fuzz` runs each target under libFuzzer (the binaries in
//! `fuzz_targets/`, built with SanitizerCoverage through stable rustc flags)
//! for a bounded time, its corpus under `target/fuzz/corpus/<target>/`
//! started from [`seeds`]. `cargo test -p hv-fuzz` runs every target on its
//! seeds and on pseudo-random mutations of them, so the targets themselves
//! stay checked in the ordinary host tests.

pub mod input;
pub mod seeds;
pub mod targets;

/// A target: its name (the binary's) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: &[Target] = &[
    ("elf", targets::elf),
    ("layout", targets::layout),
    ("bundle", targets::bundle),
    ("bzimage", targets::bzimage),
    ("pt", targets::pt),
    ("x86_decode", targets::x86_decode),
    ("segdesc", targets::segdesc),
    ("pv_cpuid", targets::pv_cpuid),
    ("frames", targets::frames),
    ("evtchn", targets::evtchn),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*, for mutations that do not need libFuzzer.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
        }
    }

    fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for _ in 0..1 + rng.below(8) {
            match rng.below(4) {
                0 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
                1 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] = rng.next().to_le_bytes()[0];
                }
                2 => v.truncate(rng.below(v.len() + 1)),
                _ => v.extend(rng.next().to_le_bytes().iter().take(rng.below(9))),
            }
        }
        v
    }

    #[test]
    fn every_target_holds_on_its_seeds_and_their_mutations() {
        for &(name, target) in TARGETS {
            let seeds = seeds::for_target(name);
            assert!(!seeds.is_empty(), "{name} has no seeds");
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            for seed in &seeds {
                target(seed);
                for _ in 0..200 {
                    target(&mutate(&mut rng, seed));
                }
            }
            for len in [0, 1, 7, 64, 300] {
                let bytes: Vec<u8> = (0..len).map(|_| rng.next().to_le_bytes()[0]).collect();
                target(&bytes);
            }
        }
    }

    #[test]
    fn the_seed_images_parse() {
        // The seeds are useful only if they reach past the parsers' first
        // checks.
        let elf = &seeds::for_target("elf")[0];
        assert!(hv::elf::parse(&elf[16..], hv::elf::Policy::XEN_DOM0).is_ok());
        let bundle = &seeds::for_target("bundle")[0];
        assert!(hv::bundle::parse(&bundle[1..]).is_ok());
        for image in &seeds::for_target("bzimage")[..4] {
            assert!(matches!(
                hv::bzimage::classify(&image[1..]),
                Ok(hv::bzimage::KernelImage::Packed(_))
            ));
        }
    }
}
