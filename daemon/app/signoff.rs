//! The sign-off gate (SPEC section 3, `sign_off`): every listed role must approve before the
//! handoff is approved. Each approval signs one role the reviewer holds, one person one role
//! (four eyes stay four), and the last one closes the handoff with all sign-offs recorded.
//! A rejection or a request for changes by any participant closes it at once.

use super::decide::{Closing, DecideError, Decided};
use super::records::{json_bytes, SIGN_OFFS};
use super::state::WsState;
use super::{App, Ws};
use crate::contract::{Outcome, SignOff};
use crate::events::{now_rfc3339, Event, EventType};
use serde_json::json;

impl App {
    pub(super) fn sign_off(
        &self,
        ws: &Ws,
        st: &mut WsState,
        key: &str,
        name: &str,
        roles: &[String],
        comment: Option<String>,
    ) -> Result<Decided, DecideError> {
        let rec = st
            .records
            .get(key)
            .expect("sign_off is called for a known key");
        if let Some(mine) = rec.sign_offs.iter().find(|s| s.by == name) {
            return Err(DecideError::AlreadySigned(format!(
                "{name} already signed off as \"{}\"; another person must sign the remaining roles",
                mine.role
            )));
        }
        let missing = missing_roles(&rec.handoff.sign_off, &rec.sign_offs);
        let Some(role) = missing.iter().find(|r| roles.contains(r)).cloned() else {
            return Err(DecideError::Forbidden(format!(
                "approval needs sign-off by role(s) {}; {name} holds none of them",
                missing.join(", ")
            )));
        };
        let mut sign_offs = rec.sign_offs.clone();
        sign_offs.push(SignOff {
            role: role.clone(),
            by: name.to_string(),
            at: now_rfc3339(),
        });
        let bytes = json_bytes(&sign_offs)?;
        ws.commit(key, SIGN_OFFS, &bytes)?;
        let missing = missing_roles(&rec.handoff.sign_off, &sign_offs);
        let old = rec.clone();
        st.records.get_mut(key).expect("checked above").sign_offs = sign_offs.clone();
        let result = if missing.is_empty() {
            let closing = Closing::new(Outcome::Approved, name, comment);
            self.settle(ws, st, key, closing).map(Decided::Closed)
        } else {
            let data = json!({ "role": role, "by": name, "comment": comment, "missing": missing });
            let event = Event::new(EventType::HandoffSignedOff, &ws.ws.name, Some(key), data);
            self.emit(ws, event).map(|()| Decided::SignedOff {
                sign_offs: sign_offs.clone(),
                missing: missing.clone(),
            })
        };
        match result {
            Ok(decided) => {
                ws.publish(key, SIGN_OFFS, Some(&bytes));
                Ok(decided)
            }
            Err(e) => {
                // Fail closed: the sign-off is taken back with the event that failed.
                ws.restore(&old, None);
                st.records.get_mut(key).expect("checked above").sign_offs = old.sign_offs;
                Err(e.into())
            }
        }
    }
}

fn missing_roles(required: &[String], given: &[SignOff]) -> Vec<String> {
    required
        .iter()
        .filter(|r| !given.iter().any(|s| &s.role == *r))
        .cloned()
        .collect()
}
