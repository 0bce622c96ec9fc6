//! Requests over `--max-message-bytes`: tonic rejects them while decoding with OUT_OF_RANGE and a
//! message that names no flag. This wrapper around the generated server turns that answer into
//! RESOURCE_EXHAUSTED (the gRPC convention for size limits) saying what to do. Unary calls are
//! rewritten here; streaming calls see the error as a stream item, which the handlers map with
//! [`map_stream_error`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{http, Service};
use tonic::server::NamedService;
use tonic::{Code, Status};

use super::limits::Limits;

/// Start of tonic's message for a request message over the decoding limit.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large";

/// The generated server, with oversized requests answered RESOURCE_EXHAUSTED.
#[derive(Debug, Clone)]
pub struct OversizeAware<S> {
    inner: S,
    limits: Arc<Limits>,
}

impl<S> OversizeAware<S> {
    /// Wraps `inner`, whose decoding limit is `limits.max_message_bytes`.
    pub fn new(inner: S, limits: Arc<Limits>) -> Self {
        Self { inner, limits }
    }
}

impl<S: NamedService> NamedService for OversizeAware<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<B>> for OversizeAware<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let limits = Arc::clone(&self.limits);
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            // A request rejected before its handler ran is a trailers-only response whose status
            // tonic also leaves in the extensions.
            let found = response
                .extensions()
                .get::<Status>()
                .and_then(oversize_bytes);
            Ok(match found {
                Some(found) => limits.message_too_large(found).into_http(),
                None => response,
            })
        })
    }
}

/// For tonic's "message too large" status: `Some(size found, if stated)`; otherwise `None`.
fn oversize_bytes(status: &Status) -> Option<Option<usize>> {
    if status.code() != Code::OutOfRange || !status.message().starts_with(TONIC_TOO_LARGE) {
        return None;
    }
    let found = status
        .message()
        .split("found ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok());
    Some(found)
}

/// Maps an error item of a request stream: an oversized message becomes RESOURCE_EXHAUSTED.
pub fn map_stream_error(status: Status, limits: &Limits) -> Status {
    match oversize_bytes(&status) {
        Some(found) => limits.message_too_large(found),
        None => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_tonics_decoding_error() {
        let tonic = Status::out_of_range(
            "Error, decoded message length too large: found 9000 bytes, the limit is: 100 bytes",
        );
        assert_eq!(oversize_bytes(&tonic), Some(Some(9000)));
        assert_eq!(oversize_bytes(&Status::out_of_range("other")), None);
        let limits = Limits::default();
        let mapped = map_stream_error(tonic, &limits);
        assert_eq!(mapped.code(), Code::ResourceExhausted);
        assert!(mapped.message().contains("9000 bytes"));
        assert!(mapped.message().contains("--max-message-bytes"));
    }
}
