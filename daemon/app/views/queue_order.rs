//! The queue page's order (`/`), kept as handoffs change beside the list's (see `order`),
//! so that a page of the queue costs its own length and its tab counts cost a few additions,
//! whatever the number of handoffs.
//!
//! The queue shows pending before decided; of the pending, those the caller may decide
//! first, then by urgency (a past or near deadline, then `error` / `critical_action`, then
//! another deadline, then none), then the nearest deadline, then the oldest; decided ones
//! the latest decided first. Only "may decide" depends on the caller, and it depends on a
//! handoff only through its `Audience` (route history, sign-off ask, proven sender), which
//! few handoffs do not share: so the pending handoffs are filed in ordered sets, one per
//! (audience, claim holder, trigger), and a page merges the sets of the audiences the caller
//! may decide, then the others. Urgency depends on the time too: a deadline coming near
//! moves its handoff, which `advance` does for just the deadlines the clock passed.

use crate::app::review::route::Audience;
use crate::app::state::Record;
use crate::app::views::query::Summary;
use crate::app::App;
use crate::contract::handoff::Trigger;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

/// A deadline at most this far (or past) makes a handoff the most urgent.
pub const NEAR_S: i64 = 30 * 60;

/// The queue's tabs (the Invalid tab lists no handoff and is not here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueView {
    Pending,
    /// Pending ones the caller may decide or holds the claim of.
    Mine,
    /// Pending ones someone claimed.
    Claimed,
    Decided,
    All,
}

/// What one queue page asks for.
#[derive(Debug, Clone)]
pub struct QueueQuery {
    pub view: QueueView,
    pub trigger: Option<Trigger>,
    /// Only this workspace's handoffs.
    pub workspace: Option<String>,
    /// 1-based; past the last page, the last page.
    pub page: usize,
    pub per: usize,
}

/// How many handoffs each tab holds, under the query's filters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub pending: usize,
    pub mine: usize,
    pub claimed: usize,
    pub decided: usize,
    pub all: usize,
}

impl QueueCounts {
    pub fn of(&self, view: QueueView) -> usize {
        match view {
            QueueView::Pending => self.pending,
            QueueView::Mine => self.mine,
            QueueView::Claimed => self.claimed,
            QueueView::Decided => self.decided,
            QueueView::All => self.all,
        }
    }
}

/// One page of the queue.
#[derive(Debug)]
pub struct QueuePage {
    /// The page's lines, in the queue's order.
    pub lines: Vec<Summary>,
    pub counts: QueueCounts,
    /// The page shown (the one asked for, or the last one).
    pub page: usize,
    /// The workspaces holding handoffs, when there are at most the number asked for.
    pub workspaces: Option<Vec<String>>,
}

/// Whether the caller may decide the handoffs of a set: asked of their audience, or (for
/// the lines another node sent, already answered for this caller) known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Who {
    Audience(Arc<Audience>),
    Known(bool),
}

/// What the queue's order reads of a handoff, taken from its record (or another node's line).
#[derive(Debug, Clone)]
pub(in crate::app) struct Facts {
    key: Arc<str>,
    workspace: Arc<str>,
    received_at: Arc<str>,
    /// When it was decided; `None` while pending.
    decided_at: Option<Arc<str>>,
    trigger: Option<Trigger>,
    /// The deadline (ns since the epoch), if it has one that reads as a time.
    deadline: Option<i128>,
    claimed_by: Option<Arc<str>>,
    who: Who,
}

impl Facts {
    pub(in crate::app) fn of_record(app: &App, ws: &str, r: &Record) -> Facts {
        let decided_at = r.decision.as_ref().map(|d| Arc::from(&*d.at));
        let handoff = r.head();
        Facts {
            key: Arc::from(r.meta.key.as_str()),
            workspace: Arc::from(ws),
            received_at: Arc::from(r.meta.received_at.as_str()),
            trigger: handoff.trigger,
            deadline: handoff.deadline.as_deref().and_then(nanos),
            claimed_by: r.claimed().map(|c| Arc::from(c.by.as_str())),
            // The audience of a decided handoff is never asked (nobody may decide it).
            who: match decided_at {
                None => Who::Audience(Arc::new(app.cx().audience(r, ws))),
                Some(_) => Who::Known(false),
            },
            decided_at,
        }
    }

