//! The generated corpus: W workspaces with text files in `inbox/`, words drawn from a fixed
//! vocabulary with a skewed (Zipf-like) distribution, from a fixed seed, so every run and
//! machine gets the same bytes. A few known words are planted at known rates for the queries.
//!
//! Written by several threads per core: making a file waits on the filesystem (its inode and
//! directory entry) more than on the CPU, so more writers than cores keep both busy. Nothing
//! is synced: the bench reads the files back through the page cache and needs no durability.
//!
//! A corpus made in a kept folder (`BATON_BENCH_DIR`) is used again by the next run of the same
//! size (`reuse`): the same seed makes the same bytes, so generating it again (80 s of a 1 M
//! run) would measure nothing new. What a run adds to it (the probes' and agents' files, the
//! daemon's files under `.baton/`) is removed first, so every run indexes the same corpus.

use anyhow::{anyhow, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const SEED: u64 = 0x5EA2C4;
const VOCABULARY: usize = 40_000;
/// Writer threads per core.
const WRITERS_PER_CORE: usize = 4;
/// Words planted in about 1 document in N (name, N).
pub const PLANTED: [(&str, u64); 4] = [
    ("validation", 20),
    ("authentication", 100),
    ("deadlock", 1_000),
    ("xylophone", 20_000),
];
const WORKSPACE_TOML: &str = "# baton workspace policy (optional)\n";

pub struct Corpus {
    pub root: PathBuf,
    pub workspaces: Vec<PathBuf>,
    pub files: u64,
    pub bytes: u64,
    /// The vocabulary the text was drawn from (the agents of the write probe draw from it too).
    pub vocabulary: Vec<String>,
}

/// Writes `docs` files of about `doc_bytes` each over `w` workspaces under `root`.
pub fn build(root: &Path, w: usize, docs: usize, doc_bytes: usize) -> Result<Corpus> {
    let vocabulary = vocabulary();
    let dirs: Vec<PathBuf> = (0..w).map(|i| root.join(format!("ws-{i:04}"))).collect();
    let per = docs.div_ceil(w);
    let cores = std::thread::available_parallelism().map_or(2, |t| t.get());
    let threads = (cores * WRITERS_PER_CORE).min(w);
    // Workspaces are handed out one at a time, so a slow writer holds back no other.
    let next = AtomicUsize::new(0);
    let totals = std::thread::scope(|scope| -> Result<Vec<(u64, u64)>> {
        let jobs: Vec<_> = (0..threads)
            .map(|_| {
                let (vocabulary, dirs, next) = (&vocabulary, &dirs, &next);
                scope.spawn(move || -> Result<(u64, u64)> {
                    let mut sum = (0, 0);
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(dir) = dirs.get(index) else {
                            return Ok(sum);
                        };
                        let count = per.min(docs.saturating_sub(index * per));
                        let bytes = workspace(dir, index as u64, count, doc_bytes, vocabulary)?;
                        sum = (sum.0 + count as u64, sum.1 + bytes);
                    }
                })
            })
            .collect();
        jobs.into_iter()
            .map(|j| j.join().map_err(|_| anyhow!("corpus writer panicked"))?)
            .collect()
    })?;
    Ok(Corpus {
        root: root.to_path_buf(),
        workspaces: dirs,
        files: totals.iter().map(|t| t.0).sum(),
        bytes: totals.iter().map(|t| t.1).sum(),
        vocabulary,
    })
}

/// The marker written once a corpus is whole: "files bytes".
const DONE: &str = "corpus.done";

