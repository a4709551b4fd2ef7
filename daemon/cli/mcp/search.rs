//! The MCP tool `search`: asks the daemon (`GET /api/v1/search`, `BATON_URL` and the agent's
//! `BATON_TOKEN`), which answers for the token's workspaces only. Reading the index in
//! data_dir instead would need the daemon's user, who can read data_dir's keys (the signing
//! key, the key of mail links): an agent's host run as that user could forge any approval.

use crate::cli::api::{answered, Api, Refused};
use baton::search::Hits;

/// Most served workspaces asked one by one when the server serves several and the call
/// names none (each is one request to the daemon).
const MAX_FAN_OUT: usize = 16;

/// The API's largest page (`limit`).
const MAX_PAGE: usize = 100;

/// One search, as the tool was called.
pub struct Asked {
    pub query: String,
    pub workspace: Option<String>,
    pub kind: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// The hits for `asked` among `served` (None: every workspace the token sees; Some: the
/// names `--workspace` lets this server serve, none other asked about nor answered).
pub fn search(asked: Asked, served: Option<Vec<String>>) -> Result<Hits, String> {
    let api = Api::from_env().map_err(|e| {
        format!("search asks the daemon (GET /api/v1/search) for the workspaces your token may see: {e}")
    })?;
    let ask = |workspace: Option<&str>, limit: usize, offset: usize| {
        one(&api, &asked, workspace, limit, offset)
    };
    let Some(served) = served else {
        return ask(asked.workspace.as_deref(), asked.limit, asked.offset);
    };
    let names: Vec<&str> = match &asked.workspace {
        // One not served is answered as one that does not exist: no match.
        Some(name) => served
            .iter()
            .filter(|s| *s == name)
            .map(String::as_str)
            .collect(),
        None => served.iter().map(String::as_str).collect(),
    };
    match names.as_slice() {
        [] => Ok(Hits::default()),
        [one] => ask(Some(one), asked.limit, asked.offset),
        _ if names.len() > MAX_FAN_OUT || asked.offset + asked.limit > MAX_PAGE => Err(format!(
            "this server serves {} workspaces: name one in `workspace` to search {}",
            names.len(),
            match names.len() > MAX_FAN_OUT {
                true => "(the daemon is asked about each served workspace, at most 16)",
                false => "past the first 100 hits",
            }
        )),
        _ => {
            // Each served workspace's first offset + limit hits, merged: the page is among them.
            let pages = names
                .iter()
                .map(|w| ask(Some(w), asked.offset + asked.limit, 0))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(merged(pages, asked.limit, asked.offset))
        }
    }
}

/// `GET URL/api/v1/search` for one page.
fn one(
    api: &Api,
    asked: &Asked,
    workspace: Option<&str>,
    limit: usize,
    offset: usize,
) -> Result<Hits, String> {
    let (address, request) = api.get("/api/v1/search");
    let mut request = request
        .query("q", &asked.query)
        .query("limit", &limit.to_string())
        .query("offset", &offset.to_string());
    if let Some(w) = workspace {
        request = request.query("workspace", w);
    }
    if let Some(k) = &asked.kind {
        request = request.query("kind", k);
    }
    let (status, answer) = answered(&address, request.call()).map_err(|e| match e {
        Refused::Other(why) => format!("cannot reach the daemon at BATON_URL: {why}"),
        other => other.to_string(),
    })?;
    let said = answer["error"].as_str().unwrap_or("no error given");
    match status {
        200 => serde_json::from_value(answer)
            .map_err(|e| format!("{address} answered what is not a search's answer: {e}")),
        401 | 403 => Err(format!(
            "the daemon refused BATON_TOKEN ({status}: {said}): set it to your agent's token"
        )),
        code => Err(format!("{address} answered {code}: {said}")),
    }
}

/// The pages of several workspaces as one: counts added, hits by score, the page cut out.
fn merged(pages: Vec<Hits>, limit: usize, offset: usize) -> Hits {
    let mut all = Hits::default();
    // A page counted exactly adds its total to the others' estimates.
    let estimated = pages.iter().any(|p| p.total_estimate.is_some());
    for page in pages {
        all.total += page.total;
        all.total_is_lower_bound |= page.total_is_lower_bound;
        if estimated {
            let about = page.total_estimate.unwrap_or(page.total as u64);
            all.total_estimate = Some(all.total_estimate.unwrap_or(0) + about);
        }
        all.hits.extend(page.hits);
        for (name, n) in page.facets.workspace {
            *all.facets.workspace.entry(name).or_default() += n;
        }
        for (kind, n) in page.facets.kind {
            *all.facets.kind.entry(kind).or_default() += n;
        }
        all.facets_truncated |= page.facets_truncated;
        all.partial |= page.partial;
        for note in page.notes {
            if !all.notes.contains(&note) {
                all.notes.push(note);
            }
        }
    }
    all.hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    all.hits = all.hits.into_iter().skip(offset).take(limit).collect();
    all
}
