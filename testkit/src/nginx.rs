//! A private nginx running the repository's own `nginx/nginx.conf` and
//! `nginx/sites-available/default`, with only the listen port, the upstream ports and
//! the file locations substituted, so the tests exercise the config that is deployed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::ports::Port;
use crate::process::{start_with_retries, system_binary, Proc};

/// How long nginx gets to listen.
const STARTUP: Duration = Duration::from_secs(10);
/// Numbers the private prefix directories of one process.
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// A private nginx, stopped (SIGTERM) and its directory removed when dropped.
#[derive(Debug)]
pub struct Nginx {
    port: Port,
    /// The `wss://` listener, when started with [`Nginx::start_with_tls`].
    tls_port: Option<Port>,
    dir: PathBuf,
    proc: Option<Proc>,
}

/// The repository's root (this crate sits in `testkit/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The site's commented TLS server block, uncommented, listening on `port` with
/// `cert` and `key`.
fn tls_block(site: &str, port: u16, cert: &Path, key: &Path) -> String {
    let start = site.find("# TLS (wss://)").expect("the site has a commented TLS block");
    let mut block = String::new();
    for line in site[start..].lines().skip(1) {
        let Some(rest) = line.strip_prefix('#') else { break };
        block.push_str(rest.strip_prefix(' ').unwrap_or(rest));
        block.push('\n');
    }
    let line_of = |directive: &str| {
        block
            .lines()
            .find(|l| l.trim_start().starts_with(directive))
            .unwrap_or_else(|| panic!("the TLS block has no {directive}"))
            .to_string()
    };
    let (cert_line, key_line) = (line_of("ssl_certificate "), line_of("ssl_certificate_key "));
    block
        .replace("listen 443 ", &format!("listen 127.0.0.1:{port} "))
        .replace(&cert_line, &format!("    ssl_certificate {};", cert.display()))
        .replace(&key_line, &format!("    ssl_certificate_key {};", key.display()))
}

/// The site with its listen port and upstream servers substituted.
fn site(port: u16, upstreams: &[u16], tls: Option<(u16, &Path, &Path)>) -> String {
    let mut site = std::fs::read_to_string(repo().join("nginx/sites-available/default")).expect("the site config");
    let servers = site.matches("    server 127.0.0.1:").count();
    assert_eq!(
        upstreams.len(),
        servers,
        "the site's upstream has {servers} servers; give a port for each"
    );
    if let Some((tls_port, cert, key)) = tls {
        let block = tls_block(&site, tls_port, cert, key);
        site.push_str(&block);
    }
    site = site.replace("listen 80 ", &format!("listen 127.0.0.1:{port} "));
    for (i, upstream) in (9001u16..).zip(upstreams) {
        site = site.replace(&format!("127.0.0.1:{i} "), &format!("127.0.0.1:{upstream} "));
    }
    site
}

impl Nginx {
    /// Starts it in front of `upstreams` (one port per upstream server of the site).
    pub fn start(upstreams: &[u16]) -> Self {
        Self::start_inner(upstreams, None)
    }

    /// Also enables the site's TLS block (the `wss://` template) with this certificate.
    pub fn start_with_tls(upstreams: &[u16], cert: &Path, key: &Path) -> Self {
        Self::start_inner(upstreams, Some((cert, key)))
    }

    fn start_inner(upstreams: &[u16], tls: Option<(&Path, &Path)>) -> Self {
        start_with_retries("nginx", || {
            let n = STARTED.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("wsload-nginx-{}-{n}", std::process::id()));
            let mut nginx = Nginx {
                port: Port::reserve(),
                tls_port: tls.map(|_| Port::reserve()),
                dir,
                proc: None,
            };
            nginx.spawn(upstreams, tls).map(|()| nginx)
        })
    }

    fn spawn(&mut self, upstreams: &[u16], tls: Option<(&Path, &Path)>) -> Result<(), String> {
        for sub in ["sites-enabled", "conf.d", "logs"] {
            std::fs::create_dir_all(self.dir.join(sub)).expect("nginx prefix directory");
        }
        let prefix = format!("{}/", self.dir.display());
        let conf = std::fs::read_to_string(repo().join("nginx/nginx.conf")).expect("nginx.conf");
        let conf = conf
            .replace("user www-data;", "")
            .replace("/etc/nginx/", &prefix)
            .replace("/var/log/nginx/", &format!("{prefix}logs/"))
            .replace("/run/nginx.pid", &format!("{prefix}nginx.pid"));
        std::fs::write(self.dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let tls = self
            .tls_port
            .as_ref()
            .zip(tls)
            .map(|(p, (cert, key))| (p.number(), cert, key));
        let site = site(self.port.number(), upstreams, tls);
        std::fs::write(self.dir.join("sites-enabled/default"), site).expect("write the site");
        let mut proc = Proc::spawn(
            Command::new(system_binary("nginx"))
                .args(["-p", &prefix, "-c", &format!("{prefix}nginx.conf"), "-g", "daemon off;"])
                .stderr(Stdio::inherit()),
            "nginx",
        )
        .with_grace(Duration::from_secs(5));
        for port in std::iter::once(&self.port).chain(&self.tls_port) {
            proc.wait_listening(port.number(), STARTUP)?;
        }
        self.proc = Some(proc);
        Ok(())
    }

    /// `nginx -s reload` with its own prefix and config: the master starts new workers
    /// on the (unchanged) config and lets the old ones finish their connections.
    /// Returns once the command has signalled the master.
    pub fn reload(&self) {
        let prefix = format!("{}/", self.dir.display());
        let out = Command::new(system_binary("nginx"))
            .args(["-p", &prefix, "-c", &format!("{prefix}nginx.conf"), "-s", "reload"])
            .output()
            .expect("run nginx -s reload");
        assert!(
            out.status.success(),
            "nginx -s reload failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The process ids of its worker processes now (children of the master).
    pub fn worker_pids(&self) -> Vec<u32> {
        let Some(master) = self.proc.as_ref().map(Proc::pid) else {
            return Vec::new();
        };
        std::fs::read_dir(format!("/proc/{master}/task"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect()
    }

    /// Its plain HTTP port.
    pub fn port(&self) -> u16 {
        self.port.number()
    }

    /// Its error log so far (empty if there is none yet).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
    }

    /// `ws://127.0.0.1:<port>/ws`.
    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.port.addr())
    }

    /// The `wss://` URL (with [`Nginx::start_with_tls`]).
    pub fn wss_url(&self) -> String {
        let port = self.tls_port.as_ref().expect("started with TLS");
        format!("wss://{}/ws", port.addr())
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        drop(self.proc.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
