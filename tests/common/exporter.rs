//! A fake exporter for tests: a loopback HTTP server answering every request (keep-alive)
//! with a Prometheus text body whose values change on every scrape.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A fake exporter on a loopback port, stopped on drop.
pub struct Target {
    /// The loopback port it listens on.
    pub port: u16,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Target {
    /// Starts target `id` exposing `checked` counters `torture_check{i}` and `load`
    /// gauges `torture_load{i,path}`, all changing on every scrape.
    pub fn start(id: usize, checked: usize, load: usize) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let st = Arc::clone(&stop);
        let scrapes = Arc::new(AtomicU64::new(0));
        let handle = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let scrapes = Arc::clone(&scrapes);
                        std::thread::spawn(move || serve_conn(conn, id, checked, load, &scrapes));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Target {
            port,
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Answers requests on one connection (keep-alive) until the client closes it.
fn serve_conn(conn: TcpStream, id: usize, checked: usize, load: usize, scrapes: &AtomicU64) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut w = match conn.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    loop {
        // request line and headers
        let mut first = true;
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line.trim_end().is_empty() && !first {
                break;
            }
            first = false;
        }
        let n = scrapes.fetch_add(1, Ordering::Relaxed) + 1;
        let mut body = String::with_capacity(64 * (checked + load));
        body.push_str("# TYPE torture_check counter\n");
        for i in 0..checked {
            body.push_str(&format!(
                "torture_check{{i=\"{i}\"}} {}\n",
                n * (i as u64 + 1) + id as u64
            ));
        }
        body.push_str("# TYPE torture_load gauge\n");
        for i in 0..load {
            let v = splitmix(n ^ (i as u64) << 20 ^ (id as u64) << 40) % 100_000;
            body.push_str(&format!(
                "torture_load{{i=\"{i}\",path=\"/api/v{}/x\"}} {}.{}\n",
                i % 7,
                v,
                v % 10
            ));
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if w.write_all(head.as_bytes()).is_err() || w.write_all(body.as_bytes()).is_err() {
            return;
        }
    }
}
