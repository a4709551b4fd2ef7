//! The documentation against the code. Every configuration key the parser accepts is in the
//! configuration reference (the keys are asked of the parser itself, so a key added to the
//! code without a line in the reference fails here), every key the reference lists is one the
//! parser accepts, every `baton ...` command line printed in README.md and docs/ parses with
//! the binary's own command-line parser, and `baton --version` names the version and commit.

use crate::util::BIN;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file of docs/, with their names.
fn documents() -> Vec<(PathBuf, String)> {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p, text)
        })
        .collect()
}

// ---- configuration keys -------------------------------------------------------------------

const PROBE: &str = "zzz_not_a_configuration_key";

/// A path into the configuration: each step a key and whether it is an array of tables.
type KeyPath = Vec<(String, bool)>;

/// The keys the parser accepts in the table at `path`, read from its own refusal of an
/// unknown key there ("unknown field `x`, expected one of `a`, `b`, ..."); None when `path`
/// is not a table of keys.
fn accepted_at(path: &KeyPath) -> Option<Vec<String>> {
    let mut inner = toml::Table::new();
    inner.insert(PROBE.into(), toml::Value::Integer(1));
    let mut value = toml::Value::Table(inner);
    for (name, array) in path.iter().rev() {
        let wrapped = if *array {
            toml::Value::Array(vec![value])
        } else {
            value
        };
        let mut table = toml::Table::new();
        table.insert(name.clone(), wrapped);
        value = toml::Value::Table(table);
    }
    let text = toml::to_string(&value).unwrap();
    let err = baton::config::Config::parse(&text, "probe", Path::new(""))
        .expect_err("an unknown key is refused");
    let marker = format!("unknown field `{PROBE}`, expected");
    let rest = err.message.split(&marker).nth(1)?;
    let line = rest.lines().next().unwrap_or_default();
    let names: Vec<String> = line
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some(names)
}

fn display(path: &KeyPath, key: &str) -> String {
    let mut name = String::new();
    for (step, array) in path {
        name.push_str(step);
        if *array {
            name.push_str("[]");
        }
        name.push('.');
    }
    name.push_str(key);
    name
}

/// Every key the configuration parser accepts, at every depth.
fn accepted_keys(path: &mut KeyPath, out: &mut BTreeSet<String>) {
    let keys = accepted_at(path).unwrap_or_else(|| panic!("{path:?} is a table"));
    for key in keys {
        out.insert(display(path, &key));
        for array in [false, true] {
            path.push((key.clone(), array));
            let nested = accepted_at(path).is_some();
            if nested {
                accepted_keys(path, out);
            }
            path.pop();
            if nested {
                break;
            }
        }
    }
}

#[test]
fn every_configuration_key_the_parser_accepts_is_in_the_reference_and_no_other() {
    let mut keys = BTreeSet::new();
    accepted_keys(&mut Vec::new(), &mut keys);
    // The probe reached every level: top, tables and arrays of tables.
    for known in [
        "listen",
        "limits.max_upload_bytes",
        "routes[].min_approvals",
        "webhooks[].classifications",
        "agent_groups[].group",
        "search.commit_ms",
    ] {
        assert!(keys.contains(known), "{known} not found in {keys:?}");
    }
    let reference = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    // A table is documented by its section heading, its keys by rows.
    let documented = |k: &str| {
        reference.contains(&format!("| `{k}` |"))
            || reference.contains(&format!("## `[{k}]`"))
            || reference.contains(&format!("## `[[{k}]]`"))
    };
    let missing: Vec<&String> = keys.iter().filter(|k| !documented(k)).collect();
    assert!(
        missing.is_empty(),
        "keys the configuration accepts but docs/configuration.md does not list as a table row: {missing:?}"
    );
    // The reference's rows name keys the parser knows: no stale or misspelt key.
    let listed: Vec<String> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .map(|(k, _)| k.to_string())
        .collect();
    assert!(listed.len() > 50, "the rows were found: {listed:?}");
    let unknown: Vec<&String> = listed.iter().filter(|k| !keys.contains(*k)).collect();
    assert!(
        unknown.is_empty(),
        "docs/configuration.md lists keys the parser refuses: {unknown:?}"
    );
}

// ---- command lines ------------------------------------------------------------------------

