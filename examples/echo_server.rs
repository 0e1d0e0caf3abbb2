//! A blocking echo server, one thread per connection.
//!
//! ```text
//! cargo run --release --example echo_server -- 127.0.0.1:9001
//! ```
//!
//! Echoes text and binary messages; selects the subprotocol `chat` when the
//! client offers it; a text message `close-me` makes it close with 1000
//! `server closing`. Accepts messages up to 64 MiB. Used by the Autobahn
//! server-suite run in CI. Pass port 0 to get a free port (printed on
//! stdout).

use std::net::{TcpListener, TcpStream};

use wsproto::blocking::WebSocket;
use wsproto::handshake::AcceptOptions;
use wsproto::{CloseCode, CloseFrame, Config, Event};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr)?;
    println!("echo_server listening on ws://{}", listener.local_addr()?);
    for tcp in listener.incoming() {
        match tcp {
            Ok(tcp) => {
                std::thread::spawn(move || serve(tcp));
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
    Ok(())
}

fn config() -> Config {
    let mut config = Config::default();
    config.limits.max_message = 64 << 20;
    config.limits.max_frame_payload = 64 << 20;
    // permessage-deflate when built with `--features deflate`
    #[cfg(feature = "deflate")]
    {
        config.deflate = Some(wsproto::extension::deflate::DeflateConfig::default());
    }
    config
}

fn serve(tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let ws = WebSocket::accept_with(tcp, config(), |req| {
        let mut opts = AcceptOptions::new();
        if req.protocols().iter().any(|p| p == "chat") {
            opts = opts.protocol("chat");
        }
        Ok(opts)
    });
    let Ok(mut ws) = ws else { return };
    loop {
        match ws.read() {
            Ok(Event::Message(m)) => {
                let sent = if m.as_text() == Some("close-me") {
                    ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "server closing")))
                } else {
                    ws.send(m)
                };
                if sent.is_err() {
                    return;
                }
            }
            Ok(Event::Closed(_)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
