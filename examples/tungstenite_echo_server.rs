//! An echo server on tokio-tungstenite, the peer for the load comparison
//! (`perf/loadgen.sh`, `examples/loadgen.rs`).
//!
//! ```text
//! cargo run --release --example tungstenite_echo_server -- 127.0.0.1:9002
//! ```
//!
//! Same command-line contract as `tokio_echo_server`: the listen address is
//! the only argument (`127.0.0.1:0` picks a free port), and the line
//! `tungstenite_echo_server listening on ws://IP:PORT` goes to stdout. The
//! same runtime as `tokio_echo_server` (`#[tokio::main]`: multi-threaded, one
//! worker per available core), one task per connection, `TCP_NODELAY` on.
//! Echoes text and binary messages up to 64 MiB; pings are answered and close
//! handshakes completed by tungstenite itself. Nothing is printed per message
//! or per connection; a broken connection just ends its task.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "tungstenite_echo_server listening on ws://{}",
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
            let _ = serve(tcp).await;
        });
    }
}

async fn serve(tcp: tokio::net::TcpStream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let mut ws = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        // pings, pongs and close frames are handled by tungstenite
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}
