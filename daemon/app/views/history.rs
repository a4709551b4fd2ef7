//! The history of events (`/events`, `GET /api/v1/events/history`): every proven line of
//! every served workspace's audit log, in one order kept in memory, newest last. A page is
//! read from that order and then only its own lines are read from the logs (by offset, each
//! proven by its hash: the logs are in agents' reach), so a page costs the page, not the
//! logs. The order holds no event text: about 56 bytes a line.
//!
//! Lines written while the daemon runs are noted as they are written. Those written before
//! it started are read once, off the start path, by a thread of their own ("seeding"): each
//! log from its end back as far as it chains to the head its anchor proves. The seeding
//! begins once the daemon is ready (`History::begin`): at 10,000 workspaces it is seconds of
//! CPU that the load and the start-up scan would otherwise share. Until every workspace
//! taken so far is read, a page waits (at most `SEED_PATIENCE`).

use crate::app::{App, Served};
use crate::audit::{Written, PROOF_BYTES};
use crate::auth::Actor;
use crate::events::EventType;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

/// Most events in one page.
pub const MAX_PAGE: usize = 1000;
/// How long a page waits for the logs of before the start to be read.
const SEED_PATIENCE: Duration = Duration::from_secs(30);
/// Workspaces read between two merges into the order.
const SEED_BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "`after` must be the `cursor` of an event of the page before (AT.SEQ.WORKSPACE), not {0:?}"
    )]
    BadCursor(String),
    /// A cursor of the right shape whose workspace has no events here (gone, or never was):
    /// like a key naming no handoff, a 404.
    #[error("`after` names workspace {0:?}, which has no events here; list from the first page")]
    UnknownCursor(String),
    #[error("the event history is still being read from the logs; ask again shortly")]
    NotReady,
}

/// One line in the order.
#[derive(Clone, Copy)]
struct Entry {
    /// Unix ms of the event's `at`.
    at_ms: i64,
    ws: u32,
    seq: u64,
    offset: u64,
    len: u32,
    kind: Option<EventType>,
    proof: [u8; PROOF_BYTES],
}

impl Entry {
    /// Where it sits in the order (the offset only tells a line of an older chain apart).
    fn key(&self) -> (i64, u32, u64, u64) {
        (self.at_ms, self.ws, self.seq, self.offset)
    }
    /// Where a cursor naming it sits.
    fn place(&self) -> (i64, u32, u64) {
        (self.at_ms, self.ws, self.seq)
    }
}

#[derive(Default)]
struct Order {
    entries: Vec<Entry>,
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u32>,
}

impl Order {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    fn entry(&mut self, ws: &str, w: &Written) -> Entry {
        Entry {
            at_ms: at_ms(&w.at),
            ws: self.id(ws),
            seq: w.seq,
            offset: w.offset,
            len: w.len,
            kind: w.kind,
            proof: w.proof,
        }
    }
}

