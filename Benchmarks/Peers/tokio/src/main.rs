//! Spindle's Tokio peer: the workloads of shared/workloads.md on Tokio, with the sizes of
//! spindle-bench (`Catalog.swift`, `Sizes`), so that `spindle-bench --runtimes tokio` can put
//! Tokio beside Spindle in the same rounds.
//!
//!   spindle-peer-tokio --workload W1 --threads N [--quick]   one RESULT line, as spindle-bench prints
//!   spindle-peer-tokio --serve W8|W9 --threads N             prints `PORT <n>`, serves until stdin ends
//!
//! `--threads 1` is Tokio's `current_thread` runtime (one thread, like Spindle's 1-worker
//! runtime); more is the multi-thread scheduler with that many workers. W8 is hyper 0.14's
//! HTTP/1.1 server answering `GET /` with `Hello, World!`; W9 echoes what it reads. Both listen on
//! 127.0.0.1 with a port the kernel picks and turn Nagle's algorithm off.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::exit;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// spindle-bench's `Sizes.full` and `Sizes.quick`, for the workloads this peer runs.
struct Sizes {
    spawn_many_tasks: usize,
    yield_tasks: usize,
    yields_per_task: usize,
    ping_pong_pairs: usize,
    round_trips_per_pair: usize,
    chain_depth: usize,
    chain_repeats: usize,
    skynet_leaves: usize,
    cpu_tasks: usize,
    timer_tasks: usize,
}

const FULL: Sizes = Sizes {
    spawn_many_tasks: 1_000_000,
    yield_tasks: 1_000,
    yields_per_task: 1_000,
    ping_pong_pairs: 1_000,
    round_trips_per_pair: 1_000,
    chain_depth: 1_000,
    chain_repeats: 1_000,
    skynet_leaves: 1_000_000,
    cpu_tasks: 2_000,
    timer_tasks: 100_000,
};

const QUICK: Sizes = Sizes {
    spawn_many_tasks: 100_000,
    yield_tasks: 1_000,
    yields_per_task: 100,
    ping_pong_pairs: 1_000,
    round_trips_per_pair: 50,
    chain_depth: 1_000,
    chain_repeats: 100,
    skynet_leaves: 100_000,
    cpu_tasks: 200,
    timer_tasks: 10_000,
};

fn die(message: &str) -> ! {
    eprintln!("spindle-peer-tokio: {message}");
    exit(1)
}

fn main() {
    let mut workload = None;
    let mut serve = None;
    let mut threads = 1usize;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workload" => workload = args.next(),
            "--serve" => serve = args.next(),
            "--threads" => {
                threads = args.next().and_then(|t| t.parse().ok()).filter(|&t| t >= 1)
                    .unwrap_or_else(|| die("--threads takes a count of at least 1"))
            }
            "--quick" => quick = true,
            _ => die(&format!("unknown argument {arg:?}; usage: --workload W1..W7 --threads N [--quick] | --serve W8|W9 --threads N")),
        }
    }
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
    .unwrap_or_else(|e| die(&format!("cannot start Tokio: {e}")));

    if let Some(server) = serve {
        // The server ends when its standard input does: when spindle-bench closes it, or dies.
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            exit(0)
        });
        match server.as_str() {
            "W8" => runtime.block_on(serve_http()),
            "W9" => runtime.block_on(serve_echo()),
            _ => die("--serve takes W8 or W9"),
        }
        return;
    }
    let workload = workload.unwrap_or_else(|| die("give --workload or --serve"));
    let sizes = if quick { &QUICK } else { &FULL };
    let metrics = runtime.block_on(async {
        match workload.as_str() {
            "W1" => spawn_many(sizes.spawn_many_tasks).await,
            "W2" => yield_many(sizes.yield_tasks, sizes.yields_per_task).await,
            "W3" => ping_pong(sizes.ping_pong_pairs, sizes.round_trips_per_pair).await,
            "W4" => chained_spawn(sizes.chain_depth, sizes.chain_repeats).await,
            "W5" => skynet_root(sizes.skynet_leaves).await,
            "W6" => unbalanced_cpu(sizes.cpu_tasks).await,
            "W7" => timers(sizes.timer_tasks).await,
            _ => die(&format!("no workload {workload} on Tokio")),
        }
    });
    let fields: Vec<String> = metrics.iter().map(|(name, value)| format!("{name}={value:.3}")).collect();
    println!("RESULT tokio {workload} {threads} {}", fields.join(" "));
}

