//! One process per cluster node name: a node's rows (its deliveries, its heartbeat) are keyed
//! by its name, so a second daemon started under a name in use (on another data_dir or host)
//! would take the first's deliveries for its own and send them too. The running process holds
//! its name in the database; a second is refused at its start, and the name is free again as
//! soon as the first is gone.

use super::nodes::*;
use super::pg::Postgres;
use crate::util::*;

fn signal(d: &Daemon, sig: libc::c_int) {
    // SAFETY: kill only sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(d.pid() as libc::pid_t, sig) }, 0);
}

#[test]
fn a_second_process_under_a_node_name_in_use_is_refused_at_its_start() {
    let _serial = one_at_a_time();
    let pg = Postgres::start();
    let url = pg.database("samename");
    let mut env = TestEnv::with_config(&format!(
        "[cluster]\ndatabase_url = \"{url}\"\nnode = \"a\"\nlease_ttl_s = {TTL_S}\n"
    ));
    let a = env.start();
    // The same name on a data_dir of its own.
    let twin = node_config(&env, &url, "a", "");
    let (code, stderr) = refused_start(&twin);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("another baton process runs as cluster node \"a\""),
        "the refusal says why: {stderr}"
    );
    assert!(
        stderr.contains("[cluster] node"),
        "and what to do: {stderr}"
    );

    // A paused process may wake: it keeps its name.
    signal(&a, libc::SIGSTOP);
    let (code, stderr) = refused_start(&twin);
    assert_ne!(code, Some(0), "{stderr}");
    signal(&a, libc::SIGCONT);
    a.assert_alive();

    // A process gone frees its name at once: the node restarts (here on the other data_dir).
    a.kill9();
    let again = env.spawn_with_config(&twin);
    again.assert_alive();
}