    fn of_summary(s: &Summary) -> Facts {
        let pending = s.state == "pending";
        Facts {
            key: Arc::from(s.key.as_str()),
            workspace: Arc::from(s.workspace.as_str()),
            received_at: Arc::from(s.received_at.as_str()),
            decided_at: match pending {
                true => None,
                false => Some(Arc::from(s.decided_at.as_deref().unwrap_or_default())),
            },
            trigger: s.trigger,
            deadline: s.deadline.as_deref().and_then(nanos),
            claimed_by: s.standing.claimed_by.as_deref().map(Arc::from),
            who: Who::Known(pending && s.standing.may_decide),
        }
    }

    pub(in crate::app) fn shared_key(&self) -> &Arc<str> {
        &self.key
    }

    pub(in crate::app) fn shared_received_at(&self) -> &Arc<str> {
        &self.received_at
    }

    pub(in crate::app) fn pending(&self) -> bool {
        self.decided_at.is_none()
    }

    #[cfg(test)]
    pub(in crate::app) fn plain(key: &str, received_at: &str, pending: bool) -> Facts {
        Facts {
            key: Arc::from(key),
            workspace: Arc::from("w"),
            received_at: Arc::from(received_at),
            decided_at: (!pending).then(|| Arc::from(received_at)),
            trigger: None,
            deadline: None,
            claimed_by: None,
            who: Who::Known(pending),
        }
    }
}

fn nanos(at: &str) -> Option<i128> {
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339);
    t.ok().map(|t| t.unix_timestamp_nanos())
}

fn hot(trigger: Option<Trigger>) -> bool {
    matches!(trigger, Some(Trigger::Error | Trigger::CriticalAction))
}

/// A trigger as a small number (sets are kept per trigger, for the trigger filter).
fn slot(trigger: Option<Trigger>) -> u8 {
    match trigger {
        None => 0,
        Some(Trigger::Error) => 1,
        Some(Trigger::CriticalAction) => 2,
        Some(Trigger::LowConfidence) => 3,
        Some(Trigger::Completion) => 4,
    }
}

/// A handoff's place in its set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Place {
    /// Pending: 0 a deadline past or near, 1 `error` / `critical_action`, 2 another
    /// deadline, 3 the rest. Decided: 4.
    urgency: u8,
    /// The deadline (ns), for urgencies 0 to 2; `i128::MAX` for none. Within urgency 1,
    /// those with a deadline come first, the nearest first, then the others, oldest first.
    deadline: i128,
    /// When it was decided (decided ones only).
    decided_at: Arc<str>,
    received_at: Arc<str>,
    key: Arc<str>,
}

impl Ord for Place {
    fn cmp(&self, other: &Place) -> Ordering {
        let by_key = || self.key.cmp(&other.key);
        self.urgency.cmp(&other.urgency).then_with(|| {
            if self.urgency < 4 {
                let by_deadline = self.deadline.cmp(&other.deadline);
                let by_age = self.received_at.cmp(&other.received_at);
                by_deadline.then(by_age).then_with(by_key)
            } else {
                // The latest decision first (RFC 3339 UTC times sort as text).
                let by_decision = self.decided_at.cmp(&other.decided_at);
                let by_age = self.received_at.cmp(&other.received_at);
                by_decision.then(by_age).reverse().then_with(by_key)
            }
        })
    }
}

