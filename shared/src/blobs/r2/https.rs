//! The S3 client's HTTP: the SDK's `HttpClient` over a `reqwest::Client`, the stack the D1
//! client already uses (hyper, rustls on ring, webpki roots compiled in as trust anchors).
//!
//! The SDK's own client (aws-smithy-http-client) takes roots as certificates: Mozilla's roots had
//! to be encoded to PEM and parsed back by the SDK at every cold start, and its connector stack was
//! linked beside reqwest's. reqwest's anchors need no parsing; its client builds in tens of
//! microseconds.
//!
//! Request bodies pass through unbuffered, with the `Content-Length` the SDK set; response bodies
//! stream back to the SDK as they arrive, so a store that ignores a range cannot make us hold a
//! large object in memory. The one header reqwest adds is `Accept: */*` when the request has none
//! (reqwest 0.12 has no way to turn it off); it is not signed, and S3 ignores it.

use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use std::time::Duration;

/// How long opening a connection (TCP and TLS) may take; the SDK's attempt and operation
/// timeouts (`r2.rs`) bound the rest.
const CONNECT: Duration = Duration::from_secs(3);

/// An HTTPS client for the S3 SDK, over one `reqwest::Client` whose connections every call
/// shares.
pub fn client() -> Result<SharedHttpClient, String> {
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT)
        // The SDK's default client used no proxy; reading the environment for one would also
        // cost the cold start.
        .no_proxy()
        .build()
        .map_err(|e| format!("building the R2 HTTP client: {e}"))?;
    Ok(SharedHttpClient::new(Reqwest(client)))
}

#[derive(Debug, Clone)]
struct Reqwest(reqwest::Client);

impl HttpClient for Reqwest {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        // The settings' connect timeout is CONNECT (r2.rs sets the same for every call), already
        // the client's; a clone shares the client's pool.
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for Reqwest {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request
            .try_into_http1x()
            .map_err(|e| ConnectorError::user(e.into()))
            .and_then(|r| {
                reqwest::Request::try_from(r.map(reqwest::Body::wrap))
                    .map_err(|e| ConnectorError::user(e.without_url().into()))
            }) {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(e)),
        };
        let client = self.0.clone();
        HttpConnectorFuture::new(async move {
            let answer = client.execute(request).await.map_err(connector_error)?;
            let answer = lambda_http::http::Response::<reqwest::Body>::from(answer)
                .map(SdkBody::from_body_1_x);
            HttpResponse::try_from(answer).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// What the SDK's retry needs to know of a failure: timeouts and broken transport are retried
/// (as the SDK's own client classified hyper's errors), anything else is not. The URL is left
/// out: the caller's message names the object already.
fn connector_error(e: reqwest::Error) -> ConnectorError {
    let timeout = e.is_timeout();
    let transport = e.is_connect() || e.is_request() || e.is_body();
    let e = Box::new(e.without_url());
    if timeout {
        ConnectorError::timeout(e)
    } else if transport {
        ConnectorError::io(e)
    } else {
        ConnectorError::other(e, None)
    }
}
