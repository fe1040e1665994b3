//! Each toxic on real loopback sockets, with its units and timing. Margins are generous:
//! the lower bounds are what the toxic promises, the upper bounds only catch a toxic
//! that is far off (a shared 2-core machine can stall for a while).

mod support;

use std::time::Duration;

use support::{Chaos, echo, read_all, round_trip, sender};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

#[tokio::test]
async fn latency_of_100ms_each_way_makes_a_round_trip_of_about_200ms() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    for stream in ["upstream", "downstream"] {
        let body =
            format!(r#"{{"type":"latency","stream":"{stream}","attributes":{{"latency":100}}}}"#);
        chaos.toxic("db", &body).await;
    }
    let mut client = TcpStream::connect(listen).await.unwrap();
    for _ in 0..3 {
        let took = round_trip(&mut client, 32).await;
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_millis(800), "{took:?}");
    }
}

#[tokio::test]
async fn jitter_stays_within_its_bounds() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    chaos
        .toxic(
            "db",
            r#"{"type":"latency","attributes":{"latency":100,"jitter":50}}"#,
        )
        .await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    for _ in 0..5 {
        let took = round_trip(&mut client, 8).await;
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_millis(700), "{took:?}");
    }
}

#[tokio::test]
async fn bandwidth_of_1000_kbps_carries_480000_bytes_in_about_480ms() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", sender(vec![7u8; 480_000]).await).await;
    chaos
        .toxic("db", r#"{"type":"bandwidth","attributes":{"rate":1000}}"#)
        .await;
    let started = Instant::now();
    let mut client = TcpStream::connect(listen).await.unwrap();
    let got = read_all(&mut client, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert_eq!(got.len(), 480_000);
    assert!(took >= Duration::from_millis(440), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn reset_peer_resets_the_connection_near_its_timeout() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    chaos
        .toxic(
            "db",
            r#"{"type":"reset_peer","attributes":{"timeout":300}}"#,
        )
        .await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    let started = Instant::now();
    client.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .expect("the reset comes within 5 s");
    let took = started.elapsed();
    let error = read.expect_err("a reset, not data or a clean close");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(took >= Duration::from_millis(280), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn timeout_zero_passes_nothing_and_holds_until_removed() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    chaos
        .toxic("db", r#"{"type":"timeout","attributes":{"timeout":0}}"#)
        .await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    client.write_all(b"hello").await.unwrap();
    let mut buf = [0u8; 64];
    let held = tokio::time::timeout(Duration::from_millis(700), client.read(&mut buf)).await;
    assert!(
        held.is_err(),
        "nothing passes and the connection stays open"
    );
    let removed = chaos
        .call("DELETE", "/proxies/db/toxics/timeout_downstream", "")
        .await;
    assert_eq!(removed.status, 204);
    let removed_at = Instant::now();
    let after = read_all(&mut client, Duration::from_secs(5)).await;
    assert!(after.is_empty(), "the swallowed data is gone");
    let closed = removed_at.elapsed();
    assert!(
        closed < Duration::from_secs(3),
        "closed on removal: {closed:?}"
    );
    let mut client = TcpStream::connect(listen).await.unwrap();
    round_trip(&mut client, 8).await;
}

#[tokio::test]
async fn timeout_with_a_value_closes_after_it() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    chaos
        .toxic("db", r#"{"type":"timeout","attributes":{"timeout":300}}"#)
        .await;
    let started = Instant::now();
    let mut client = TcpStream::connect(listen).await.unwrap();
    client.write_all(b"hello").await.unwrap();
    let got = read_all(&mut client, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(got.is_empty());
    assert!(took >= Duration::from_millis(280), "{took:?}");
    assert!(took < Duration::from_millis(2000), "{took:?}");
}

#[tokio::test]
async fn limit_data_passes_exactly_n_bytes_then_closes() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", sender(vec![1u8; 100_000]).await).await;
    chaos
        .toxic(
            "db",
            r#"{"type":"limit_data","attributes":{"bytes":12345}}"#,
        )
        .await;
    for _ in 0..3 {
        let mut client = TcpStream::connect(listen).await.unwrap();
        let got = read_all(&mut client, Duration::from_secs(5)).await;
        assert_eq!(got.len(), 12_345);
    }
}

#[tokio::test]
async fn slow_close_delays_only_the_close() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", sender(b"bye".to_vec()).await).await;
    chaos
        .toxic("db", r#"{"type":"slow_close","attributes":{"delay":800}}"#)
        .await;
    let started = Instant::now();
    let mut client = TcpStream::connect(listen).await.unwrap();
    let mut first = [0u8; 3];
    client.read_exact(&mut first).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "data is not delayed"
    );
    let rest = read_all(&mut client, Duration::from_secs(5)).await;
    assert!(rest.is_empty());
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(780), "{took:?}");
    assert!(took < Duration::from_millis(3000), "{took:?}");
}

#[tokio::test]
async fn slicer_delivers_everything_in_delayed_slices() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", sender(vec![3u8; 1000]).await).await;
    chaos
        .toxic(
            "db",
            r#"{"type":"slicer","attributes":{"average_size":100,"size_variation":20,"delay":20000}}"#,
        )
        .await;
    let started = Instant::now();
    let mut client = TcpStream::connect(listen).await.unwrap();
    let got = read_all(&mut client, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert_eq!(got, vec![3u8; 1000]);
    // At least 8 slices of at most 120 bytes, 20 ms apart.
    assert!(took >= Duration::from_millis(140), "{took:?}");
    assert!(took < Duration::from_millis(3000), "{took:?}");
}

#[tokio::test]
async fn toxicity_zero_changes_nothing_at_all() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    chaos
        .toxic(
            "db",
            r#"{"type":"timeout","toxicity":0,"attributes":{"timeout":0}}"#,
        )
        .await;
    for _ in 0..50 {
        let mut client = TcpStream::connect(listen).await.unwrap();
        round_trip(&mut client, 8).await;
    }
    // Removing it closes nothing either.
    let mut live = TcpStream::connect(listen).await.unwrap();
    round_trip(&mut live, 8).await;
    chaos
        .call("DELETE", "/proxies/db/toxics/timeout_downstream", "")
        .await;
    round_trip(&mut live, 8).await;
}

#[tokio::test]
async fn toxicity_half_over_1000_connections_lands_within_binomial_bounds() {
    let chaos = Chaos::with_seed(2024).await;
    let listen = chaos.proxy("db", sender(b"ab".to_vec()).await).await;
    chaos
        .toxic(
            "db",
            r#"{"type":"limit_data","toxicity":0.5,"attributes":{"bytes":1}}"#,
        )
        .await;
    let mut hit = 0u32;
    for _ in 0..1000 {
        let mut client = TcpStream::connect(listen).await.unwrap();
        let got = read_all(&mut client, Duration::from_secs(5)).await;
        match got.len() {
            1 => hit += 1,
            2 => {}
            n => panic!("read {n} bytes"),
        }
    }
    // n = 1000, p = 0.5: sigma = sqrt(250) ≈ 15.8; 4 sigma ≈ 63.
    assert!((437..=563).contains(&hit), "{hit} of 1000");
}

#[tokio::test]
async fn limit_time_passes_data_then_closes_after_its_time() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    chaos
        .toxic("db", r#"{"type":"limit_time","attributes":{"time":800}}"#)
        .await;
    let started = Instant::now();
    let mut client = TcpStream::connect(listen).await.unwrap();
    assert!(round_trip(&mut client, 8).await < Duration::from_millis(600));
    let rest = read_all(&mut client, Duration::from_secs(5)).await;
    let took = started.elapsed();
    assert!(rest.is_empty());
    assert!(took >= Duration::from_millis(780), "{took:?}");
    assert!(took < Duration::from_millis(3000), "{took:?}");
}

#[tokio::test]
async fn removing_a_latency_toxic_releases_the_data_it_holds() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    // An absurd latency: held "forever", without overflowing anything.
    chaos
        .toxic(
            "db",
            r#"{"type":"latency","attributes":{"latency":9223372036854775807}}"#,
        )
        .await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    client.write_all(b"held").await.unwrap();
    let mut back = [0u8; 4];
    let early =
        tokio::time::timeout(Duration::from_millis(400), client.read_exact(&mut back)).await;
    assert!(early.is_err(), "held by the toxic");
    chaos
        .call("DELETE", "/proxies/db/toxics/latency_downstream", "")
        .await;
    tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut back))
        .await
        .expect("released when the toxic goes")
        .unwrap();
    assert_eq!(&back, b"held");
    round_trip(&mut client, 8).await;
}