impl PartialOrd for Place {
    fn partial_cmp(&self, other: &Place) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A set of pending handoffs: alike in audience, claim holder and trigger.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Part {
    who: Who,
    claimed_by: Option<Arc<str>>,
    trigger: u8,
}

/// Where a key is filed.
struct Filed {
    /// Its pending set; `None`: decided, in `decided[trigger]`.
    part: Option<Part>,
    trigger: Option<Trigger>,
    place: Place,
    workspace: Arc<str>,
}

/// The queue's sets (held under the order's lock, filed with the list's sets).
#[derive(Default)]
pub(in crate::app) struct QueueSets {
    pending: HashMap<Part, BTreeSet<Place>>,
    decided: BTreeMap<u8, BTreeSet<Place>>,
    filed: HashMap<Arc<str>, Filed>,
    /// The pending handoffs with a deadline, by deadline: those `advance` may move.
    deadlines: BTreeSet<(i128, Arc<str>)>,
    /// Deadlines before this (ns) are near; moved forward by `advance`.
    horizon: i128,
    /// Handoffs per workspace, for the workspace filter's choices.
    per_workspace: BTreeMap<Arc<str>, usize>,
    /// One copy of each audience.
    audiences: HashSet<Arc<Audience>>,
}

impl QueueSets {
    fn place(&self, f: &Facts) -> Place {
        let (urgency, deadline) = match (&f.decided_at, f.deadline) {
            (Some(_), _) => (4, i128::MAX),
            (None, Some(d)) if d < self.horizon => (0, d),
            (None, d) if hot(f.trigger) => (1, d.unwrap_or(i128::MAX)),
            (None, Some(d)) => (2, d),
            (None, None) => (3, i128::MAX),
        };
        Place {
            urgency,
            deadline,
            decided_at: f.decided_at.clone().unwrap_or_else(|| Arc::from("")),
            received_at: f.received_at.clone(),
            key: f.key.clone(),
        }
    }

    /// Files a handoff as its facts say (again, if it was filed).
    pub(in crate::app) fn file(&mut self, mut f: Facts) {
        self.forget(&f.key);
        // One copy of each workspace's name, not one a handoff.
        if let Some((name, _)) = self.per_workspace.get_key_value(&f.workspace) {
            f.workspace = name.clone();
        }
        if let Who::Audience(a) = &f.who {
            match self.audiences.get(a) {
                Some(known) => f.who = Who::Audience(known.clone()),
                None => {
                    self.audiences.insert(a.clone());
                }
            }
        }
        let place = self.place(&f);
        let part = match f.decided_at {
            Some(_) => {
                let set = self.decided.entry(slot(f.trigger)).or_default();
                set.insert(place.clone());
                None
            }
            None => {
                let part = Part {
                    who: f.who,
                    claimed_by: f.claimed_by,
                    trigger: slot(f.trigger),
                };
                let set = self.pending.entry(part.clone()).or_default();
                set.insert(place.clone());
                if let Some(d) = f.deadline {
                    self.deadlines.insert((d, f.key.clone()));
                }
                Some(part)
            }
        };
        *self.per_workspace.entry(f.workspace.clone()).or_default() += 1;
        let filed = Filed {
            part,
            trigger: f.trigger,
            place,
            workspace: f.workspace,
        };
        self.filed.insert(f.key, filed);
    }

    /// Takes a handoff out of every set (gone, or about to be filed again).
    pub(in crate::app) fn forget(&mut self, key: &str) {
        let Some(filed) = self.filed.remove(key) else {
            return;
        };
        let place = &filed.place;
        match filed.part {
            Some(part) => {
                if let Some(set) = self.pending.get_mut(&part) {
                    set.remove(place);
                    if set.is_empty() {
                        // Sets come and go with claims: keep only those with someone in.
                        self.pending.remove(&part);
                    }
                }
                if place.deadline != i128::MAX {
                    self.deadlines.remove(&(place.deadline, place.key.clone()));
                }
            }
            None => {
                if let Some(set) = self.decided.get_mut(&slot(filed.trigger)) {
                    set.remove(place);
                }
            }
        }
        if let Some(n) = self.per_workspace.get_mut(&filed.workspace) {
            *n -= 1;
            if *n == 0 {
                self.per_workspace.remove(&filed.workspace);
            }
        }
    }

