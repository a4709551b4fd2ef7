//! `baton policy replay FILE [--since AGE]`: what a candidate configuration's policies would
//! have done with every revision people decided (a revision sent back and then revised
//! counts as well as the last one). Exits 1 when the candidate's policy failed on any of them
//! (an error decides nothing: those revisions would have gone to people, and are listed).

use super::export::parse_since;
use baton::config::Config;
use std::path::Path;
use std::process::ExitCode;

pub fn replay(file: &Path, since: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = Config::load(Some(file))?;
    baton::private::readable(&config.data_dir).map_err(anyhow::Error::msg)?;
    let since = since.map(parse_since).transpose()?;
    let since = since.map_or(String::new(), |t| {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        );
        t.format(&format).unwrap_or_default()
    });
    let replayed = baton::app::replay::replay(&config, &since)?;
    out!("{}", baton::policy::LEGEND);
    out!("each row counts decided revisions: every decision people made, those a later revision replaced included");
    if replayed.is_empty() {
        out!(
            "no human decision on a route with a policy in {}",
            file.display()
        );
    }
    for (route, r) in &replayed {
        out!("route {route}:");
        out!(
            "  {:<22} {:>9} {:>9} {:>18} {:>6}",
            "",
            "approved",
            "rejected",
            "changes_requested",
            "other"
        );
        for would in [true, false] {
            let n = |answer: &str| {
                r.counts
                    .get(&(would, answer.to_string()))
                    .copied()
                    .unwrap_or(0)
            };
            let other: usize = r
                .counts
                .iter()
                .filter(|((w, a), _)| {
                    *w == would
                        && !["approved", "rejected", "changes_requested"].contains(&a.as_str())
                })
                .map(|(_, n)| n)
                .sum();
            let label = if would {
                "would auto-approve"
            } else {
                "would leave to people"
            };
            out!(
                "  {label:<22} {:>9} {:>9} {:>18} {other:>6}",
                n("approved"),
                n("rejected"),
                n("changes_requested")
            );
        }
        for line in &r.disagreements {
            out!("  disagrees: {line}");
        }
        for line in &r.unknown {
            out!("  not replayed: {line}");
        }
        for line in &r.errors {
            out!("  error: {line} (decides nothing: left to people)");
        }
    }
    let errors: usize = replayed.values().map(|r| r.errors.len()).sum();
    if errors > 0 {
        eprintln!(
            "baton policy replay: the candidate's policy failed on {errors} decided revision(s) \
             (listed as `error:`); fix it before it decides"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
