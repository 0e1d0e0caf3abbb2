//! An async echo server on tokio.
//!
//! ```text
//! cargo run --release --features tokio --example tokio_echo_server -- 127.0.0.1:9001
//! ```
//!
//! Same contract as `echo_server`: echoes text and binary; selects the
//! subprotocol `chat` when offered; a text message `close-me` makes it close
//! with 1000 `server closing`; messages up to 64 MiB. Port 0 picks a free
//! port (printed on stdout).

use futures_util::{SinkExt, StreamExt};
use wsproto::handshake::AcceptOptions;
use wsproto::tokio::accept_with;
use wsproto::{CloseCode, CloseFrame, Config};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "tokio_echo_server listening on ws://{}",
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

async fn serve(tcp: tokio::net::TcpStream) -> Result<(), wsproto::tokio::Error> {
    let mut ws = accept_with(tcp, config(), |req| {
        let mut opts = AcceptOptions::new();
        if req.protocols().iter().any(|p| p == "chat") {
            opts = opts.protocol("chat");
        }
        Ok(opts)
    })
    .await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.as_text() == Some("close-me") {
            ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "server closing")))
                .await?;
            break;
        }
        ws.send(msg).await?;
    }
    Ok(())
}