    /// Moves the horizon of "near" to `now_ns` + `NEAR_S` and files again the handoffs whose
    /// deadline it passed (either way: a test's clock may go back).
    pub(in crate::app) fn advance(&mut self, now_ns: i128) {
        // A deadline is near when fewer than NEAR_S + 1 whole seconds are left, as the page
        // counts them (`whole_seconds` of what is left <= NEAR_S).
        let horizon = now_ns + (NEAR_S as i128 + 1) * 1_000_000_000;
        let (from, to) = (self.horizon.min(horizon), self.horizon.max(horizon));
        self.horizon = horizon;
        if from == to {
            return;
        }
        let crossed: Vec<Arc<str>> = self
            .deadlines
            .range((from, Arc::from(""))..(to, Arc::from("")))
            .map(|(_, key)| key.clone())
            .collect();
        for key in crossed {
            let Some(filed) = self.filed.get_mut(&key) else {
                continue;
            };
            let Some(part) = &filed.part else { continue };
            let Some(set) = self.pending.get_mut(part) else {
                continue;
            };
            set.remove(&filed.place);
            let d = filed.place.deadline;
            filed.place.urgency = match d < horizon {
                true => 0,
                false if hot(filed.trigger) => 1,
                false => 2,
            };
            set.insert(filed.place.clone());
        }
    }

    /// The keys of `q`'s page (all of `q`'s filters but the workspace) for a caller named
    /// `me`, who may decide the sets for which `may` answers true, with the tab counts.
    fn query(
        &self,
        q: &QueueQuery,
        me: &str,
        may: &mut dyn FnMut(&Audience) -> bool,
    ) -> (Vec<Arc<str>>, QueueCounts, usize) {
        let trigger = q.trigger.map(|t| slot(Some(t)));
        let wanted = |slot: u8| trigger.is_none_or(|t| t == slot);
        // Asked once per audience: there are few.
        let mut asked: HashMap<*const Audience, bool> = HashMap::new();
        let mut counts = QueueCounts::default();
        // (may decide, its set), of the pending sets the view shows.
        let mut shown: Vec<(bool, &BTreeSet<Place>)> = Vec::new();
        for (part, set) in &self.pending {
            if !wanted(part.trigger) {
                continue;
            }
            let may_decide = match &part.who {
                Who::Known(known) => *known,
                Who::Audience(a) => *asked.entry(Arc::as_ptr(a)).or_insert_with(|| may(a)),
            };
            let mine = may_decide || part.claimed_by.as_deref() == Some(me);
            let claimed = part.claimed_by.is_some();
            counts.pending += set.len();
            counts.mine += if mine { set.len() } else { 0 };
            counts.claimed += if claimed { set.len() } else { 0 };
            let in_view = match q.view {
                QueueView::Pending | QueueView::All => true,
                QueueView::Mine => mine,
                QueueView::Claimed => claimed,
                QueueView::Decided => false,
            };
            if in_view {
                shown.push((may_decide, set));
            }
        }
        let decided: Vec<&BTreeSet<Place>> = self
            .decided
            .iter()
            .filter(|(slot, _)| wanted(**slot))
            .map(|(_, set)| set)
            .collect();
        counts.decided = decided.iter().map(|s| s.len()).sum();
        counts.all = counts.pending + counts.decided;
        let total = counts.of(q.view);
        let per = q.per.max(1);
        let page = q.page.clamp(1, total.div_ceil(per).max(1));
        // Those the caller may decide first, then the other pending, then the decided.
        let firsts = shown.iter().filter(|(m, _)| *m).map(|(_, s)| *s).collect();
        let seconds = shown.iter().filter(|(m, _)| !*m).map(|(_, s)| *s).collect();
        let decided = match q.view {
            QueueView::Decided | QueueView::All => decided,
            _ => Vec::new(),
        };
        let lines = merged(firsts)
            .chain(merged(seconds))
            .chain(merged(decided))
            .skip((page - 1) * per)
            .take(per)
            .map(|p| p.key.clone())
            .collect();
        (lines, counts, page)
    }
}

/// The places of several sets in order (a merge: each set is in order already).
fn merged<'a>(sets: Vec<&'a BTreeSet<Place>>) -> impl Iterator<Item = &'a Place> + 'a {
    let mut heads: Vec<_> = sets.into_iter().map(|s| s.iter().peekable()).collect();
    std::iter::from_fn(move || {
        let mut best: Option<(usize, &Place)> = None;
        for (i, head) in heads.iter_mut().enumerate() {
            if let Some(&p) = head.peek() {
                if best.is_none_or(|(_, b)| p < b) {
                    best = Some((i, p));
                }
            }
        }
        heads[best?.0].next()
    })
}