/// Splits a shell line into words as the shell would for a simple command: quotes kept
/// together, stopping at an unquoted `|`, `;`, `&`, `>`, `<` or a `#` comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.push(c),
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    in_word = true;
                }
                '|' | ';' | '&' | '>' | '<' => break,
                '#' if !in_word => break,
                c if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                c => {
                    word.push(c);
                    in_word = true;
                }
            },
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The text without its optional parts (`[--token N]`), quoted text left as it is.
fn without_optional_parts(text: &str) -> String {
    let mut plain = String::new();
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => {
                depth += 1;
                continue;
            }
            (None, ']') => {
                depth -= 1;
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            plain.push(c);
        }
    }
    plain
}

/// A synopsis as the docs print one (`baton audit verify DIR [--config FILE]`,
/// `baton schema handoff|checkpoint|decision`, `QUERY...`) made into one command line: optional
/// parts left out, the first of alternatives taken, ellipses dropped.
fn from_synopsis(span: &str) -> Vec<String> {
    without_optional_parts(span)
        .split_whitespace()
        .map(|w| {
            w.split('|')
                .next()
                .unwrap()
                .trim_end_matches("...")
                .to_string()
        })
        .map(|w| w.trim_end_matches('…').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Every `baton` command line in a Markdown text: the lines of fenced blocks that run
/// `baton` (or `cargo run ... -- ARGS`), and the inline code spans that start with `baton `.
/// A section whose heading says "not built yet" (the spec's reserved names) is left out.
fn command_lines(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let mut prose = String::new();
    let mut fenced = false;
    let mut reserved = false;
    let mut pending = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced && line.starts_with('#') {
            reserved = line.contains("not built yet");
        }
        if reserved {
            continue;
        }
        if !fenced {
            prose.push_str(line);
            prose.push('\n');
            continue;
        }
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        let full = std::mem::take(&mut pending) + line;
        let words = shell_words(&without_optional_parts(full.trim()));
        if words.first().is_some_and(|w| w == "baton") {
            found.push(words);
        } else if words.first().is_some_and(|w| w == "cargo") {
            if let Some(i) = words.iter().position(|w| w == "--") {
                let mut cmd = vec!["baton".to_string()];
                cmd.extend(words[i + 1..].iter().cloned());
                found.push(cmd);
            }
        }
    }
    // Inline spans, which may wrap across lines.
    let joined = prose.replace('\n', " ");
    for span in joined.split('`').skip(1).step_by(2) {
        if span.starts_with("baton ") {
            found.push(from_synopsis(span));
        }
    }
    found
}

/// Whether the binary's command-line parser takes `line` (with `--help` appended, so that
/// nothing runs: unknown commands, unknown options and bad values are still refused).
fn parses(line: &[String]) -> Result<(), String> {
    let out = Command::new(BIN)
        .args(&line[1..])
        .arg("--help")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_baton_command_line_in_the_docs_parses() {
    let mut checked = BTreeSet::new();
    let mut failures = Vec::new();
    for (path, text) in documents() {
        for line in command_lines(&text) {
            if !checked.insert(line.clone()) {
                continue;
            }
            if let Err(e) = parses(&line) {
                failures.push(format!("{}: {}\n{e}", path.display(), line.join(" ")));
            }
        }
    }
    assert!(
        checked.len() >= 30,
        "too few command lines found: {checked:?}"
    );
    for expected in [
        "baton submit \"$WS\" \"$HANDOFF\"",
        "baton audit verify DIR --config FILE",
    ] {
        let words = shell_words(expected);
        assert!(checked.contains(&words), "{expected} not found");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_command_line_check_refuses_what_baton_refuses() {
    let lines = command_lines(
        "```sh\nbaton wait ./ws --timout 5   # misspelt\nbaton lokc ./ws a.md\n```\n\
         and `baton search --limit 500 QUERY` and `baton schema handoff|checkpoint`\n",
    );
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(parses(&lines[0]).is_err(), "an unknown option");
    assert!(parses(&lines[1]).is_err(), "an unknown command");
    assert!(parses(&lines[2]).is_err(), "a value out of range");
    assert_eq!(lines[3], ["baton", "schema", "handoff"]);
    assert!(parses(&lines[3]).is_ok());
    let reserved = command_lines(
        "## 11. Next (not built yet)\n\n`baton cluster status`\n\n## 12. Built\n\n`baton locks DIR [--json]`\n",
    );
    assert_eq!(reserved, [["baton", "locks", "DIR"]]);
}

// ---- version ------------------------------------------------------------------------------

#[test]
fn version_names_the_package_version_and_the_git_commit() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        stdout.trim(),
        format!("baton {} (commit {commit})", env!("CARGO_PKG_VERSION"))
    );
}
