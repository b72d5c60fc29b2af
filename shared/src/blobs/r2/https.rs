//! The S3 client's HTTPS connections: rustls on ring (the provider reqwest's D1 client already
//! links), trusting Mozilla's root certificates compiled into the binary (`webpki-root-certs`).
//!
//! The SDK's default client trusts the system's store instead, and reads it from `/etc/ssl` when
//! the client is built: the bundle and then some 145 files, parsed one by one, at every cold start
//! of upload and delete. Compiled-in roots cost no file system access, do not depend on what the
//! Lambda image ships, and are the same roots the D1 client (reqwest with `rustls-tls`) trusts.

use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// An HTTPS client for the S3 SDK whose trust store is exactly [`roots_pem`].
pub fn client() -> SharedHttpClient {
    let trust = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(roots_pem());
    let tls = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context always builds from a trust store");
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls)
        .build_https()
}

/// The compiled-in root certificates as one PEM document, the form the SDK's trust store takes.
pub fn roots_pem() -> Vec<u8> {
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
    let mut pem = String::with_capacity(roots.iter().map(|c| c.len() * 4 / 3 + 64).sum());
    for cert in roots {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = STANDARD.encode(cert.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn every_compiled_in_root_survives_the_pem_round_trip() {
        let pem = roots_pem();
        let back: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .unwrap();
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS;
        assert!(roots.len() > 100, "{} roots", roots.len());
        assert_eq!(back.len(), roots.len());
        assert!(
            back.iter()
                .zip(roots)
                .all(|(a, b)| a.as_ref() == b.as_ref())
        );
    }
}
