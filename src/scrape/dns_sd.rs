//! DNS service discovery (`dns_sd_configs`): SRV, A, AAAA, MX and NS lookups through the
//! name servers of `/etc/resolv.conf` (with its `search` list and `ndots`), every
//! `refresh_interval`, with Prometheus's `__meta_dns_*` labels. A small DNS client of
//! its own: UDP queries, TCP when the answer is truncated, CNAME chains followed within
//! the answer.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::target::TargetGroup;
use crate::config::{DnsRecordType, DnsSdConfig};

const CLASS_IN: u16 = 1;
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A record of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A service location.
    Srv {
        /// Port.
        port: u16,
        /// Host name (fully qualified, with the trailing dot).
        target: String,
    },
    /// A mail exchanger.
    Mx(String),
    /// A name server.
    Ns(String),
    /// An alias.
    Cname(String),
}

/// The resolver settings of `/etc/resolv.conf`.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// Name servers (port 53 unless given).
    pub servers: Vec<SocketAddr>,
    /// Search domains.
    pub search: Vec<String>,
    /// Names with at least this many dots are tried as-is first.
    pub ndots: usize,
}

impl Resolver {
    /// Reads `/etc/resolv.conf` (127.0.0.1 when it names no server).
    pub fn from_system() -> Resolver {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        Resolver::parse_conf(&text)
    }

    /// Parses resolv.conf text.
    pub fn parse_conf(text: &str) -> Resolver {
        let mut r = Resolver {
            servers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
        };
        for line in text.lines() {
            let mut f = line.split_whitespace();
            match f.next() {
                Some("nameserver") => {
                    if let Some(ip) = f.next().and_then(|s| s.parse::<IpAddr>().ok()) {
                        r.servers.push(SocketAddr::new(ip, 53));
                    }
                }
                Some("search") | Some("domain") => {
                    r.search = f.map(|d| d.trim_end_matches('.').to_string()).collect();
                }
                Some("options") => {
                    for o in f {
                        if let Some(n) = o.strip_prefix("ndots:").and_then(|n| n.parse().ok()) {
                            r.ndots = n;
                        }
                    }
                }
                _ => {}
            }
        }
        if r.servers.is_empty() {
            r.servers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        r
    }

    /// The fully qualified names tried for `name`, in order.
    fn candidates(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') {
            return vec![name.to_string()];
        }
        let as_is = format!("{name}.");
        let mut out = Vec::new();
        let dots = name.matches('.').count();
        if dots >= self.ndots {
            out.push(as_is.clone());
        }
        for d in &self.search {
            out.push(format!("{name}.{d}."));
        }
        if dots < self.ndots {
            out.push(as_is);
        }
        out
    }

    /// Looks `name` up: the records of the first candidate name that has any; no
    /// records when a server answered but none had any; an error when no server
    /// answered.
    pub async fn lookup(&self, name: &str, qtype: u16) -> Result<Vec<Record>, String> {
        let mut last_err = None;
        let mut answered = false;
        for cand in self.candidates(name) {
            for server in &self.servers {
                match query(*server, &cand, qtype).await {
                    Ok(rs) if !rs.is_empty() => return Ok(rs),
                    Ok(_) => {
                        answered = true;
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
        }
        match last_err {
            Some(e) if !answered => Err(e),
            _ => Ok(Vec::new()),
        }
    }
}

fn encode_name(out: &mut Vec<u8>, name: &str) -> Result<(), String> {
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("invalid DNS name {name:?}"));
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    Ok(())
}

/// A query message.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut m = Vec::with_capacity(32 + name.len());
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x01, 0x00]); // recursion desired
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    encode_name(&mut m, name)?;
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(m)
}

fn u16_at(m: &[u8], i: usize) -> Result<u16, String> {
    m.get(i..i + 2)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map(u16::from_be_bytes)
        .ok_or_else(|| "truncated DNS message".to_string())
}

/// Reads a (possibly compressed) name at `i`; returns it and the offset after it.
fn read_name(m: &[u8], mut i: usize) -> Result<(String, usize), String> {
    let mut name = String::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *m.get(i).ok_or("truncated DNS name")? as usize;
        if len & 0xC0 == 0xC0 {
            let ptr = (u16_at(m, i)? & 0x3FFF) as usize;
            end.get_or_insert(i + 2);
            i = ptr;
            continue;
        }
        if len == 0 {
            if name.is_empty() {
                name.push('.');
            }
            return Ok((name, end.unwrap_or(i + 1)));
        }
        let label = m.get(i + 1..i + 1 + len).ok_or("truncated DNS label")?;
        name.push_str(&String::from_utf8_lossy(label));
        name.push('.');
        i += 1 + len;
    }
    Err("DNS name compression loop".into())
}

