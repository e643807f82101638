//! Headless Chromium (Debian's `chromium`) driven over its DevTools protocol: started
//! with `--remote-debugging-port=0`, its port read from `DevToolsActivePort`, then
//! JSON-RPC over a WebSocket (tokio-tungstenite) to the page's session: evaluate a
//! script, take a screenshot. The browser is closed (and killed) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::{tungstenite::Message, MaybeTlsStream, WebSocketStream};

use crate::process::Proc;
use crate::wait::wait_until;

/// How long the browser gets to start, and one call to answer.
const STARTUP: Duration = Duration::from_secs(30);
const CALL: Duration = Duration::from_secs(30);

/// A headless Chromium showing one page.
pub struct Browser {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    proc: Proc,
    profile: PathBuf,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").field("pid", &self.proc.pid()).finish()
    }
}

/// The chromium binary: `$CHROMIUM`, or `chromium` on the PATH.
pub fn chromium_binary() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("chromium"), PathBuf::from)
}

impl Browser {
    /// Starts chromium on `url` (window 1400x1800); `offline`: every network request
    /// goes to a proxy that does not exist (a page that needs the network breaks).
    pub async fn open(url: &str, offline: bool) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "wsload-chromium-{}-{}",
            std::process::id(),
            crate::ports::Port::reserve().number()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile).expect("chromium profile dir");
        let mut cmd = Command::new(chromium_binary());
        cmd.args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--remote-debugging-port=0",
            "--window-size=1400,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
        if offline {
            cmd.args(["--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]);
        }
        cmd.arg("about:blank").stdout(Stdio::null()).stderr(Stdio::null());
        let proc = Proc::spawn(&mut cmd, "chromium");
        let port_file = profile.join("DevToolsActivePort");
        wait_until(STARTUP, "chromium to write DevToolsActivePort", || {
            std::fs::read_to_string(&port_file).is_ok_and(|s| s.lines().count() >= 2)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let text = std::fs::read_to_string(&port_file).expect("DevToolsActivePort");
        let mut lines = text.lines();
        let port = lines.next().expect("port line").trim().to_owned();
        let path = lines.next().expect("path line").trim().to_owned();
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
            .await
            .expect("connect to chromium's DevTools");
        let mut b = Browser {
            ws,
            session: String::new(),
            next_id: 0,
            proc,
            profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"})).await;
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let att = b
            .call("Target.attachToTarget", json!({"targetId": target_id, "flatten": true}))
            .await;
        b.session = att["sessionId"].as_str().expect("sessionId").to_owned();
        b.call("Page.enable", json!({})).await;
        b.call("Page.navigate", json!({"url": url})).await;
        b
    }

    /// One JSON-RPC call (on the page's session once attached); its `result`.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .expect("send to chromium");
        let answer = tokio::time::timeout(CALL, async {
            while let Some(m) = self.ws.next().await {
                let Ok(Message::Text(t)) = m else { continue };
                let v: Value = serde_json::from_str(&t).expect("DevTools JSON");
                if v["id"] == json!(id) {
                    return v;
                }
            }
            panic!("chromium closed the DevTools connection");
        })
        .await
        .unwrap_or_else(|_| panic!("chromium did not answer {method} within {CALL:?}"));
        if let Some(e) = answer.get("error") {
            panic!("{method}: {e}");
        }
        answer["result"].clone()
    }

    /// Evaluates `expr` in the page (promises awaited) and returns its value as JSON;
    /// fails the test on an exception.
    pub async fn eval(&mut self, expr: &str) -> Value {
        self.try_eval(expr)
            .await
            .unwrap_or_else(|ex| panic!("`{expr}` threw: {ex}"))
    }

    /// Evaluates `expr` in the page; an exception is the `Err`.
    async fn try_eval(&mut self, expr: &str) -> Result<Value, Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        match r.get("exceptionDetails") {
            Some(ex) => Err(ex.clone()),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// Waits until `expr` evaluates to `true`. Until then it may also throw: the page
    /// may still be loading (on a loaded machine `document` is still blank at first).
    pub async fn wait_for(&mut self, expr: &str, limit: Duration) {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let r = self.try_eval(expr).await;
            if r == Ok(json!(true)) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "`{expr}` not true within {limit:?}: last {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the whole page, written to `path`.
    pub async fn screenshot(&mut self, path: &Path) {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.proc.kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
