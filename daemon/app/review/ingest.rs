//! Ingest: re-read an agent file and reconcile the workspace's state with it (level-triggered:
//! the same file seen twice is a no-op). Handoffs are received, revised, refused as invalid or
//! found already answered; checkpoints update "where it stopped".

use crate::app::model::Stamp;
use crate::app::review::sender::AsRead;
use crate::app::review::Cx;
use crate::app::state::{Current, Record, WsState};
use crate::app::Served;
use crate::contract::validate::{self, oversize_digest, sha256_hex, Accepted, Format};
use crate::contract::{json, Handoff, Outcome, Problem};
use crate::workspace::{self, ReadError, Workspace};
use std::io;
use std::time::Instant;

/// What the checks around a valid handoff.json found.
struct Checked {
    problems: Vec<Problem>,
    stamps: Vec<Stamp>,
    /// How the file was written, to place the problems found here in it.
    format: Format,
    /// The handoff file read (`fstat` of the descriptor read).
    handoff_file: Option<workspace::Identity>,
}

/// What a handoff.json turned out to be.
enum Verdict {
    Valid(Box<Accepted<Handoff>>),
    Invalid {
        key: String,
        digest: String,
        task_id: String,
        /// The sender, if the file says (to tell its agent's channel).
        from_agent: Option<String>,
        problems: Vec<Problem>,
    },
}