/// Parses a response to query `id`: (truncated, answer records by owner name).
pub fn parse_response(m: &[u8], id: u16) -> Result<(bool, Vec<(String, Record)>), String> {
    if u16_at(m, 0)? != id {
        return Err("DNS answer with the wrong ID".into());
    }
    let flags = u16_at(m, 2)?;
    let truncated = flags & 0x0200 != 0;
    let rcode = flags & 0x000F;
    if rcode == 3 {
        return Ok((truncated, Vec::new()));
    }
    if rcode != 0 {
        return Err(format!("DNS server answered with rcode {rcode}"));
    }
    let qd = u16_at(m, 4)?;
    let an = u16_at(m, 6)?;
    let mut i = 12;
    for _ in 0..qd {
        let (_, next) = read_name(m, i)?;
        i = next + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        let (owner, next) = read_name(m, i)?;
        let rtype = u16_at(m, next)?;
        let rdlen = u16_at(m, next + 8)? as usize;
        let rd = next + 10;
        let data = m.get(rd..rd + rdlen).ok_or("truncated DNS record")?;
        let rec = match rtype {
            1 => <[u8; 4]>::try_from(data)
                .ok()
                .map(|b| Record::A(Ipv4Addr::from(b))),
            28 => <[u8; 16]>::try_from(data)
                .ok()
                .map(|b| Record::Aaaa(Ipv6Addr::from(b))),
            33 => {
                let port = u16_at(m, rd + 4)?;
                let (target, _) = read_name(m, rd + 6)?;
                Some(Record::Srv { port, target })
            }
            15 => Some(Record::Mx(read_name(m, rd + 2)?.0)),
            2 => Some(Record::Ns(read_name(m, rd)?.0)),
            5 => Some(Record::Cname(read_name(m, rd)?.0)),
            _ => None,
        };
        if let Some(r) = rec {
            out.push((owner.to_ascii_lowercase(), r));
        }
        i = rd + rdlen;
    }
    Ok((truncated, out))
}

/// Keeps the records of `qtype` reachable from `name` through CNAMEs.
fn follow(name: &str, qtype: u16, answers: Vec<(String, Record)>) -> Vec<Record> {
    let mut want = name.to_ascii_lowercase();
    for _ in 0..8 {
        let alias = answers.iter().find_map(|(o, r)| match r {
            Record::Cname(c) if *o == want => Some(c.to_ascii_lowercase()),
            _ => None,
        });
        match alias {
            Some(a) if qtype != 5 => want = a,
            _ => break,
        }
    }
    answers
        .into_iter()
        .filter(|(o, r)| *o == want && record_type(r) == qtype)
        .map(|(_, r)| r)
        .collect()
}

fn record_type(r: &Record) -> u16 {
    match r {
        Record::A(_) => 1,
        Record::Aaaa(_) => 28,
        Record::Srv { .. } => 33,
        Record::Mx(_) => 15,
        Record::Ns(_) => 2,
        Record::Cname(_) => 5,
    }
}

/// One query to one server: UDP, then TCP when the answer is truncated.
pub async fn query(server: SocketAddr, name: &str, qtype: u16) -> Result<Vec<Record>, String> {
    let id = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
        & 0xFFFF) as u16;
    let msg = build_query(id, name, qtype)?;
    let fut = async {
        let bind = if server.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sock = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| e.to_string())?;
        sock.connect(server).await.map_err(|e| e.to_string())?;
        sock.send(&msg).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65535];
        let (truncated, answers) = loop {
            let n = sock.recv(&mut buf).await.map_err(|e| e.to_string())?;
            match parse_response(buf.get(..n).unwrap_or(&[]), id) {
                Ok(r) => break r,
                Err(e) if e.contains("wrong ID") => continue,
                Err(e) => return Err(e),
            }
        };
        if !truncated {
            return Ok(answers);
        }
        let mut tcp = tokio::net::TcpStream::connect(server)
            .await
            .map_err(|e| e.to_string())?;
        let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&msg);
        tcp.write_all(&framed).await.map_err(|e| e.to_string())?;
        let len = tcp.read_u16().await.map_err(|e| e.to_string())? as usize;
        let mut resp = vec![0u8; len];
        tcp.read_exact(&mut resp).await.map_err(|e| e.to_string())?;
        parse_response(&resp, id).map(|(_, a)| a)
    };
    match tokio::time::timeout(QUERY_TIMEOUT, fut).await {
        Ok(Ok(answers)) => Ok(follow(name, qtype, answers)),
        Ok(Err(e)) => Err(format!("lookup {name} on {server}: {e}")),
        Err(_) => Err(format!("lookup {name} on {server}: i/o timeout")),
    }
}

