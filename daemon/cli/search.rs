//! `baton search` (reads the index directly, daemon running or not) and `baton reindex`
//! (with a progress bar on a terminal, plain lines otherwise).

use baton::config::Config;
use baton::search::reindex::{self, Status};
use baton::search::{Request, Search};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub struct Options<'a> {
    pub config: Option<&'a Path>,
    pub json: bool,
    pub query: String,
    pub workspace: Option<String>,
    pub kind: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

pub fn search(o: Options) -> anyhow::Result<ExitCode> {
    let config = Config::load(o.config)?;
    baton::private::readable(&config.data_dir).map_err(anyhow::Error::msg)?;
    let search = Search::open_read_only(&config)?;
    let hits = search.query(Request {
        q: o.query,
        workspace: o.workspace,
        kind: o.kind,
        limit: o.limit,
        offset: o.offset,
        ..Request::default()
    })?;
    if o.json {
        out!("{}", serde_json::to_string_pretty(&hits)?);
        return Ok(ExitCode::SUCCESS);
    }
    let bold = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for hit in &hits.hits {
        let key = hit
            .key
            .as_deref()
            .map(|k| format!("  {k}"))
            .unwrap_or_default();
        out!(
            "{}  {}  {}{key}",
            hit.workspace,
            hit.kind.as_str(),
            hit.path
        );
        out!("    {}", plain(&hit.snippet, bold));
    }
    for note in &hits.notes {
        err!("baton: note: {note}");
    }
    let shown = hits.hits.len();
    let partial = if hits.partial {
        " (partial: the time limit cut the search short)"
    } else {
        ""
    };
    let total = match (hits.total_is_lower_bound, hits.total_estimate) {
        (true, Some(about)) => format!("more than {} matches (about {about})", hits.total),
        (true, None) => format!("more than {} matches", hits.total),
        (false, _) => format!("{} matches", hits.total),
    };
    out!("{total}, {shown} shown{partial}");
    // Like grep: 1 when nothing matched, so scripts can test for it.
    Ok(if hits.total == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A snippet's HTML as terminal text: `<b>` as bold (or `[...]`), entities decoded.
fn plain(html: &str, bold: bool) -> String {
    let (on, off) = if bold {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("[", "]")
    };
    html.replace("<b>", on)
        .replace("</b>", off)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .replace('\n', " ")
}

pub fn reindex(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    baton::private::readable(&config.data_dir).map_err(anyhow::Error::msg)?;
    // The rebuilt index is the daemon's, owner-only like the rest of data_dir.
    baton::private::restrict_umask();
    let mut show = Show::new();
    let status = reindex::run(&config, &mut |s| show.update(s))?;
    show.finish(&status);
    Ok(ExitCode::SUCCESS)
}

/// Progress on standard error: a bar on a terminal, else a line every few seconds.
struct Show {
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
}

impl Show {
    fn new() -> Show {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}  {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Show {
            bar,
            last_line: None,
        }
    }

    fn update(&mut self, s: &Status) {
        if let Some(bar) = &self.bar {
            bar.set_length(s.bytes_total);
            bar.set_position(s.bytes_done);
            bar.set_message(format!("{}/{} files", s.files_done, s.files_total));
            return;
        }
        if self
            .last_line
            .is_some_and(|t| t.elapsed() < Duration::from_secs(2))
            && !s.done
        {
            return;
        }
        self.last_line = Some(Instant::now());
        let rate = s.bytes_done as f64 / s.seconds.max(1e-3);
        let eta = (s.bytes_total.saturating_sub(s.bytes_done)) as f64 / rate.max(1.0);
        err!(
            "reindex: {}/{} files, {:.1}/{:.1} MB, {:.1} MB/s, ETA {:.0} s",
            s.files_done,
            s.files_total,
            mb(s.bytes_done),
            mb(s.bytes_total),
            rate / 1e6,
            eta
        );
    }

    fn finish(&mut self, s: &Status) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        err!(
            "reindexed {} files ({:.1} MB) in {:.1} s ({:.1} MB/s), done by {}; the index holds {} documents in {} segments",
            s.files_done,
            mb(s.bytes_done),
            s.seconds,
            mb(s.bytes_done) / s.seconds.max(1e-3),
            if s.by == "daemon" { "the running daemon" } else { "this command (no daemon was running)" },
            s.documents,
            s.segments
        );
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
