//! Receiving a handoff under a new key: its record committed to the store (closing the
//! workspace's previous pending handoff in the same step), its events logged, then its copies
//! published and the route's auto-approval applied.

use crate::app::model::{Closing, DECISION, META};
use crate::app::review::records::{json_bytes, landed, rev_file, Committed, Landed};
use crate::app::review::sender::AsRead;
use crate::app::review::Cx;
use crate::app::state::{Meta, Record, WsState};
use crate::app::Served;
use crate::clock::now_rfc3339;
use crate::contract::validate::Accepted;
use crate::contract::{Handoff, Outcome};
use crate::events::{Event, EventType};
use crate::workspace::HANDOFF_FILE;
use serde_json::json;
use std::io;

impl Cx<'_> {
    pub(in crate::app) fn receive(
        &self,
        ws: &Served,
        st: &mut WsState,
        key: String,
        acc: Accepted<Handoff>,
        read: AsRead,
        bytes: &[u8],
    ) -> io::Result<()> {
        // A receipt of this key may be in the store already (its commit's outcome unknown),
        // or the withdrawal of the pending one it would close: held until the records are
        // read again, rather than made a second time beside what may be there.
        let previous = st.pending.clone().filter(|p| *p != key);
        for held in std::iter::once(&key).chain(previous.as_ref()) {
            if let Some(why) = st.unsure.get(held) {
                return Err(crate::app::model::Unsure::io(why.clone()));
            }
        }
        let AsRead {
            artifacts,
            handoff_file,
        } = read;
        // The previous pending handoff is closed in the same step: both records are committed
        // (at once, so their syncs overlap), then both events go into one audit append. If
        // either fails, neither is made (the receive is retried), so a workspace never has two
        // pending.
        // After every revision the key ever had (its workspace's folder lost and made again,
        // across restarts too): a decision bound to what a reviewer read of an old record of
        // this key is stale for this one, whatever the channel.
        let revision = ws.store.next_revision(&key)?;
        let now = now_rfc3339();
        let meta = Meta {
            key: key.clone(),
            task_id: acc.doc.task_id.clone(),
            received_at: now.clone(),
            updated_at: now,
            revision,
            digest: acc.digest.clone(),
            artifacts,
            previous_artifacts: None,
            route: Some(self.route_new(st, &acc.doc, &ws.workspace.name)),
        };
        let meta_bytes = json_bytes(&meta)?;
        self.note_audience(&key, &acc.doc, meta.route.as_ref(), &ws.workspace.name);
        // One durable write commits the revision: the store's meta.json carries its text.
        let committed = Committed::bytes(&meta, bytes)?;
        let (withdrawn, received) = std::thread::scope(|s| {
            let closing = || {
                let why = format!("superseded by {key}");
                Closing::new(Outcome::Withdrawn, "system", Some(why))
            };
            let st = &*st;
            let withdrawing = previous.as_deref().map(|p| {
                s.spawn(move || {
                    let recorded = self.decision_of(ws, st, p, closing())?;
                    let committed = ws.commit(p, DECISION, &recorded.bytes);
                    Ok((p, recorded, committed))
                })
            });
            let received = ws.commit_revision(&key, revision, META, &committed);
            let withdrawn = withdrawing.map(|w| w.join().unwrap_or_else(|_| Err(panicked())));
            (withdrawn.transpose(), received)
        });
        // Each commit's failure told as settle tells a decision's: nothing made, made (read
        // back as written), or unknown, which holds its key.
        let mut unknown = Vec::new();
        let withdrawn = match withdrawn {
            Ok(None) => Ok(None),
            Ok(Some((p, recorded, Ok(())))) => Ok(Some((p, recorded))),
            Ok(Some((p, recorded, Err(e)))) => {
                match landed(&ws.store, p, DECISION, &recorded.bytes, &e) {
                    Landed::Nothing => Err(e),
                    Landed::Made => Ok(Some((p, recorded))),
                    Landed::Unknown(why) => {
                        unknown.push((
                            p.to_string(),
                            format!("its withdrawal may have been recorded: {why}"),
                        ));
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        };
        let received = received.or_else(|e| match landed(&ws.store, &key, META, &committed, &e) {
            Landed::Nothing => Err(e),
            Landed::Made => {
                tracing::warn!(workspace = %ws.workspace.name, key, revision, error = %e, "a receipt's commit reported a failure, and the store holds it: recorded");
                Ok(())
            }
            Landed::Unknown(why) => {
                unknown.push((key.clone(), format!("its receipt (revision {revision}) may have been recorded: {why}")));
                Err(e)
            }
        });
        let withdrawn = match (withdrawn, received) {
            (Ok(withdrawn), Ok(())) => withdrawn.map(|(_, recorded)| recorded),
            (withdrawn, received) => {
                // Neither is made: what did commit is undone, and what cannot be is held.
                if let Ok(Some((p, _))) = &withdrawn {
                    if let Err(undo) = ws.uncommit(p, DECISION) {
                        unknown.push((
                            p.to_string(),
                            format!("its withdrawal was committed and could not be undone: {undo}"),
                        ));
                    }
                }
                if received.is_ok() {
                    if let Err(undo) = ws.uncommit(&key, META) {
                        unknown.push((key.clone(), format!("its receipt (revision {revision}) was committed and could not be undone: {undo}")));
                    }
                }
                let failed = withdrawn.err().or(received.err()).expect("one failed");
                return Err(self.held(ws, st, unknown, failed));
            }
        };
        let data = json!({
            "task_id": acc.doc.task_id, "from_agent": acc.doc.from_agent, "title": acc.doc.title,
            "trigger": acc.doc.trigger, "confidence": acc.doc.confidence, "revision": revision,
            "route": meta.route.as_ref().and_then(|r| r.route.clone()),
            // What chat buttons bind to: the content this revision showed.
            "handoff_sha256": meta.digest,
        });
        let event = Event::new(
            EventType::HandoffReceived,
            &ws.workspace.name,
            Some(&key),
            data,
        );
        let events = withdrawn.iter().map(|w| w.event.clone()).chain([event]);
        if let Err(e) = self.emit_all(ws, events.collect()) {
            // Fail closed: without its event the handoff is not received (retried later), or,
            // what cannot be undone, held.
            let mut unknown = Vec::new();
            if let Err(undo) = ws.uncommit(&key, META) {
                let why = format!(
                    "its event could not be logged ({e}) and its receipt not undone ({undo})"
                );
                unknown.push((key.clone(), why));
            }
            if let Some(previous) = &previous {
                if let Err(undo) = ws.uncommit(previous, DECISION) {
                    let why = format!("its event could not be logged ({e}) and its withdrawal not undone ({undo})");
                    unknown.push((previous.clone(), why));
                }
            }
            return Err(self.held(ws, st, unknown, e));
        }
        // Durable and announced; what follows only serves readers.
        if let (Some(previous), Some(withdrawn)) = (&previous, withdrawn) {
            self.close(ws, st, previous, withdrawn);
        }
        let rev = rev_file(revision);
        ws.publish_each(
            &key,
            &[(&rev, bytes), (HANDOFF_FILE, bytes), (META, &meta_bytes)],
        );
        self.remove_root_decision(ws);
        let value = crate::app::state::RawJson::of(&acc.value);
        let paths = crate::app::review::ingest::artifact_paths(&acc.doc);
        self.release_handoff_locks(ws, &acc.doc.from_agent, &paths, &key);
        let record = Record::new(meta, acc.doc, value, None);
        // Durable: what proves its sender is recorded before anything asks.
        self.bind_sender(&ws.workspace.name, &record, handoff_file.as_ref());
        self.hold_artifacts(ws, &record);
        st.records.insert(key.clone(), Box::new(record));
        st.pending = Some(key.clone());
        self.metrics().received.inc();
        self.metrics().pending.inc();
        self.apply_policy(ws, st, &key);
        self.apply_grant(ws, st, &key);
        // Still pending after the route's policy: its reviewers' work, assigned if it says so.
        self.assign_new(ws, st, &key);
        Ok(())
    }
}

impl Cx<'_> {
    /// A crash between the two commits of a receive (they run at once) can leave the new
    /// record durable and the previous one's withdrawal not: two pending at start-up. The
    /// newest stays pending and the others are withdrawn now, as the receive would have.
    pub(in crate::app) fn withdraw_superseded(&self, ws: &Served) {
        let mut st = ws.lock();
        let Some(newest) = st.pending.clone() else {
            return;
        };
        let older: Vec<String> = st
            .records
            .values()
            .filter(|r| r.is_pending() && r.meta.key != newest)
            .map(|r| r.meta.key.clone())
            .collect();
        for key in older {
            tracing::warn!(workspace = %ws.workspace.name, key, newest, "a crash left two handoffs pending; withdrawing the older");
            let why = format!("superseded by {newest}");
            let closing = Closing::new(Outcome::Withdrawn, "system", Some(why));
            if let Err(e) = self.settle(ws, &mut st, &key, closing) {
                tracing::error!(workspace = %ws.workspace.name, key, error = %e, "cannot withdraw; the next start tries again");
            }
        }
    }
}

impl Cx<'_> {
    /// The error of a receipt that is not made: `failed`, or, when a commit's outcome is
    /// unknown, the keys in `unknown` held (`Cx::unsure`) and that told.
    fn held(
        &self,
        ws: &Served,
        st: &mut WsState,
        unknown: Vec<(String, String)>,
        failed: io::Error,
    ) -> io::Error {
        let mut told = None;
        for (key, why) in unknown {
            tracing::error!(workspace = %ws.workspace.name, key, why, "a receipt's commit failed past its commit point; the key is held until its records are read again");
            told.get_or_insert(self.unsure(ws, st, &key, why));
        }
        told.unwrap_or(failed)
    }
}

fn panicked() -> io::Error {
    io::Error::other("closing the previous handoff panicked")
}