impl App {
    /// A page of the queue as `actor` sees it, read from the sets kept as handoffs change:
    /// only the page's lines are built.
    pub fn queue_page(
        &self,
        actor: &crate::auth::Actor,
        q: &QueueQuery,
        workspace_choices: usize,
    ) -> QueuePage {
        let crate::auth::Actor::Reviewer { name, roles } = actor else {
            // An agent sees some workspaces only; the queue is a reviewer's page.
            let lines = self.list(crate::app::StateFilter::All, actor);
            return queue_page_of(&lines, "", q, workspace_choices);
        };
        self.refile_changed();
        let now = crate::clock::now_utc().unix_timestamp_nanos();
        let mut may = |a: &Audience| a.may_decide(self.config(), name, roles);
        let (keys, counts, page, workspaces) = match &q.workspace {
            // One workspace's handoffs are few: filed afresh, then read the same way.
            Some(ws) => {
                let workspaces = self
                    .inner
                    .views
                    .order
                    .with_queue(now, |sets| choices(&sets.per_workspace, workspace_choices));
                let mut sets = QueueSets::default();
                sets.advance(now);
                if let Some(served) = self.workspace(ws) {
                    let st = served.lock();
                    for r in st.records.values() {
                        sets.file(Facts::of_record(self, ws, r));
                    }
                }
                let (keys, counts, page) = sets.query(q, name, &mut may);
                (keys, counts, page, workspaces)
            }
            None => self.inner.views.order.with_queue(now, |sets| {
                let (keys, counts, page) = sets.query(q, name, &mut may);
                let workspaces = choices(&sets.per_workspace, workspace_choices);
                (keys, counts, page, workspaces)
            }),
        };
        let lines = keys
            .iter()
            .filter_map(|key| self.line_of(key, crate::app::StateFilter::All, actor))
            .collect();
        QueuePage {
            lines,
            counts,
            page,
            workspaces,
        }
    }
}

/// The queue page of `lines` (every line the caller may see, from this node and others) for
/// the caller named `me`: filed as this node files its own, then read the same way.
pub fn queue_page_of(
    lines: &[Summary],
    me: &str,
    q: &QueueQuery,
    workspace_choices: usize,
) -> QueuePage {
    let mut sets = QueueSets::default();
    sets.advance(crate::clock::now_utc().unix_timestamp_nanos());
    let mut in_workspace = QueueSets {
        horizon: sets.horizon,
        ..Default::default()
    };
    for s in lines {
        sets.file(Facts::of_summary(s));
    }
    let workspaces = choices(&sets.per_workspace, workspace_choices);
    let sets = match &q.workspace {
        Some(ws) => {
            for s in lines.iter().filter(|s| &s.workspace == ws) {
                in_workspace.file(Facts::of_summary(s));
            }
            &in_workspace
        }
        None => &sets,
    };
    let (keys, counts, page) = sets.query(q, me, &mut |_| false);
    let by_key: HashMap<&str, &Summary> = lines.iter().map(|s| (s.key.as_str(), s)).collect();
    let lines = keys
        .iter()
        .filter_map(|k| by_key.get(k.as_ref()).map(|s| (*s).clone()))
        .collect();
    QueuePage {
        lines,
        counts,
        page,
        workspaces,
    }
}

