//! `baton reindex`: read every item again and bring the index in step, safe while a daemon
//! runs. tantivy allows one writer per index, so the command first tries to take the writer
//! lock itself: if it gets it, no daemon is writing, and it reindexes in its own process;
//! if a daemon holds it, the command asks that daemon through a request file in
//! `data_dir/search/` and follows its progress in a status file there (data_dir is out of
//! agents' reach). Either way the index is updated in place, document by document (delete
//! then add), so searches keep answering from a complete index throughout.

use super::{Indexer, Progress};
use crate::config::Config;
use crate::index::{IndexError, Writer};
use crate::search::Search;
use crate::workspace::fsync::Kind;
use crate::workspace::Workspace;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const REQUEST: &str = "reindex.request";
const STATUS: &str = "reindex.status.json";
/// A daemon that shows no progress for this long is taken as not answering.
const SILENCE: Duration = Duration::from_secs(120);

/// How far a reindex got.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub id: String,
    pub files_total: u64,
    pub files_done: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub done: bool,
    /// Searchable documents when done.
    pub documents: u64,
    pub segments: u64,
    pub seconds: f64,
    /// Who did the work: "daemon" or "this process".
    pub by: String,
    /// Why it failed (the index in use then stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the daemon could not rebuild the search index: {0} (the index in use stays)")]
    Failed(String),
    #[error("the daemon holding the search index has not answered for {0} s; is it still running? (its log says why)")]
    NoAnswer(u64),
}

fn search_dir(search: &Search) -> PathBuf {
    search.reading.data_dir.join("search")
}

/// Reindexes everything; `report` is called as work progresses.
pub fn run(config: &Config, report: &mut dyn FnMut(&Status)) -> Result<Status, ReindexError> {
    let search = Search::open(config)?;
    let (budget, every) = search.writer_settings();
    match Writer::spawn(search.index(), budget, every) {
        Ok(writer) => {
            let all = crate::workspace::discover(&config.workspaces)?.workspaces;
            in_process(search, writer, &all, report)
        }
        Err(IndexError::Busy(_)) => ask_daemon(&search, report),
        Err(e) => Err(e.into()),
    }
}

fn in_process(
    search: Search,
    writer: (Writer, std::thread::JoinHandle<()>),
    all: &[Workspace],
    report: &mut dyn FnMut(&Status),
) -> Result<Status, ReindexError> {
    let started = Instant::now();
    let mut indexer = Indexer::knowing_nothing(search.clone(), writer);
    let mut tick = Ticker::default();
    let rebuilt = indexer.rebuild(all, &mut |p| {
        if tick.due() {
            report(&status_of(p, "", "this process", started, false));
        }
    });
    indexer.stop_writer();
    rebuilt?;
    let mut done = status_of(&search.progress, "", "this process", started, true);
    done.documents = search.index().num_docs();
    done.segments = search.index().segments() as u64;
    report(&done);
    Ok(done)
}

fn ask_daemon(search: &Search, report: &mut dyn FnMut(&Status)) -> Result<Status, ReindexError> {
    let dir = search_dir(search);
    let id = format!("{}-{}", std::process::id(), crate::clock::now_rfc3339());
    crate::workspace::write_atomic(&dir.join(REQUEST), id.as_bytes(), Kind::Other)?;
    let mut last_change = Instant::now();
    let mut last: Option<Status> = None;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let status: Option<Status> = std::fs::read(dir.join(STATUS))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|s: &Status| s.id == id);
        if let Some(s) = status {
            if last.as_ref() != Some(&s) {
                last_change = Instant::now();
                report(&s);
                if let Some(e) = &s.error {
                    return Err(ReindexError::Failed(e.clone()));
                }
                if s.done {
                    return Ok(s);
                }
                last = Some(s);
            }
        }
        if last_change.elapsed() > SILENCE {
            return Err(ReindexError::NoAnswer(SILENCE.as_secs()));
        }
    }
}

/// The id of a reindex asked for by `baton reindex`, taking the request.
pub(super) fn take_request(search: &Search) -> Option<String> {
    let path = search_dir(search).join(REQUEST);
    let id = std::fs::read_to_string(&path).ok()?;
    let _ = std::fs::remove_file(&path);
    Some(id.trim().to_string())
}

/// Runs a requested reindex in the daemon, writing its status for the command to follow.
pub(super) fn serve(indexer: &mut Indexer, all: &[Workspace], id: &str) {
    tracing::info!(
        request = id,
        "reindexing everything, as `baton reindex` asked"
    );
    let started = Instant::now();
    let path = search_dir(&indexer.search).join(STATUS);
    let write = |s: &Status| {
        let bytes = serde_json::to_vec(s).expect("a status always serializes");
        if let Err(e) = crate::workspace::write_atomic(&path, &bytes, Kind::Other) {
            tracing::warn!(error = %e, "cannot write the reindex status");
        }
    };
    write(&Status {
        id: id.into(),
        by: "daemon".into(),
        ..Status::default()
    });
    let mut tick = Ticker::default();
    let rebuilt = indexer.rebuild(all, &mut |p| {
        if tick.due() {
            write(&status_of(p, id, "daemon", started, false));
        }
    });
    let search = &indexer.search;
    let mut done = status_of(&search.progress, id, "daemon", started, true);
    done.documents = search.index().num_docs();
    done.segments = search.index().segments() as u64;
    if let Err(e) = rebuilt {
        done.error = Some(e.to_string());
    }
    write(&done);
    tracing::info!(
        documents = done.documents,
        seconds = done.seconds,
        "reindex done"
    );
}

fn status_of(p: &Progress, id: &str, by: &str, started: Instant, done: bool) -> Status {
    Status {
        id: id.to_string(),
        files_total: p.files_total.load(Ordering::Relaxed),
        files_done: p.files_done.load(Ordering::Relaxed),
        bytes_total: p.bytes_total.load(Ordering::Relaxed),
        bytes_done: p.bytes_done.load(Ordering::Relaxed),
        done,
        documents: 0,
        segments: 0,
        seconds: started.elapsed().as_secs_f64(),
        by: by.to_string(),
        error: None,
    }
}

/// At most five reports a second.
#[derive(Default)]
struct Ticker(Option<Instant>);

impl Ticker {
    fn due(&mut self) -> bool {
        let now = Instant::now();
        if self
            .0
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(200))
        {
            return false;
        }
        self.0 = Some(now);
        true
    }
}
