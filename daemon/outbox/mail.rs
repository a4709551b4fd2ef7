//! Email over SMTP (lettre): one mail per reviewer of the handoff's route. An event owed
//! to email is spooled as one notice; the email worker resolves it (through the app, which
//! knows the route and the reviewers) into one delivery per address, each with its own
//! attempts, then sends them. lettre's blocking transport with 10 s timeouts, on the email
//! worker's own thread: a hung mail server delays mail only.

use super::attempt::{Outcome, Transport};
pub use super::letter::Tokens;
use super::letter::{self, Facts, Letter};
use super::spool::{Delivery, State};
use super::{Hooks, Shared, EMAIL};
use crate::clock::now_ms;
use crate::config::Smtp;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Connect, and each read or write of the SMTP exchange.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What the app answers about a handoff owed a mail: what to say, and to whom.
pub struct MailRequest {
    pub facts: Facts,
    pub to: Vec<Recipient>,
}

/// One reviewer owed the mail.
pub struct Recipient {
    pub address: String,
    /// The tokens of the reviewer's own action links (see `login/links.rs`), when the
    /// route sends them.
    pub links: Option<Tokens>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(
        "smtp.url: {0} (use smtp://host:port, smtp://host:port?tls=required or smtps://host:port)"
    )]
    Url(String),
    #[error("smtp.from: \"{0}\" is not an address such as \"baton <baton@example.com>\"")]
    From(String),
    #[error("smtp.ca_file: {0}")]
    Ca(String),
}

pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl Mailer {
    pub fn new(smtp: &Smtp) -> Result<Mailer, MailError> {
        let mut builder = SmtpTransport::from_url(&smtp.url)
            .map_err(|e| MailError::Url(e.to_string()))?
            .timeout(Some(TIMEOUT));
        if let Some(ca) = &smtp.ca_file {
            builder = builder.tls(trusting(&smtp.url, ca)?);
        }
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let from = smtp
            .from
            .parse()
            .map_err(|_| MailError::From(smtp.from.clone()))?;
        Ok(Mailer {
            transport: builder.build(),
            from,
        })
    }
}

/// The URL's TLS mode, with the certificates of `ca` trusted besides the usual roots
/// (nothing is trusted less: the server's name is still checked).
fn trusting(url: &str, ca: &std::path::Path) -> Result<Tls, MailError> {
    let fail = |m: String| MailError::Ca(format!("{}: {m}", ca.display()));
    let parsed = url::Url::parse(url).map_err(|e| MailError::Url(e.to_string()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| MailError::Url("no host".into()))?;
    let pem = std::fs::read(ca).map_err(|e| fail(format!("cannot read it: {e}")))?;
    let cert =
        Certificate::from_pem(&pem).map_err(|e| fail(format!("not PEM certificates: {e}")))?;
    let params = TlsParameters::builder(host.trim_matches(['[', ']']).to_string())
        .add_root_certificate(cert)
        .build_rustls()
        .map_err(|e| fail(e.to_string()))?;
    let mode = parsed
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    match (parsed.scheme(), mode.as_deref()) {
        ("smtps", _) => Ok(Tls::Wrapper(params)),
        ("smtp", Some("required")) => Ok(Tls::Required(params)),
        ("smtp", Some("opportunistic")) => Ok(Tls::Opportunistic(params)),
        _ => Err(fail(
            "only for TLS: use smtps:// or smtp://...?tls=required".into(),
        )),
    }
}

impl Transport for Mailer {
    fn send(&self, d: &Delivery) -> Outcome {
        let permanent = |error: String| Outcome {
            error: Some(error),
            permanent: true,
            ..Outcome::default()
        };
        let Ok(letter) = serde_json::from_str::<Letter>(&d.body) else {
            return permanent("the spooled mail is unreadable".into());
        };
        let Some(Ok(to)) = d.to.as_deref().map(str::parse::<Mailbox>) else {
            return permanent("not an email address".into());
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(letter.subject)
            // The same Message-ID on every attempt, so a mail sent twice reads as one.
            .message_id(Some(format!("<{}@baton>", d.id)))
            .multipart(MultiPart::alternative_plain_html(letter.text, letter.html));
        let message = match message {
            Ok(m) => m,
            Err(e) => return permanent(format!("cannot build the mail: {e}")),
        };
        match lettre::Transport::send(&self.transport, &message) {
            Ok(answer) => Outcome {
                status: Some(code(&answer.code())),
                ..Outcome::default()
            },
            Err(e) => Outcome {
                status: e.status().map(|c| code(&c)),
                error: Some(format!("SMTP: {e}")),
                permanent: e.is_permanent(),
                ..Outcome::default()
            },
        }
    }
}

fn code(c: &lettre::transport::smtp::response::Code) -> u16 {
    c.to_string().parse().unwrap_or(0)
}

/// Resolves an email notice into one delivery per address (ids derived from the notice's
/// and the address, so a notice resolved twice after a crash makes no second mail), and
/// removes the notice. Returns the new deliveries' (next attempt, id) for the queue.
pub fn expand(shared: &Shared, hooks: &Hooks, notice: &Delivery) -> Vec<(u64, String)> {
    // Called without the outbox's lock: the app waits for the workspace's, which the
    // ingest that spooled this notice may still hold.
    let request = (hooks.resolve)(notice);
    let mut index = shared.lock();
    let mut made = Vec::new();
    if let (Some(req), Some(key)) = (request, notice.key.as_deref()) {
        let page = super::handoff_url(&shared.public_url, key);
        for Recipient { address: to, links } in req.to {
            // Each reviewer's mail is their own: its action links decide as them.
            let actions = links.map(|t| letter::Actions::one_time(&shared.public_url, &t));
            let letter = letter::compose(&req.facts, &page, actions);
            let body = serde_json::to_string(&letter).expect("a letter serializes");
            let digest = hex::encode(Sha256::digest(to.to_lowercase().as_bytes()));
            let id = format!("{}.{}", notice.id, &digest[..12]);
            if index.contains_key(&id) {
                continue;
            }
            made.push(Delivery {
                id,
                channel: EMAIL.into(),
                to: Some(to),
                state: State::Pending,
                attempts: Vec::new(),
                next_at_ms: Some(now_ms()),
                round_start: 0,
                body,
                ..notice.clone()
            });
        }
    }
    if let Err(e) = shared.spool.save(&made.iter().collect::<Vec<_>>()) {
        tracing::error!(error = %e, "cannot spool mails; they are sent but would not survive a restart");
    }
    for d in &made {
        index.insert(d.id.clone(), d.clone());
    }
    index.remove(&notice.id);
    shared.spool.remove(&notice.id);
    shared.count(&index);
    tracing::info!(notice = %notice.id, mails = made.len(), key = notice.key.as_deref().unwrap_or(""), "email notice resolved");
    made.into_iter()
        .map(|d| (d.next_at_ms.unwrap_or(0), d.id))
        .collect()
}