fn choices(per_workspace: &BTreeMap<Arc<str>, usize>, most: usize) -> Option<Vec<String>> {
    let names = per_workspace.keys().map(|w| w.to_string());
    (per_workspace.len() <= most).then(|| names.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = 1_000_000_000;
    const NOW: i128 = 1_900_000_000 * S;

    /// One handoff as the test knows it, to sort the plain way.
    #[derive(Clone)]
    struct Known {
        key: String,
        received_at: String,
        decided_at: Option<String>,
        trigger: Option<Trigger>,
        deadline: Option<i128>,
        claimed_by: Option<&'static str>,
        may_decide: bool,
    }

    impl Known {
        fn facts(&self) -> Facts {
            Facts {
                key: Arc::from(self.key.as_str()),
                workspace: Arc::from(format!("w{}", self.key.len()).as_str()),
                received_at: Arc::from(self.received_at.as_str()),
                decided_at: self.decided_at.as_deref().map(Arc::from),
                trigger: self.trigger,
                deadline: self.deadline,
                claimed_by: self.claimed_by.map(Arc::from),
                who: Who::Known(self.decided_at.is_none() && self.may_decide),
            }
        }
    }

    /// The queue's order written as one sort over every line, as the page did before it read
    /// the kept sets: what the sets must give, page by page.
    fn reference(all: &[Known], q: &QueueQuery, me: &str, now: i128) -> (Vec<String>, usize) {
        let urgency = |k: &Known| match (k.deadline, hot(k.trigger)) {
            (Some(d), _) if d - now < (NEAR_S as i128 + 1) * S => 0,
            (_, true) => 1,
            (Some(_), _) => 2,
            _ => 3,
        };
        let mut lines: Vec<&Known> = all
            .iter()
            .filter(|k| q.trigger.is_none() || k.trigger == q.trigger)
            .filter(|k| {
                let pending = k.decided_at.is_none();
                let md = pending && k.may_decide;
                match q.view {
                    QueueView::Pending => pending,
                    QueueView::Mine => md || (pending && k.claimed_by == Some(me)),
                    QueueView::Claimed => pending && k.claimed_by.is_some(),
                    QueueView::Decided => !pending,
                    QueueView::All => true,
                }
            })
            .collect();
        lines.sort_by(|a, b| {
            let (pa, pb) = (a.decided_at.is_none(), b.decided_at.is_none());
            pb.cmp(&pa)
                .then((pb && b.may_decide).cmp(&(pa && a.may_decide)))
                .then_with(|| match pa {
                    true => urgency(a).cmp(&urgency(b)).then_with(|| {
                        let d = |k: &Known| k.deadline.unwrap_or(i128::MAX);
                        d(a).cmp(&d(b)).then(a.received_at.cmp(&b.received_at))
                    }),
                    false => b
                        .decided_at
                        .cmp(&a.decided_at)
                        .then(b.received_at.cmp(&a.received_at)),
                })
                .then(a.key.cmp(&b.key))
        });
        let total = lines.len();
        let keys = lines.iter().skip((q.page - 1) * q.per).take(q.per);
        (keys.map(|k| k.key.clone()).collect(), total)
    }

    /// A small deterministic generator (no dependency for a test).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    fn check(sets: &mut QueueSets, all: &[Known], now: i128) {
        sets.advance(now);
        let views = [
            QueueView::Pending,
            QueueView::Mine,
            QueueView::Claimed,
            QueueView::Decided,
            QueueView::All,
        ];
        let triggers = [None, Some(Trigger::Error), Some(Trigger::Completion)];
        for view in views {
            for trigger in triggers {
                for page in 1..=5 {
                    let q = QueueQuery {
                        view,
                        trigger,
                        workspace: None,
                        page,
                        per: 25,
                    };
                    let (keys, counts, shown) = sets.query(&q, "me", &mut |_| unreachable!());
                    let (want, total) = reference(all, &q, "me", now);
                    assert_eq!(counts.of(view), total, "{view:?} {trigger:?}");
                    let last = total.div_ceil(25).max(1);
                    assert_eq!(shown, page.min(last), "{view:?} {trigger:?} page {page}");
                    if page <= last {
                        let keys: Vec<&str> = keys.iter().map(|k| k.as_ref()).collect();
                        assert_eq!(keys, want, "{view:?} {trigger:?} page {page}");
                    }
                }
            }
        }
    }

    #[test]
    fn each_tab_page_and_count_is_the_one_a_sort_of_every_line_gives_as_handoffs_change() {
        let mut rng = Lcg(7);
        let triggers = [
            None,
            Some(Trigger::Error),
            Some(Trigger::CriticalAction),
            Some(Trigger::LowConfidence),
            Some(Trigger::Completion),
        ];
        let mut all: Vec<Known> = (0..400)
            .map(|i| Known {
                key: format!("k{i:03}"),
                // Some share a time: the key breaks the tie.
                received_at: format!("2030-01-01T00:{:02}:00Z", rng.next(60)),
                decided_at: None,
                trigger: triggers[rng.next(5) as usize],
                deadline: match rng.next(4) {
                    0 => None,
                    // Past, near, or in the next hours (some to come near as time goes).
                    _ => Some(NOW + (rng.next(6 * 3600) as i128 - 3600) * S),
                },
                claimed_by: [None, None, Some("me"), Some("other")][rng.next(4) as usize],
                may_decide: rng.next(3) > 0,
            })
            .collect();
        let mut sets = QueueSets::default();
        for k in &all {
            sets.file(k.facts());
        }
        check(&mut sets, &all, NOW);
        // Decisions move keys to the decided sets, claims between pending sets.
        for i in 0..120 {
            let k = &mut all[rng.next(400) as usize];
            match i % 3 {
                0 | 1 if k.decided_at.is_none() => {
                    k.decided_at = Some(format!("2030-01-02T00:00:{:02}Z", rng.next(60)));
                    k.claimed_by = None;
                }
                _ => k.claimed_by = [None, Some("me"), Some("other")][rng.next(3) as usize],
            }
            sets.file(k.facts());
        }
        check(&mut sets, &all, NOW);
        // Two hours on: deadlines come near; then the clock goes back (a test clock may).
        check(&mut sets, &all, NOW + 7200 * S);
        check(&mut sets, &all, NOW - 600 * S);
        // Gone ones leave every count.
        for k in all.drain(..50) {
            sets.forget(&k.key);
        }
        check(&mut sets, &all, NOW);
        assert_eq!(sets.filed.len(), all.len());
    }

    #[test]
    fn the_audience_is_asked_once_per_set_not_once_per_handoff() {
        let mut sets = QueueSets::default();
        for i in 0..1000 {
            let mut f = Facts::plain(&format!("k{i:04}"), "2030-01-01T00:00:00Z", true);
            f.who = Who::Audience(Arc::new(Audience {
                route: None,
                escalated_from: Vec::new(),
                sign_off: Vec::new(),
                sender: Some(i % 2),
            }));
            sets.file(f);
        }
        let mut asked = 0;
        let q = QueueQuery {
            view: QueueView::Mine,
            trigger: None,
            workspace: None,
            page: 3,
            per: 25,
        };
        let (keys, counts, _) = sets.query(&q, "me", &mut |a| {
            asked += 1;
            a.sender == Some(0)
        });
        assert_eq!(asked, 2);
        assert_eq!((counts.pending, counts.mine), (1000, 500));
        assert_eq!(keys.len(), 25);
        assert_eq!(keys[0].as_ref(), "k0100", "the 51st of the even ones");
    }
}