impl Cx<'_> {
    /// Re-reads handoff.json and acts on it. `seen`: when the change was noticed (metrics).
    /// `force`: act even on the bytes last processed (a rename, a rescan): files around them
    /// may have changed, or decision.json may need restoring. Returns `false` when it could
    /// not be done (a read or write failed, the event could not be logged): try again later.
    pub fn reconcile_handoff(&self, ws: &Served, seen: Option<Instant>, force: bool) -> bool {
        // Read-only while its records are damaged: a handoff.json whose record cannot be read
        // would be taken for a new one, and its decision.json for a forgery.
        if ws.store.is_damaged() {
            return true;
        }
        let started = Instant::now();
        let limits = self.config().limits;
        let file = ws.workspace.handoff_file();
        // The file's identity, of the descriptor its bytes are read from: what binds them to
        // an agent's upload of that very file (`crate::policy::proof`).
        let mut handoff_file = None;
        let (raw_sha, verdict, text) = match read_handoff(
            &ws.workspace,
            &file.path,
            limits.max_bytes,
        ) {
            Ok(None) => {
                ws.lock().current = None;
                return true;
            }
            Ok(Some((bytes, identity))) => {
                handoff_file = Some(identity);
                (
                    // The name is part of it: the same bytes under another name are read anew.
                    sha256_hex(&[file.name().as_bytes(), b"\0", &bytes].concat()),
                    judge(&ws.workspace.name, file.format, &bytes, &limits),
                    bytes,
                )
            }
            Err(ReadError::TooLarge { size, .. }) => {
                refused(oversize_digest(size), json::too_large(size, &limits))
            }
            Err(ReadError::NotRegular) => {
                refused(sha256_hex(b"not-regular"), Problem::new("", NOT_REGULAR))
            }
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied => {
                refused(sha256_hex(b"unreadable"), Problem::new("", UNREADABLE))
            }
            Err(ReadError::Io(e)) => {
                self.metrics().error("read");
                tracing::warn!(workspace = %ws.workspace.name, file = %file.name(), error = %e, "cannot read the handoff file; will retry");
                return false;
            }
        };
        if !force
            && ws
                .lock()
                .current
                .as_ref()
                .is_some_and(|c| c.raw_sha == raw_sha)
        {
            return true;
        }
        if !file.shadowed.is_empty() {
            let names: Vec<_> = file.shadowed.iter().filter_map(|p| p.file_name()).collect();
            tracing::warn!(workspace = %ws.workspace.name, counts = %file.name(), ignored = ?names,
                "more than one handoff file: the newest counts, the others are ignored; remove them");
            self.metrics().error("handoff_shadowed");
        }
        // Checking artifacts may hash big files: done before taking the workspace lock, so
        // decisions and queries on this workspace are not held up meanwhile.
        let (artifact_problems, stamps) = match &verdict {
            Verdict::Valid(acc) => match self.check_artifacts(ws, &acc.doc, &acc.value) {
                Ok(checked) => checked,
                Err(crate::app::review::artifacts::Deferred) => {
                    // Processed again when the background hashing is done.
                    ws.lock().current = None;
                    return true;
                }
            },
            Verdict::Invalid { .. } => Default::default(),
        };
        let mut st = ws.lock();
        let result = match verdict {
            Verdict::Valid(acc) => {
                let checked = Checked {
                    problems: artifact_problems,
                    stamps,
                    format: file.format,
                    handoff_file,
                };
                self.accept(ws, &mut st, *acc, checked, &text, raw_sha)
            }
            Verdict::Invalid {
                key,
                digest,
                task_id,
                from_agent,
                problems,
            } => {
                self.note_sender(&ws.workspace.name, &key, from_agent.as_deref());
                st.current = Some(Current {
                    raw_sha,
                    key: key.clone(),
                    digest: digest.clone(),
                    invalid: None,
                });
                self.answer_invalid(ws, &mut st, &key, &digest, &task_id, problems)
            }
        };
        match result {
            Ok(()) => {
                if let Some(seen) = seen {
                    let metrics = self.metrics();
                    metrics.ingest_seconds.observe(seen.elapsed().as_secs_f64());
                    let service = started.elapsed().as_secs_f64();
                    metrics.ingest_service_seconds.observe(service);
                }
                true
            }
            Err(e) => {
                // Forget the file so the next event or reconcile tries again.
                st.current = None;
                self.metrics().error("write");
                tracing::error!(workspace = %ws.workspace.name, error = %e, "cannot process handoff.json; will retry");
                // Refused because another folder now stands at the path: have it looked at
                // now (it stops being served) rather than at the watcher's next word.
                if crate::workspace::folder_mark::Swapped::of(&e).is_some() {
                    self.common.intake.check_folder(&ws.workspace.root);
                }
                false
            }
        }
    }

    fn accept(
        &self,
        ws: &Served,
        st: &mut WsState,
        acc: Accepted<Handoff>,
        checked: Checked,
        bytes: &[u8],
        raw_sha: String,
    ) -> io::Result<()> {
        let Checked {
            mut problems,
            stamps,
            format,
            handoff_file,
        } = checked;
        let key = validate::handoff_key(&ws.workspace.name, &acc);
        st.current = Some(Current {
            raw_sha,
            key: key.clone(),
            digest: acc.digest.clone(),
            invalid: None,
        });
        // A verdict that rests on files around handoff.json (artifacts) is not cached: the
        // agent may fix them and write the same handoff again.
        let depends_on_workspace = !problems.is_empty();
        let route = crate::routing::route_for(&self.config().routes, &acc.doc, &ws.workspace.name);
        let users = &self.config().users;
        for (i, message) in crate::routing::sign_off_problems(route, users, &acc.doc.sign_off) {
            problems.push(Problem::new(format!("/sign_off/{i}"), message));
        }
        let newly_reserved = match self.reserve_key(&key, ws) {
            Ok(fresh) => fresh,
            Err(Taken::By(owner)) => {
                problems.push(Problem::new(
                    "/id",
                    key_taken(&key, &owner, acc.doc.id.is_some()),
                ));
                false
            }
            Err(Taken::Lost) => {
                problems.push(Problem::new(
                    "/id",
                    format!("handoff \"{key}\" was pending in a workspace whose folder was removed while the daemon ran, and a reviewer may still be reading it: give this handoff a new id (or put that folder back)"),
                ));
                false
            }
        };
        // The first receipt of a key an agent is uploading takes only the bytes it uploaded:
        // a file put in their place on the share would take the key for a sender nobody
        // proved (`review::filing`).
        if !st.records.contains_key(&key) {
            let ws_name = &ws.workspace.name;
            if let Some(agent) = crate::app::review::filing::displaced(ws_name, &key, &acc.digest) {
                tracing::warn!(workspace = %ws_name, key, agent = %agent,
                    "a handoff put in place of an agent's upload under the same id before its receipt is answered invalid");
                self.metrics().error("upload_displaced");
                problems.push(Problem::new(
                    "/id",
                    format!("handoff \"{key}\" is being uploaded by agent {agent} (its token proves it), and this file was put in its place under the same id before the daemon read it: neither is taken. {agent}: upload it again; whoever wrote this file: give it another id"),
                ));
            }
        }
        if let Some(Record {
            decision: Some(d),
            meta,
            ..
        }) = st.records.get(&key).map(|r| &**r)
        {
            if meta.digest != acc.digest && !d.outcome.allows_revision() {
                problems.push(Problem::new(
                    "/id",
                    format!("handoff \"{key}\" was already decided ({}); its content cannot change, use a new id for new work", d.outcome.as_str()),
                ));
            }
        }
        let recorded_as_is = st
            .records
            .get(&key)
            .is_some_and(|r| r.meta.digest == acc.digest);
        let read = AsRead {
            artifacts: stamps,
            handoff_file,
        };
        let result = if recorded_as_is {
            // Judged valid at receipt, and judged once: an artifact changed since (or a
            // route's roles) does not make it invalid afterwards, nor replace an answer given.
            // A changed artifact refuses its approval instead (`decide`).
            self.repair(ws, st, &key)
        } else if problems.is_empty() {
            // Archived as kept: without the `null` fields that stood for absent ones.
            let kept = acc.kept_bytes(bytes);
            if st.records.contains_key(&key) {
                let revised = self.revise(ws, st, &key, acc, read, &kept);
                if let Some(rec) = st.records.get(&key).filter(|_| revised.is_ok()) {
                    self.a2a_push_revised(&ws.workspace.name, rec);
                }
                revised
            } else {
                let received = self.receive(ws, st, key.clone(), acc, read, &kept);
                if received.is_ok() {
                    self.forget_push_configs(&ws.workspace.name, &key);
                }
                received
            }
        } else {
            let limits = self.config().limits;
            let problems = validate::finish_as(format, bytes, &limits, problems);
            self.note_sender(&ws.workspace.name, &key, Some(&acc.doc.from_agent));
            self.answer_invalid(ws, st, &key, &acc.digest, &acc.doc.task_id, problems)
        };
        // A key held (a receipt of unknown outcome) may be recorded here: it stays ours.
        if newly_reserved && !st.records.contains_key(&key) && !st.unsure.contains_key(&key) {
            self.keys().remove(&key);
        }
        // A handoff recorded as is was not judged again, so nothing rests on its files; the
        // record in place is this file's, and a decision answers it in decision.json.
        if depends_on_workspace && !recorded_as_is {
            st.current = None;
        }
        result
    }

    /// Claims `key` for workspace `ws` in one step (the catch-up runs workspaces in parallel):
    /// `Ok(true)` newly claimed, `Ok(false)` already ours, `Err(owner)` another's: another
    /// workspace of this daemon's, or (a key new here) one another node serves, as the cluster
    /// says (asked outside the lock; two nodes taking one key at once are caught at decision,
    /// `key_alone`, which refuses both).
    fn reserve_key(&self, key: &str, ws: &Served) -> Result<bool, Taken> {
        let name = ws.registry_name();
        match self.keys().get(key) {
            Some(owner) if owner != name => return Err(Taken::By(owner.clone())),
            Some(_) => return Ok(false),
            None => {}
        }
        // A folder made again where a pending handoff's was: its handoff under that key would
        // answer the binding (key, revision 1, digest) of what the reviewer read in the old
        // folder, with other artifacts beside it.
        let lost_pending = {
            let lost = self.registry.lost_pending.lock();
            lost.unwrap_or_else(|e| e.into_inner()).contains(key)
        };
        if lost_pending {
            return Err(Taken::Lost);
        }
        match ws.store.key_elsewhere(key) {
            Ok(elsewhere) => {
                if let Some(owner) = elsewhere.into_iter().next() {
                    return Err(Taken::By(owner));
                }
            }
            Err(e) => {
                tracing::warn!(workspace = %name, key, error = %e, "cannot ask the cluster whether another workspace holds this key; taken here, and refused at decision while that is unknown");
            }
        }
        let mut keys = self.keys();
        match keys.get(key) {
            Some(owner) if owner != name => Err(Taken::By(owner.clone())),
            Some(_) => Ok(false),
            None => {
                keys.insert(key.to_string(), name.to_string());
                Ok(true)
            }
        }
    }

    /// A key's first receipt makes a new task: A2A push configs left under that key were set
    /// on an earlier record of it (a workspace folder made again), by its sender, and must not
    /// be told of this one, which anyone may have sent.
    fn forget_push_configs(&self, ws: &str, key: &str) {
        let configs = crate::outbox::a2a_push::Configs::new(&self.config().data_dir);
        match configs.clear(key) {
            Ok(true) => {
                tracing::warn!(workspace = %ws, key, "push configs of an earlier record under this key removed at its first receipt")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(workspace = %ws, key, error = %e, "cannot remove the push configs of an earlier record under this key");
                self.metrics().error("a2a_push_configs");
            }
        }
    }

    pub(in crate::app) fn count_outcome(&self, outcome: Outcome) {
        let label = crate::metrics::OutcomeLabel {
            outcome: outcome.as_str().into(),
        };
        self.metrics().handoffs.get_or_create(&label).inc();
    }
}

