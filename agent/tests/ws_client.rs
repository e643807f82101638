//! The agent's WebSocket client against a server it did not write
//! (tokio-tungstenite) on real loopback sockets: messages both ways, pings
//! answered, the server's close code echoed, a burst of frames in one write, and
//! 1,000 connections each holding a frame cut off mid-way at once.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use wsload_agent::target_tls::Stream;
use wsload_agent::ws::{Frame, OpCode, Ws};

fn listener() -> (TcpListener, url::Url) {
    let std = wsload_testkit::ports::listener();
    std.set_nonblocking(true).unwrap();
    let l = TcpListener::from_std(std).unwrap();
    let url = url::Url::parse(&format!("ws://{}/ws", l.local_addr().unwrap())).unwrap();
    (l, url)
}

async fn connect(url: &url::Url) -> Ws {
    let addr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let tcp = TcpStream::connect(addr).await.unwrap();
    Ws::handshake(Stream::Plain(tcp), url, None, &[]).await.unwrap()
}

#[tokio::test]
async fn talks_to_tungstenite_and_echoes_its_close() {
    let (l, url) = listener();
    let server = tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        ws.send(Message::text("hello")).await.unwrap();
        // A burst: 100 frames in one flush.
        for i in 0..100 {
            ws.feed(Message::text(format!("{{\"n\":{i}}}"))).await.unwrap();
        }
        ws.feed(Message::Ping(b"p1".to_vec().into())).await.unwrap();
        ws.flush().await.unwrap();
        let mut got = Vec::new();
        while let Some(m) = ws.next().await {
            match m.unwrap() {
                Message::Text(t) if t.as_str() == "done" => break,
                Message::Pong(p) => got.push(format!("pong {}", String::from_utf8_lossy(&p))),
                Message::Text(t) => got.push(t.to_string()),
                Message::Binary(b) => got.push(format!("binary {}", b.len())),
                _ => {}
            }
        }
        ws.close(Some(CloseFrame {
            code: CloseCode::Library(4001),
            reason: "bye".into(),
        }))
        .await
        .unwrap();
        let mut echoed = None;
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Close(c) = m {
                echoed = c.map(|c| u16::from(c.code));
            }
        }
        (got, echoed)
    });
    let mut ws = connect(&url).await;
    assert_eq!(ws.next_frame().await.unwrap(), Frame::text("hello"));
    for i in 0..100 {
        assert_eq!(ws.next_frame().await.unwrap(), Frame::text(format!("{{\"n\":{i}}}")));
    }
    assert_eq!(ws.next_frame().await.unwrap(), Frame::ping(&b"p1"[..]));
    assert_eq!(ws.held(), 0, "nothing held once every frame was taken");
    ws.send(Frame::text("one")).await.unwrap();
    ws.feed(&Frame::binary(vec![0u8; 70_000]));
    ws.feed(&Frame::text("done"));
    ws.flush().await.unwrap();
    assert_eq!(ws.held(), 0, "the write queue is freed once written");
    let close = ws.next_frame().await.unwrap();
    assert_eq!((close.opcode(), close.close_code()), (OpCode::Close, 4001));
    assert!(ws.next_frame().await.is_err(), "nothing after the close");
    tokio::time::timeout(Duration::from_secs(5), ws.wait_end())
        .await
        .unwrap();
    let (got, echoed) = server.await.unwrap();
    assert_eq!(got, vec!["pong p1", "one", "binary 70000"]);
    assert_eq!(echoed, Some(4001));
}

#[tokio::test]
async fn a_thousand_connections_hold_a_cut_off_frame_at_once() {
    const N: usize = 1000;
    let (l, url) = listener();
    let frame = |i: usize| {
        let text = format!(
            "{{\"type\":\"response\",\"messageCount\":{i},\"pad\":\"{}\"}}",
            "q".repeat(i % 200)
        );
        let mut wire = vec![0x81];
        if text.len() < 126 {
            wire.push(text.len() as u8);
        } else {
            wire.push(126);
            wire.extend_from_slice(&(text.len() as u16).to_be_bytes());
        }
        wire.extend_from_slice(text.as_bytes());
        (text, wire)
    };
    let (cut_tx, mut cut_rx) = tokio::sync::mpsc::channel::<()>(N);
    let (rest_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let rest = rest_tx.clone();
    // A raw server: answers the upgrade, writes the first part of a frame, waits,
    // then writes the rest (cut at a different byte for each connection).
    let server = tokio::spawn(async move {
        let mut tasks = Vec::new();
        for i in 0..N {
            let (mut tcp, _) = l.accept().await.unwrap();
            let (cut_tx, mut rest) = (cut_tx.clone(), rest.subscribe());
            tasks.push(tokio::spawn(async move {
                let key = read_key(&mut tcp).await;
                let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                let head = format!("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
                tcp.write_all(head.as_bytes()).await.unwrap();
                let (_, wire) = frame(i);
                let cut = 1 + i % (wire.len() - 1);
                tcp.write_all(&wire[..cut]).await.unwrap();
                cut_tx.send(()).await.unwrap();
                rest.recv().await.unwrap();
                tcp.write_all(&wire[cut..]).await.unwrap();
                // Keep the socket until the client has read.
                let mut sink = [0u8; 64];
                let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut sink).await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let mut clients = Vec::new();
    for _ in 0..N {
        clients.push(connect(&url).await);
    }
    for _ in 0..N {
        cut_rx.recv().await.unwrap();
    }
    // Every client reads what arrived (a frame cut short) and must wait for more.
    let reads = clients
        .iter_mut()
        .map(|ws| tokio::time::timeout(Duration::from_millis(200), ws.next_frame()));
    for (i, r) in futures::future::join_all(reads).await.into_iter().enumerate() {
        assert!(r.is_err(), "connection {i} has no whole frame yet");
    }
    let mut held = 0;
    for (i, ws) in clients.iter().enumerate() {
        let whole = frame(i).1.len();
        // At most room for the one frame, whatever the read it came in.
        assert!(
            ws.held() <= whole,
            "connection {i} holds {} for a {whole}-byte frame",
            ws.held()
        );
        held += ws.held();
    }
    assert!(held > 0);
    rest_tx.send(()).unwrap();
    for (i, ws) in clients.iter_mut().enumerate() {
        assert_eq!(
            ws.next_frame().await.unwrap(),
            Frame::text(frame(i).0),
            "connection {i}"
        );
        assert_eq!(ws.held(), 0);
        ws.send(Frame::close(1000, b"")).await.unwrap();
    }
    drop(clients);
    server.await.unwrap();
}

/// Reads an upgrade request and returns its Sec-WebSocket-Key.
async fn read_key(tcp: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    while !buf.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tokio::io::AsyncReadExt::read_exact(tcp, &mut b).await.unwrap();
        buf.push(b[0]);
    }
    let text = String::from_utf8(buf).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap()
        .trim()
        .to_owned()
}
