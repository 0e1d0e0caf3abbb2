//! The Autobahn fuzzing-server client, on the tokio adapter.
//!
//! ```text
//! cargo run --release --features tokio --example tokio_autobahn_client -- ws://127.0.0.1:9001 wsproto-tokio
//! ```

use futures_util::{SinkExt, StreamExt};
use wsproto::tokio::{connect, Error, WebSocketStream};
use wsproto::Config;

fn config() -> Config {
    let mut config = Config::default();
    config.limits.max_message = 64 << 20;
    config.limits.max_frame_payload = 64 << 20;
    // permessage-deflate when built with `--features deflate`
    #[cfg(feature = "deflate")]
    {
        config.deflate = Some(wsproto::extension::deflate::DeflateConfig::default());
    }
    config.close_timeout = std::time::Duration::from_secs(5);
    config
}

async fn open(url: &str) -> Result<WebSocketStream<tokio::net::TcpStream>, Error> {
    Ok(connect(url, config()).await?.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "wsproto-tokio".into());

    let mut ws = open(&format!("{base}/getCaseCount")).await?;
    let count: u32 = match ws.next().await {
        Some(m) => m?
            .as_text()
            .ok_or("case count is not text")?
            .trim()
            .parse()?,
        None => return Err("no case count".into()),
    };
    while ws.next().await.is_some() {}
    eprintln!("running {count} cases as {agent}");

    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let mut ws = match open(&url).await {
            Ok(ws) => ws,
            Err(e) => {
                eprintln!("case {case}: connect failed: {e}");
                continue;
            }
        };
        while let Some(Ok(msg)) = ws.next().await {
            if ws.send(msg).await.is_err() {
                break;
            }
        }
    }

    let mut ws = open(&format!("{base}/updateReports?agent={agent}")).await?;
    while ws.next().await.is_some() {}
    eprintln!("report updated");
    Ok(())
}
