use super::*;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2025-03-01 09:00 UTC);

fn point(step: u64, minutes: Option<i64>, summary: &str) -> TimelinePoint {
    TimelinePoint {
        step,
        at: minutes.map(|m| T0 + time::Duration::minutes(m)),
        summary: Some(summary.to_string()),
        file: format!("{step:03}.json"),
    }
}

/// Every element opened is closed, in order (a cheap well-formedness check).
fn balanced(svg: &str) -> bool {
    let mut open: Vec<&str> = Vec::new();
    for tag in svg.split('<').skip(1).map(|t| &t[..t.find('>').unwrap()]) {
        if let Some(name) = tag.strip_prefix('/') {
            if open.pop() != Some(name) {
                return false;
            }
        } else if !tag.ends_with('/') {
            open.push(tag.split(' ').next().unwrap());
        }
    }
    open.is_empty()
}

fn count(svg: &str, what: &str) -> usize {
    svg.matches(what).count()
}

#[test]
fn no_checkpoints_is_said() {
    let svg = timeline_svg(&[], Some(Duration::from_secs(60)), T0);
    assert!(
        svg.contains("no checkpoints yet") && balanced(&svg),
        "{svg}"
    );
    // Scaled by its class in the page's stylesheet: an inline style would break the CSP.
    assert!(svg.contains("viewBox=\"0 0 800 180\"") && svg.contains("class=\"tl\""));
    assert!(!svg.contains("style="), "{svg}");
}

#[test]
fn one_checkpoint_is_where_it_stopped() {
    let svg = timeline_svg(
        &[point(4, Some(0), "tests pass")],
        None,
        T0 + time::Duration::hours(1),
    );
    assert!(balanced(&svg), "{svg}");
    assert_eq!(count(&svg, "<circle class=\"tl-dot\""), 1);
    assert!(svg.contains("stopped here"));
    assert!(
        svg.contains("step 4 at 2025-03-01 09:00 UTC (004.json): tests pass"),
        "{svg}"
    );
    assert_eq!(count(&svg, "tl-stall"), 0);
}

#[test]
fn every_text_is_escaped() {
    let mut p = point(
        1,
        Some(0),
        "<script>alert(1)</script> & \"quoted\" 'single'",
    );
    p.file = "\"><svg onload=alert(1)>.json".into();
    let svg = timeline_svg(
        &[p],
        Some(Duration::from_secs(1)),
        T0 + time::Duration::hours(2),
    );
    assert!(balanced(&svg), "{svg}");
    assert!(
        !svg.contains("<script") && !svg.contains("<svg onload"),
        "{svg}"
    );
    assert!(svg.contains(
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; &#39;single&#39;"
    ));
    assert!(svg.contains("&quot;&gt;&lt;svg onload=alert(1)&gt;.json"));
}

#[test]
fn silences_past_stall_after_are_marked() {
    let points = [
        point(1, Some(0), "a"),
        point(2, Some(10), "b"),
        point(3, Some(180), "c"),
    ];
    let now = T0 + time::Duration::minutes(200);
    let hour = Some(Duration::from_secs(3600));
    let found = stalls(&points, hour, now);
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].after_step, found[0].before_step, found[0].silent_s),
        (2, Some(3), 170 * 60)
    );
    let svg = timeline_svg(&points, hour, now);
    assert!(balanced(&svg), "{svg}");
    assert_eq!(count(&svg, "<g class=\"tl-stall\">"), 1);
    assert!(
        svg.contains("no checkpoint for 2h 50m between step 2 and step 3 (stall after 1h 00m)"),
        "{svg}"
    );
    assert!(svg.contains("stalled 2h 50m"));
    // Still silent at the end of the axis: a stall up to now.
    let later = T0 + time::Duration::hours(6);
    let found = stalls(&points, hour, later);
    assert_eq!(found.last().unwrap().before_step, None);
    assert!(timeline_svg(&points, hour, later).contains("silent for 3h 00m since step 3"));
    assert!(stalls(&points, None, later).is_empty());
}

#[test]
fn a_thousand_checkpoints_stay_small() {
    let points: Vec<_> = (0..1000)
        .map(|i| {
            point(
                i,
                Some(i as i64 * 7 + (i as i64 % 13) * 600),
                &"long summary ".repeat(100),
            )
        })
        .collect();
    let svg = timeline_svg(
        &points,
        Some(Duration::from_secs(3000)),
        T0 + time::Duration::days(6),
    );
    assert!(balanced(&svg));
    let dots = count(&svg, "<circle class=\"tl-dot\"");
    assert!(dots <= MAX_DOTS + 1 && dots > 10, "{dots} dots");
    assert!(count(&svg, "<g class=\"tl-stall\">") <= MAX_STALLS);
    assert!(svg.len() < 150_000, "{} bytes", svg.len());
    assert!(
        svg.contains("checkpoints, steps"),
        "merged dots say what they hold"
    );
    assert_eq!(count(&svg, "stopped here"), 1);
}

#[test]
fn without_times_steps_are_in_order() {
    let points = [
        point(2, None, "b"),
        point(1, None, "a"),
        point(3, None, "c"),
    ];
    let svg = timeline_svg(&points, Some(Duration::from_secs(1)), T0);
    assert!(balanced(&svg), "{svg}");
    assert!(svg.contains("steps in order (no times given)"));
    assert_eq!(count(&svg, "<circle class=\"tl-dot\""), 3);
    assert_eq!(count(&svg, "tl-stall"), 0);
    let mixed = [point(1, Some(0), "a"), point(2, None, "b")];
    assert!(timeline_svg(&mixed, None, T0).contains("1 of 2 checkpoints give no time"));
}

#[test]
fn durations_read_well() {
    assert_eq!(human_duration(45), "45s");
    assert_eq!(human_duration(720), "12m");
    assert_eq!(human_duration(7500), "2h 05m");
    assert_eq!(human_duration(3 * 86400 + 4 * 3600), "3d 4h");
}

/// The x of each checkpoint's dot, in order.
fn dot_xs(svg: &str) -> Vec<f64> {
    svg.split("<circle class=\"tl-dot\" cx=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].parse().unwrap())
        .collect()
}

#[test]
fn the_axis_spans_the_checkpoints_not_the_time_since() {
    // Checkpoints an hour apart, the handoff looked at a month later: they spread over the
    // width instead of sitting in its first pixels.
    let points = [
        point(1, Some(0), "a"),
        point(2, Some(30), "b"),
        point(3, Some(60), "c"),
    ];
    let month = T0 + time::Duration::days(30);
    let svg = timeline_svg(&points, None, month);
    assert!(balanced(&svg), "{svg}");
    assert_eq!(
        dot_xs(&svg),
        vec![LEFT, (LEFT + RIGHT) / 2.0, RIGHT],
        "{svg}"
    );
    // A silence past stall_after still going on: a tail after the last dot, in words.
    let svg = timeline_svg(&points, Some(Duration::from_secs(3600)), month);
    let xs = dot_xs(&svg);
    assert_eq!((xs[0], xs[2]), (LEFT, RIGHT - TAIL), "{svg}");
    assert!(svg.contains("silent for 29d 23h since step 3"), "{svg}");
}
