//! Headless Chromium driven over WebDriver (chromedriver + fantoccini), for the tests that
//! must see what a reviewer sees: scripts that run or do not, pages that update themselves.
//! Without Chromium the test fails and says what to install; CI installs it (`.ci/run`).

use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub struct Browser {
    pub client: Client,
    pub rt: tokio::runtime::Runtime,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    pub fn start() -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: install Debian's `chromium` and `chromium-driver` \
                 (apt-get install chromium chromium-driver); .ci/run does"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Flags as the machine's own probe runs Chromium: without the background-networking
        // ones, Chromium keeps trying hosts a closed network refuses.
        let args = serde_json::json!([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": CHROMIUM, "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let client = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let connector = hyper_util::client::legacy::connect::HttpConnector::new();
                match ClientBuilder::new(connector)
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await
                {
                    Ok(c) => break c,
                    Err(e) if Instant::now() > deadline => panic!("chromedriver: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        Browser {
            client,
            rt,
            driver,
            _profile: profile,
        }
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.client.goto(url)).expect("goto");
    }

    pub fn url(&self) -> String {
        self.rt
            .block_on(self.client.current_url())
            .unwrap()
            .to_string()
    }

    /// Waits (up to the tests' patience) for an element, and returns its text. A live page
    /// may replace the element between finding it and reading it (a stale reference): it is
    /// found again.
    pub fn wait_text(&self, css: &str) -> String {
        let deadline = Instant::now() + super::PATIENCE;
        self.rt.block_on(async {
            loop {
                let el = self
                    .client
                    .wait()
                    .at_most(deadline.saturating_duration_since(Instant::now()))
                    .for_element(Locator::Css(css))
                    .await
                    .unwrap_or_else(|e| panic!("no element {css}: {e}"));
                match el.text().await {
                    Ok(text) => return text,
                    Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {}
                    Err(e) => panic!("cannot read the text of {css}: {e}"),
                }
            }
        })
    }

    /// Waits until the element's text contains `needle` (a page may still be the old one
    /// right after a click), and returns the text.
    pub fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + super::PATIENCE;
        loop {
            let text = self.rt.block_on(async {
                let el = self.client.find(Locator::Css(css)).await.ok()?;
                el.text().await.ok()
            });
            match text {
                Some(t) if t.contains(needle) => return t,
                other if Instant::now() > deadline => {
                    panic!("{css} never contained {needle:?}; last text: {other:?}")
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn exists(&self, css: &str) -> bool {
        self.rt
            .block_on(self.client.find_all(Locator::Css(css)))
            .is_ok_and(|v| !v.is_empty())
    }

    pub fn fill(&self, css: &str, text: &str) {
        self.rt.block_on(async {
            let el = self.client.find(Locator::Css(css)).await.unwrap();
            el.clear().await.unwrap();
            el.send_keys(text).await.unwrap();
        })
    }

    pub fn click(&self, css: &str) {
        self.rt.block_on(async {
            let el = self
                .client
                .find(Locator::Css(css))
                .await
                .unwrap_or_else(|e| panic!("no element {css}: {e}"));
            el.click().await.unwrap();
        })
    }

    /// Accepts the confirmation dialog the page opened, returning its text.
    pub fn accept_dialog(&self) -> String {
        self.rt.block_on(async {
            let deadline = Instant::now() + super::PATIENCE;
            loop {
                match self.client.get_alert_text().await {
                    Ok(text) => {
                        self.client.accept_alert().await.unwrap();
                        break text;
                    }
                    Err(e) if Instant::now() > deadline => panic!("no dialog: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        })
    }

    pub fn run(&self, script: &str) -> serde_json::Value {
        self.rt
            .block_on(self.client.execute(script, vec![]))
            .expect("script")
    }

    pub fn source(&self) -> String {
        self.rt.block_on(self.client.source()).unwrap()
    }

    /// Saves a screenshot under `target/screenshots/NAME.png` and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.rt.block_on(self.client.screenshot()).unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Signs in on the login page of `base`.
    pub fn sign_in(&self, base: &str, name: &str, password: &str) {
        self.goto(&format!("{base}/login"));
        self.fill("input[name=name]", name);
        self.fill("input[name=password]", password);
        self.click("button[type=submit]");
        self.wait_text("[data-page=queue] .tabs");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.rt.block_on(client.close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
