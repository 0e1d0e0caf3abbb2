//! An echo server on fastwebsockets (behind hyper 1's HTTP upgrade, the way
//! fastwebsockets' own examples do it), the peer for the load comparison
//! (`perf/loadgen.sh`, `examples/loadgen.rs`).
//!
//! ```text
//! cargo run --release --example fastwebsockets_echo_server -- 127.0.0.1:9003
//! ```
//!
//! Same command-line contract as `tokio_echo_server`: the listen address is
//! the only argument (`127.0.0.1:0` picks a free port), and the line
//! `fastwebsockets_echo_server listening on ws://IP:PORT` goes to stdout. The
//! same runtime as `tokio_echo_server` (`#[tokio::main]`: multi-threaded, one
//! worker per available core), `TCP_NODELAY` on. hyper serves the upgrade
//! request on one task, which spawns the WebSocket task and ends. Echoes text
//! and binary messages up to 64 MiB (fragmented ones are reassembled by
//! `FragmentCollector`), with `auto_close` and `auto_pong` on. Nothing is
//! printed per message or per connection; a broken connection just ends its
//! task.
//!
//! Unlike fastwebsockets' example, the WebSocket task is not wrapped in
//! `tokio::task::unconstrained`: all three servers of the comparison run
//! plain tasks under tokio's cooperative budget.

use fastwebsockets::upgrade::{upgrade, UpgradeFut};
use fastwebsockets::{FragmentCollector, OpCode, WebSocketError};
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "fastwebsockets_echo_server listening on ws://{}",
        listener.local_addr()?
    );
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            // e.g. out of file descriptors: keep serving the others
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(tcp);
            // errors (a client that hangs up mid-request) just end the task
            let _ = http1::Builder::new()
                .serve_connection(io, service_fn(handle_request))
                .with_upgrades()
                .await;
        });
    }
}

async fn handle_request(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, http::Error> {
    match upgrade(&mut req) {
        Ok((response, fut)) => {
            tokio::spawn(async move {
                let _ = serve(fut).await;
            });
            Ok(response)
        }
        Err(_) => Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Empty::new()),
    }
}

async fn serve(fut: UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = fut.await?;
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    ws.set_max_message_size(64 << 20);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Close => break,
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            _ => {}
        }
    }
    Ok(())
}