/// The corpus of this size in `root` if a run made it whole before (its marker is there),
/// cleaned of what later runs added and read once into the page cache (as a corpus just
/// written is), so the first phase does not pay for cold reads the others do not. `None`: it
/// is to be made (what is there is removed).
pub fn reuse(root: &Path, w: usize) -> Result<Option<Corpus>> {
    let Some(marker) = root.parent().map(|p| p.join(DONE)) else {
        return Ok(None);
    };
    let counts = fs::read_to_string(&marker).ok().and_then(|s| {
        let mut parts = s.split_whitespace().map(|v| v.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??))
    });
    let Some((files, bytes)) = counts else {
        if root.exists() {
            fs::remove_dir_all(root)?;
        }
        return Ok(None);
    };
    let dirs: Vec<PathBuf> = (0..w).map(|i| root.join(format!("ws-{i:04}"))).collect();
    clean(root, &dirs)?;
    let next = AtomicUsize::new(0);
    let cores = std::thread::available_parallelism().map_or(2, |t| t.get());
    std::thread::scope(|scope| {
        for _ in 0..(cores * WRITERS_PER_CORE).min(w) {
            scope.spawn(|| {
                let mut buf = Vec::new();
                while let Some(dir) = dirs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
                        if entry.file_type().is_file() {
                            buf.clear();
                            if let Ok(mut f) = fs::File::open(entry.path()) {
                                let _ = std::io::Read::read_to_end(&mut f, &mut buf);
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(Some(Corpus {
        root: root.to_path_buf(),
        workspaces: dirs,
        files,
        bytes,
        vocabulary: vocabulary(),
    }))
}

/// Marks the corpus in `root` whole, for `reuse`.
pub fn keep(corpus: &Corpus) -> Result<()> {
    let marker = corpus
        .root
        .parent()
        .expect("the corpus has a parent")
        .join(DONE);
    fs::write(marker, format!("{} {}\n", corpus.files, corpus.bytes))?;
    Ok(())
}

/// Removes what is not the generated corpus: the probes' and agents' files in the inboxes,
/// whatever the daemon wrote in the workspaces, anything else in the root.
fn clean(root: &Path, dirs: &[PathBuf]) -> Result<()> {
    let remove = |path: &Path| -> Result<()> {
        if path.is_dir() {
            fs::remove_dir_all(path)?;
        } else {
            fs::remove_file(path)?;
        }
        Ok(())
    };
    let keep_only = |dir: &Path, names: &[&str]| -> Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if !names.iter().any(|n| entry.file_name() == *n) {
                remove(&entry.path())?;
            }
        }
        Ok(())
    };
    let names: Vec<String> = dirs
        .iter()
        .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    keep_only(root, &names)?;
    for dir in dirs {
        keep_only(dir, &["checkpoints", ".baton", "inbox"])?;
        keep_only(&dir.join("checkpoints"), &[])?;
        keep_only(&dir.join(".baton"), &["workspace.toml"])?;
        keep_only(&dir.join("inbox"), &["src", "docs", "logs"])?;
    }
    Ok(())
}

fn vocabulary() -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let syllables = [
        "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zen", "qua", "dri", "sol", "pex", "ur", "bin",
        "cor", "eth",
    ];
    (0..VOCABULARY)
        .map(|_| {
            let n = rng.random_range(2..=4);
            (0..n)
                .map(|_| syllables[rng.random_range(0..syllables.len())])
                .collect()
        })
        .collect()
}

/// Appends lines of words to `text` until it holds `size` bytes.
pub fn fill(text: &mut String, size: usize, rng: &mut impl Rng, vocabulary: &[String]) {
    while text.len() < size {
        let words = rng.random_range(6..16);
        for _ in 0..words {
            // Skewed: low ranks (common words) far more often than high ones.
            let u: f64 = rng.random();
            text.push_str(&vocabulary[((u * u * u) * vocabulary.len() as f64) as usize]);
            text.push(' ');
        }
        text.push('\n');
    }
}

fn workspace(
    dir: &Path,
    index: u64,
    count: usize,
    doc_bytes: usize,
    vocabulary: &[String],
) -> Result<u64> {
    for sub in [
        "checkpoints",
        ".baton",
        "inbox/src",
        "inbox/docs",
        "inbox/logs",
    ] {
        fs::create_dir_all(dir.join(sub))?;
    }
    fs::write(dir.join(".baton/workspace.toml"), WORKSPACE_TOML)?;
    let mut rng = StdRng::seed_from_u64(SEED ^ (index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut total = 0;
    let mut text = String::with_capacity(doc_bytes * 2);
    let mut path = dir.join("inbox");
    for i in 0..count {
        text.clear();
        let size = rng.random_range(doc_bytes / 2..=doc_bytes * 3 / 2);
        for (word, every) in PLANTED {
            if rng.random_range(0..every) == 0 {
                text.push_str(word);
                text.push(' ');
            }
        }
        fill(&mut text, size, &mut rng, vocabulary);
        let folder = ["src", "docs", "logs"][i % 3];
        path.push(folder);
        path.push(format!("doc-{i:05}.txt"));
        fs::write(&path, &text)?;
        path.pop();
        path.pop();
        total += text.len() as u64;
    }
    Ok(total)
}
