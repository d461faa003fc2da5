//! Writes every target's seeds (`hv_fuzz::seeds`) as files `seed-N` into
//! `<dir>/<target>/`, the corpus directories `cargo xtask fuzz` hands
//! libFuzzer. An ordinary host binary: it is built without the coverage
//! flags, in the workspace's normal target directory.

use std::path::PathBuf;

fn main() {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: seeds DIR");
        std::process::exit(2);
    };
    for &(name, _) in hv_fuzz::TARGETS {
        let sub = dir.join(name);
        let written = std::fs::create_dir_all(&sub).and_then(|()| {
            hv_fuzz::seeds::for_target(name)
                .iter()
                .enumerate()
                .try_for_each(|(i, seed)| std::fs::write(sub.join(format!("seed-{i}")), seed))
        });
        if let Err(e) = written {
            eprintln!("seeds: cannot write {}: {e}", sub.display());
            std::process::exit(1);
        }
    }
}