const NOT_REGULAR: &str =
    "handoff.json must be a regular file: symlinks, folders and pipes are refused";
const UNREADABLE: &str =
    "cannot read handoff.json: permission denied; make it readable by the daemon's user";

/// `workspace::read_limited` of the handoff file, with the identity of the file its bytes
/// were read from (`fstat` of that descriptor). The handoff file is at the workspace's root,
/// opened without following a symlink.
fn read_handoff(
    ws: &Workspace,
    path: &std::path::Path,
    limit: usize,
) -> Result<Option<(Vec<u8>, workspace::Identity)>, ReadError> {
    use std::io::Read;
    let Some((file, identity)) = ws.open_regular(path)? else {
        return Ok(None);
    };
    let too_large = |size| ReadError::TooLarge { size, limit };
    if identity.size > limit as u64 {
        return Err(too_large(identity.size));
    }
    let mut bytes = Vec::with_capacity(identity.size as usize);
    // The file may grow after the open; never read past the limit.
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some((bytes, identity)))
}

fn judge(
    workspace: &str,
    format: Format,
    bytes: &[u8],
    limits: &crate::contract::Limits,
) -> Verdict {
    match validate::handoff_as(format, bytes, limits) {
        Ok(accepted) => Verdict::Valid(Box::new(accepted)),
        Err(r) => Verdict::Invalid {
            key: validate::rejected_key(workspace, &r),
            task_id: r.field("task_id").unwrap_or_default().to_string(),
            from_agent: r.field("from_agent").map(str::to_string),
            digest: r.digest,
            problems: r.problems,
        },
    }
}

