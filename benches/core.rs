//! Core decode/encode throughput, against memcpy of the same bytes.
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use wsproto::frame::{encode_frame, FrameHeader, OpCode};
use wsproto::{Config, Connection, Event, Message, MessageKind, Role};

fn masked_frames(opcode: OpCode, payload: &[u8], frames: usize) -> Vec<u8> {
    let mut out = BytesMut::new();
    let chunk = payload.len().div_ceil(frames).max(1);
    let pieces: Vec<&[u8]> = if payload.is_empty() {
        vec![&[][..]]
    } else {
        payload.chunks(chunk).collect()
    };
    for (i, p) in pieces.iter().enumerate() {
        let mut h = FrameHeader::new(if i == 0 { opcode } else { OpCode::Continuation }, 0);
        h.fin = i + 1 == pieces.len();
        h.mask = Some([0x12, 0x34, 0x56, 0x78]);
        encode_frame(&mut out, &h, p);
    }
    out.to_vec()
}

fn config() -> Config {
    let mut c = Config::default();
    c.limits.max_message = 64 << 20;
    c.limits.max_frame_payload = 64 << 20;
    c
}

fn decode_all(wire: &[u8]) -> usize {
    let mut conn = Connection::server(config());
    conn.receive(wire);
    let mut n = 0;
    while let Some(ev) = conn.poll_event().unwrap() {
        if let Event::Message(m) = ev {
            n += m.len();
        }
    }
    n
}

fn bench_decode(c: &mut Criterion) {
    for (name, kind, size, frames) in [
        ("binary_64k", OpCode::Binary, 64 << 10, 1),
        ("text_16k", OpCode::Text, 16 << 10, 1),
        ("text_1m_64frag", OpCode::Text, 1 << 20, 64),
    ] {
        let payload: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let wire = masked_frames(kind, &payload, frames);
        assert_eq!(decode_all(&wire), size);
        let mut g = c.benchmark_group(format!("decode_{name}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("memcpy", |b| {
            let mut dst = vec![0u8; wire.len()];
            b.iter(|| {
                dst.copy_from_slice(black_box(&wire));
                black_box(&dst);
            })
        });
        g.bench_function("wsproto", |b| {
            b.iter(|| black_box(decode_all(black_box(&wire))))
        });
        g.finish();
    }
    // 16-byte frames: frames per second
    let one = masked_frames(OpCode::Binary, &[7u8; 16], 1);
    let n = 10_000;
    let wire: Vec<u8> = one.iter().copied().cycle().take(one.len() * n).collect();
    assert_eq!(decode_all(&wire), 16 * n);
    let mut g = c.benchmark_group("decode_binary_16b_frames");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("wsproto", |b| {
        b.iter(|| black_box(decode_all(black_box(&wire))))
    });
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let payload = bytes::Bytes::from(vec![b'x'; 16 << 10]);
    let mut g = c.benchmark_group("encode_client_16k");
    g.throughput(Throughput::Bytes(payload.len() as u64));
    g.bench_function("memcpy", |b| {
        let mut dst = vec![0u8; payload.len()];
        b.iter(|| {
            dst.copy_from_slice(black_box(&payload));
            black_box(&dst);
        })
    });
    g.bench_function("wsproto", |b| {
        let mut conn =
            Connection::client_with_masks(config(), Box::new(|buf: &mut [u8]| buf.fill(0x5a)));
        b.iter_batched(
            || payload.clone(),
            |p| {
                conn.send(Message::Binary(p)).unwrap();
                let mut n = 0;
                while let Some(c) = conn.poll_transmit() {
                    n += c.len();
                }
                black_box(n)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
    let _ = MessageKind::Text;
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