#[tokio::test]
async fn a_shared_bandwidth_is_split_between_connections() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", sender(vec![9u8; 240_000]).await).await;
    let answer = chaos
        .toxic(
            "db",
            r#"{"type":"bandwidth","attributes":{"rate":1000,"shared":true}}"#,
        )
        .await;
    assert_eq!(answer.json()["attributes"]["shared"], true);
    let started = Instant::now();
    let fetch = || async {
        let mut client = TcpStream::connect(listen).await.unwrap();
        read_all(&mut client, Duration::from_secs(10)).await.len()
    };
    let (a, b) = tokio::join!(fetch(), fetch());
    let took = started.elapsed();
    assert_eq!((a, b), (240_000, 240_000));
    // 480,000 bytes in all at 1000 KB/s: about 480 ms, not the 240 ms of two lines.
    assert!(took >= Duration::from_millis(430), "{took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn drop_data_drops_its_share_of_chunks_and_keeps_the_close() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", sender(vec![4u8; 50_000]).await).await;
    chaos
        .toxic("db", r#"{"type":"drop_data","attributes":{"percent":100}}"#)
        .await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    let started = Instant::now();
    let got = read_all(&mut client, Duration::from_secs(5)).await;
    assert!(got.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the close still passes"
    );
    chaos
        .call(
            "PATCH",
            "/proxies/db/toxics/drop_data_downstream",
            r#"{"attributes":{"percent":0}}"#,
        )
        .await;
    let mut client = TcpStream::connect(listen).await.unwrap();
    let got = read_all(&mut client, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 50_000);
}

