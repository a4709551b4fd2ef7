//! The checkpoint timeline as inline SVG: x is time, y the step; one dot per checkpoint (a
//! tooltip with its summary), a ring on the last one ("stopped here"), and every silence
//! longer than the route's `stall_after` shaded and dashed: the gaps that raise
//! `agent.stalled`. Checkpoints without a time are laid out in step order instead.
//!
//! Safe and bounded: every text is escaped here; the viewBox is fixed and the picture scales
//! with CSS; colours are `currentColor` and `tl-*` classes (dark mode follows the page);
//! 1,000 checkpoints are thinned to at most `MAX_DOTS` dots and `MAX_STALLS` marked gaps.

use super::escape_html as esc;
use serde::Serialize;
use std::fmt::Write;
use std::time::Duration;
use time::OffsetDateTime;

/// One checkpoint, as the timeline needs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelinePoint {
    pub step: u64,
    /// The checkpoint's `at`, if it gave a valid one.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The checkpoint's file name under `checkpoints/`.
    pub file: String,
}

/// A silence longer than `stall_after`: after the checkpoint of `after_step`, until the next
/// one (`before_step`) or until `now` (`None`: still silent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stall {
    pub after_step: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_step: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub silent_s: u64,
}

/// Most dots drawn; more checkpoints are merged by position.
pub const MAX_DOTS: usize = 120;
/// Most gaps marked (the longest).
pub const MAX_STALLS: usize = 50;
/// Characters of a summary kept in a tooltip.
const TITLE_CHARS: usize = 200;

const W: f64 = 800.0;
const H: f64 = 180.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 780.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 130.0;
/// The width of the tail that stands for a silence still going on at the axis' end.
const TAIL: f64 = 90.0;

fn seconds(from: OffsetDateTime, to: OffsetDateTime) -> u64 {
    (to - from).whole_seconds().max(0) as u64
}

