//! Command-line flags (hand-rolled: no argument-parser dependency).

use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
chat: a multi-room WebSocket chat on wsproto's tokio adapter

USAGE
  chat [SERVER FLAGS]                    run the server (default http://127.0.0.1:8080)
  chat --client URL [CLIENT FLAGS]       a terminal client (ws:// or wss://)
  chat --gen-cert DIR                    write DIR/cert.pem + DIR/key.pem (self-signed,
                                         for localhost, 127.0.0.1 and ::1)

SERVER FLAGS
  --addr HOST:PORT         listen address (default 127.0.0.1:8080; port 0 = any free port)
  --redis URL              share rooms between instances through Redis pub/sub,
                           e.g. redis://127.0.0.1:6379 (default: in-process broker)
  --tls-cert PEM           serve https:// and wss:// with this certificate chain ...
  --tls-key PEM            ... and this private key (both or neither)
  --allowed-origin ORIGIN  also accept WebSockets from pages of ORIGIN, e.g.
                           https://chat.example.com (repeatable; '*' = any origin).
                           The server's own origins are always allowed; requests
                           without Origin (non-browser clients) are allowed too
  --token TOKEN            require this bearer token (Authorization: Bearer TOKEN,
                           or ?token=TOKEN on /ws); also read from $CHAT_TOKEN
  --max-message BYTES      largest WebSocket message (default 65536; bigger ones
                           close the connection with 1009)
  --max-text CHARS         longest chat text (default 2000; longer gets an error event)
  --keepalive SECS         ping a client after SECS without traffic (default 20; 0 = off)
  --keepalive-timeout SECS drop it if nothing arrives SECS after the ping (default 20)
  --max-connections N      refuse WebSocket upgrades beyond N (503; default 10000)
  --name NAME              instance name shown to clients (default: the listen address)

CLIENT FLAGS
  --room ROOM              join ROOM (default lobby)
  --user NAME              as NAME (default: $USER or 'guest')
  --say TEXT               send TEXT, wait until it comes back, then leave and exit
                           (repeatable; without it, lines from stdin are sent)
  --ca PEM                 trust this certificate for wss:// (e.g. from --gen-cert)
  --token TOKEN            send Authorization: Bearer TOKEN (also $CHAT_TOKEN)
  --origin ORIGIN          send this Origin header (as a browser would)
  --timeout SECS           give up after SECS (default 10 with --say, none otherwise)
";

#[derive(Debug)]
pub enum Mode {
    Help,
    GenCert(PathBuf),
    Client(ClientOpts),
    Server(ServerOpts),
}

#[derive(Debug, Clone)]
pub struct ServerOpts {
    pub addr: String,
    pub redis: Option<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub allowed_origins: Vec<String>,
    pub token: Option<String>,
    pub max_message: usize,
    pub max_text: usize,
    pub keepalive: Option<Duration>,
    pub keepalive_timeout: Duration,
    pub max_connections: usize,
    pub name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ClientOpts {
    pub url: String,
    pub room: String,
    pub user: String,
    pub say: Vec<String>,
    pub ca: Option<PathBuf>,
    pub token: Option<String>,
    pub origin: Option<String>,
    pub timeout: Option<Duration>,
}

fn secs(flag: &str, v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!("{flag}: expected seconds (0 to 86400), got {v:?}")),
    }
}

fn number(flag: &str, v: &str, min: usize, max: usize) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{flag}: expected a number from {min} to {max}, got {v:?}"
        )),
    }
}

fn env_token() -> Option<String> {
    std::env::var("CHAT_TOKEN").ok().filter(|t| !t.is_empty())
}

