//! A multi-room chat on wsproto's tokio adapter: one port serves the page
//! (plain HTML + JavaScript, `static/index.html`, embedded) and the
//! WebSocket endpoint `/ws` (subprotocol `chat.v1`).
//!
//! ```text
//! cargo run --release --features tokio --example chat
//! # then open http://127.0.0.1:8080/ in two browser tabs
//! ```
//!
//! Scale-out: `--redis redis://127.0.0.1:6379` fans rooms out through Redis
//! pub/sub so several instances share them (docs/deploy/ has an nginx
//! config and a script that runs two instances behind nginx). WSS:
//! `--tls-cert` / `--tls-key`. `--help` lists every flag; docs/chat.md
//! describes the protocol.
//!
//! Modules: `cli` (flags), `server` (listener, routing, handshake policy,
//! shutdown), `http` (request heads, plain responses), `session` (one
//! WebSocket connection), `protocol` (the JSON messages, serde), `broker`
//! (the `Broker` trait, local fan-out, in-process broker), `redis_broker`,
//! `tls` (rustls), `client` (`--client`, a terminal client).

mod broker;
mod cli;
mod client;
mod http;
mod protocol;
mod redis_broker;
mod server;
mod session;
mod tls;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let mode = match cli::parse(std::env::args().skip(1)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("chat: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match mode {
        cli::Mode::Help => {
            print!("{}", cli::USAGE);
            Ok(())
        }
        cli::Mode::GenCert(dir) => tls::gen_cert(&dir),
        cli::Mode::Client(opts) => client::run(opts).await,
        cli::Mode::Server(opts) => server::run(opts).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chat: {e}");
            ExitCode::FAILURE
        }
    }
}
