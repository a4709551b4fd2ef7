//! With no `[[users]]` that have a password, the first start makes an admin sign-in and
//! prints its password once; later starts print none, and the password still works.

use super::Web;
use crate::util::TestEnv;

/// The password in a `name: admin  password: ...` line, if the daemon printed one.
fn printed_password(printed: &[String]) -> Option<String> {
    printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("name: admin  password: "))
        .map(str::to_string)
}

#[test]
fn the_first_start_prints_an_admin_password_once_and_it_signs_in() {
    // A user without a password (an API token only) does not count as a sign-in.
    let mut env = TestEnv::with_config("[[users]]\nname = \"bot\"\nroles = [\"reviewer\"]\n");
    let daemon = env.start();
    let password = printed_password(&daemon.printed).unwrap_or_else(|| {
        panic!("no admin password printed: {:?}", daemon.printed);
    });
    assert!(password.len() >= 16, "{password}");
    let lines = daemon
        .printed
        .iter()
        .filter(|l| l.contains(&password))
        .count();
    assert_eq!(lines, 1, "printed once: {:?}", daemon.printed);
    let web = Web::new(&daemon);
    let session = web.sign_in("admin", &password);
    assert!(web.get("/", Some(&session)).body.contains("admin"));
    let wrong = web.try_sign_in("admin", "not-it", "/");
    assert_eq!(wrong.status, 401);
    daemon.stop();

    let daemon = env.start();
    assert_eq!(
        printed_password(&daemon.printed),
        None,
        "{:?}",
        daemon.printed
    );
    assert!(
        !daemon.printed.iter().any(|l| l.contains("password")),
        "{:?}",
        daemon.printed
    );
    Web::new(&daemon).sign_in("admin", &password);
}

#[test]
fn no_admin_password_is_made_when_a_user_has_one() {
    let mut env = TestEnv::with_config(&super::reviewers(&[("rita", "pw-rita")]));
    let daemon = env.start();
    assert_eq!(printed_password(&daemon.printed), None);
    let web = Web::new(&daemon);
    assert!(!env.root().join("data/admin-password.argon2").exists());
    let reply = web.try_sign_in("admin", "", "/");
    assert_eq!(reply.status, 401);
}
