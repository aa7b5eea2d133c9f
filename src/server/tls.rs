//! TLS for the HTTP server (rustls with the `ring` provider): building a
//! [`rustls::ServerConfig`] from `tls_server_config`, and a listener that performs
//! handshakes off the accept loop and hands finished connections to the HTTP server.
//!
//! Only TLS 1.2 and 1.3 are ever negotiated. The configuration is fetched from the
//! [`WebConfigSource`] for every new connection, so a replaced certificate is served
//! from the next handshake on. A plain-HTTP request on the TLS port gets a short
//! `400 Bad Request` (as Go's server answers) and the connection is closed.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, NamedGroup, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use super::webconfig::{ClientAuth, TlsSettings, TlsVersion, WebConfigError, WebConfigSource};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn invalid(msg: String) -> WebConfigError {
    WebConfigError::Invalid(msg)
}

/// The Go (IANA) name of a cipher suite.
fn suite_name(s: &rustls::SupportedCipherSuite) -> String {
    let n = format!("{:?}", s.suite());
    match n.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => n,
    }
}

/// The ring crypto provider restricted to the configured cipher suites and curves.
/// Fails on a name that is unknown or not supported.
pub fn provider_for(t: &TlsSettings) -> Result<CryptoProvider, WebConfigError> {
    let mut p = rustls::crypto::ring::default_provider();
    let all = rustls::crypto::ring::ALL_CIPHER_SUITES;
    if !t.cipher_suites.is_empty() {
        let mut chosen: Vec<rustls::SupportedCipherSuite> = all
            .iter()
            .filter(|s| s.tls13().is_some())
            .copied()
            .collect();
        for name in &t.cipher_suites {
            // Go names the ChaCha suites both with and without the hash suffix.
            let full = if name.ends_with("CHACHA20_POLY1305") {
                format!("{name}_SHA256")
            } else {
                name.clone()
            };
            let Some(s) = all.iter().find(|s| suite_name(s) == full) else {
                let known: Vec<String> = all.iter().map(suite_name).collect();
                return Err(invalid(format!(
                    "unknown or unsupported cipher: {name} (supported: {})",
                    known.join(", ")
                )));
            };
            // TLS 1.3 suites are always enabled, as in Go.
            if s.tls13().is_none() && !chosen.iter().any(|c| c.suite() == s.suite()) {
                chosen.push(*s);
            }
        }
        p.cipher_suites = chosen;
    }
    if !t.curve_preferences.is_empty() {
        let mut groups = Vec::new();
        for c in &t.curve_preferences {
            let want = match c.as_str() {
                "CurveP256" => NamedGroup::secp256r1,
                "CurveP384" => NamedGroup::secp384r1,
                "X25519" => NamedGroup::X25519,
                "CurveP521" => {
                    return Err(invalid(
                        "curve CurveP521 is not supported (use X25519, CurveP256 or CurveP384)"
                            .into(),
                    ))
                }
                other => return Err(invalid(format!("unknown curve: {other}"))),
            };
            if let Some(g) = rustls::crypto::ring::ALL_KX_GROUPS
                .iter()
                .find(|g| g.name() == want)
            {
                groups.push(*g);
            }
        }
        p.kx_groups = groups;
    }
    Ok(p)
}

/// The PEM bytes a TLS configuration refers to (read fresh for each check).
pub struct TlsMaterial {
    /// Certificate chain PEM.
    pub cert: Vec<u8>,
    /// Private key PEM.
    pub key: Vec<u8>,
    /// Client CA PEM (empty when none).
    pub client_ca: Vec<u8>,
}

/// Reads the certificate, key and client CA files.
pub fn read_material(t: &TlsSettings) -> Result<TlsMaterial, WebConfigError> {
    Ok(TlsMaterial {
        cert: t.cert.read("cert_file")?,
        key: t.key.read("key_file")?,
        client_ca: match &t.client_ca {
            Some(c) => c.read("client_ca_file")?,
            None => Vec::new(),
        },
    })
}

fn parse_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, WebConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("failed to load X509KeyPair: {what}: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "failed to load X509KeyPair: no PEM certificate found in {what}"
        )));
    }
    Ok(certs)
}

