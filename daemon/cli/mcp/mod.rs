//! `baton mcp [--config FILE]`: the agent-side commands as Model Context Protocol tools over
//! stdio (rmcp), for agents whose host speaks MCP. Each tool calls the function the CLI
//! command calls (`submit::check`, `agent::Waited`, the contract's validation), on
//! files alone, so it works with or without a daemon running on the same configuration;
//! `search` alone asks the daemon (`search`), since the index is in data_dir, which an agent's
//! user must not be able to read.
//! Standard output is the protocol: nothing else may be printed there. `submit_handoff` also
//! runs as an MCP task (see `tasks`, and `tasks_ext` for the 2026-07-28 extension), for
//! hosts that fetch the decision later.

mod locks;
mod replies;
mod search;
mod tasks;
mod tasks_ext;
mod view;

use crate::cli::agent::Waited;
use crate::cli::submit;
use crate::cli::tools_io;
use crate::cli::trust::Root;
use baton::config::Config;
use baton::contract::validate::{self, Format};
use baton::contract::{Checkpoint, Handoff, Limits};
use baton::workspace::{self, Workspace};
use locks::{LockArgs, UnlockArgs};
use replies::{blocking, failed, invalid, unserved};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, GetTaskParams,
    GetTaskResult, Implementation, ServerCapabilities, ServerConfig, UpdateTaskParams,
};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_handler, tool_router, ErrorData, RoleServer, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest `wait_for_decision` may block in one call; an agent calls again to go on.
const MAX_WAIT_S: f64 = 3600.0;
const DEFAULT_WAIT_S: f64 = 300.0;

