//! The programs the tests drive that nobody here wrote, and what to install when one is
//! missing. `bash .ci/run` installs them all (Debian packages with apt-get, a Python
//! virtualenv with pip) and then runs the tests: a test that needs a missing one fails at its
//! start with one message naming what to install, not later with a panic deep in the test.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What to run instead of installing things one by one.
const CI: &str = "or run `bash .ci/run`, which installs everything the tests need";

/// `program` as found on PATH; a test that needs it fails here, naming Debian's `package`.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
    });
    found.unwrap_or_else(|| {
        panic!(
            "this test needs `{program}`, which is not installed: apt-get install {package}, {CI}"
        )
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The Python packages the tests import (as `.ci/run` installs them into the virtualenv; keep
/// the two lists alike): (module, PyPI name).
const PYTHON_PACKAGES: [(&str, &str); 14] = [
    ("mcp", "mcp"),
    ("schemathesis", "schemathesis"),
    ("openapi_spec_validator", "openapi-spec-validator"),
    ("cryptography", "cryptography"),
    ("securesystemslib", "securesystemslib"),
    ("prometheus_client", "prometheus-client"),
    ("claude_agent_sdk", "claude-agent-sdk"),
    ("slack_sdk", "slack_sdk"),
    ("http_ece", "http_ece"),
    ("pywebpush", "pywebpush"),
    ("a2a", "a2a-sdk"),
    ("agents", "openai-agents"),
    ("langgraph", "langgraph"),
    ("flit_core", "flit_core"),
];

/// The virtualenv's Python, with every package the tests import: `BATON_MCP_PYTHON` if set,
/// else `~/.cache/baton/mcp-venv/bin/python`. Checked once per test run.
pub fn python() -> PathBuf {
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CHECKED
        .get_or_init(find_python)
        .clone()
        .unwrap_or_else(|why| panic!("{why}"))
}

fn find_python() -> Result<PathBuf, String> {
    let venv = "~/.cache/baton/mcp-venv";
    let pip_names: Vec<_> = PYTHON_PACKAGES.iter().map(|(_, pypi)| *pypi).collect();
    let install = format!(
        "python3 -m venv {venv} && {venv}/bin/pip install {}",
        pip_names.join(" ")
    );
    let python = match std::env::var_os("BATON_MCP_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => {
            let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
            PathBuf::from(home).join(".cache/baton/mcp-venv/bin/python")
        }
    };
    if !python.exists() {
        return Err(format!(
            "this test needs a Python virtualenv with {}: {} is missing; make it with `{install}` \
             (or set BATON_MCP_PYTHON to a Python that has them), {CI}",
            pip_names.join(", "),
            python.display()
        ));
    }
    let modules: Vec<_> = PYTHON_PACKAGES.iter().map(|(module, _)| *module).collect();
    let probe = format!(
        "import importlib.util, sys\n\
         missing = [m for m in {modules:?} if importlib.util.find_spec(m) is None]\n\
         print(' '.join(missing))"
    );
    let out = std::process::Command::new(&python)
        .args(["-c", &probe])
        .output()
        .map_err(|e| format!("{} does not run: {e}; {CI}", python.display()))?;
    let missing = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !missing.is_empty() {
        let missing: Vec<_> = PYTHON_PACKAGES
            .iter()
            .filter(|(module, _)| missing.split(' ').any(|m| m == *module))
            .map(|(_, pypi)| *pypi)
            .collect();
        return Err(format!(
            "{} lacks the Python packages {missing:?}{}: install them with `{} -m pip install {}`, {CI}",
            python.display(),
            String::from_utf8_lossy(&out.stderr),
            python.display(),
            missing.join(" ")
        ));
    }
    Ok(python)
}
