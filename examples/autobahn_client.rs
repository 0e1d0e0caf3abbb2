//! A client for the Autobahn|Testsuite fuzzing server.
//!
//! ```text
//! cargo run --release --example autobahn_client -- ws://127.0.0.1:9001 wsproto
//! ```
//!
//! Asks for the number of cases, runs each one (echoing every message until
//! the server ends the connection: protocol errors are part of the tests),
//! then asks the server to write its report.

use std::net::TcpStream;
use std::time::Duration;

use wsproto::blocking::{Error, WebSocket};
use wsproto::handshake::ClientRequest;
use wsproto::{Config, Event};

fn connect(url: &str) -> Result<WebSocket<TcpStream>, Error> {
    let request = ClientRequest::from_url(url)?;
    let tcp = TcpStream::connect(request.connect_addr())?;
    tcp.set_nodelay(true)?;
    let mut config = Config::default();
    config.limits.max_message = 64 << 20;
    config.limits.max_frame_payload = 64 << 20;
    // permessage-deflate when built with `--features deflate`
    #[cfg(feature = "deflate")]
    {
        config.deflate = Some(wsproto::extension::deflate::DeflateConfig::default());
    }
    config.close_timeout = Duration::from_secs(5);
    let (ws, _) = WebSocket::connect(tcp, &request, config)?;
    Ok(ws)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "wsproto".into());

    let mut ws = connect(&format!("{base}/getCaseCount"))?;
    let count: u32 = match ws.read_message()? {
        Some(m) => m
            .as_text()
            .ok_or("case count is not text")?
            .trim()
            .parse()?,
        None => return Err("no case count".into()),
    };
    while ws.read_message()?.is_some() {}
    eprintln!("running {count} cases as {agent}");

    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let mut ws = match connect(&url) {
            Ok(ws) => ws,
            Err(e) => {
                eprintln!("case {case}: connect failed: {e}");
                continue;
            }
        };
        loop {
            match ws.read() {
                Ok(Event::Message(m)) => {
                    if ws.send(m).is_err() {
                        break;
                    }
                }
                Ok(Event::Closed(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    let mut ws = connect(&format!("{base}/updateReports?agent={agent}"))?;
    while ws.read_message()?.is_some() {}
    eprintln!("report updated");
    Ok(())
}