/// A handoff.json that cannot even be read: answered under a digest of what is known of it.
fn refused(digest: String, problem: Problem) -> (String, Verdict, Vec<u8>) {
    let verdict = Verdict::Invalid {
        key: digest.clone(),
        digest: digest.clone(),
        task_id: String::new(),
        from_agent: None,
        problems: vec![problem],
    };
    (digest, verdict, Vec::new())
}

/// Why a key cannot be taken for a handoff.
enum Taken {
    /// Another workspace holds it (its name).
    By(String),
    /// It was pending in a workspace whose folder was lost while running.
    Lost,
}

fn key_taken(key: &str, owner: &str, has_id: bool) -> String {
    if has_id {
        format!("id \"{key}\" is already used in workspace \"{owner}\"; keys are unique across the daemon, use a new id")
    } else {
        // A derived key includes this workspace: the clash is with an id chosen elsewhere,
        // which this handoff has nothing to do with, so no other workspace is named.
        format!("key {key} is already used by another handoff; give this one an id")
    }
}

pub(in crate::app) fn write_json<T: serde::Serialize>(
    ws: &Workspace,
    path: &std::path::Path,
    value: &T,
) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    ws.write(path, &bytes)
}

/// The workspace-relative paths of a handoff's artifacts.
pub(in crate::app) fn artifact_paths(handoff: &Handoff) -> Vec<String> {
    handoff.artifacts.iter().map(|a| a.path.clone()).collect()
}