fn nanos(start: Instant) -> f64 {
    start.elapsed().as_nanos() as f64
}

fn check(condition: bool, message: &str) {
    if !condition {
        die(message)
    }
}

// MARK: W1-W7

/// W1: every task spawned before any is awaited; each returns its index.
async fn spawn_many(tasks: usize) -> Vec<(&'static str, f64)> {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks).map(|i| tokio::spawn(async move { i })).collect();
    let mut sum = 0usize;
    for handle in handles {
        sum = sum.wrapping_add(handle.await.unwrap());
    }
    let elapsed = nanos(start);
    check(sum == tasks * (tasks - 1) / 2, "W1: wrong sum");
    vec![("ns_per_task", elapsed / tasks as f64)]
}

/// W2: `tasks` tasks, all runnable at once, each `yield_now`s `yields` times.
async fn yield_many(tasks: usize, yields: usize) -> Vec<(&'static str, f64)> {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            tokio::spawn(async move {
                for _ in 0..yields {
                    tokio::task::yield_now().await;
                }
                yields
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle.await.unwrap();
    }
    let elapsed = nanos(start);
    check(total == tasks * yields, "W2: wrong yield count");
    vec![("ns_per_yield", elapsed / total as f64)]
}

/// W3: each pair owns two capacity-1 `mpsc` channels, one per direction; the ponger answers
/// i with i + 1.
async fn ping_pong(pairs: usize, trips: usize) -> Vec<(&'static str, f64)> {
    let start = Instant::now();
    let mut pingers = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        let (ping_tx, mut ping_rx) = mpsc::channel::<usize>(1);
        let (pong_tx, mut pong_rx) = mpsc::channel::<usize>(1);
        tokio::spawn(async move {
            while let Some(value) = ping_rx.recv().await {
                if pong_tx.send(value + 1).await.is_err() {
                    break;
                }
            }
        });
        pingers.push(tokio::spawn(async move {
            let mut sum = 0;
            for trip in 0..trips {
                ping_tx.send(trip).await.unwrap();
                let reply = pong_rx.recv().await.unwrap();
                if reply != trip + 1 {
                    return usize::MAX;
                }
                sum += reply;
            }
            sum
        }));
    }
    let mut total = 0usize;
    for pinger in pingers {
        total = total.wrapping_add(pinger.await.unwrap());
    }
    let elapsed = nanos(start);
    check(total == pairs * trips * (trips + 1) / 2, "W3: wrong replies");
    vec![("ns_per_roundtrip", elapsed / (pairs * trips) as f64)]
}

/// W4: each task spawns the next and returns; the last one sends the chain's length.
async fn chained_spawn(depth: usize, repeats: usize) -> Vec<(&'static str, f64)> {
    fn link(number: usize, depth: usize, done: oneshot::Sender<usize>) {
        tokio::spawn(async move {
            if number == depth {
                let _ = done.send(number);
            } else {
                link(number + 1, depth, done);
            }
        });
    }
    let start = Instant::now();
    let mut spawned = 0;
    for _ in 0..repeats {
        let (done, length) = oneshot::channel();
        link(1, depth, done);
        let length = length.await.unwrap();
        check(length == depth, "W4: short chain");
        spawned += length;
    }
    vec![("ns_per_spawn", nanos(start) / spawned as f64)]
}

