//! TLS for `https` targets, token endpoints and Alertmanagers: a rustls client
//! configuration (ring provider) built from a `tls_config` (CA, client certificate,
//! server name, `insecure_skip_verify`, minimum and maximum version), and TLS errors
//! worded as Prometheus words them.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{TlsConfig, TlsVersion};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_file(path: &str, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("unable to load specified {what} file {path}: {e}"))
}

fn certs_from_pem(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

/// Builds the rustls client configuration of a `tls_config`.
pub fn client_config(t: &TlsConfig) -> Result<Arc<ClientConfig>, String> {
    let min = t.min_version.unwrap_or(TlsVersion::Tls12);
    let max = t.max_version.unwrap_or(TlsVersion::Tls13);
    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> = Vec::new();
    if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if versions.is_empty() {
        return Err("no supported TLS version between min_version and max_version".into());
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("TLS configuration: {e}"))?;
    let builder = if t.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    } else {
        let mut roots = RootCertStore::empty();
        let ca_pem = match (&t.ca, &t.ca_file) {
            (Some(ca), _) => Some((ca.as_bytes().to_vec(), "inline")),
            (None, Some(f)) => Some((read_file(f, "CA")?, f.as_str())),
            (None, None) => None,
        };
        match ca_pem {
            Some((pem, name)) => {
                let certs = certs_from_pem(&pem);
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("unable to use specified CA cert {name}"));
                }
            }
            None => {
                let native = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(native.certs);
            }
        }
        builder.with_root_certificates(roots)
    };
    let cert_pem = match (&t.cert, &t.cert_file) {
        (Some(c), _) => Some(c.as_bytes().to_vec()),
        (None, Some(f)) => Some(read_file(f, "client certificate")?),
        (None, None) => None,
    };
    let key_pem = match (&t.key, &t.key_file) {
        (Some(k), _) => Some(k.0.as_bytes().to_vec()),
        (None, Some(f)) => Some(read_file(f, "client key")?),
        (None, None) => None,
    };
    let cfg = match (cert_pem, key_pem) {
        (Some(cert), Some(key)) => {
            let chain = certs_from_pem(&cert);
            if chain.is_empty() {
                return Err("unable to use specified client cert: no certificate found".into());
            }
            let key = PrivateKeyDer::from_pem_slice(&key)
                .map_err(|e| format!("unable to use specified client key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("unable to use specified client cert and key: {e}"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// The name verified and sent as SNI: `server_name`, or the host of the URL.
pub fn server_name(t: &TlsConfig, host: &str) -> Result<ServerName<'static>, String> {
    let name = match &t.server_name {
        Some(n) if !n.is_empty() => n.clone(),
        _ => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    };
    ServerName::try_from(name.clone()).map_err(|e| format!("invalid TLS server name {name:?}: {e}"))
}

/// Words a handshake error as Go's TLS stack does where the cause is common.
pub fn describe_error(e: &std::io::Error, name: &str) -> String {
    use rustls::CertificateError as C;
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(c)) => {
            let why = match c {
                C::UnknownIssuer => "certificate signed by unknown authority".to_string(),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    format!("certificate is not valid for {name}")
                }
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. } => {
                    "certificate has expired or is not yet valid".to_string()
                }
                other => format!("{other:?}"),
            };
            format!("tls: failed to verify certificate: x509: {why}")
        }
        Some(other) => format!("tls: {other}"),
        None => format!("tls: {e}"),
    }
}

/// Accepts any server certificate (`insecure_skip_verify`), still checking that the
/// handshake is signed by the certificate's key.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
