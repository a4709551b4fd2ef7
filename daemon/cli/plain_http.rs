//! Plain `http://` to another host: whatever crosses it, anyone on the way reads and can
//! change. The agent's side of the CLI sends its token to the daemon (`api`) and fetches the
//! daemon's public keys (`receipts`); both take plain http only to this host (loopback: an
//! address as written, or `localhost` when it resolves to nothing else), unless their user
//! says the network between is trusted (`BATON_ALLOW_PLAIN_HTTP=1`).

use std::net::SocketAddr;

/// The variable that lets plain http reach another host, for a private network its user
/// trusts (containers on one host, a VPN): nobody on it may read or change the traffic.
pub(super) const ALLOW_VAR: &str = "BATON_ALLOW_PLAIN_HTTP";

/// Where a request to `url` may go: `None` when it is plain http to another host its user
/// has not let it reach (`ALLOW_VAR`: then nothing secret may be sent there, nor anything
/// trusted fetched); else `Some(pinned)`, with `pinned` the loopback addresses
/// the name `localhost` resolved to when it was checked, the only ones to connect to (a
/// second resolution could answer otherwise), or empty when `url` needs no pinning (https, a
/// literal address, or plain http let through by `ALLOW_VAR`).
pub(super) fn reach(url: &str) -> Result<Option<Vec<SocketAddr>>, String> {
    let pinned = match here(url, &system_resolver)? {
        Here::No => None,
        Here::Yes => Some(Vec::new()),
        Here::Pinned(addrs) => Some(addrs),
    };
    if pinned.is_some() {
        return Ok(pinned);
    }
    match std::env::var(ALLOW_VAR).ok().as_deref() {
        None | Some("" | "0" | "false") => Ok(None),
        Some("1" | "true") => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "{ALLOW_VAR}=1: {url} is plain http to another host; whoever is on the \
                     network between can read the agent's token and change the daemon's keys"
                )
            });
            Ok(Some(Vec::new()))
        }
        Some(other) => Err(format!(
            "{ALLOW_VAR}={other:?}: set it to 1 to send to plain http:// addresses of other \
             hosts (on a private network you trust), or unset it"
        )),
    }
}

/// Whether a request to a URL stays on this host.
#[derive(Debug, PartialEq)]
enum Here {
    /// Plain http to another host, or to a name that may lead to one.
    No,
    /// https, or a literal loopback address.
    Yes,
    /// `localhost`, whose resolution gave these addresses, all loopback.
    Pinned(Vec<SocketAddr>),
}

/// The addresses `host` resolves to on this machine (its `/etc/hosts`, its resolver).
fn system_resolver(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    use std::net::ToSocketAddrs;
    Ok((host, port).to_socket_addrs()?.collect())
}

/// Whether `url` stays on this host: https does (whoever is on the way reads nothing), and
/// plain `http://` does to 127.0.0.0/8 and ::1 as written, or to the name `localhost` when
/// `resolve` gives only such addresses (a name is only what the hosts file or the resolver
/// make of it: `localhost` mapped to another address is another host). Any other name may
/// resolve anywhere, and an address is judged as written (an IPv4-mapped `::ffff:127.0.0.1`
/// is another host's, to be safe).
fn here(
    url: &str,
    resolve: &dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>>,
) -> Result<Here, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: not a URL: {e}"))?;
    if parsed.scheme() != "http" {
        return Ok(Here::Yes);
    }
    Ok(match parsed.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Here::Yes,
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Here::Yes,
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
            let port = parsed.port_or_known_default().unwrap_or(80);
            match resolve("localhost", port) {
                Ok(addrs) if !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()) => {
                    Here::Pinned(addrs)
                }
                _ => Here::No,
            }
        }
        _ => Here::No,
    })
}

#[cfg(test)]
mod tests {
    use super::{here, Here};
    use std::net::SocketAddr;

    fn afar(url: &str) -> Result<bool, String> {
        here(url, &|_, port| {
            Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))])
        })
        .map(|h| h == Here::No)
    }

    #[test]
    fn only_plain_http_to_another_host_is_afar() {
        for here in [
            "http://127.0.0.1:7878",
            "http://127.9.8.7",
            "http://[::1]:7878/",
            "http://localhost:7878",
            "http://LocalHost",
            "https://192.0.2.1",
            "https://baton.example",
        ] {
            assert_eq!(afar(here), Ok(false), "{here}");
        }
        for there in [
            "http://192.0.2.1:7878",
            "http://10.0.0.5",
            "http://0.0.0.0:7878",
            "http://[::ffff:127.0.0.1]:7878",
            "http://baton.example",
            "http://localhost.baton.example",
            "http://127.0.0.1.nip.io",
        ] {
            assert_eq!(afar(there), Ok(true), "{there}");
        }
        assert!(afar("not a url").is_err());
    }

    /// `localhost` is this host only as far as its resolution says: only loopback addresses,
    /// which are then the ones connected to (with the URL's port); any other answer, a mixed
    /// one, none or a failure makes it another host.
    #[test]
    fn localhost_is_here_only_when_it_resolves_to_loopback_alone() {
        let v4 = |a: [u8; 4], port| SocketAddr::from((a, port));
        let v6 = |port| SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        let with = |answer: Vec<[u8; 4]>| {
            move |host: &str, port: u16| {
                assert_eq!(host, "localhost");
                Ok(answer.iter().map(|a| v4(*a, port)).collect())
            }
        };
        assert_eq!(
            here("http://localhost:7878/", &with(vec![[127, 0, 0, 1]])),
            Ok(Here::Pinned(vec![v4([127, 0, 0, 1], 7878)]))
        );
        assert_eq!(
            here("http://localhost", &|_, port| Ok(vec![
                v6(port),
                v4([127, 0, 1, 1], port)
            ])),
            Ok(Here::Pinned(vec![v6(80), v4([127, 0, 1, 1], 80)]))
        );
        for elsewhere in [
            vec![[192, 0, 2, 7]],
            vec![[127, 0, 0, 1], [192, 0, 2, 7]],
            vec![[0, 0, 0, 0]],
            vec![],
        ] {
            assert_eq!(
                here("http://localhost:7878", &with(elsewhere.clone())),
                Ok(Here::No),
                "{elsewhere:?}"
            );
        }
        let failed = |_: &str, _: u16| Err(std::io::Error::other("no such name"));
        assert_eq!(here("http://localhost:7878", &failed), Ok(Here::No));
        // https needs no resolution: whoever is on the way reads nothing.
        assert_eq!(here("https://localhost", &failed), Ok(Here::Yes));
    }

    /// Every header that carries a credential is set in `api.rs`, whose `Api` only `from_env`
    /// makes, after `reach`: a request added anywhere else in the command line would skip it.
    #[test]
    fn no_other_file_of_the_command_line_sets_an_authorization_header() {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("cli/api.rs")
                    && !path.ends_with("cli/plain_http.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap().to_lowercase();
                    if text.contains("\"authorization\"") || text.contains("header::authorization")
                    {
                        found.push(path.display().to_string());
                    }
                }
            }
        }
        let mut found = Vec::new();
        let cli = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("daemon/cli");
        walk(&cli, &mut found);
        assert!(
            found.is_empty(),
            "credentials sent outside cli::api: {found:?}"
        );
    }
}
