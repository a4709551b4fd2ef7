//! The data of a handoff's checkpoint timeline: its task's checkpoints as points (step, time,
//! summary), the route's `stall_after`, and the silences longer than it. The picture itself is
//! `web::render::timeline::timeline_svg`, a pure function of these.

use crate::app::views::artifact_view::ViewError;
use crate::app::App;
use crate::auth::Actor;
use crate::render::timeline::{self, Stall, TimelinePoint};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Bytes of a checkpoint summary carried (tooltips show less).
const SUMMARY_BYTES: usize = 512;

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// Every checkpoint of the handoff's task, oldest step first.
    pub points: Vec<TimelinePoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall_after_s: Option<u64>,
    /// The right end of the time axis: the handoff's revision time, or the last checkpoint's
    /// if later. A silence that ended in the handoff itself counts as a stall too.
    #[serde(with = "time::serde::rfc3339")]
    pub end: OffsetDateTime,
    /// Silences longer than `stall_after_s` (from the gaps between checkpoints' times).
    pub stalls: Vec<Stall>,
}

impl Timeline {
    pub fn stall_after(&self) -> Option<Duration> {
        self.stall_after_s.map(Duration::from_secs)
    }

    /// The picture (inline SVG, every text in it escaped).
    pub fn svg(&self) -> String {
        timeline::timeline_svg(&self.points, self.stall_after(), self.end)
    }
}

fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn cut(s: &str) -> String {
    let mut end = s.len().min(SUMMARY_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl App {
    /// The timeline of `key`'s task, if `actor` may see the handoff.
    pub fn timeline(&self, key: &str, actor: &Actor) -> Result<Timeline, ViewError> {
        let named = self.named(key, actor)?;
        let st = named.ws.lock();
        let rec = st
            .records
            .get(key)
            .ok_or_else(|| ViewError::NoHandoff(key.to_string()))?;
        let route = self.cx().route_of(rec, &named.ws.workspace.name);
        let stall_after_s = route.and_then(|r| r.stall_after_s);
        let handed_off = parse_time(&rec.meta.updated_at);
        // Only what the picture needs: checkpoints can be large, and there can be thousands.
        let mut points: Vec<TimelinePoint> = st
            .checkpoints
            .values()
            .filter(|c| c.task_id == rec.meta.task_id)
            .map(|c| TimelinePoint {
                step: c.step,
                at: c
                    .checkpoint
                    .get("at")
                    .and_then(Value::as_str)
                    .and_then(parse_time),
                summary: c.checkpoint.get("summary").and_then(Value::as_str).map(cut),
                file: c.file.clone(),
            })
            .collect();
        drop(st);
        points.sort_by(|a, b| a.step.cmp(&b.step).then(a.at.cmp(&b.at)));
        let last = points.iter().filter_map(|p| p.at).max();
        let end = match (handed_off, last) {
            (Some(h), Some(l)) => h.max(l),
            (h, l) => h.or(l).unwrap_or_else(crate::clock::now_utc),
        };
        let stalls = timeline::stalls(&points, stall_after_s.map(Duration::from_secs), end);
        Ok(Timeline {
            points,
            stall_after_s,
            end,
            stalls,
        })
    }
}
