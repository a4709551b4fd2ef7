//! `agent_group` per workspace: `[[agent_groups]]` entries give the workspaces whose name
//! matches one of their globs their own group, so the agents of one team (one group) cannot
//! read or write another team's workspaces; a workspace no entry matches has the global
//! `agent_group`, if set. One group for every workspace means every agent in it can read and
//! create files in every workspace's `inbox/`, `checkpoints/` and `handoff.json`.

use super::Config;
use serde::Deserialize;

/// One `[[agent_groups]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgentGroup {
    /// Globs over workspace names.
    workspaces: Vec<String>,
    /// A group name of this system.
    group: String,
}

/// One resolved entry: the globs, the group's name and id.
#[derive(Debug, Clone)]
pub struct AgentGroup {
    pub workspaces: Vec<glob::Pattern>,
    pub name: String,
    pub gid: u32,
}

/// Resolves the entries: each glob parses and each group exists, or an error naming the key.
pub(super) fn resolve(raw: &[RawAgentGroup]) -> Result<Vec<AgentGroup>, String> {
    raw.iter()
        .enumerate()
        .map(|(i, g)| {
            let gid = crate::workspace::file_modes::group_id(&g.group).ok_or_else(|| {
                format!(
                    "agent_groups[{i}].group: no group named \"{}\" on this system (see /etc/group)",
                    g.group
                )
            })?;
            let workspaces = g
                .workspaces
                .iter()
                .map(|w| glob::Pattern::new(w))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("agent_groups[{i}].workspaces: not a glob: {e}"))?;
            Ok(AgentGroup {
                workspaces,
                name: g.group.clone(),
                gid,
            })
        })
        .collect()
}

impl Config {
    /// The group whose agents work in workspace `ws`: the first `[[agent_groups]]` entry that
    /// matches its name, else `agent_group`; None: modes are left alone.
    pub fn group_for(&self, ws: &str) -> Option<(&str, u32)> {
        let own = self
            .agent_groups
            .iter()
            .find(|g| g.workspaces.iter().any(|p| p.matches(ws)));
        match own {
            Some(g) => Some((g.name.as_str(), g.gid)),
            None => self.agent_group.as_ref().map(|(n, gid)| (n.as_str(), *gid)),
        }
    }
}