/// `only`: globs over workspace names (`--workspace`); empty serves every workspace.
/// `unchecked`: `--unchecked`, decisions taken as written when there is no key to check them
/// with (see `trust::Root`).
pub fn mcp(config: Option<&Path>, only: &[String], unchecked: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(config)?;
    let only = only
        .iter()
        .map(|g| {
            glob::Pattern::new(g).map_err(|e| anyhow::anyhow!("--workspace {g:?}: not a glob: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let trust = Root::find(None, unchecked)?;
    let own_keys = reads_the_daemons_keys(&config, &trust)?;
    if let Some(why) = &own_keys {
        // Served all the same: the tools that do not take decisions work, and those that do
        // answer this.
        tracing::warn!("decisions are refused: {why}");
    } else if let Err(why) = trust.keys() {
        tracing::warn!("decisions cannot be taken: {why}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let mut server = Baton::new(config, only, trust);
        server.own_keys = own_keys.map(Arc::new);
        // Room for a document at the size limit, escaped inside a JSON-RPC message.
        let max_line = 4 * server.limits.max_bytes + 64 * 1024;
        let tasks = Arc::new(tasks::Tasks::new(server.clone()));
        let (transport, writer) = tools_io::stdio(max_line, tasks);
        let service = server.serve(transport).await?;
        service.waiting().await?;
        // The last answers are in the pipe: let them reach standard output.
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The variable that lets `baton mcp` take signed decisions while it can read the daemon's
/// data_dir, for a setup that knowingly runs the agent's host as the daemon's user.
const AS_DAEMON_USER_VAR: &str = "BATON_MCP_AS_DAEMON_USER";

/// Why no decision this server checks proves anything, if it runs as a user who can read the
/// daemon's data_dir (its owner, or root): the agent it serves runs as that user too, so it
/// can read the signing key (and the key of mail links) and sign any decision itself, as
/// `baton hook claude-code` refuses for the same reason. None when it cannot, when decisions
/// are taken unchecked anyway (`--unchecked`: nothing is claimed), or when its user chose to
/// go on (`BATON_MCP_AS_DAEMON_USER=1`, warned about).
fn reads_the_daemons_keys(config: &Config, trust: &Root) -> anyhow::Result<Option<String>> {
    if matches!(trust, Root::Unchecked) || std::fs::read_dir(&config.data_dir).is_err() {
        return Ok(None);
    }
    match std::env::var(AS_DAEMON_USER_VAR).ok().as_deref() {
        None | Some("" | "0" | "false") => {}
        Some("1" | "true") => {
            tracing::warn!(
                "{AS_DAEMON_USER_VAR}=1: this server can read the daemon's data_dir ({}), and \
                 so can the agent it serves: a decision it answers as verified may be one the \
                 agent signed with the daemon's key",
                config.data_dir.display()
            );
            return Ok(None);
        }
        Some(other) => anyhow::bail!(
            "{AS_DAEMON_USER_VAR}={other:?}: set it to 1 to take decisions while running as a \
             user who can read data_dir, or unset it"
        ),
    }
    Ok(Some(format!(
        "baton mcp runs as a user who can read the daemon's data_dir ({}), and so does the \
         agent it serves: it can read the daemon's signing key and sign any decision itself, so \
         no decision checked here proves a person made it. Run the MCP host as a user other \
         than the daemon's (one in the workspaces' group), with BATON_URL (or BATON_KEY); to \
         go on knowing this, set {AS_DAEMON_USER_VAR}=1",
        config.data_dir.display()
    )))
}

/// The digests of the handoff bytes written, by workspace folder and key (`Baton::written`).
type Written = std::collections::HashMap<(std::path::PathBuf, String), Vec<String>>;

#[derive(Clone)]
struct Baton {
    config: Arc<Config>,
    limits: Limits,
    /// The workspaces this server may act on (`--workspace`); empty: all of the config's.
    /// An agent's host given one workspace must not read or write the others, nor learn
    /// that they exist.
    only: Arc<Vec<glob::Pattern>>,
    /// What a decision must be signed by to be taken (`BATON_KEY`, `BATON_URL`'s keys), or
    /// `--unchecked`; with none of them, every tool that takes a decision refuses.
    trust: Arc<Root>,
    /// Why decisions are refused: this server's user can read the daemon's keys (see
    /// `reads_the_daemons_keys`).
    own_keys: Option<Arc<String>>,
    /// The session's MCP tasks, of both wire formats (see `tasks`).
    tasks: tasks::Table,
    /// The digests of the handoff bytes this server last wrote, by workspace folder and key:
    /// `wait_for_decision` pins its wait to them (see `Waited::written`), so a same-id rewrite
    /// by a writer of the share is never what answers the host.
    written: Arc<std::sync::Mutex<Written>>,
    tool_router: ToolRouter<Self>,
}

#[derive(Deserialize, JsonSchema)]
struct SubmitArgs {
    /// The workspace's name (its folder name), one of the configuration's workspaces.
    workspace: String,
    /// The handoff (handoff_version 1.x), as handoff.json holds it.
    #[schemars(with = "Handoff")]
    handoff: Value,
    /// Only validate: report problems or the key, write nothing.
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize, JsonSchema)]
struct CheckpointArgs {
    /// The workspace's name.
    workspace: String,
    /// The checkpoint (checkpoint_version 1.x).
    #[schemars(with = "Checkpoint")]
    checkpoint: Value,
    /// File name under checkpoints/ (default: TASK-NNNN.json, the task_id and the step in
    /// four digits, e.g. INC-2291-0003.json).
    #[serde(default)]
    file: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
struct WaitArgs {
    /// The workspace's name.
    workspace: String,
    /// The key `submit_handoff` answered: the call then refuses when another handoff is in
    /// place, instead of waiting on whatever handoff is there (which a writer of the share
    /// may have put there, with another handoff's genuine decision).
    #[serde(default)]
    key: Option<String>,
    /// Seconds to wait before answering `{"state": "pending", "timed_out": true}` (default 300, at most 3600).
    #[serde(default)]
    timeout_s: Option<f64>,
}

#[derive(Deserialize, JsonSchema)]
struct SearchArgs {
    /// Words, "phrases", prefix*, OR, -word, and filters (workspace: kind: agent: outcome:
    /// trigger: key: task: path: after:DATE before:DATE), as `baton search` takes them.
    query: String,
    /// Only this workspace.
    #[serde(default)]
    workspace: Option<String>,
    /// Only this kind: artifact, handoff, checkpoint or decision.
    #[serde(default)]
    kind: Option<String>,
    /// Hits to return (1 to 100, default 20).
    #[serde(default)]
    limit: Option<usize>,
    /// Hits to skip (paging).
    #[serde(default)]
    offset: Option<usize>,
}

#[derive(Deserialize, JsonSchema)]
struct WorkspaceArgs {
    /// The workspace's name.
    workspace: String,
}

#[tool_router(router = tool_router)]
impl Baton {
    fn new(config: Config, only: Vec<glob::Pattern>, trust: Root) -> Baton {
        Baton {
            only: Arc::new(only),
            trust: Arc::new(trust),
            own_keys: None,
            limits: config.limits,
            config: Arc::new(config),
            tasks: tasks::Table::default(),
            written: Arc::default(),
            tool_router: Self::tool_router(),
        }
    }

    /// Validates a handoff as the daemon will and, when it is valid, writes it atomically as
    /// the workspace's handoff.json; invalid: the problems with JSON pointers, nothing written.
    #[tool(name = "submit_handoff")]
    async fn submit_handoff(&self, Parameters(args): Parameters<SubmitArgs>) -> CallToolResult {
        self.write_handoff(args).0
    }

    /// `submit_handoff`, and the digests of the bytes it wrote (None when it wrote nothing),
    /// which a wait for its decision is pinned to.
    fn write_handoff(&self, args: SubmitArgs) -> (CallToolResult, Option<Vec<String>>) {
        let written = |result| (result, None);
        let ws = match self.workspace(&args.workspace) {
            Ok(ws) => ws,
            Err(e) => return written(e),
        };
        let bytes = match self.sized(&args.handoff, "handoff") {
            Ok(bytes) => bytes,
            Err(e) => return written(e),
        };
        let key = match submit::check(&ws, Some(&self.config), Format::Json, &bytes, &self.limits) {
            Ok(key) => key,
            Err(problems) => return written(invalid(&problems)),
        };
        // After changes_requested, a new key starts unrelated work: say which id revises.
        // Only from a decision the daemon signed, when there are keys to check with.
        let unrevised = crate::cli::trust::unrevised_warning(&ws, &key, &self.trust);
        let flag = |answer: &mut Value| {
            if let Some(u) = &unrevised {
                answer["revision_warning"] = json!(u.message);
                answer["revise_with_id"] = json!(u.id);
            }
        };
        if args.dry_run {
            let mut answer = json!({ "valid": true, "key": key });
            flag(&mut answer);
            return written(CallToolResult::structured(answer));
        }
        let path = ws.root.join(workspace::HANDOFF_FILE);
        if let Err(e) = ws.write(&path, &bytes) {
            return written(failed(format!(
                "cannot write {}: {e}; nothing was submitted",
                path.display()
            )));
        }
        let digests = crate::cli::agent::digests_of_bytes(Format::Json, &bytes);
        self.written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((ws.root.clone(), key.clone()), digests.clone());
        let shadowed: Vec<String> = ws
            .handoff_file()
            .shadowed
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut answer = json!({
            "submitted": true, "key": key, "path": path, "ignored_older_files": shadowed,
            "next": "call wait_for_decision with this workspace",
        });
        flag(&mut answer);
        unserved(&ws, &mut answer);
        (CallToolResult::structured(answer), Some(digests))
    }

    /// Validates a checkpoint and writes it atomically under the workspace's checkpoints/.
    #[tool(name = "write_checkpoint")]
    async fn write_checkpoint(
        &self,
        Parameters(args): Parameters<CheckpointArgs>,
    ) -> CallToolResult {
        let ws = match self.workspace(&args.workspace) {
            Ok(ws) => ws,
            Err(e) => return e,
        };
        let bytes = match self.sized(&args.checkpoint, "checkpoint") {
            Ok(bytes) => bytes,
            Err(e) => return e,
        };
        let accepted = match validate::checkpoint(&bytes, &self.limits) {
            Ok(a) => a,
            Err(rejected) => return invalid(&rejected.problems),
        };
        let name = match checkpoint_name(args.file.as_deref(), &accepted.doc) {
            Ok(name) => name,
            Err(e) => return e,
        };
        // Confined: a checkpoints/ swapped for a symlink is refused, never followed.
        match ws.write(&ws.checkpoints_dir().join(&name), &bytes) {
            Ok(()) => {
                CallToolResult::structured(json!({ "written": format!("checkpoints/{name}") }))
            }
            Err(e) => failed(format!("cannot write checkpoints/{name}: {e}")),
        }
    }

    /// Blocks until the handoff in place when the call began is decided (returns its
    /// decision, signed by the daemon's key: `verified` true, or false when the server runs
    /// with --unchecked; `withdrawn` if a newer handoff superseded it meanwhile; an error if a
    /// revision other than the one submitted, a same-id rewrite, was decided) or the
    /// timeout passes (returns `{"state": "pending", "timed_out": true}`: call again to go on
    /// waiting). With no key to check decisions with, an error saying what to set, at once.
    #[tool(name = "wait_for_decision")]
    async fn wait_for_decision(&self, Parameters(args): Parameters<WaitArgs>) -> CallToolResult {
        let ws = match self.workspace(&args.workspace) {
            Ok(ws) => ws,
            Err(e) => return e,
        };
        let timeout = args.timeout_s.unwrap_or(DEFAULT_WAIT_S);
        if !(0.0..=MAX_WAIT_S).contains(&timeout) {
            return failed(format!("timeout_s must be between 0 and {MAX_WAIT_S}"));
        }
        let deadline = Instant::now() + Duration::from_secs_f64(timeout);
        let trusted = match self.trusted().await {
            Ok(trusted) => trusted,
            Err(e) => return e,
        };
        let verified = trusted.is_some();
        let ws2 = ws.clone();
        let key = args.key.clone();
        let written = self.written.clone();
        // Pinned to the bytes this server wrote under the key, when it wrote that handoff;
        // else to the bytes in place as the wait begins.
        let start = move || {
            let started = match &key {
                Some(key) => Waited::for_key(&ws2, key),
                None => Waited::start(&ws2),
            }?;
            let Some(key) = started.key().map(str::to_string) else {
                return Ok(started);
            };
            let ours = written
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&(ws2.root.clone(), key.clone()))
                .cloned();
            Ok(match ours {
                Some(digests) => Waited::written(&key, digests),
                None => started,
            })
        };
        let mut waited = match off_thread(move || start().map(|w| w.trusting(trusted))).await {
            Ok(waited) => waited,
            Err(e) => return failed(e),
        };
        if let Some(key) = waited.key() {
            // Says which handoff this call answers for, as `baton wait` does.
            tracing::info!(workspace = %ws.name, "waiting for the decision on handoff {key}");
        }
        loop {
            let ws2 = ws.clone();
            let step = off_thread(move || waited.answer(&ws2).map(|d| (waited, d))).await;
            match step {
                Ok((_, Some(d))) => {
                    return CallToolResult::structured(
                        json!({ "state": "decided", "decision": d, "verified": verified }),
                    )
                }
                Ok((back, None)) => waited = back,
                Err(e) => return failed(e),
            }
            if Instant::now() >= deadline {
                let mut answer = json!({ "state": "pending", "timed_out": true });
                if let Some(why) = &waited.refused {
                    answer["refused"] = json!(format!("decision.json is not taken: {why}"));
                }
                unserved(&ws, &mut answer);
                return CallToolResult::structured(answer);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Searches artifacts, handoffs, checkpoints and decisions of the workspaces the agent's
    /// token may see (and this server serves), as `baton search --json` prints them: asked of
    /// the daemon at `BATON_URL` with `BATON_TOKEN`.
    #[tool(name = "search")]
    async fn search(&self, Parameters(args): Parameters<SearchArgs>) -> CallToolResult {
        let limit = args.limit.unwrap_or(20);
        if !(1..=100).contains(&limit) {
            return failed("limit must be between 1 and 100");
        }
        let kinds = ["artifact", "handoff", "checkpoint", "decision"];
        if args.kind.as_deref().is_some_and(|k| !kinds.contains(&k)) {
            return failed("kind must be artifact, handoff, checkpoint or decision");
        }
        let served = match (self.only.is_empty(), self.served()) {
            (true, _) => None,
            (false, Ok(served)) => Some(served.into_iter().map(|w| w.name).collect()),
            (false, Err(e)) => return e,
        };
        let asked = search::Asked {
            query: args.query,
            workspace: args.workspace,
            kind: args.kind,
            limit,
            offset: args.offset.unwrap_or(0),
        };
        match baton::blocking::run(move || search::search(asked, served)).await {
            Ok(Ok(hits)) => CallToolResult::structured(json!(hits)),
            Ok(Err(e)) => failed(e),
            Err(e) => failed(e.to_string()),
        }
    }

    /// Takes an advisory lock on a workspace file (or renews one's own): a fencing token
    /// that only grows, or the holder, purpose and expiry of the lock in the way.
    #[tool(name = "lock_file")]
    async fn lock_file(&self, Parameters(args): Parameters<LockArgs>) -> CallToolResult {
        match self.workspace(&args.workspace) {
            Ok(ws) => blocking(move || locks::lock(&ws, args)).await,
            Err(e) => e,
        }
    }

    /// Releases a lock its owner holds (with the grant's token, if given).
    #[tool(name = "unlock_file")]
    async fn unlock_file(&self, Parameters(args): Parameters<UnlockArgs>) -> CallToolResult {
        match self.workspace(&args.workspace) {
            Ok(ws) => blocking(move || locks::unlock(&ws, args)).await,
            Err(e) => e,
        }
    }

    /// The handoff in place in a workspace: its key, whether it is decided, its decision and
    /// problems if any, and the checkpoints of its task.
    #[tool(name = "get_handoff")]
    async fn get_handoff(&self, Parameters(args): Parameters<WorkspaceArgs>) -> CallToolResult {
        let ws = match self.workspace(&args.workspace) {
            Ok(ws) => ws,
            Err(e) => return e,
        };
        let limits = self.limits;
        let trusted = match self.trusted().await {
            Ok(trusted) => trusted,
            Err(e) => return e,
        };
        let view = baton::blocking::run(move || view::handoff_view(&ws, &limits, trusted)).await;
        match view {
            Ok(Ok(view)) => CallToolResult::structured(view),
            Ok(Err(e)) => failed(format!("{e:#}")),
            Err(e) => failed(e.to_string()),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Baton {
    /// `submit_handoff` from a host that declared the 2026-07-28 tasks extension runs as a
    /// task of it; every other call as the tool it names.
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let declared = context
            .client_capabilities()
            .is_some_and(|caps| caps.supports_tasks());
        if declared && request.name == tasks::TASK_TOOL {
            return tasks_ext::call(&tasks::Tasks::new(self.clone()), request).await;
        }
        let call = ToolCallContext::new(self, request, context);
        self.tool_router.call(call).await
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        tasks_ext::get(&tasks::Tasks::new(self.clone()), &request.task_id)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tasks_ext::update(&tasks::Tasks::new(self.clone()), &request.task_id)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tasks_ext::cancel(&tasks::Tasks::new(self.clone()), &request.task_id).await
    }

    fn get_info(&self) -> ServerConfig {
        // `enable_tasks`: the 2026-07-28 extension; revision 2025-11-25's `tasks` capability is
        // added to `initialize` by the gate (`tasks`).
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tasks()
            .build();
        let mut info = ServerConfig::new(capabilities);
        info.server_info = Implementation::new("baton", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "baton: hand work to a human reviewer. submit_handoff, then wait_for_decision; \
             write_checkpoint after each step. After changes_requested, submit the revision \
             with the same id. Tools take the workspace's name. Hosts with MCP tasks may call \
             submit_handoff as a task: the decision is then the task's result."
                .into(),
        );
        info
    }
}

impl Baton {
    /// The keys a decision must be signed by, now (`BATON_URL`'s are fetched on each call, and
    /// again by a wait that meets an unknown key id, so a rotated key is known); None: taken
    /// unchecked, as chosen. With no key to check with, or when this server's user can read
    /// the daemon's keys (`own_keys`), the error result that says why and what to do.
    async fn trusted(&self) -> Result<Option<crate::cli::trust::Keys>, CallToolResult> {
        if let Some(why) = &self.own_keys {
            return Err(failed(why.as_str()));
        }
        let trust = self.trust.clone();
        match baton::blocking::run(move || trust.keys()).await {
            Ok(Ok(keys)) => Ok(keys),
            Ok(Err(why)) => Err(failed(why)),
            Err(e) => Err(failed(e.to_string())),
        }
    }

    /// The configuration's workspaces this server serves (see `only`).
    fn served(&self) -> Result<Vec<Workspace>, CallToolResult> {
        let found = workspace::discover(&self.config.workspaces)
            .map_err(|e| failed(format!("cannot list the configuration's workspaces: {e}")))?;
        let only = &self.only;
        let mut served = found.workspaces;
        served.retain(|w| only.is_empty() || only.iter().any(|g| g.matches(&w.name)));
        Ok(served)
    }

    /// The served workspace named `name`; one not served is answered as one that does not
    /// exist, and the names offered are the served ones only.
    fn workspace(&self, name: &str) -> Result<Workspace, CallToolResult> {
        let served = self.served()?;
        let names: Vec<&str> = served.iter().map(|w| w.name.as_str()).collect();
        served
            .iter()
            .find(|w| w.name == name)
            .cloned()
            .ok_or_else(|| {
                failed(format!(
                    "no workspace \"{name}\" in {}; known: {}",
                    self.config.source_name,
                    names.join(", ")
                ))
            })
    }

    /// A document argument as the bytes to validate and write, refused over the size limit.
    fn sized(&self, value: &Value, what: &str) -> Result<Vec<u8>, CallToolResult> {
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| failed(e.to_string()))?;
        bytes.push(b'\n');
        if bytes.len() > self.limits.max_bytes {
            let p = baton::contract::json::too_large(bytes.len() as u64, &self.limits);
            return Err(failed(format!("{what}: {}", p.message)));
        }
        Ok(bytes)
    }
}

/// The file name of a checkpoint: the one asked for (a plain `*.json` name), or TASK-STEP.json.
fn checkpoint_name(asked: Option<&str>, doc: &Checkpoint) -> Result<String, CallToolResult> {
    let name = match asked {
        Some(name) => name.to_string(),
        None => {
            let task: String = doc
                .task_id
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .take(64)
                .collect();
            format!("{task}-{:04}.json", doc.step)
        }
    };
    let plain =
        !name.starts_with('.') && !name.contains(['/', '\\', '\0']) && name.ends_with(".json");
    match plain && name.len() <= 128 {
        true => Ok(name),
        false => Err(failed(format!(
            "file \"{name}\": give a plain name ending in .json (no folders, not hidden)"
        ))),
    }
}

/// Runs file work off the protocol's threads; an error as the message to answer with.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T, String> {
    match baton::blocking::run(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(e) => Err(e.to_string()),
    }
}
