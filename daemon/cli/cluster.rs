//! `baton cluster status`: the nodes of a cluster as the database sees them.

use baton::cluster::Cluster;
use baton::config::Config;
use std::path::Path;
use std::process::ExitCode;

pub fn status(config: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let Some(settings) = &config.cluster else {
        anyhow::bail!(
            "{}: no [cluster] section; this daemon runs alone, with its records in {}",
            config.source_name,
            config.data_dir.display()
        );
    };
    let status = Cluster::connect(settings)?.status()?;
    let healthy = status.expired_leases == 0 && status.nodes.iter().any(|n| n.live);
    if json {
        out!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        out!(
            "schema {}  lease ttl {} s  workspaces {}  expired leases {}",
            status.schema_version,
            status.ttl_s,
            status.workspaces,
            status.expired_leases
        );
        out!(
            "{:<24} {:<5} {:>7} {:>10}  {:<20}  url",
            "node",
            "live",
            "leases",
            "seen (s)",
            "started"
        );
        for n in &status.nodes {
            let live = if n.live { "yes" } else { "no" };
            out!(
                "{:<24} {:<5} {:>7} {:>10}  {:<20}  {}",
                n.node,
                live,
                n.leases,
                n.seen_s_ago,
                n.started_at,
                n.public_url
            );
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
