//! `[hooks.claude_code]`: which of a Claude Code session's tool calls `baton hook claude-code`
//! stops for a person (rules over the tool's name and arguments), where it sends them, and
//! what it answers when nobody decides in time. The daemon itself does not read this table;
//! it is checked at load all the same, so a mistake shows at `baton serve` and `baton doctor`
//! and not first in an agent's session.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    #[serde(default)]
    pub claude_code: Option<ClaudeCode>,
}

/// What the hook answers when nobody decided in time, or something failed: never "allow".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Claude Code asks the person at the terminal.
    Ask,
    /// The tool call is refused; the model is told why.
    Deny,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::Ask => "ask",
            Fallback::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaudeCode {
    /// The workspace handoffs go to: a name the configuration's `workspaces` find, or a
    /// folder path. Absent: the workspace the session's `cwd` is in (or under).
    #[serde(default)]
    pub workspace: Option<String>,
    /// Seconds to wait for a person before answering `on_timeout`; the handoff's `deadline`,
    /// so the daemon closes it `expired` then and nobody approves a call no longer waiting.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    #[serde(default = "default_on_timeout")]
    pub on_timeout: Fallback,
    /// What to answer when the hook cannot do its work (no daemon, a bad input, a decision
    /// whose signature does not check out).
    #[serde(default = "default_on_error")]
    pub on_error: Fallback,
    /// Trusted public keys, lines of `baton keys`; absent: the file `BATON_KEY` names (neither:
    /// the hook decides nothing). Never data_dir's: the hook must not run as the daemon's user.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The tool calls that need a person; a call no rule matches passes through.
    #[serde(default)]
    pub rules: Vec<HookRule>,
}

fn default_timeout_s() -> u64 {
    600
}
fn default_on_timeout() -> Fallback {
    Fallback::Ask
}
fn default_on_error() -> Fallback {
    Fallback::Ask
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookRule {
    /// A glob over the tool's name (`Bash`, `Write`, `mcp__github__*`).
    pub tool: String,
    /// A JSON pointer into the tool's input (`/command`, `/file_path`); with `regex` or
    /// `glob`, the value there must match (a string as it is, anything else as JSON text).
    /// Alone: the argument must be present.
    #[serde(default)]
    pub argument: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub glob: Option<String>,
    /// Shown to the reviewer as why this call was stopped.
    #[serde(default)]
    pub reason: Option<String>,
}

impl Hooks {
    /// Paths taken from the configuration file's folder, as the other paths of the file are.
    pub(super) fn resolve(self, base: &std::path::Path) -> Hooks {
        let claude_code = self.claude_code.map(|c| ClaudeCode {
            key_file: c.key_file.map(|k| base.join(k)),
            // A name has no slash; a path does.
            workspace: c.workspace.map(|w| match w.contains('/') {
                true => base.join(&w).display().to_string(),
                false => w,
            }),
            ..c
        });
        Hooks { claude_code }
    }
}

impl ClaudeCode {
    /// Checks the table as a whole; the message names the key and says how to fix it.
    pub fn check(&self) -> Result<(), String> {
        let at = "hooks.claude_code";
        if !(1..=86_400).contains(&self.timeout_s) {
            return Err(format!("{at}.timeout_s: must be 1 to 86400 seconds"));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = format!("{at}.rules[{i}]");
            glob::Pattern::new(&rule.tool)
                .map_err(|e| format!("{at}.tool: \"{}\" is not a glob: {e}", rule.tool))?;
            if rule.regex.is_some() && rule.glob.is_some() {
                return Err(format!("{at}: give regex or glob, not both"));
            }
            if let Some(pointer) = &rule.argument {
                if !(pointer.is_empty() || pointer.starts_with('/')) {
                    return Err(format!(
                        "{at}.argument: \"{pointer}\" is not a JSON pointer; start it with / \
                         (e.g. \"/command\")"
                    ));
                }
            } else if rule.regex.is_some() || rule.glob.is_some() {
                return Err(format!(
                    "{at}: regex and glob apply to an argument: name it (argument = \"/command\")"
                ));
            }
            if let Some(r) = &rule.regex {
                regex::Regex::new(r).map_err(|e| format!("{at}.regex: {e}"))?;
            }
            if let Some(g) = &rule.glob {
                glob::Pattern::new(g).map_err(|e| format!("{at}.glob: \"{g}\": {e}"))?;
            }
        }
        Ok(())
    }
}

impl HookRule {
    /// Whether a call of `tool` with `input` is one this rule stops. The rule was checked at
    /// load, so its patterns compile; one that does not (never at run time) matches, since a
    /// broken rule must stop calls rather than wave them through.
    pub fn matches(&self, tool: &str, input: &serde_json::Value) -> bool {
        let named = glob::Pattern::new(&self.tool).map_or(true, |g| g.matches(tool));
        if !named {
            return false;
        }
        let Some(pointer) = &self.argument else {
            return true;
        };
        let Some(value) = input.pointer(pointer) else {
            return false;
        };
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match (&self.regex, &self.glob) {
            (Some(r), _) => regex::Regex::new(r).map_or(true, |r| r.is_match(&text)),
            (None, Some(g)) => glob::Pattern::new(g).map_or(true, |g| g.matches(&text)),
            (None, None) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HookRule;
    use serde_json::json;

    fn rule(
        tool: &str,
        argument: Option<&str>,
        regex: Option<&str>,
        glob: Option<&str>,
    ) -> HookRule {
        HookRule {
            tool: tool.into(),
            argument: argument.map(Into::into),
            regex: regex.map(Into::into),
            glob: glob.map(Into::into),
            reason: None,
        }
    }

    #[test]
    fn a_rule_matches_by_tool_glob_and_argument_pattern() {
        let bash = json!({"command": "git push origin main"});
        assert!(rule("Bash", None, None, None).matches("Bash", &bash));
        assert!(!rule("Bash", None, None, None).matches("Read", &bash));
        assert!(rule("mcp__github__*", None, None, None).matches("mcp__github__merge", &bash));
        assert!(rule("Bash", Some("/command"), Some(r"^git\s+push"), None).matches("Bash", &bash));
        assert!(!rule("Bash", Some("/command"), Some(r"^rm "), None).matches("Bash", &bash));
        let write = json!({"file_path": "/srv/app/.env", "content": "x"});
        assert!(rule("Write", Some("/file_path"), None, Some("**/.env")).matches("Write", &write));
        assert!(!rule("Write", Some("/file_path"), None, Some("*.md")).matches("Write", &write));
        // Present or not, when no pattern is given.
        assert!(rule("*", Some("/content"), None, None).matches("Write", &write));
        assert!(!rule("*", Some("/missing"), None, None).matches("Write", &write));
        // A non-string argument is matched as its JSON text.
        let n = json!({"limit": 500});
        assert!(rule("*", Some("/limit"), Some("^[0-9]{3,}$"), None).matches("Read", &n));
    }
}
