//! Remote write load generator for `bench/remote_write.sh`: sends the same remote write
//! 1.0 requests to two receivers (Aion and Prometheus), alternating between them, and
//! reports throughput and CPU seconds per million samples of each server process.
//!
//! Every request holds `--series` series (500) with `--samples` samples each (4), so
//! 2,000 samples; timestamps advance by `--step-ms` per sample and end near the current
//! time. With `--connections N` (default 2) the load is split over N keep-alive
//! connections, each with its own series (as Prometheus shards by series), so the
//! samples of one series always arrive in order. All bodies are encoded before the
//! clock starts; the first request of each connection (which creates the series) is a
//! warm-up and not measured.
//!
//! ```text
//! cargo run --release --example remote_write_load -- \
//!     --target=aion,127.0.0.1:19290,<pid> --target=prometheus,127.0.0.1:19291,<pid> \
//!     [--requests=600] [--rounds=6] [--series=500] [--samples=4] [--connections=2]
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aion::remote::codec;
use aion::remote::proto::{Label, Sample, TimeSeries, WriteRequest};

struct Target {
    name: String,
    addr: String,
    pid: u32,
    wall: Duration,
    cpu_ticks: u64,
    samples: u64,
}

struct Opts {
    targets: Vec<Target>,
    requests: usize,
    rounds: usize,
    series: usize,
    samples: usize,
    connections: usize,
    step_ms: i64,
}

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        targets: Vec::new(),
        requests: 600,
        rounds: 6,
        series: 500,
        samples: 4,
        connections: 2,
        step_ms: 1000,
    };
    for a in std::env::args().skip(1) {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| format!("expected --name=value, got {a}"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|_| format!("bad number in {a}"));
        match k {
            "--target" => {
                let p: Vec<&str> = v.split(',').collect();
                let [name, addr, pid] = p.as_slice() else {
                    return Err(format!("--target wants name,host:port,pid; got {v}"));
                };
                o.targets.push(Target {
                    name: name.to_string(),
                    addr: addr.to_string(),
                    pid: pid.parse().map_err(|_| format!("bad pid in {a}"))?,
                    wall: Duration::ZERO,
                    cpu_ticks: 0,
                    samples: 0,
                });
            }
            "--requests" => o.requests = num(v)?,
            "--rounds" => o.rounds = num(v)?.max(1),
            "--series" => o.series = num(v)?.max(1),
            "--samples" => o.samples = num(v)?.max(1),
            "--connections" => o.connections = num(v)?.max(1),
            "--step-ms" => o.step_ms = num(v)?.max(1) as i64,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if o.targets.is_empty() {
        return Err("give at least one --target=name,host:port,pid".into());
    }
    Ok(o)
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn label(n: &str, v: String) -> Label {
    Label {
        name: n.into(),
        value: v,
    }
}

/// The request bodies of one connection: `requests` requests, each with every series
/// and `samples` consecutive samples of it.
fn bodies(o: &Opts, conn: usize, requests: usize, start_ms: i64) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ conn as u64);
    let codes = ["200", "404", "500"];
    let series: Vec<Vec<Label>> = (0..o.series)
        .map(|i| {
            vec![
                label("__name__", format!("bench_metric_{}", i % 25)),
                label("code", codes[i % 3].to_string()),
                label("env", "prod".into()),
                label("instance", format!("host-{conn}-{:03}:9100", i / 25)),
                label("job", "node".into()),
                label("region", "eu-west-1".into()),
            ]
        })
        .collect();
    let mut values: Vec<f64> = vec![0.0; o.series];
    let mut t = start_ms;
    (0..requests)
        .map(|_| {
            let timeseries = series
                .iter()
                .enumerate()
                .map(|(i, labels)| {
                    let samples = (0..o.samples)
                        .map(|k| {
                            let r = rng.next();
                            let v = if i % 2 == 0 {
                                values[i] += (r % 100) as f64; // counter
                                values[i]
                            } else {
                                (r % 1_000_000) as f64 / 1000.0 // gauge
                            };
                            Sample {
                                value: v,
                                timestamp: t + k as i64 * o.step_ms,
                            }
                        })
                        .collect();
                    TimeSeries {
                        labels: labels.clone(),
                        samples,
                        exemplars: vec![],
                        histograms: vec![],
                    }
                })
                .collect();
            t += o.samples as i64 * o.step_ms;
            codec::encode(&WriteRequest {
                timeseries,
                metadata: vec![],
            })
        })
        .collect()
}

