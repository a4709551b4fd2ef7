//! `baton export [--since TIME] [--workspace GLOB] [--canaries]`: the decided handoffs as JSONL on
//! standard output (see `app::export` for what a line holds).

use baton::app::export::{export as write_export, ExportFilter};
use baton::config::Config;
use std::path::Path;
use std::process::ExitCode;
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, OffsetDateTime};

pub fn export(
    since: Option<&str>,
    workspace: Option<&str>,
    canaries: bool,
    config: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    baton::private::readable(&config.data_dir).map_err(anyhow::Error::msg)?;
    let filter = ExportFilter {
        since: since.map(parse_since).transpose()?,
        workspace: workspace
            .map(glob::Pattern::new)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--workspace: not a glob: {e}"))?,
        canaries,
    };
    let stdout = std::io::stdout();
    let count = write_export(&config, &filter, &mut stdout.lock())?;
    err!("baton: exported {count} decided handoff(s)");
    Ok(ExitCode::SUCCESS)
}

/// RFC 3339, a date (midnight UTC), or an age before now (`30m`, `24h`, `7d`).
pub(super) fn parse_since(text: &str) -> anyhow::Result<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(t);
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(text, &date_format) {
        return Ok(d.midnight().assume_utc());
    }
    let unit = |u: char| match u {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86400),
        _ => None,
    };
    let age = text
        .char_indices()
        .last()
        .and_then(|(i, u)| Some((text[..i].parse::<i64>().ok()?, unit(u)?)))
        .map(|(n, secs)| Duration::seconds(n.saturating_mul(secs)));
    match age {
        Some(age) => Ok(baton::clock::now_utc() - age),
        None => anyhow::bail!(
            "--since {text:?}: give an RFC 3339 time (2026-11-01T00:00:00Z), a date (2026-11-01) or an age (30m, 24h, 7d)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_dates_and_ages() {
        let t = parse_since("2026-11-01T10:00:00Z").unwrap();
        assert_eq!(t.hour(), 10);
        assert_eq!(parse_since("2026-11-01").unwrap().hour(), 0);
        let day = baton::clock::now_utc() - parse_since("1d").unwrap();
        assert!(day >= Duration::hours(23) && day <= Duration::hours(25));
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("5x").is_err());
    }
}