/// Builds the rustls server configuration: versions, suites, certificate and key
/// (which must match), client certificate policy, and HTTP/1.1 as the only ALPN protocol.
pub fn build_server_config(
    t: &TlsSettings,
    m: &TlsMaterial,
) -> Result<rustls::ServerConfig, WebConfigError> {
    let provider = Arc::new(provider_for(t)?);
    let certs = parse_certs(&m.cert, "cert")?;
    let key = PrivateKeyDer::from_pem_slice(&m.key).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            invalid("failed to load X509KeyPair: no PEM private key found".into())
        }
        e => invalid(format!("failed to load X509KeyPair: key: {e}")),
    })?;
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if t.min_version <= TlsVersion::Tls12 && t.max_version >= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if t.max_version >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| invalid(format!("TLS configuration: {e}")))?;
    let verifier: Option<Arc<dyn ClientCertVerifier>> = match t.client_auth {
        ClientAuth::NoClientCert => None,
        ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => {
            Some(Arc::new(AnyClientCert {
                mandatory: t.client_auth == ClientAuth::RequireAnyClientCert,
                provider: provider.clone(),
            }))
        }
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let mut roots = RootCertStore::empty();
            for c in parse_certs(&m.client_ca, "client_ca_file")? {
                roots
                    .add(c)
                    .map_err(|e| invalid(format!("client_ca_file: {e}")))?;
            }
            let b = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let b = if t.client_auth == ClientAuth::VerifyClientCertIfGiven {
                b.allow_unauthenticated()
            } else {
                b
            };
            Some(
                b.build()
                    .map_err(|e| invalid(format!("client certificate verifier: {e}")))?,
            )
        }
    };
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder
        .with_single_cert(certs, key)
        .map_err(|e| invalid(format!("failed to load X509KeyPair: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.ignore_client_order = t.prefer_server_cipher_suites;
    Ok(cfg)
}

/// `RequestClientCert` / `RequireAnyClientCert`: any certificate is taken (the client
/// must still prove it holds the key), none is checked against a CA.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A connection accepted by the server: plain TCP or TLS over TCP.
pub enum Conn {
    /// Plain HTTP.
    Plain(TcpStream),
    /// HTTPS.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The server's listener: accepts TCP connections and, when TLS is on, completes the
/// handshake in a task of its own before the HTTP server sees the connection, so a slow
/// or failing client never holds up the others.
pub struct ServerListener {
    rx: tokio::sync::mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ServerListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ServerListener {
    /// Starts accepting on `tcp`; with `web` serving TLS, every connection is handshaken
    /// with the configuration as the file says at that moment.
    pub fn start(tcp: TcpListener, web: Option<Arc<WebConfigSource>>) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let tls = web.filter(|w| w.tls_enabled());
        let task = tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        log::error!(target: "aion::server", "accept error err={e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                match &tls {
                    None => {
                        if tx.send((Conn::Plain(stream), addr)).await.is_err() {
                            return;
                        }
                    }
                    Some(web) => {
                        let (web, tx) = (web.clone(), tx.clone());
                        tokio::spawn(async move {
                            let r =
                                tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, &web))
                                    .await;
                            match r {
                                Ok(Ok(Some(s))) => {
                                    let _ = tx.send((Conn::Tls(Box::new(s)), addr)).await;
                                }
                                Ok(Ok(None)) => {}
                                Ok(Err(e)) => {
                                    log::debug!(target: "aion::server", "TLS handshake failed remote={addr} err={e}");
                                }
                                Err(_) => {
                                    log::debug!(target: "aion::server", "TLS handshake timed out remote={addr}");
                                }
                            }
                        });
                    }
                }
            }
        });
        Ok(ServerListener { rx, local, task })
    }
}

/// Performs the handshake; `None` when the client spoke plain HTTP (answered with 400).
async fn handshake(
    stream: TcpStream,
    web: &WebConfigSource,
) -> io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    let n = stream.peek(&mut first).await?;
    if n == 1 && first[0] != 0x16 && first[0].is_ascii_alphabetic() {
        let mut s = stream;
        s.write_all(
            b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
              Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        )
        .await?;
        let _ = s.shutdown().await;
        return Ok(None);
    }
    let cfg = match web.tls_config() {
        Ok(c) => c,
        Err(e) => {
            log::error!(target: "aion::server", "cannot load the TLS configuration from {} err={e}", web.path().display());
            return Err(io::Error::other(e.to_string()));
        }
    };
    tokio_rustls::TlsAcceptor::from(cfg)
        .accept(stream)
        .await
        .map(Some)
}

impl axum::serve::Listener for ServerListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