/// Unix ms of an RFC 3339 time; 0 for one that is not.
fn at_ms(at: &str) -> i64 {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(at, &format)
        .map_or(0, |t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[derive(Default)]
struct Seeding {
    /// Workspaces handed to the seeding thread and not yet read.
    queued: usize,
    /// Whether the seeding thread may read (the daemon is ready).
    begun: bool,
}

struct Shared {
    order: RwLock<Order>,
    seeding: Mutex<Seeding>,
    /// Signalled when `queued` falls to 0, and when `begun` is set.
    seeded: Condvar,
}

pub(in crate::app) struct History {
    shared: Arc<Shared>,
    /// Lines pages read lately (the newest pages are asked for most).
    recent: Mutex<super::proven_lines::ProvenLines<HistoryEvent>>,
    /// To the seeding thread, which ends when this is dropped.
    to_seed: Mutex<Sender<Arc<Served>>>,
}

impl Default for History {
    fn default() -> History {
        let shared = Arc::new(Shared {
            order: RwLock::default(),
            seeding: Mutex::default(),
            seeded: Condvar::new(),
        });
        let (tx, rx) = channel();
        let seeder = shared.clone();
        std::thread::Builder::new()
            .name("baton-history".into())
            .spawn(move || seed(&seeder, &rx))
            .expect("the history's thread starts");
        History {
            shared,
            recent: Mutex::default(),
            to_seed: Mutex::new(tx),
        }
    }
}

fn seed(shared: &Shared, rx: &Receiver<Arc<Served>>) {
    {
        let seeding = shared.seeding.lock().unwrap_or_else(|e| e.into_inner());
        let _begun = shared
            .seeded
            .wait_while(seeding, |s| !s.begun)
            .unwrap_or_else(|e| e.into_inner());
    }
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < SEED_BATCH {
            match rx.try_recv() {
                Ok(ws) => batch.push(ws),
                Err(_) => break,
            }
        }
        let read: Vec<(String, Vec<Written>)> = batch
            .iter()
            .map(|ws| {
                let lines = ws.audit.proven_lines().unwrap_or_else(|e| {
                    tracing::warn!(workspace = %ws.workspace.name, error = %e, "cannot read the audit log for the event history");
                    Vec::new()
                });
                (ws.workspace.name.clone(), lines)
            })
            .collect();
        drop(batch);
        {
            let mut order = shared.order.write().unwrap_or_else(|e| e.into_inner());
            let mut fresh = Vec::new();
            for (name, lines) in &read {
                for w in lines {
                    fresh.push(order.entry(name, w));
                }
            }
            // Only the batch is sorted, then merged into the kept order: sorting everything
            // for each batch cost O(n log n) per workspace taken at start, under the lock
            // that every append waits for.
            fresh.sort_unstable_by_key(Entry::key);
            let kept = std::mem::take(&mut order.entries);
            order.entries = merged(kept, fresh);
            // A line noted as written and read back here too is kept once.
            order.entries.dedup_by_key(|e| e.key());
        }
        let mut seeding = shared.seeding.lock().unwrap_or_else(|e| e.into_inner());
        seeding.queued = seeding.queued.saturating_sub(read.len());
        if seeding.queued == 0 {
            shared.seeded.notify_all();
        }
    }
}

/// Two sorted runs as one sorted run.
fn merged(a: Vec<Entry>, b: Vec<Entry>) -> Vec<Entry> {
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.key() <= y.key(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

impl History {
    /// The daemon is ready: the logs of the workspaces taken are read from now on.
    pub(in crate::app) fn begin(&self) {
        let mut seeding = self
            .shared
            .seeding
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        seeding.begun = true;
        self.shared.seeded.notify_all();
    }

    /// A workspace taken: its log's lines from before are read by the seeding thread.
    pub(in crate::app) fn seed(&self, ws: Arc<Served>) {
        self.shared
            .seeding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queued += 1;
        let sent = self
            .to_seed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(ws);
        if sent.is_err() {
            tracing::error!("the event history's thread is gone; older events are not listed");
        }
    }

    /// Lines just written into `ws`'s log.
    pub(in crate::app) fn note(&self, ws: &str, written: Vec<Written>) {
        if written.is_empty() {
            return;
        }
        let mut order = self.shared.order.write().unwrap_or_else(|e| e.into_inner());
        for w in &written {
            let entry = order.entry(ws, w);
            // Nearly always the newest: appended. A clock moved back: put in its place. One
            // the seeding read already is kept once.
            let at = order.entries.partition_point(|e| e.key() < entry.key());
            if order
                .entries
                .get(at)
                .is_some_and(|e| e.key() == entry.key())
            {
                continue;
            }
            order.entries.insert(at, entry);
        }
    }

    /// Waits until the logs of before the start are read.
    fn wait_seeded(&self) -> bool {
        let seeding = self
            .shared
            .seeding
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (seeding, _) = self
            .shared
            .seeded
            .wait_timeout_while(seeding, SEED_PATIENCE, |s| s.queued > 0)
            .unwrap_or_else(|e| e.into_inner());
        seeding.queued == 0
    }
}

/// What a page of the history asks for.
#[derive(Default, Clone)]
pub struct HistoryQuery {
    /// Only this workspace's events.
    pub workspace: Option<String>,
    /// Only events whose type starts with this (`handoff.` or `handoff.decided`).
    pub kind: Option<String>,
    /// At most this many (1 to `MAX_PAGE`).
    pub limit: usize,
    /// The `cursor` of the last event of the page before: the page holds older ones.
    pub after: Option<String>,
}

/// One event of a page: its audit line's fields (the line was proven by its hash when it was
/// read) and the cursor of the page after it, as the API sends it. Parsed once and shared by
/// the pages that show it; `data` stays the text it was written as: a page of 200 events
/// built 200 `Value` trees, and glibc's allocator was then half of `/events`' CPU.
#[derive(Serialize, Deserialize)]
pub struct HistoryEvent {
    pub seq: u64,
    pub prev: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub at: String,
    pub workspace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The event's facts, as written.
    pub data: Box<RawValue>,
    /// Where the page of older events starts (`after`); not in the line.
    #[serde(default)]
    pub cursor: String,
    /// The first bytes of the line's sha256: the same for the same line and only for it, so
    /// what is made of an event (a page's row) can be kept under it. Not sent.
    #[serde(skip)]
    pub proof: [u8; PROOF_BYTES],
    /// Set (and `data` says it too) when the line the daemon wrote there is no longer in the
    /// log: it was changed behind the daemon, or the log was begun again after tampering was
    /// found (`audit.broken`). Only `seq`, `type`, `at`, `workspace` and `cursor` are then
    /// the daemon's, from what it noted when the line was proven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
}

/// What a listed line no longer in its log says.
const BROKEN: &str = "this audit line is no longer the one the daemon wrote: the log was changed behind the daemon (see the workspace's audit.broken event and `baton audit verify`)";

/// A line picked for the page, to read from its log.
struct Pick {
    entry: Entry,
    name: Arc<str>,
}

impl App {
    /// A page of the events `actor` may see, newest first: each event as its log line
    /// (`seq`, `prev`, `type`, `at`, `workspace`, `key`, `data`) plus its `cursor`.
    pub fn event_history(
        &self,
        actor: &Actor,
        query: &HistoryQuery,
    ) -> Result<Vec<Arc<HistoryEvent>>, HistoryError> {
        let history = &self.inner.views.history;
        let limit = query.limit.clamp(1, MAX_PAGE);
        // First: a cursor names a workspace known once its log is read.
        if !history.wait_seeded() {
            return Err(HistoryError::NotReady);
        }
        let mut before = match &query.after {
            Some(cursor) => Some(self.place_of(cursor)?),
            None => None,
        };
        let mut out = Vec::with_capacity(limit);
        loop {
            let picks = self.pick(actor, query, before, limit - out.len());
            let Some(last) = picks.last() else {
                return Ok(out);
            };
            before = Some(last.entry.place());
            out.extend(self.read_picks(picks));
            if out.len() >= limit {
                return Ok(out);
            }
        }
    }

    /// Where the page after `cursor` starts.
    fn place_of(&self, cursor: &str) -> Result<(i64, u32, u64), HistoryError> {
        let bad = || HistoryError::BadCursor(cursor.chars().take(200).collect());
        let mut parts = cursor.splitn(3, '.');
        let (Some(at), Some(seq), Some(ws)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        // Digits only, as many as the numbers hold (`names::EVENT_CURSOR_PATTERN`): `+1` or `01...` of
        // 30 digits are no cursor this daemon gave.
        let digits = |s: &str, most: usize| {
            !s.is_empty() && s.len() <= most && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(at.strip_prefix('-').unwrap_or(at), 18) || !digits(seq, 19) || ws.is_empty() {
            return Err(bad());
        }
        let at: i64 = at.parse().map_err(|_| bad())?;
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        let order = self.inner.views.history.shared.order.read();
        let order = order.unwrap_or_else(|e| e.into_inner());
        let unknown = || HistoryError::UnknownCursor(ws.chars().take(200).collect());
        let ws = *order.ids.get(ws).ok_or_else(unknown)?;
        Ok((at, ws, seq))
    }

    /// Up to `want` lines older than `before` that match, newest first.
    fn pick(
        &self,
        actor: &Actor,
        query: &HistoryQuery,
        before: Option<(i64, u32, u64)>,
        want: usize,
    ) -> Vec<Pick> {
        let order = self.inner.views.history.shared.order.read();
        let order = order.unwrap_or_else(|e| e.into_inner());
        let end = match before {
            Some(place) => order.entries.partition_point(|e| e.place() < place),
            None => order.entries.len(),
        };
        let only = query
            .workspace
            .as_deref()
            .map(|w| order.ids.get(w).copied());
        let mut visible: HashMap<u32, bool> = HashMap::new();
        let mut picks = Vec::with_capacity(want);
        for entry in order.entries[..end].iter().rev() {
            if only.is_some_and(|id| Some(entry.ws) != id) {
                continue;
            }
            let Some(kind) = entry.kind else {
                continue;
            };
            if let Some(prefix) = query.kind.as_deref() {
                if !kind.as_str().starts_with(prefix) {
                    continue;
                }
            }
            let name = &order.names[entry.ws as usize];
            if !*visible
                .entry(entry.ws)
                .or_insert_with(|| actor.can_see(name))
            {
                continue;
            }
            picks.push(Pick {
                entry: *entry,
                name: name.clone(),
            });
            if picks.len() == want {
                break;
            }
        }
        picks
    }

    /// The picked lines read from their logs, each proven; one no longer the daemon's is
    /// listed as broken (see `HistoryEvent::broken`), one whose workspace is no longer
    /// served here is left out.
    fn read_picks(&self, picks: Vec<Pick>) -> Vec<Arc<HistoryEvent>> {
        let recent = &self.inner.views.history.recent;
        let key = |p: &Pick| (p.entry.ws, p.entry.offset, p.entry.proof);
        let mut events: Vec<Option<Arc<HistoryEvent>>> = {
            let kept = recent.lock().unwrap_or_else(|e| e.into_inner());
            picks.iter().map(|p| kept.get(&key(p))).collect()
        };
        let mut by_ws: HashMap<Arc<str>, Vec<usize>> = HashMap::new();
        for (i, p) in picks.iter().enumerate() {
            if events[i].is_none() {
                by_ws.entry(p.name.clone()).or_default().push(i);
            }
        }
        for (name, at) in by_ws {
            let Some(ws) = self.workspace(&name) else {
                continue;
            };
            let wanted: Vec<_> = at
                .iter()
                .map(|i| {
                    let e = &picks[*i].entry;
                    (e.offset, e.len, e.proof)
                })
                .collect();
            let read = crate::audit::read_proven(&ws.workspace, &wanted);
            let mut kept = recent.lock().unwrap_or_else(|e| e.into_inner());
            for (i, line) in at.into_iter().zip(read) {
                let Some(event) = line.and_then(|l| parsed(&picks[i], &l)) else {
                    // Not kept: the daemon reads it again, and so finds it broken each time.
                    events[i] = Some(Arc::new(broken(&picks[i])));
                    continue;
                };
                let event = Arc::new(event);
                kept.keep(key(&picks[i]), event.clone(), picks[i].entry.len as usize);
                events[i] = Some(event);
            }
        }
        events.into_iter().flatten().collect()
    }
}

/// A line no longer in its log as the daemon noted it, said to be broken. Its proof is not
/// the line's (what is kept under that shows the line as it was).
fn broken(pick: &Pick) -> HistoryEvent {
    let e = &pick.entry;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.at_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let data = serde_json::json!({ "broken": BROKEN }).to_string();
    let mut proof = e.proof;
    proof.iter_mut().for_each(|b| *b ^= 0xb5);
    HistoryEvent {
        seq: e.seq,
        prev: String::new(),
        kind: e.kind.map_or("", |k| k.as_str()).to_string(),
        at,
        workspace: pick.name.to_string(),
        key: None,
        data: RawValue::from_string(data).expect("JSON text"),
        cursor: format!("{}.{}.{}", e.at_ms, e.seq, pick.name),
        proof,
        broken: Some(BROKEN.into()),
    }
}

/// A proven line as the event it records, with its cursor and proof.
fn parsed(pick: &Pick, line: &[u8]) -> Option<HistoryEvent> {
    let mut event: HistoryEvent = serde_json::from_slice(line).ok()?;
    let e = &pick.entry;
    event.cursor = format!("{}.{}.{}", e.at_ms, e.seq, pick.name);
    event.proof = e.proof;
    Some(event)
}
