//! `format = "slack"`: a Slack- or Mattermost-compatible incoming-webhook message,
//! `{"text", "blocks"}`, instead of the Standard Webhooks body (the headers and signature are
//! sent all the same; chat services ignore them). The text names the event, the workspace,
//! the handoff and its link; what agents wrote is escaped for mrkdwn.

use crate::events::{Event, EventType};
use serde_json::{json, Value};

/// The message for `event`; `title` is the handoff's (the audience's), for events whose own
/// data does not carry it.
pub fn body(event: &Event, url: Option<&str>, title: Option<&str>) -> String {
    let d = &event.data;
    let title = d
        .get("title")
        .and_then(Value::as_str)
        .or(title)
        .filter(|t| !t.trim().is_empty())
        .map(escape)
        .or_else(|| {
            event
                .key
                .as_deref()
                .map(|k| format!("handoff {}", escape(k)))
        })
        .unwrap_or_else(|| format!("workspace {}", escape(&event.workspace)));
    let what = escape(&line(event));
    let facts = format!("{what} · workspace {}", escape(&event.workspace));
    let kind = event.kind.as_str();
    let headline = match url {
        Some(u) => format!("*{kind}*: <{u}|{title}>"),
        None => format!("*{kind}*: {title}"),
    };
    let text = match url {
        Some(u) => format!("[baton] {kind}: {title}: {facts} {u}"),
        None => format!("[baton] {kind}: {title}: {facts}"),
    };
    json!({
        "text": text,
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": headline } },
            { "type": "context", "elements": [ { "type": "mrkdwn", "text": facts } ] }
        ]
    })
    .to_string()
}

