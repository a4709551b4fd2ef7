//! The connection pool to the other nodes. A node whose `peer_url` is `https://` (a TLS proxy
//! in front of it) is reached over TLS, its name checked against `cluster.peer_ca_file`'s
//! certificates alone when that is set (a private CA: no public CA may vouch for a node),
//! else against the public roots. TLS keeps what nodes send each other private; that it comes
//! from the node asked is what the cluster's signatures prove either way (`trust`).

use axum::body::Body;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long a node may take to accept a connection (TLS handshake aside).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) type Pool = Client<HttpsConnector<HttpConnector>, Body>;

static POOL: OnceLock<Pool> = OnceLock::new();

/// The pool, made at first use with the roots of `ca_file` (the configuration checked it
/// readable at load; one that fails now trusts no `https://` node, never every one).
pub(crate) fn pool(ca_file: Option<&Path>) -> &'static Pool {
    POOL.get_or_init(|| {
        let roots = match ca_file {
            None => rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            Some(path) => roots_of(path).unwrap_or_else(|why| {
                tracing::error!(file = %path.display(), %why, "cluster.peer_ca_file cannot be read: no https:// node is trusted");
                rustls::RootCertStore::empty()
            }),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        http.enforce_http(false);
        let connector = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector)
    })
}

/// The certificates of a PEM file, as roots; why not when it holds none.
pub fn roots_of(path: &Path) -> Result<rustls::RootCertStore, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    match added {
        0 => Err("it holds no certificate".into()),
        _ => Ok(roots),
    }
}
