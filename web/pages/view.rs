//! Small pieces of presentation shared by the pages: ages, deadlines, confidence meters,
//! trigger labels. Plain data: the templates escape whatever they print.

use baton::contract::handoff::Trigger;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A deadline this close counts as near (shown red; the queue's order puts it first).
pub const NEAR_S: i64 = baton::app::NEAR_S;

pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// "45 s", "3 m", "2 h", "4 d": how long, at a glance.
pub fn span(seconds: i64) -> String {
    let s = seconds.abs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} m", s / 60),
        3600..86400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86400),
    }
}

/// How long ago an RFC 3339 time was ("3 m"), or the text as given when it does not parse.
pub fn age(at: &str, now: OffsetDateTime) -> String {
    parse_time(at).map_or_else(|| at.to_string(), |t| span((now - t).whole_seconds()))
}

/// A deadline as a person reads it.
pub struct Deadline {
    pub at: String,
    pub text: String,
    /// "", "near" or "over": the class that colours it.
    pub class: &'static str,
}

impl Deadline {
    pub fn new(at: &str, now: OffsetDateTime) -> Option<Deadline> {
        let t = parse_time(at)?;
        let left = (t - now).whole_seconds();
        let (text, class) = if left < 0 {
            (format!("overdue {}", span(left)), "over")
        } else {
            let class = if left <= NEAR_S { "near" } else { "" };
            (format!("due in {}", span(left)), class)
        };
        Some(Deadline {
            at: at.to_string(),
            text,
            class,
        })
    }
}

/// A confidence as its number and ten segments, the first `on` of them lit.
pub struct Meter {
    pub text: String,
    pub segments: Vec<bool>,
    /// "low" under 0.5, "mid" under 0.8, else "high": the colour.
    pub class: &'static str,
}

impl Meter {
    pub fn new(confidence: Option<f64>) -> Option<Meter> {
        let c = confidence?.clamp(0.0, 1.0);
        let on = (c * 10.0).round() as usize;
        let class = if c < 0.5 {
            "low"
        } else if c < 0.8 {
            "mid"
        } else {
            "high"
        };
        Some(Meter {
            text: format!("{c:.2}"),
            segments: (0..10).map(|i| i < on).collect(),
            class,
        })
    }
}

/// A trigger as a word, with the class that colours it (the word is always there: never
/// colour alone).
pub fn trigger(t: Option<Trigger>) -> (&'static str, &'static str) {
    match t {
        Some(Trigger::Error) => ("error", "t-error"),
        Some(Trigger::CriticalAction) => ("critical action", "t-critical"),
        Some(Trigger::LowConfidence) => ("low confidence", "t-low"),
        Some(Trigger::Completion) => ("completion", "t-done"),
        None => ("handoff", "t-none"),
    }
}

/// Cuts long text for a one-line view, on a character boundary.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_read_as_people_say_them() {
        let now = parse_time("2026-01-01T12:00:00Z").unwrap();
        let d = Deadline::new("2026-01-01T12:27:00Z", now).unwrap();
        assert_eq!((d.text.as_str(), d.class), ("due in 27 m", "near"));
        let d = Deadline::new("2026-01-01T11:57:00Z", now).unwrap();
        assert_eq!((d.text.as_str(), d.class), ("overdue 3 m", "over"));
        assert!(Deadline::new("soon", now).is_none());
        assert_eq!(
            Meter::new(Some(0.74))
                .unwrap()
                .segments
                .iter()
                .filter(|x| **x)
                .count(),
            7
        );
        assert_eq!(clip("héllo", 2), "hé…");
    }
}