/// Parse the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Mode, String> {
    let mut args = args.into_iter();
    let mut server = ServerOpts {
        addr: "127.0.0.1:8080".into(),
        redis: None,
        tls: None,
        allowed_origins: Vec::new(),
        token: None,
        max_message: 64 << 10,
        max_text: 2000,
        keepalive: Some(Duration::from_secs(20)),
        keepalive_timeout: Duration::from_secs(20),
        max_connections: 10_000,
        name: None,
    };
    let mut client: Option<ClientOpts> = None;
    let mut tls_cert = None;
    let mut tls_key = None;
    let mut gen_cert = None;
    let mut client_only: Vec<&'static str> = Vec::new();
    let mut server_only: Vec<&'static str> = Vec::new();
    let mut room = None;
    let mut user = None;
    let mut say = Vec::new();
    let mut ca = None;
    let mut origin = None;
    let mut timeout = None;
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value (see --help)"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Mode::Help),
            "--addr" => {
                server.addr = value("--addr")?;
                server_only.push("--addr");
            }
            "--redis" => {
                server.redis = Some(value("--redis")?);
                server_only.push("--redis");
            }
            "--tls-cert" => tls_cert = Some(PathBuf::from(value("--tls-cert")?)),
            "--tls-key" => tls_key = Some(PathBuf::from(value("--tls-key")?)),
            "--allowed-origin" => {
                let o = value("--allowed-origin")?;
                server
                    .allowed_origins
                    .push(o.trim_end_matches('/').to_ascii_lowercase());
                server_only.push("--allowed-origin");
            }
            "--token" => server.token = Some(value("--token")?),
            "--max-message" => {
                server.max_message =
                    number("--max-message", &value("--max-message")?, 128, 64 << 20)?;
                server_only.push("--max-message");
            }
            "--max-text" => {
                server.max_text = number("--max-text", &value("--max-text")?, 1, 1 << 20)?;
                server_only.push("--max-text");
            }
            "--keepalive" => {
                let d = secs("--keepalive", &value("--keepalive")?)?;
                server.keepalive = (!d.is_zero()).then_some(d);
                server_only.push("--keepalive");
            }
            "--keepalive-timeout" => {
                server.keepalive_timeout =
                    secs("--keepalive-timeout", &value("--keepalive-timeout")?)?;
                server_only.push("--keepalive-timeout");
            }
            "--max-connections" => {
                server.max_connections = number(
                    "--max-connections",
                    &value("--max-connections")?,
                    1,
                    1 << 24,
                )?;
                server_only.push("--max-connections");
            }
            "--name" => {
                server.name = Some(value("--name")?);
                server_only.push("--name");
            }
            "--gen-cert" => gen_cert = Some(PathBuf::from(value("--gen-cert")?)),
            "--client" => {
                client = Some(ClientOpts {
                    url: value("--client")?,
                    room: String::new(),
                    user: String::new(),
                    say: Vec::new(),
                    ca: None,
                    token: None,
                    origin: None,
                    timeout: None,
                })
            }
            "--room" => {
                room = Some(value("--room")?);
                client_only.push("--room");
            }
            "--user" => {
                user = Some(value("--user")?);
                client_only.push("--user");
            }
            "--say" => {
                say.push(value("--say")?);
                client_only.push("--say");
            }
            "--ca" => {
                ca = Some(PathBuf::from(value("--ca")?));
                client_only.push("--ca");
            }
            "--origin" => {
                origin = Some(value("--origin")?);
                client_only.push("--origin");
            }
            "--timeout" => {
                timeout = Some(secs("--timeout", &value("--timeout")?)?);
                client_only.push("--timeout");
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    if let Some(dir) = gen_cert {
        return Ok(Mode::GenCert(dir));
    }
    let token = server.token.clone().or_else(env_token);
    if let Some(mut c) = client {
        if let Some(f) = server_only.first() {
            return Err(format!(
                "{f} is a server flag; it does not go with --client"
            ));
        }
        c.room = room.unwrap_or_else(|| "lobby".into());
        c.user = user
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "guest".into());
        c.timeout = timeout.or_else(|| (!say.is_empty()).then(|| Duration::from_secs(10)));
        c.say = say;
        c.ca = ca;
        c.token = token;
        c.origin = origin;
        return Ok(Mode::Client(c));
    }
    if let Some(f) = client_only.first() {
        return Err(format!("{f} is a client flag; it needs --client URL"));
    }
    server.tls = match (tls_cert, tls_key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    server.token = token;
    // a character is at most 12 bytes of JSON (an escaped surrogate pair)
    if server.max_text * 12 + 256 > server.max_message {
        return Err(format!(
            "--max-message ({}) must leave room for --max-text ({} characters, up to 12 bytes each as JSON, plus the JSON around them)",
            server.max_message, server.max_text
        ));
    }
    Ok(Mode::Server(server))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Mode, String> {
        parse(s.split_whitespace().map(String::from))
    }

    #[test]
    fn defaults_and_flags() {
        let Ok(Mode::Server(s)) = args("") else {
            panic!()
        };
        assert_eq!(s.addr, "127.0.0.1:8080");
        assert!(s.redis.is_none() && s.tls.is_none());
        let Ok(Mode::Server(s)) = args(
            "--addr 0.0.0.0:0 --redis redis://r:6379 --allowed-origin HTTPS://Chat.Example/ \
             --max-message 100000 --max-text 500 --keepalive 0",
        ) else {
            panic!()
        };
        assert_eq!(s.redis.as_deref(), Some("redis://r:6379"));
        assert_eq!(s.allowed_origins, ["https://chat.example"]);
        assert_eq!(
            (s.max_message, s.max_text, s.keepalive),
            (100_000, 500, None)
        );
        let Ok(Mode::Client(c)) = args("--client ws://h/ws --say hi --room r") else {
            panic!()
        };
        assert_eq!((c.room.as_str(), c.say.len()), ("r", 1));
        assert!(c.timeout.is_some());
    }

    #[test]
    fn mistakes_are_explained() {
        for bad in [
            "--tls-cert a.pem",
            "--max-text 10000",
            "--keepalive soon",
            "--room r",
            "--client ws://h/ws --redis redis://r",
            "--bogus",
            "--addr",
        ] {
            assert!(args(bad).is_err(), "{bad}");
        }
    }
}