fn qtype_of(t: DnsRecordType) -> u16 {
    match t {
        DnsRecordType::Srv => 33,
        DnsRecordType::A => 1,
        DnsRecordType::Aaaa => 28,
        DnsRecordType::Mx => 15,
        DnsRecordType::Ns => 2,
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Resolves every name of the config into one target group per name (its `source`),
/// labelled as Prometheus labels them; names that failed come back with their error.
pub async fn discover(
    resolver: &Resolver,
    cfg: &DnsSdConfig,
) -> (Vec<TargetGroup>, Vec<(String, String)>) {
    let mut groups = Vec::new();
    let mut errors = Vec::new();
    let qtype = qtype_of(cfg.record_type);
    for name in &cfg.names {
        let records = match resolver.lookup(name, qtype).await {
            Ok(r) => r,
            Err(e) => {
                errors.push((name.clone(), e));
                continue;
            }
        };
        let mut g = TargetGroup {
            source: name.clone(),
            ..Default::default()
        };
        let mut per_target: Vec<BTreeMap<String, String>> = Vec::new();
        for r in records {
            let mut l = BTreeMap::new();
            l.insert("__meta_dns_name".to_string(), name.clone());
            let mut set = |k: &str, v: String| {
                l.insert(k.to_string(), v);
            };
            set("__meta_dns_srv_record_target", String::new());
            set("__meta_dns_srv_record_port", String::new());
            set("__meta_dns_mx_record_target", String::new());
            set("__meta_dns_ns_record_target", String::new());
            let addr = match r {
                Record::A(ip) => join_host_port(&ip.to_string(), cfg.port),
                Record::Aaaa(ip) => join_host_port(&ip.to_string(), cfg.port),
                Record::Srv { port, target } => {
                    set("__meta_dns_srv_record_target", target.clone());
                    set("__meta_dns_srv_record_port", port.to_string());
                    join_host_port(target.trim_end_matches('.'), port)
                }
                Record::Mx(t) => {
                    set("__meta_dns_mx_record_target", t.clone());
                    join_host_port(t.trim_end_matches('.'), cfg.port)
                }
                Record::Ns(t) => {
                    set("__meta_dns_ns_record_target", t.clone());
                    join_host_port(t.trim_end_matches('.'), cfg.port)
                }
                Record::Cname(_) => continue,
            };
            l.insert("__address__".into(), addr);
            per_target.push(l);
        }
        g.per_target = per_target;
        groups.push(g);
    }
    (groups, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_and_candidates() {
        let r = Resolver::parse_conf(
            "# c\nnameserver 10.0.0.1\nnameserver ::1\nsearch a.example b.example.\noptions ndots:2 rotate\n",
        );
        assert_eq!(r.servers.len(), 2);
        assert_eq!(r.ndots, 2);
        assert_eq!(
            r.candidates("svc"),
            vec!["svc.a.example.", "svc.b.example.", "svc."]
        );
        assert_eq!(r.candidates("x.y.z")[0], "x.y.z.");
        assert_eq!(r.candidates("abs."), vec!["abs."]);
    }

    #[test]
    fn bad_messages_are_errors() {
        assert!(parse_response(&[0, 1], 1).is_err());
        let q = build_query(7, "a.example", 1).unwrap();
        assert!(parse_response(&q, 8).is_err());
        // A query parses as an empty answer.
        assert_eq!(parse_response(&q, 7).unwrap().1, vec![]);
        // A question name pointing at itself.
        let mut m = vec![0, 7, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1]);
        assert!(parse_response(&m, 7).is_err());
        assert!(build_query(1, "a..b", 1).is_err());
    }

    /// An answer to `query` with `records` as (type, rdata) owned by the question name,
    /// or by `owner` when given.
    fn answer(query: &[u8], records: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut m = query.to_vec();
        m[2] = 0x81;
        m[3] = 0x80;
        m[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for (t, rd) in records {
            m.extend_from_slice(&[0xC0, 0x0C]);
            m.extend_from_slice(&t.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 30]);
            m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            m.extend_from_slice(rd);
        }
        m
    }

    fn name(n: &str) -> Vec<u8> {
        let mut v = Vec::new();
        encode_name(&mut v, n).unwrap();
        v
    }

    fn srv(port: u16, target: &str) -> Vec<u8> {
        let mut v = vec![0, 10, 0, 5];
        v.extend_from_slice(&port.to_be_bytes());
        v.extend_from_slice(&name(target));
        v
    }

    /// A DNS server on a loopback UDP port with a fixed zone.
    async fn dns_server() -> SocketAddr {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let q = buf[..n].to_vec();
                let (qname, end) = read_name(&q, 12).unwrap();
                let qtype = u16_at(&q, end).unwrap();
                let recs: Vec<(u16, Vec<u8>)> = match (qname.as_str(), qtype) {
                    ("_node._tcp.example.", 33) => vec![
                        (33, srv(9100, "node1.example.")),
                        (33, srv(9200, "node2.example.")),
                    ],
                    ("web.example.", 1) => vec![(1, vec![127, 0, 0, 7])],
                    ("web.example.", 28) => vec![(28, {
                        let mut v = vec![0u8; 16];
                        v[15] = 1;
                        v
                    })],
                    _ => Vec::new(),
                };
                let mut resp = answer(&q, &recs);
                if recs.is_empty() {
                    resp[3] = 0x83; // NXDOMAIN
                }
                let _ = sock.send_to(&resp, from).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn discovers_srv_a_and_aaaa_targets_with_prometheus_labels() {
        let server = dns_server().await;
        let resolver = Resolver {
            servers: vec![server],
            search: vec!["example".into()],
            ndots: 1,
        };
        let yaml = "scrape_configs:\n  - job_name: d\n    dns_sd_configs:\n      - names: ['_node._tcp.example']\n      - names: [web, missing.example]\n        type: A\n        port: 8080\n      - names: [web.example.]\n        type: aaaa\n        port: 9\n";
        let cfg = crate::config::Config::parse(yaml, std::path::Path::new("p.yml"))
            .unwrap()
            .scrape_configs
            .remove(0);
        let (srv_groups, failed) = discover(&resolver, &cfg.dns_sd_configs[0]).await;
        assert!(failed.is_empty(), "{failed:?}");
        let (targets, _) = super::super::target::targets_from_groups(&cfg, &srv_groups);
        assert_eq!(targets.len(), 2);
        let t = &targets[0];
        assert_eq!(t.labels.get("instance"), Some("node1.example:9100"));
        assert_eq!(
            t.discovered.get("__meta_dns_name"),
            Some("_node._tcp.example")
        );
        assert_eq!(
            t.discovered.get("__meta_dns_srv_record_target"),
            Some("node1.example.")
        );
        assert_eq!(t.discovered.get("__meta_dns_srv_record_port"), Some("9100"));
        assert_eq!(t.url, "http://node1.example:9100/metrics");

        // "web" is found through the search list; "missing.example" has no records
        // and yields an empty group.
        let (a_groups, failed) = discover(&resolver, &cfg.dns_sd_configs[1]).await;
        assert!(failed.is_empty(), "{failed:?}");
        assert_eq!(a_groups.len(), 2);
        assert!(a_groups[1].per_target.is_empty());
        let (targets, _) = super::super::target::targets_from_groups(&cfg, &a_groups);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].labels.get("instance"), Some("127.0.0.7:8080"));
        assert_eq!(targets[0].discovered.get("__meta_dns_name"), Some("web"));
        assert_eq!(
            targets[0].discovered.get("__meta_dns_srv_record_target"),
            None
        );

        let (aaaa, _) = discover(&resolver, &cfg.dns_sd_configs[2]).await;
        let (targets, _) = super::super::target::targets_from_groups(&cfg, &aaaa);
        assert_eq!(targets[0].labels.get("instance"), Some("[::1]:9"));

        // No server answering is an error for the name.
        let dead = Resolver {
            servers: vec!["127.0.0.1:9".parse().unwrap()],
            search: Vec::new(),
            ndots: 1,
        };
        let (g, failed) = discover(&dead, &cfg.dns_sd_configs[2]).await;
        assert!(g.is_empty());
        assert_eq!(failed.len(), 1);
    }

    #[tokio::test]
    async fn cname_chains_are_followed() {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = sock.recv_from(&mut buf).await.unwrap();
            let q = buf[..n].to_vec();
            // alias.example. CNAME real.example. ; real.example. A 10.0.0.1
            let mut m = answer(&q, &[(5, name("real.example."))]);
            m[7] = 2;
            m.extend_from_slice(&name("real.example."));
            m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 1]);
            let _ = sock.send_to(&m, from).await;
        });
        let r = query(addr, "alias.example.", 1).await.unwrap();
        assert_eq!(r, vec![Record::A(Ipv4Addr::new(10, 0, 0, 1))]);
    }
}
