//! Bad input: every invalid flag, URL, busy port or wrong inherited socket is one line
//! naming the problem, with exit code 2.

use std::process::Output;
use std::time::Duration;

use wsload_testkit::ports::listener;
use wsload_testkit::ws_server::ws_server_command;
use wsload_testkit::*;

fn assert_one_line_error(args: &[&str], needle: &str) {
    assert_one_line(&run_ws_server(args), args, needle);
}

fn assert_one_line(out: &Output, args: &[&str], needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?} should print one line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    assert!(lines[0].contains(needle), "{args:?}: '{}' lacks '{needle}'", lines[0]);
}

#[test]
fn invalid_flags() {
    assert_one_line_error(&["--instances", "zero"], "--instances");
    assert_one_line_error(&["--instances", "0"], "--instances");
    assert_one_line_error(&["--base-port", "70000"], "--base-port");
    assert_one_line_error(&["--no-such-flag"], "--no-such-flag");
    assert_one_line_error(&["--broker", "kafka"], "--broker");
    assert_one_line_error(&["--idle-timeout", "soon"], "--idle-timeout");
    assert_one_line_error(&["--max-payload", "1XB"], "--max-payload");
    assert_one_line_error(&["--base-port", "65530", "--instances", "12"], "65535");
    assert_one_line_error(&["--ping-interval", "200s"], "--ping-interval");
}

#[test]
fn bad_redis_url() {
    assert_one_line_error(&["--broker", "redis", "--redis-url", "http://nope"], "--redis-url");
    assert_one_line_error(&["--redis-url", "not a url"], "--redis-url");
}

#[test]
fn busy_port() {
    let held = listener();
    let port = held.local_addr().unwrap().port().to_string();
    assert_one_line_error(
        &["--instances", "1", "--base-port", &port],
        &format!("127.0.0.1:{port}"),
    );
    assert_one_line_error(&["worker", "--port", &port], "in use");
}

#[test]
fn inherited_sockets_must_match_the_instances() {
    let two = ["--broker", "memory", "--instances", "1"];
    let out = ws_server_command(vec![listener(), listener()])
        .args(two)
        .output()
        .unwrap();
    assert_one_line(
        &out,
        &two,
        "LISTEN_FDS passes 2 listening socket(s) but --instances is 1",
    );
    let wrong_port = ["worker", "--port", "1"];
    let out = ws_server_command(vec![listener()]).args(wrong_port).output().unwrap();
    assert_one_line(&out, &wrong_port, "not on --port 1");
    let one = ["--instances", "1"];
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = ws_server_command(vec![udp]).args(one).output().unwrap();
    assert_one_line(
        &out,
        &one,
        "inherited fd 3 (LISTEN_FDS): fd 3 is not a valid tcp socket",
    );
    let bound = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    bound
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let out = ws_server_command(vec![bound]).args(one).output().unwrap();
    assert_one_line(&out, &one, "a TCP socket that is not listening");
}

#[test]
fn publish_needs_redis() {
    assert_one_line_error(&["publish", "hi"], "redis");
}

#[test]
fn json_logs_are_one_object_per_line() {
    // --base-port, as deployments use it: the server binds the port itself.
    let reserved = Port::reserve();
    let port = reserved.to_string();
    let child = std::process::Command::new(workspace_bin("ws-server"))
        .args([
            "--log-format",
            "json",
            "--broker",
            "memory",
            "--instances",
            "1",
            "--base-port",
            &port,
        ])
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_healthy(reserved.number(), Duration::from_secs(10)).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = stderr.lines().collect();
    assert!(lines.len() >= 2, "{stderr}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
    }
}
