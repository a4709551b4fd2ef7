//! Plain `http://` to another host: whatever crosses it, anyone on the way reads and can
//! change. The agent's side of the CLI sends its token to the daemon (`api`) and fetches the
//! daemon's public keys (`receipts`); both take plain http only to this host (loopback),
//! unless their user says the network between is trusted (`BATON_ALLOW_PLAIN_HTTP=1`).

/// The variable that lets plain http reach another host, for a private network its user
/// trusts (containers on one host, a VPN): nobody on it may read or change the traffic.
pub(super) const ALLOW_VAR: &str = "BATON_ALLOW_PLAIN_HTTP";

/// Whether `url` is plain `http://` to a host other than this one, and its user has not let it
/// (`ALLOW_VAR`): then nothing secret may be sent there, nor anything trusted fetched. This
/// host is 127.0.0.0/8, ::1 and the name `localhost`; any other name may resolve anywhere.
/// `Err`: `url` is no URL, or `ALLOW_VAR` is set to neither yes nor no.
pub(super) fn refused(url: &str) -> Result<bool, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: not a URL: {e}"))?;
    let here = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if parsed.scheme() != "http" || here {
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
