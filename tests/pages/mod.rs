//! The pages are safe: every route asks for credentials (`routes`), sign-in and sessions hold
//! (`sessions`, `first_start`), forms refuse posts without their CSRF token (`csrf`), every
//! page sends its security headers (`headers`), and untrusted text never runs (`xss`).
//! `Web` is a plain HTTP client that does not follow redirects and keeps no cookies, so each
//! test says exactly what it sends.

mod changes;
mod csrf;
mod fields;
mod first_start;
mod forms;
mod headers;
mod honest;
mod queue;
mod routes;
mod sessions;
mod streams;
mod xss;
mod xss_corpus;

use crate::util::{self, Daemon};
use std::path::Path;

/// An answer: status, headers (lower-case names) and body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The start of the body, for failure messages.
    pub fn short(&self) -> String {
        self.body.chars().take(300).collect()
    }

    pub fn location(&self) -> &str {
        self.header("location").unwrap_or_default()
    }

    /// The `Set-Cookie` header that sets cookie `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .find(|v| v.starts_with(&prefix))
    }

    /// The value of cookie `name` as this answer sets it.
    pub fn cookie_value(&self, name: &str) -> Option<String> {
        let set = self.set_cookie(name)?;
        let value = set.split(';').next()?.split_once('=')?.1;
        Some(value.to_string())
    }

    /// Whether this is a redirect to the sign-in page.
    pub fn to_login(&self) -> bool {
        self.status == 303
            && (self.location() == "/login" || self.location().starts_with("/login?"))
    }
}

/// A client of one daemon: no redirects followed, no cookies kept, connections reused. Many
/// requests here are answered without their bodies being read (405, 401, 403 before the form
/// is parsed); the server then closes the connection and says so (`Connection: close`), so
/// this pooling client does not race that close with its next request.
pub struct Web {
    pub base: String,
    agent: ureq::Agent,
}

impl Web {
    pub fn new(daemon: &Daemon) -> Web {
        Web {
            base: daemon.url.clone(),
            agent: ureq::AgentBuilder::new().redirects(0).build(),
        }
    }

    /// Sends `method` to `path` with `headers` and an optional body.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        for (n, v) in headers {
            req = req.set(n, v);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .flat_map(|n| {
                let values: Vec<String> = response.all(&n).iter().map(|v| v.to_string()).collect();
                values.into_iter().map(move |v| (n.to_lowercase(), v))
            })
            .collect();
        let body = if method == "HEAD" {
            String::new()
        } else {
            response.into_string().unwrap_or_default()
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GET, with a session if given.
    pub fn get(&self, path: &str, session: Option<&Session>) -> Reply {
        let cookie = session.map(|s| s.cookie.clone());
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
        self.send("GET", path, &headers, None)
    }

    /// Posts an urlencoded form with the `Cookie` header given (if any).
    pub fn post_form(&self, path: &str, cookie: Option<&str>, fields: &[(&str, &str)]) -> Reply {
        let body = form(fields);
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(c) = cookie {
            headers.push(("Cookie", c));
        }
        self.send("POST", path, &headers, Some(body.as_bytes()))
    }

    /// The sign-in form: its double-submit token, which is both its `csrf` field and the
    /// value of the `baton_login` cookie it sets.
    pub fn login_form(&self) -> String {
        let page = self.get("/login", None);
        assert_eq!(page.status, 200, "{}", page.body);
        let token = page
            .cookie_value("baton_login")
            .expect("baton_login cookie");
        assert_eq!(hidden(&page.body, "csrf").as_deref(), Some(token.as_str()));
        token
    }

    /// Posts the sign-in form as a browser would (cookie and field from the same form).
    pub fn try_sign_in(&self, name: &str, password: &str, next: &str) -> Reply {
        let token = self.login_form();
        let cookie = format!("baton_login={token}");
        let fields = [
            ("csrf", token.as_str()),
            ("next", next),
            ("name", name),
            ("password", password),
        ];
        self.post_form("/login", Some(&cookie), &fields)
    }

    /// Signs in and returns the session, with the CSRF token its pages carry.
    pub fn sign_in(&self, name: &str, password: &str) -> Session {
        let reply = self.try_sign_in(name, password, "/");
        assert_eq!(reply.status, 303, "sign-in of {name}: {}", reply.body);
        let id = reply.cookie_value("baton_session").expect("session cookie");
        self.session(&id)
    }

    /// The session with this id, its CSRF token read from the queue page.
    pub fn session(&self, id: &str) -> Session {
        let cookie = format!("baton_session={id}");
        let page = self.send("GET", "/", &[("Cookie", &cookie)], None);
        assert_eq!(
            page.status, 200,
            "the queue with session {id}: {}",
            page.body
        );
        let csrf = meta(&page.body, "csrf-token").expect("csrf-token meta");
        Session {
            id: id.to_string(),
            cookie,
            csrf,
        }
    }
}

/// A signed-in session: its id, the `Cookie` header that carries it, its CSRF token.
pub struct Session {
    pub id: String,
    pub cookie: String,
    pub csrf: String,
}

pub fn form(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The value of `<input type="hidden" name="NAME" value="...">` in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at..];
    let value = rest.split("value=\"").nth(1)?.split('"').next()?;
    Some(value.to_string())
}

/// The content of `<meta name="NAME" content="...">` in a page.
pub fn meta(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("<meta name=\"{name}\" content=\""))?;
    let rest = &html[at..];
    let value = rest.split("content=\"").nth(1)?.split('"').next()?;
    Some(value.to_string())
}

pub fn reviewers(names: &[(&str, &str)]) -> String {
    names
        .iter()
        .map(|(n, p)| crate::browser::reviewer_config(n, p))
        .collect()
}

/// Writes handoff `id` into workspace `ws` and waits until the daemon shows it pending.
pub fn pending_handoff(daemon: &Daemon, ws: &Path, id: &str) {
    util::write_atomic(&ws.join("handoff.json"), &util::bytes(&util::handoff(id)));
    daemon.wait_until("the handoff is pending", || state(daemon, id) == "pending");
}

/// The state of handoff `key` as the API tells the admin.
pub fn state(daemon: &Daemon, key: &str) -> String {
    let (_, body) = daemon.get(&format!("/api/v1/handoffs/{key}"));
    body["state"].as_str().unwrap_or_default().to_string()
}
