//! A small client on the tokio adapter: connects, sends a text and a binary
//! message, prints the echoes, closes.
//!
//! ```text
//! cargo run --release --features tokio --example tokio_client -- ws://127.0.0.1:9001 "hello"
//! ```

use futures_util::{SinkExt, StreamExt};
use wsproto::{Config, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001/".into());
    let text = args.next().unwrap_or_else(|| "hello from wsproto".into());

    let (mut ws, accepted) = wsproto::tokio::connect(&url, Config::default()).await?;
    println!("connected to {url} (subprotocol: {:?})", accepted.protocol);

    ws.send(Message::text(text)).await?;
    ws.send(Message::binary(vec![0u8, 1, 2, 254, 255])).await?;
    for _ in 0..2 {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => println!("text echo:   {t}"),
            Some(Ok(Message::Binary(b))) => println!("binary echo: {b:02x?}"),
            Some(Err(e)) => return Err(e.into()),
            None => return Err("connection closed early".into()),
        }
    }
    let reason = ws.close(None).await?;
    println!("closed: {reason:?}");
    Ok(())
}