/// Which of 100 sequential connections a toxicity-0.5 `limit_data` cut, for one seed.
async fn cut_pattern(seed: u64) -> Vec<bool> {
    let chaos = Chaos::with_seed(seed).await;
    let listen = chaos.proxy("db", sender(b"ab".to_vec()).await).await;
    chaos
        .toxic(
            "db",
            r#"{"type":"limit_data","toxicity":0.5,"attributes":{"bytes":1}}"#,
        )
        .await;
    let mut pattern = Vec::new();
    for _ in 0..100 {
        let mut client = TcpStream::connect(listen).await.unwrap();
        pattern.push(read_all(&mut client, Duration::from_secs(5)).await.len() == 1);
    }
    pattern
}

#[tokio::test]
async fn the_same_seed_repeats_the_same_draws() {
    let first = cut_pattern(77).await;
    assert_eq!(first, cut_pattern(77).await);
    assert_ne!(first, cut_pattern(78).await, "another seed, other draws");
}

#[tokio::test]
async fn many_concurrent_connections_are_delayed_together_not_in_turn() {
    let chaos = Chaos::start().await;
    let listen = chaos.proxy("db", echo().await).await;
    chaos
        .toxic("db", r#"{"type":"latency","attributes":{"latency":300}}"#)
        .await;
    let started = Instant::now();
    let clients = (0..500).map(|_| {
        tokio::spawn(async move {
            let mut client = TcpStream::connect(listen).await.unwrap();
            round_trip(&mut client, 64).await
        })
    });
    let mut slowest = Duration::ZERO;
    for client in clients.collect::<Vec<_>>() {
        let took = client.await.unwrap();
        assert!(took >= Duration::from_millis(300), "{took:?}");
        slowest = slowest.max(took);
    }
    // 500 × 300 ms in turn would be 150 s; together they take about 300 ms.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(slowest < Duration::from_secs(4), "{slowest:?}");
}
