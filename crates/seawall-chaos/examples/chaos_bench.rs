//! Load generator for `bench/chaos.sh`: the same loopback traffic directly to an upstream
//! and through a `seawall chaos` proxy with no toxics, so the two can be compared.
//!
//! Usage: `chaos_bench API_ADDR [CHAOS_PID]`. Bounded by the environment:
//! `BYTES` (bulk transfer per repetition, default 256 MiB, 3 repetitions),
//! `ROUND_TRIPS` (64-byte echo round trips, default 20000), `CONNS` (connections held
//! open at once through the proxy, default 2000; with `CHAOS_PID`, the proxy's RSS is
//! sampled before and while they are open).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let api: SocketAddr = args
        .next()
        .ok_or("usage: chaos_bench API_ADDR [PID]")?
        .parse()?;
    let pid = args.next();
    let bytes = env("BYTES", 256 << 20);
    let round_trips = env("ROUND_TRIPS", 20_000);
    let conns = env("CONNS", 2000);

    let sink = sender(bytes).await?;
    let echo = echo().await?;
    let bulk_proxy = create_proxy(api, "bench_bulk", sink).await?;
    let echo_proxy = create_proxy(api, "bench_echo", echo).await?;

    println!("| measurement | direct | through seawall chaos | ratio |");
    println!("|---|---:|---:|---:|");
    let direct = median_throughput(sink, bytes).await?;
    let through = median_throughput(bulk_proxy, bytes).await?;
    println!(
        "| bulk transfer, 1 connection, MB/s (median of 3 × {} MiB) | {direct:.0} | {through:.0} | {:.2} |",
        bytes >> 20,
        through / direct
    );
    let (d50, d99) = round_trip_latency(echo, round_trips).await?;
    let (t50, t99) = round_trip_latency(echo_proxy, round_trips).await?;
    println!(
        "| 64-byte round trip p50, µs ({round_trips} in a row) | {d50:.0} | {t50:.0} | {:.2} |",
        t50 / d50
    );
    println!(
        "| 64-byte round trip p99, µs | {d99:.0} | {t99:.0} | {:.2} |",
        t99 / d99
    );
    hold_connections(echo_proxy, conns, pid.as_deref()).await?;
    Ok(())
}

/// Creates a proxy on a free loopback port through the API; returns its address.
async fn create_proxy(api: SocketAddr, name: &str, upstream: SocketAddr) -> Result<SocketAddr> {
    let body = format!(r#"{{"name":"{name}","listen":"127.0.0.1:0","upstream":"{upstream}"}}"#);
    let mut stream = TcpStream::connect(api).await?;
    let request = format!(
        "POST /proxies HTTP/1.1\r\nHost: chaos\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let (_, json) = answer.split_once("\r\n\r\n").ok_or("no body")?;
    let value: serde_json::Value = serde_json::from_str(json)?;
    let listen = value["listen"].as_str().ok_or_else(|| answer.clone())?;
    Ok(listen.parse()?)
}

/// An upstream that writes `bytes` bytes on each connection, then closes.
async fn sender(bytes: u64) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let block = vec![0x5a_u8; 64 * 1024];
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    if stream.write_all(&block[..n]).await.is_err() {
                        return;
                    }
                    left -= n as u64;
                }
            });
        }
    });
    Ok(addr)
}

/// An upstream that echoes.
async fn echo() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Ok(addr)
}

async fn median_throughput(addr: SocketAddr, bytes: u64) -> Result<f64> {
    let mut rates = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).await?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        while got < bytes {
            let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await??;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        if got != bytes {
            return Err(format!("read {got} of {bytes} bytes from {addr}").into());
        }
        rates.push(bytes as f64 / started.elapsed().as_secs_f64() / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[1])
}

/// p50 and p99 of sequential 64-byte round trips, in microseconds.
async fn round_trip_latency(addr: SocketAddr, n: u64) -> Result<(f64, f64)> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let data = [7u8; 64];
    let mut back = [0u8; 64];
    let mut samples = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let started = Instant::now();
        stream.write_all(&data).await?;
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back)).await??;
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    Ok((at(0.5), at(0.99)))
}

/// Opens `n` connections through the proxy at once, one round trip each, and reports the
/// proxy's resident memory per connection while they are open.
async fn hold_connections(addr: SocketAddr, n: u64, pid: Option<&str>) -> Result<()> {
    let before = pid.map(rss_kib).transpose()?;
    let started = Instant::now();
    let mut open = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(b"ping").await?;
        let mut back = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back)).await??;
        open.push(stream);
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = pid.map(rss_kib).transpose()?;
    println!(
        "| {n} connections opened and held through the proxy (one round trip each) | | {:.2} s | |",
        took.as_secs_f64()
    );
    if let (Some(before), Some(during)) = (before, during) {
        let per = (during.saturating_sub(before)) as f64 * 1024.0 / n as f64;
        println!(
            "| proxy RSS before → with {n} open connections | | {:.1} → {:.1} MiB ({:.1} KiB per connection) | |",
            before as f64 / 1024.0,
            during as f64 / 1024.0,
            per / 1024.0
        );
    }
    drop(open);
    Ok(())
}

fn rss_kib(pid: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .ok_or("no VmRSS")?;
    let kib = line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?;
    Ok(kib)
}
