//! The pool's connections, made cheap to use: PostgreSQL counts every statement sent outside a
//! transaction block as a transaction of its own, and the client's plain `query(&str)` sends
//! two (a prepare, then the execution), while the usual pool check on each checkout (an empty
//! query) sends a third. So a connection here keeps its prepared statements (each is prepared
//! once per connection, then only executed), and is checked without a statement: a connection
//! unused for a while is looked at for what the server sent meanwhile (the message and the
//! closed socket of a restart, a terminated session or a stalled session's timeout), which
//! costs the database nothing. One the server closed is dropped by the pool, and the next is
//! taken (or a new one made), so the statement never runs on it. A connection whose server
//! vanished without closing it (a host gone, a cable pulled) is found by its next statement,
//! as the empty query found it, within the TCP limits `stall_limits` sets (not the kernel's
//! retransmissions), and is dropped when given back.
//!
//! A statement the server no longer has (26000 `invalid_sql_statement_name`: the session's
//! statements were discarded, e.g. `DISCARD ALL` behind a pooler) or whose plan no longer
//! fits it (0A000 "cached plan must not change result type": a table it reads was altered)
//! would fail on this connection until the node restarted; on those codes the connection
//! forgets every statement it kept and runs the statement once more, prepared afresh. Each
//! statement here runs outside a transaction block, so the failed run changed nothing and the
//! retry cannot apply a change twice.

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a connection may sit unused and still be handed out unchecked. A database restart
/// takes longer than this, so a connection last used before one is checked.
const TRUSTED_FOR: Duration = Duration::from_millis(500);

/// A connection of the pool and the statements prepared on it.
pub struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    last_used: Instant,
}

impl Conn {
    /// The statement of `sql` on this connection, prepared at its first use.
    pub fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Runs `sql`'s statement with `run`; once more, prepared again, when the server no
    /// longer knows the statement or its plan (see the module's note).
    fn with<T>(
        &mut self,
        sql: &'static str,
        run: impl Fn(&mut Client, &Statement) -> Result<T, postgres::Error>,
    ) -> Result<T, postgres::Error> {
        let statement = self.prepared(sql)?;
        match run(&mut self.client, &statement) {
            Err(e) if invalidated(&e) => {
                tracing::warn!(error = %e, kept = self.statements.len(), "a prepared statement of the cluster's database was invalidated by the server; this connection prepares its statements again");
                self.statements.clear();
                let statement = self.prepared(sql)?;
                run(&mut self.client, &statement)
            }
            other => other,
        }
    }

    pub fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, postgres::Error> {
        self.with(sql, |client, statement| client.query(statement, params))
    }

    pub fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, postgres::Error> {
        self.with(sql, |client, statement| client.query_opt(statement, params))
    }

    pub fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, postgres::Error> {
        self.with(sql, |client, statement| client.query_one(statement, params))
    }

    pub fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, postgres::Error> {
        self.with(sql, |client, statement| client.execute(statement, params))
    }
}

/// Whether the server refused a kept statement as one it no longer has or can no longer run
/// as prepared (26000, or 0A000 "cached plan must not change result type").
fn invalidated(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    match e.code() {
        Some(code) if *code == SqlState::INVALID_SQL_STATEMENT_NAME => true,
        Some(code) if *code == SqlState::FEATURE_NOT_SUPPORTED => {
            e.as_db_error().is_some_and(|db| {
                db.message()
                    .contains("cached plan must not change result type")
            })
        }
        _ => false,
    }
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("statements", &self.statements.len())
            .finish()
    }
}

/// Makes and checks the pool's connections.
#[derive(Debug)]
pub struct Manager {
    config: postgres::Config,
    /// Connections made: a new one follows every server restart or failover, after which
    /// what this node remembers of the database's rows may be more than the database kept
    /// (`written`).
    made: Arc<AtomicU64>,
}

impl Manager {
    pub fn new(config: postgres::Config, made: Arc<AtomicU64>) -> Manager {
        Manager { config, made }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        let client = self.config.connect(NoTls)?;
        // Counted before any statement runs on it.
        self.made.fetch_add(1, Ordering::SeqCst);
        Ok(Conn {
            client,
            statements: HashMap::new(),
            last_used: Instant::now(),
        })
    }

    /// At each checkout of a connection unused for a while (one in use moments ago answered
    /// then): what the server sent it meanwhile is read, without sending anything, so the
    /// check is no transaction (the empty query it replaced was one).
    /// A server that closed the connection sent its reason (57P01 at a restart) and the end
    /// of the stream: reading them fails here, and the pool takes another connection. The
    /// look waits for the client's runtime to poll the socket once, at most a millisecond
    /// (its timer's tick) on a connection with nothing to read.
    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        let idle = conn.last_used.elapsed();
        conn.last_used = Instant::now();
        if idle > TRUSTED_FOR {
            // A pool connection never listens, so nothing is there to read but the end.
            conn.client
                .notifications()
                .timeout_iter(Duration::ZERO)
                .next()?;
            if conn.client.is_closed() {
                // Ended without an error to tell (not seen, but then the statement fails at
                // once, before reaching any server).
                conn.client.simple_query("")?;
            }
        }
        Ok(())
    }

    /// A connection whose socket failed or was closed (a statement on it saw that) is dropped
    /// when given back.
    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}
