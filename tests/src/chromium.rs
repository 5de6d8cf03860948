//! Headless Chromium driven through ChromeDriver's W3C WebDriver API, with plain
//! HTTP calls: enough to load a page, click, type, read text, take a screenshot
//! and read the browser's console. Uses Debian's `chromium` and `chromium-driver`
//! (`.ci/run` installs them); never a downloaded browser.

use std::{
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use base64::Engine;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// W3C WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether this machine has Chromium and ChromeDriver. When it does not, a browser
/// test fails under `CI=true` (CI installs both) and elsewhere says loudly that it
/// did not run.
pub fn available() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

/// Returns false (the caller returns early) only outside CI, after saying so.
pub fn required_or_warn(test: &str) -> bool {
    if available() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {CHROMIUM} and {CHROMEDRIVER} are required under CI=true (apt-get install chromium chromium-driver)"
    );
    eprintln!(
        "WARNING: {test} did NOT run: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
    );
    false
}

/// One browser: a ChromeDriver process and its session, with a fresh profile.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    port: u16,
    ended: bool,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Self {
        let mut driver = Command::new(CHROMEDRIVER)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let stdout = driver.stdout.take().expect("chromedriver stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("read chromedriver output") {
                if let Some(rest) = line.split_once("started successfully on port ").map(|(_, r)| r) {
                    return rest.trim_end_matches('.').parse::<u16>().expect("chromedriver port");
                }
            }
            panic!("chromedriver ended without saying its port");
        })
        .await
        .expect("chromedriver did not start within 20 s");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let profile = tempfile::tempdir().expect("profile directory");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        // As root and on a machine without outside network, Chromium needs these:
        // no sandbox, no GPU, and none of its background connections.
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,1600".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let response: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("create a WebDriver session")
            .json()
            .await
            .expect("session JSON");
        let session = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {response}"))
            .to_owned();
        Self { driver, http, session: format!("{base}/session/{session}"), port, ended: false, _profile: profile }
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.expect("WebDriver command").json().await.expect("WebDriver JSON");
        answer["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        let value = self.command(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
        assert!(value.is_null(), "navigation to {url} failed: {value}");
    }

    /// The first element matching `css`, waiting up to `timeout` for it.
    pub async fn find(&self, css: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self
                .command(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css})))
                .await;
            if let Some(id) = value[ELEMENT].as_str() {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element `{css}` within {timeout:?}: {value}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        let element = self.find(css, Duration::from_secs(10)).await;
        let value = self.command(reqwest::Method::POST, &format!("/element/{element}/click"), Some(json!({}))).await;
        assert!(value.is_null(), "click on `{css}` failed: {value}");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css, Duration::from_secs(10)).await;
        let value = self
            .command(reqwest::Method::POST, &format!("/element/{element}/value"), Some(json!({"text": text})))
            .await;
        assert!(value.is_null(), "typing into `{css}` failed: {value}");
    }

    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css, Duration::from_secs(10)).await;
        self.command(reqwest::Method::GET, &format!("/element/{element}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits until the text of the first element matching `css` satisfies `check`,
    /// and returns it.
    pub async fn wait_for_text(&self, css: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text(css).await;
            if check(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "`{css}` never showed the expected text; last: {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let value = self.command(reqwest::Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD.decode(value.as_str().unwrap_or_default()).expect("screenshot PNG")
    }

    /// The browser console's messages since the last call (errors, CSP reports).
    pub async fn console(&self) -> Vec<String> {
        let value = self.command(reqwest::Method::POST, "/se/log", Some(json!({"type": "browser"}))).await;
        value
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| format!("{} {}", e["level"].as_str().unwrap_or(""), e["message"].as_str().unwrap_or("")))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ends the session (Chromium exits), then ChromeDriver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill().await;
        self.ended = true;
    }
}

impl Drop for Browser {
    /// A failed assertion unwinds past `quit`: end the session anyway, over a plain
    /// blocking socket (no runtime here), or Chromium outlives ChromeDriver.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let path = self.session.split_once(&format!(":{}", self.port)).map_or("", |(_, p)| p).to_owned();
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
            use std::io::{Read, Write};
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let request = format!(
                "DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.port
            );
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.start_kill();
    }
}