/// "45s", "12m", "2h 05m", "3d 4h".
pub fn human_duration(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

fn when(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// The timed points in time order (ties by step).
fn timed(points: &[TimelinePoint]) -> Vec<(OffsetDateTime, &TimelinePoint)> {
    let mut timed: Vec<_> = points
        .iter()
        .filter_map(|p| p.at.map(|at| (at, p)))
        .collect();
    timed.sort_by_key(|(at, p)| (*at, p.step));
    timed
}

/// The silences longer than `stall_after` between timed checkpoints, and from the last one to
/// `now`, in time order.
pub fn stalls(
    points: &[TimelinePoint],
    stall_after: Option<Duration>,
    now: OffsetDateTime,
) -> Vec<Stall> {
    let Some(limit) = stall_after.map(|d| d.as_secs()) else {
        return Vec::new();
    };
    let timed = timed(points);
    let mut found = Vec::new();
    for (i, (from, p)) in timed.iter().enumerate() {
        let (to, before_step) = match timed.get(i + 1) {
            Some((to, next)) => (*to, Some(next.step)),
            None => (now, None),
        };
        let silent_s = seconds(*from, to);
        if silent_s > limit {
            found.push(Stall {
                after_step: p.step,
                before_step,
                from: *from,
                to,
                silent_s,
            });
        }
    }
    found
}

/// One drawn dot: one checkpoint or several merged.
struct Dot<'a> {
    x: f64,
    first: &'a TimelinePoint,
    last: &'a TimelinePoint,
    count: usize,
}

/// The SVG (`<svg>` element) of the timeline; see the module doc. The time axis spans the
/// checkpoints, first to last, so they spread over the width however long ago they were; a
/// silence from the last checkpoint to `now` (the handoff's time, say) longer than
/// `stall_after` is drawn as a short dashed tail past the last one, its length in words.
pub fn timeline_svg(
    points: &[TimelinePoint],
    stall_after: Option<Duration>,
    now: OffsetDateTime,
) -> String {
    let mut svg = format!(
        "<svg class=\"tl\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" \
         role=\"img\" aria-label=\"{}\" \
         font-family=\"sans-serif\" font-size=\"11\" fill=\"currentColor\" stroke=\"none\">",
        esc(&summary_label(points))
    );
    let timed = timed(points);
    if points.is_empty() {
        let _ = write!(
            svg,
            "<text class=\"tl-empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">no checkpoints yet</text></svg>",
            W / 2.0,
            H / 2.0
        );
        return svg;
    }
    // Without times on them all, x is the order of steps; with times, time.
    let by_time = timed.len() == points.len();
    let ordered: Vec<&TimelinePoint> = if by_time {
        timed.iter().map(|(_, p)| *p).collect()
    } else {
        let mut all: Vec<&TimelinePoint> = points.iter().collect();
        all.sort_by_key(|p| p.step);
        all
    };
    let (t0, t1) = match (timed.first(), timed.last()) {
        (Some((t0, _)), Some((last, _))) if by_time => (*t0, *last),
        _ => (now, now),
    };
    // Still silent at `now`, past stall_after: the checkpoints keep all but a tail's width.
    let tail = by_time
        && stalls(points, stall_after, now)
            .last()
            .is_some_and(|g| g.before_step.is_none());
    let end = if tail { RIGHT - TAIL } else { RIGHT };
    let span = (t1 - t0).as_seconds_f64();
    let n = ordered.len();
    let x_of = |i: usize, p: &TimelinePoint| -> f64 {
        match p.at.filter(|_| by_time) {
            Some(at) if span > 0.0 => LEFT + (at - t0).as_seconds_f64() / span * (end - LEFT),
            Some(_) => LEFT,
            None if n == 1 => (LEFT + RIGHT) / 2.0,
            None => LEFT + i as f64 / (n - 1) as f64 * (RIGHT - LEFT),
        }
    };
    let min = ordered.iter().map(|p| p.step).min().unwrap_or(0);
    let max = ordered.iter().map(|p| p.step).max().unwrap_or(0);
    let y_of = |step: u64| -> f64 {
        if max == min {
            (TOP + BOTTOM) / 2.0
        } else {
            BOTTOM - (step - min) as f64 / (max - min) as f64 * (BOTTOM - TOP)
        }
    };
    let dots = thin(&ordered, &x_of);
    let x_now = if tail {
        RIGHT
    } else {
        dots.last().map_or(LEFT, |d| d.x)
    };

    // Axis, step range and time range.
    let _ = write!(
        svg,
        "<g class=\"tl-axis\" stroke=\"currentColor\" stroke-opacity=\"0.35\"><line x1=\"{LEFT}\" y1=\"{BOTTOM}\" x2=\"{RIGHT}\" y2=\"{BOTTOM}\"/></g>\
         <g class=\"tl-labels\" fill-opacity=\"0.75\"><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{max}</text>",
        LEFT - 6.0,
        y_of(max) + 4.0
    );
    if max != min {
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{min}</text>",
            LEFT - 6.0,
            y_of(min) + 4.0
        );
    }
    let (left_label, right_label) = if by_time && (tail || span > 0.0) {
        (when(t0), when(if tail { now } else { t1 }))
    } else if by_time {
        (when(t0), String::new())
    } else if timed.is_empty() {
        ("steps in order (no times given)".to_string(), String::new())
    } else {
        let untimed = points.len() - timed.len();
        (
            format!(
                "steps in order ({untimed} of {} checkpoints give no time)",
                points.len()
            ),
            String::new(),
        )
    };
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"{}\">{}</text><text x=\"{RIGHT}\" y=\"{}\" text-anchor=\"end\">{}</text>\
         <text x=\"{LEFT}\" y=\"14\">step</text></g>",
        BOTTOM + 16.0,
        esc(&left_label),
        BOTTOM + 16.0,
        esc(&right_label)
    );

    // Silences past stall_after: a shaded band and a dashed line, longest first.
    if by_time {
        let mut gaps = stalls(points, stall_after, now);
        gaps.sort_by_key(|g| std::cmp::Reverse(g.silent_s));
        gaps.truncate(MAX_STALLS);
        let x_at = |t: OffsetDateTime| {
            if t > t1 {
                RIGHT
            } else if span > 0.0 {
                LEFT + (t - t0).as_seconds_f64() / span * (end - LEFT)
            } else {
                LEFT
            }
        };
        for gap in &gaps {
            let (x1, x2, y) = (x_at(gap.from), x_at(gap.to), y_of(gap.after_step));
            let what = match gap.before_step {
                Some(next) => format!(
                    "no checkpoint for {} between step {} and step {next} (stall after {})",
                    human_duration(gap.silent_s),
                    gap.after_step,
                    human_duration(stall_after.map_or(0, |d| d.as_secs()))
                ),
                None => format!(
                    "silent for {} since step {} (stall after {})",
                    human_duration(gap.silent_s),
                    gap.after_step,
                    human_duration(stall_after.map_or(0, |d| d.as_secs()))
                ),
            };
            // A shaded band with dashed edges, and the silent stretch of the line dashed.
            let _ = write!(
                svg,
                "<g class=\"tl-stall\"><title>{}</title><rect x=\"{x1:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{}\" fill-opacity=\"0.1\"/>\
                 <path d=\"M{x1:.1} {TOP}V{BOTTOM}M{x2:.1} {TOP}V{BOTTOM}M{x1:.1} {:.1}H{x2:.1}\" stroke=\"currentColor\" stroke-opacity=\"0.6\" stroke-dasharray=\"3 3\"/>",
                esc(&what),
                (x2 - x1).max(1.0),
                BOTTOM - TOP,
                y + 4.0
            );
            if x2 - x1 > 60.0 {
                let _ = write!(svg, "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"10\">stalled {}</text>", (x1 + x2) / 2.0, TOP - 4.0, esc(&human_duration(gap.silent_s)));
            }
            svg.push_str("</g>");
        }
    }

    // The steps: a step line through the dots, to the end of the axis.
    let mut path = String::new();
    for (i, dot) in dots.iter().enumerate() {
        let y = y_of(dot.last.step);
        if i == 0 {
            let _ = write!(path, "M{:.1} {:.1}", dot.x, y_of(dot.first.step));
        } else {
            let _ = write!(path, "H{:.1}V{:.1}", dot.x, y_of(dot.first.step));
        }
        if dot.count > 1 || dot.first.step != dot.last.step {
            let _ = write!(path, "V{y:.1}");
        }
    }
    let _ = write!(path, "H{x_now:.1}");
    let _ = write!(svg, "<path class=\"tl-line\" d=\"{path}\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\"/>");

    let label_every = dots.len().div_ceil(20).max(1);
    svg.push_str("<g class=\"tl-dots\">");
    for (i, dot) in dots.iter().enumerate() {
        let y = y_of(dot.last.step);
        let r = if dot.count > 1 { 2.5 } else { 3.0 };
        let _ = write!(svg, "<circle class=\"tl-dot\" cx=\"{:.1}\" cy=\"{y:.1}\" r=\"{r}\"><title>{}</title></circle>", dot.x, esc(&tooltip(dot)));
        if i % label_every == 0 || i + 1 == dots.len() {
            let _ = write!(svg, "<text class=\"tl-step\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{}</text>", dot.x, y - 8.0, dot.last.step);
        }
    }
    svg.push_str("</g>");
    if let Some(last) = dots.last() {
        let y = y_of(last.last.step);
        // The label goes under the axis, clear of the line and the dots, with a guide up.
        let label_x = last.x.clamp(LEFT + 70.0, RIGHT - 70.0);
        let _ = write!(
            svg,
            "<g class=\"tl-last\"><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"8\" fill=\"none\" stroke=\"currentColor\" stroke-width=\"2\"/>\
             <path d=\"M{x:.1} {:.1}V{}\" stroke=\"currentColor\" stroke-opacity=\"0.5\" stroke-dasharray=\"2 2\"/>\
             <text x=\"{label_x:.1}\" y=\"{}\" text-anchor=\"middle\" font-weight=\"bold\">stopped here: step {}</text></g>",
            y + 8.0,
            BOTTOM + 20.0,
            BOTTOM + 34.0,
            last.last.step,
            x = last.x,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Merges points that fall on the same stretch of the axis, so at most `MAX_DOTS` are drawn;
/// the last point is always a dot of its own.
fn thin<'a>(
    ordered: &[&'a TimelinePoint],
    x_of: &dyn Fn(usize, &TimelinePoint) -> f64,
) -> Vec<Dot<'a>> {
    let width = (RIGHT - LEFT) / MAX_DOTS as f64;
    let mut dots: Vec<Dot<'a>> = Vec::new();
    for (i, p) in ordered.iter().enumerate() {
        let x = x_of(i, p);
        let is_last = i + 1 == ordered.len();
        match dots.last_mut() {
            Some(dot) if ordered.len() > MAX_DOTS && !is_last && (x - dot.x) < width => {
                dot.last = p;
                dot.count += 1;
            }
            _ => dots.push(Dot {
                x,
                first: p,
                last: p,
                count: 1,
            }),
        }
    }
    dots
}

fn cut(s: &str) -> String {
    match s.char_indices().nth(TITLE_CHARS) {
        Some((at, _)) => format!("{}\u{2026}", &s[..at]),
        None => s.to_string(),
    }
}

fn tooltip(dot: &Dot<'_>) -> String {
    let p = dot.last;
    let at = p.at.map(|t| format!(" at {}", when(t))).unwrap_or_default();
    let summary = p
        .summary
        .as_deref()
        .map(|s| format!(": {}", cut(s)))
        .unwrap_or_default();
    if dot.count == 1 {
        format!("step {}{at} ({}){summary}", p.step, cut(&p.file))
    } else {
        format!(
            "{} checkpoints, steps {} to {}; the last{at}{summary}",
            dot.count, dot.first.step, p.step
        )
    }
}

fn summary_label(points: &[TimelinePoint]) -> String {
    match points.iter().max_by_key(|p| (p.at, p.step)) {
        None => "checkpoint timeline: no checkpoints".into(),
        Some(last) => format!(
            "checkpoint timeline: {} checkpoints, stopped at step {}",
            points.len(),
            last.step
        ),
    }
}

#[cfg(test)]
mod tests;