/// One line saying what happened, from the event's own facts (a thin event has fewer; the
/// line then says less, never nothing).
fn line(event: &Event) -> String {
    let d = &event.data;
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let n = |k: &str| d.get(k).and_then(Value::as_u64);
    let len = |k: &str| d.get(k).and_then(Value::as_array).map_or(0, Vec::len);
    let by = |verb: &str| match s("by").as_str() {
        "" => verb.to_string(),
        who => format!("{verb} by {who}"),
    };
    let mut out = match event.kind {
        EventType::HandoffReceived => {
            let mut l = match s("trigger").as_str() {
                "" => "new handoff".to_string(),
                t => format!("{t} handoff"),
            };
            push(&mut l, "from", &s("from_agent"));
            if let Some(c) = d.get("confidence").and_then(Value::as_f64) {
                l.push_str(&format!(", confidence {c:.2}"));
            }
            push(&mut l, ", route", &s("route"));
            l
        }
        EventType::HandoffRevised => {
            let mut l = format!("revised to revision {}", n("revision").unwrap_or(0));
            if let Some(c) = d.get("confidence").and_then(Value::as_f64) {
                l.push_str(&format!(", confidence {c:.2}"));
            }
            l
        }
        EventType::HandoffInvalid => {
            let errors = d.get("errors").and_then(Value::as_array);
            let first = errors.and_then(|e| e.first()).map(problem);
            let mut l = format!("invalid handoff.json, {} problem(s)", len("errors"));
            if let Some(f) = first.filter(|f| !f.is_empty()) {
                l.push_str(&format!(": {f}"));
            }
            l
        }
        EventType::HandoffClaimed if s("by") == "route" => {
            let mut l = format!("assigned to {}", s("assignee"));
            push(&mut l, ", passed on by", &s("reassigned_from"));
            push(&mut l, ":", &s("why"));
            l
        }
        EventType::HandoffClaimed => {
            let mut l = by("claimed");
            push(&mut l, ", taken from", &s("taken_from"));
            l
        }
        EventType::HandoffUnclaimed => {
            let mut l = by("claim released");
            if s("holder") != s("by") {
                push(&mut l, ", held by", &s("holder"));
            }
            l
        }
        EventType::HandoffDecided => {
            let mut l = match s("outcome").as_str() {
                "" => "decided".to_string(),
                o => o.replace('_', " "),
            };
            push(&mut l, "by", &s("by"));
            push(&mut l, ", to agent", &s("to_agent"));
            push(&mut l, ":", &s("comment"));
            l
        }
        EventType::HandoffPartiallyApproved | EventType::HandoffSignedOff => {
            let mut l = match s("role").as_str() {
                "" => by("approved"),
                role => by(&format!("signed off as {role}")),
            };
            if let (Some(a), Some(m)) = (n("approvals"), n("approvals_needed")) {
                l.push_str(&format!(", {a} of {m} approvals"));
            }
            let missing: Vec<&str> = d
                .get("missing")
                .and_then(Value::as_array)
                .map(|m| m.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if !missing.is_empty() {
                l.push_str(&format!(", waiting for {}", missing.join(", ")));
            }
            l
        }
        EventType::HandoffEscalated => {
            let mut l = "escalated".to_string();
            push(&mut l, "from route", &s("from"));
            push(&mut l, "to route", &s("to"));
            push(&mut l, ":", &s("why"));
            l
        }
        EventType::CheckpointWritten => {
            let mut l = format!("step {}", n("step").unwrap_or(0));
            push(&mut l, "of task", &s("task_id"));
            push(&mut l, ":", &s("summary"));
            l
        }
        EventType::CheckpointInvalid => {
            format!(
                "invalid checkpoint {}, {} problem(s)",
                s("file"),
                len("errors")
            )
        }
        EventType::AgentStalled => {
            let mut l = format!("no agent activity for {} s", n("idle_seconds").unwrap_or(0));
            push(&mut l, "on task", &s("task_id"));
            l
        }
        EventType::LockAcquired | EventType::LockReleased | EventType::LockExpired => {
            let verb = match event.kind {
                EventType::LockAcquired => "locked",
                EventType::LockReleased => "unlocked",
                _ => "lock expired on",
            };
            let mut l = format!("{verb} {}", s("path"));
            push(&mut l, "(owner", &s("owner"));
            if !s("owner").is_empty() {
                l.push(')');
            }
            push(&mut l, ":", &s("reason"));
            l
        }
        EventType::ApprovedTampered => {
            format!("{} approved file(s) changed after approval", len("changes"))
        }
        EventType::ApprovedPromoted => {
            let mut l = format!("{} approved file(s) promoted", len("files"));
            if len("skipped") > 0 {
                l.push_str(&format!(", {} skipped", len("skipped")));
            }
            l
        }
        EventType::NotificationFailed => {
            let mut l = format!(
                "{} to {} failed after {} attempt(s)",
                s("event"),
                s("channel"),
                n("attempts").unwrap_or(0)
            );
            push(&mut l, ":", &s("error"));
            l
        }
        EventType::AuditBroken => format!("audit log broken: {}", s("found")),
        EventType::AuditLateWrite => format!(
            "late write of a node past its lease set aside (recovery): {}",
            s("file")
        ),
        EventType::WorkspaceTampered => format!("workspace tampered: {}", s("found")),
        EventType::WorkspaceMoved => format!("workspace moved from {} to {}", s("from"), s("to")),
        EventType::WorkspaceRecreated => format!(
            "workspace folder made again at {}: served as new",
            s("path")
        ),
        EventType::WorkspaceRemoved => format!(
            "workspace folder {} deleted or moved away: no longer served",
            s("path")
        ),
        EventType::WorkspaceStartedAfresh => format!(
            "workspace started afresh without its records by {} (its store was gone)",
            s("by")
        ),
        EventType::DigestSent => format!("listed in {}'s digest", s("reviewer")),
        EventType::DigestCadenceChanged => format!(
            "{}'s digests every {} min (set by {})",
            s("reviewer"),
            n("every_min").unwrap_or(0),
            s("by")
        ),
        EventType::GrantCreated => format!(
            "{} granted approval of similar handoffs ({})",
            s("granted_by"),
            s("grant")
        ),
        EventType::GrantRevoked => format!("grant {} revoked by {}", s("grant"), s("revoked_by")),
        EventType::PasskeyRegistered => format!("{} registered a passkey", s("reviewer")),
        EventType::PasskeyAsserted => format!("{}'s passkey confirmed the approval", s("by")),
        EventType::ChatAccountLinked => format!(
            "{} linked chat account {} to {}",
            s("by"),
            s("chat_user"),
            s("user")
        ),
        EventType::ChatAccountUnlinked => format!(
            "{} unlinked chat account {} (was {})",
            s("by"),
            s("chat_user"),
            s("user")
        ),
        EventType::ChatAccountConfirmed => format!(
            "chat account {} confirmed its link to {} (linked by {})",
            s("chat_user"),
            s("user"),
            s("linked_by")
        ),
        EventType::ChatAccountRefused => format!(
            "chat account {} said its link to {} is not theirs (linked by {}); removed",
            s("chat_user"),
            s("user"),
            s("linked_by")
        ),
        // Never spooled (a canary place reaches no outbox); named for the match alone.
        EventType::CanaryFiled | EventType::CanaryCaught | EventType::CanaryMissed => {
            event.kind.as_str().to_string()
        }
        EventType::WorkspaceOwnerChanged => {
            let mut l = match s("owner").as_str() {
                "" => "owner removed".to_string(),
                o => format!("owner is now {o}"),
            };
            push(&mut l, "(was", &s("previous"));
            if !s("previous").is_empty() {
                l.push(')');
            }
            push(&mut l, "by", &s("by"));
            l
        }
    };
    // Chat lines stay one line: agents' text may hold newlines.
    out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(out, 300)
}

/// Appends ` label value` (`: value` for the label ":") when there is a value.
fn push(line: &mut String, label: &str, value: &str) {
    match (value.is_empty(), label) {
        (true, _) => {}
        (false, ":") => line.push_str(&format!(": {value}")),
        (false, _) => line.push_str(&format!(" {label} {value}")),
    }
}

/// A problem of an invalid handoff: its text, with where it is when known.
fn problem(p: &Value) -> String {
    if let Some(s) = p.as_str() {
        return s.to_string();
    }
    let text = p.get("message").and_then(Value::as_str).unwrap_or("");
    match p
        .get("pointer")
        .and_then(Value::as_str)
        .filter(|w| !w.is_empty())
    {
        Some(at) => format!("{at}: {text}"),
        None => text.to_string(),
    }
}

fn truncate(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        return s;
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}

/// The three characters mrkdwn reads as markup (links, mentions).
pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::body;
    use crate::events::{Event, EventType};
    use serde_json::{json, Value};

    #[test]
    fn a_slack_message_has_text_and_blocks_with_agent_text_escaped() {
        let e = Event::new(
            EventType::HandoffReceived,
            "alpha",
            Some("k-1"),
            json!({ "title": "Fix <!channel> & more", "trigger": "error", "from_agent": "b-1" }),
        );
        let b: Value =
            serde_json::from_str(&body(&e, Some("http://h/handoffs/k-1"), None)).unwrap();
        let text = b["text"].as_str().unwrap();
        assert!(text.contains("Fix &lt;!channel&gt; &amp; more"), "{text}");
        assert!(text.contains("http://h/handoffs/k-1") && text.contains("from b-1"));
        let headline = b["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(
            headline,
            "*handoff.received*: <http://h/handoffs/k-1|Fix &lt;!channel&gt; &amp; more>"
        );
        assert_eq!(b.as_object().unwrap().len(), 2);
    }

    #[test]
    fn every_event_type_has_a_line_with_the_title() {
        let data = json!({ "task_id": "loop", "step": 3, "summary": "parsed\nthe logs",
            "by": "rita", "outcome": "changes_requested", "comment": "add tests",
            "path": "src/a.rs", "owner": "agent-1", "found": "line 4 edited",
            "channel": "webhook:ops", "event": "handoff.received", "attempts": 5,
            "errors": [{ "pointer": "/title", "message": "must be a string" }] });
        use EventType::*;
        let all = [
            HandoffReceived,
            HandoffRevised,
            HandoffInvalid,
            HandoffClaimed,
            HandoffUnclaimed,
            HandoffDecided,
            HandoffPartiallyApproved,
            HandoffSignedOff,
            HandoffEscalated,
            CheckpointWritten,
            AgentStalled,
            LockAcquired,
            LockReleased,
            LockExpired,
            ApprovedTampered,
            ApprovedPromoted,
            NotificationFailed,
            CheckpointInvalid,
            AuditBroken,
            WorkspaceTampered,
            WorkspaceOwnerChanged,
        ];
        for kind in all {
            let e = Event::new(kind, "ws", Some("k"), data.clone());
            let b: Value = serde_json::from_str(&body(&e, None, Some("Fix the build"))).unwrap();
            let text = b["text"].as_str().unwrap();
            let line = b["blocks"][1]["elements"][0]["text"].as_str().unwrap();
            assert!(text.contains("Fix the build"), "{text}");
            assert!(
                !line.starts_with(" ·") && !line.contains("\n"),
                "{kind:?}: {line}"
            );
            assert!(line.len() > "· workspace ws".len() + 5, "{kind:?}: {line}");
        }
        let e = Event::new(EventType::CheckpointWritten, "loop", None, data);
        let b: Value = serde_json::from_str(&body(&e, None, None)).unwrap();
        assert_eq!(
            b["text"],
            "[baton] checkpoint.written: workspace loop: step 3 of task loop: parsed the logs · workspace loop"
        );
    }
}