/// W5: a 10-ary tree of spawned tasks; leaf i returns i.
fn skynet(first: usize, size: usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = usize> + Send>> {
    Box::pin(async move {
        if size == 1 {
            return first;
        }
        let child = size / 10;
        let handles: Vec<_> = (0..10).map(|i| tokio::spawn(skynet(first + i * child, child))).collect();
        let mut sum = 0;
        for handle in handles {
            sum += handle.await.unwrap();
        }
        sum
    })
}

async fn skynet_root(leaves: usize) -> Vec<(&'static str, f64)> {
    let start = Instant::now();
    let sum = skynet(0, leaves).await;
    let elapsed = nanos(start);
    check(sum == leaves * (leaves - 1) / 2, "W5: wrong sum");
    vec![("total_ms", elapsed / 1e6)]
}

/// SplitMix64, as spindle-bench's (UnbalancedCPU.swift).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A double in [0, 1) from the top 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// spindle-bench's `CPUWork.hash`: dependent multiply-xorshift steps.
#[inline(never)]
fn hash(seed: u64, iterations: usize) -> u64 {
    let mut x = seed;
    for _ in 0..iterations {
        x ^= x >> 31;
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 29;
    }
    x
}

/// W6: spindle-bench's plan (geometric, p = 0.1, units of 50 µs at 455,000 iterations per ms),
/// every task spawned at once.
async fn unbalanced_cpu(tasks: usize) -> Vec<(&'static str, f64)> {
    let per_unit = 455_000 * 50 / 1000;
    let mut random = SplitMix64(0x5EED_0006);
    let plan: Vec<usize> = (0..tasks)
        .map(|_| {
            let mut units = 1;
            while random.unit() >= 0.1 {
                units += 1;
            }
            units * per_unit
        })
        .collect();
    let start = Instant::now();
    let handles: Vec<_> = plan.iter().enumerate()
        .map(|(i, &n)| tokio::spawn(async move { hash(i as u64, n) }))
        .collect();
    let mut results = Vec::with_capacity(tasks);
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    let elapsed = nanos(start);
    for i in (0..tasks).step_by((tasks / 32).max(1)) {
        check(results[i] == hash(i as u64, plan[i]), "W6: wrong hash");
    }
    vec![("total_ms", elapsed / 1e6)]
}

/// W7: every task sleeps once for a fixed-seed 1-100 ms; lateness = wake-up - (asked + delay).
async fn timers(tasks: usize) -> Vec<(&'static str, f64)> {
    let mut random = SplitMix64(0x5EED_0007);
    let plan: Vec<u64> = (0..tasks).map(|_| 1 + random.next() % 100).collect();
    let lateness = Arc::new(Mutex::new(Vec::with_capacity(tasks)));
    let remaining = Arc::new(AtomicUsize::new(tasks));
    let (done_tx, done_rx) = oneshot::channel();
    let done = Arc::new(Mutex::new(Some(done_tx)));
    let start = Instant::now();
    for ms in plan {
        let (lateness, remaining, done) = (lateness.clone(), remaining.clone(), done.clone());
        tokio::spawn(async move {
            let delay = Duration::from_millis(ms);
            let asked = Instant::now();
            tokio::time::sleep(delay).await;
            let late = asked.elapsed().as_secs_f64() - delay.as_secs_f64();
            lateness.lock().unwrap().push(late * 1e3);
            // AcqRel: the last decrement sees every task's push (each pushed before its own).
            if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                let _ = done.lock().unwrap().take().unwrap().send(());
            }
        });
    }
    done_rx.await.unwrap();
    let total = nanos(start) / 1e6;
    let mut sorted = lateness.lock().unwrap().clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    check(sorted.len() == tasks && sorted[0] >= 0.0, "W7: a sleep ended early or never");
    let rank = |f: f64| sorted[((sorted.len() as f64 * f).ceil() as usize).clamp(1, sorted.len()) - 1];
    vec![
        ("total_ms", total),
        ("lateness_p50_ms", rank(0.50)),
        ("lateness_p99_ms", rank(0.99)),
        ("lateness_max_ms", sorted[sorted.len() - 1]),
    ]
}

// MARK: W8, W9

fn announce(address: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "PORT {}", address.port());
    let _ = out.flush();
}

/// W8: hyper's HTTP/1.1 server (keep-alive; it adds `Date` and `Content-Length`).
async fn serve_http() {
    use hyper::service::{make_service_fn, service_fn};
    use hyper::{Body, Request, Response, Server, StatusCode};

    async fn respond(request: Request<Body>) -> Result<Response<Body>, Infallible> {
        let response = if request.uri().path() == "/" {
            Response::builder()
                .header("Content-Type", "text/plain; charset=utf-8")
                .body(Body::from("Hello, World!"))
        } else {
            Response::builder().status(StatusCode::NOT_FOUND).body(Body::empty())
        };
        Ok(response.unwrap())
    }

    let address: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Server::try_bind(&address)
        .unwrap_or_else(|e| die(&format!("W8: cannot listen: {e}")))
        .tcp_nodelay(true)
        .serve(make_service_fn(|_| async { Ok::<_, Infallible>(service_fn(respond)) }));
    announce(server.local_addr());
    if let Err(e) = server.await {
        die(&format!("W8: {e}"));
    }
}

/// W9: per connection, read what has arrived (64 KiB at most) and write it all back.
async fn serve_echo() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await
        .unwrap_or_else(|e| die(&format!("W9: cannot listen: {e}")));
    announce(listener.local_addr().unwrap());
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => die(&format!("W9: accept: {e}")),
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if stream.write_all(&buffer[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}
