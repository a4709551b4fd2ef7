//! Plain `http://` to another host: whatever crosses it, anyone on the way reads and can
//! change. The agent's side of the CLI sends its token to the daemon (`api`) and fetches the
//! daemon's public keys (`receipts`); both take plain http only to this host (loopback),
//! unless their user says the network between is trusted (`BATON_ALLOW_PLAIN_HTTP=1`).

/// The variable that lets plain http reach another host, for a private network its user
/// trusts (containers on one host, a VPN): nobody on it may read or change the traffic.
pub(super) const ALLOW_VAR: &str = "BATON_ALLOW_PLAIN_HTTP";

/// Whether `url` is plain `http://` to a host other than this one, and its user has not let it
/// (`ALLOW_VAR`): then nothing secret may be sent there, nor anything trusted fetched.
/// `Err`: `url` is no URL, or `ALLOW_VAR` is set to neither yes nor no.
pub(super) fn refused(url: &str) -> Result<bool, String> {
    if !afar(url)? {
        return Ok(false);
    }
    match std::env::var(ALLOW_VAR).ok().as_deref() {
        None | Some("" | "0" | "false") => Ok(true),
        Some("1" | "true") => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "{ALLOW_VAR}=1: {url} is plain http to another host; whoever is on the \
                     network between can read the agent's token and change the daemon's keys"
                )
            });
            Ok(false)
        }
        Some(other) => Err(format!(
            "{ALLOW_VAR}={other:?}: set it to 1 to send to plain http:// addresses of other \
             hosts (on a private network you trust), or unset it"
        )),
    }
}

/// Whether `url` is plain `http://` to a host other than this one: 127.0.0.0/8, ::1 and the
/// name `localhost` are this one; any other name may resolve anywhere, and an address is
/// judged as written (an IPv4-mapped `::ffff:127.0.0.1` is another host's, to be safe).
fn afar(url: &str) -> Result<bool, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: not a URL: {e}"))?;
    let here = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    Ok(parsed.scheme() == "http" && !here)
}

#[cfg(test)]
mod tests {
    use super::afar;

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

    /// Every header that carries a credential is set in `api.rs`, whose `Api` only `from_env`
    /// makes, after `refused`: a request added anywhere else in the command line would skip it.
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