struct Conn {
    addr: String,
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: &str) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn {
            addr: addr.to_string(),
            r: BufReader::new(s),
        })
    }

    fn post(&mut self, body: &[u8]) -> Result<(), String> {
        let head = format!(
            "POST /api/v1/write HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\n\
             Content-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\n\
             User-Agent: remote_write_load\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let io = |e: std::io::Error| e.to_string();
        let s = self.r.get_mut();
        s.write_all(head.as_bytes()).map_err(io)?;
        s.write_all(body).map_err(io)?;
        let mut line = String::new();
        self.r.read_line(&mut line).map_err(io)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).map_err(io)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut b = vec![0; len];
        self.r.read_exact(&mut b).map_err(io)?;
        if status / 100 != 2 {
            return Err(format!(
                "{} answered {status}: {}",
                self.addr,
                String::from_utf8_lossy(&b)
            ));
        }
        Ok(())
    }
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Sends `chunks[c]` on connection `c`, all connections in parallel.
fn send(conns: &mut [Conn], chunks: &[&[Vec<u8>]]) -> Result<(), String> {
    std::thread::scope(|s| {
        let hs: Vec<_> = conns
            .iter_mut()
            .zip(chunks)
            .map(|(c, bodies)| {
                s.spawn(move || {
                    for b in bodies.iter() {
                        c.post(b)?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        for h in hs {
            h.join()
                .map_err(|_| "sender thread panicked".to_string())??;
        }
        Ok(())
    })
}

fn samples_appended(addr: &str) -> f64 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return f64::NAN;
    };
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .filter(|l| l.starts_with("prometheus_tsdb_head_samples_appended_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn main() {
    let mut o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("remote_write_load: {e}");
            std::process::exit(2);
        }
    };
    let per_req = (o.series * o.samples) as u64;
    let total = o.requests + 1;
    let span = total as i64 * o.samples as i64 * o.step_ms;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let start = now - span;
    let t0 = Instant::now();
    let all: Vec<Vec<Vec<u8>>> = (0..o.connections)
        .map(|c| bodies(&o, c, total, start))
        .collect();
    let bytes: usize = all.iter().flatten().map(Vec::len).sum();
    println!(
        "encoded {} requests of {} samples ({} series x {}) on {} connections, {:.1} KiB each on average, in {:.1}s",
        total * o.connections,
        per_req,
        o.series,
        o.samples,
        o.connections,
        bytes as f64 / (total * o.connections) as f64 / 1024.0,
        t0.elapsed().as_secs_f64()
    );
    let mut conns: Vec<Vec<Conn>> = Vec::new();
    for t in &o.targets {
        let mut v = Vec::new();
        for _ in 0..o.connections {
            match Conn::open(&t.addr) {
                Ok(c) => v.push(c),
                Err(e) => {
                    eprintln!("remote_write_load: cannot connect to {}: {e}", t.addr);
                    std::process::exit(1);
                }
            }
        }
        conns.push(v);
    }
    let run = |conns: &mut [Conn], range: std::ops::Range<usize>| -> Result<(), String> {
        let chunks: Vec<&[Vec<u8>]> = all.iter().map(|b| &b[range.clone()]).collect();
        send(conns, &chunks)
    };
    // Warm-up: the first request of every connection creates the series.
    for (i, t) in o.targets.iter().enumerate() {
        if let Err(e) = run(&mut conns[i], 0..1) {
            eprintln!("remote_write_load: warm-up of {}: {e}", t.name);
            std::process::exit(1);
        }
    }
    let per_round = o.requests.div_ceil(o.rounds);
    let mut from = 1;
    let mut round = 0;
    while from < total {
        let to = (from + per_round).min(total);
        let n = o.targets.len();
        for k in 0..n {
            // The order flips every round.
            let i = if round % 2 == 0 { k } else { n - 1 - k };
            let t = &mut o.targets[i];
            let c0 = cpu_ticks(t.pid);
            let w0 = Instant::now();
            if let Err(e) = run(&mut conns[i], from..to) {
                eprintln!("remote_write_load: {}: {e}", t.name);
                std::process::exit(1);
            }
            t.wall += w0.elapsed();
            // Let the server finish accounting for the requests' work.
            std::thread::sleep(Duration::from_millis(50));
            t.cpu_ticks += cpu_ticks(t.pid).saturating_sub(c0);
            t.samples += (to - from) as u64 * per_req * o.connections as u64;
        }
        from = to;
        round += 1;
    }
    let tck = clk_tck();
    println!();
    println!(
        "{:<12} {:>12} {:>8} {:>14} {:>8} {:>16} {:>18} {:>16}",
        "server",
        "samples",
        "wall s",
        "samples/s",
        "CPU s",
        "CPU s/1M samples",
        "samples/CPU s",
        "head appended"
    );
    let mut per_core = Vec::new();
    for t in &o.targets {
        let wall = t.wall.as_secs_f64();
        let cpu = t.cpu_ticks as f64 / tck;
        let spc = t.samples as f64 / cpu.max(1e-9);
        per_core.push((
            t.name.clone(),
            t.samples as f64 / wall,
            cpu / t.samples as f64,
            spc,
        ));
        println!(
            "{:<12} {:>12} {:>8.2} {:>14.0} {:>8.2} {:>16.3} {:>18.0} {:>16.0}",
            t.name,
            t.samples,
            wall,
            t.samples as f64 / wall,
            cpu,
            cpu / t.samples as f64 * 1e6,
            spc,
            samples_appended(&t.addr)
        );
    }
    if let [a, b] = per_core.as_slice() {
        println!();
        println!(
            "{}/{}: throughput {:.2}x, CPU per sample {:.3}x, samples per CPU second {:.2}x",
            a.0,
            b.0,
            a.1 / b.1,
            a.2 / b.2,
            a.3 / b.3
        );
    }
}
