//! The engine's HTTP client for media (and the version check).
//!
//! Why it exists: whatsapp-rust builds every media URL as
//! `https://{hostname}{path}` from the hosts in the server's `media_conn`
//! answer, so a client pointed at a fake server (the offline tests, the
//! bench) could not reach a fake media host, which has no certificate.
//! [`PlainHttpMedia`] rewrites `https://HOST/…` to `http://HOST/…` for the
//! hosts (with their port) listed in
//! [`WaOptions::plain_http_media_hosts`](super::WaOptions::plain_http_media_hosts)
//! and leaves every other URL alone. With the list empty (always, outside
//! tests) the engine uses [`UreqHttpClient`] itself, unwrapped.

use std::sync::Arc;

use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient};
use whatsapp_rust::wacore::net::{StreamingHttpResponse, UploadBody};
use whatsapp_rust::wacore::stats::HttpResourceReport;

/// The HTTP client a session's whatsapp-rust client runs with: the crate's
/// ureq client, wrapped in [`PlainHttpMedia`] only when `plain_http_hosts`
/// names any host.
pub(super) fn client(plain_http_hosts: &[String]) -> Arc<dyn HttpClient> {
    if plain_http_hosts.is_empty() {
        Arc::new(UreqHttpClient::new())
    } else {
        Arc::new(PlainHttpMedia { inner: UreqHttpClient::new(), hosts: plain_http_hosts.to_vec() })
    }
}

/// `url` with `https` turned into `http` when its host (with the port, as
/// written in the URL) is one of `hosts`; `None` leaves it as it is.
pub(super) fn plain_http_url(url: &str, hosts: &[String]) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    hosts.iter().any(|h| h.eq_ignore_ascii_case(host)).then(|| format!("http://{rest}"))
}

/// [`UreqHttpClient`] speaking plain HTTP to the listed hosts (see the
/// module doc).
struct PlainHttpMedia {
    inner: UreqHttpClient,
    hosts: Vec<String>,
}

impl PlainHttpMedia {
    fn rewrite(&self, mut request: HttpRequest) -> HttpRequest {
        if let Some(url) = plain_http_url(&request.url, &self.hosts) {
            request.url = url;
        }
        request
    }
}

#[whatsapp_rust::async_trait]
impl HttpClient for PlainHttpMedia {
    async fn execute(&self, request: HttpRequest) -> whatsapp_rust::anyhow::Result<HttpResponse> {
        self.inner.execute(self.rewrite(request)).await
    }

    fn supports_streaming(&self) -> bool {
        self.inner.supports_streaming()
    }

    fn execute_streaming(&self, request: HttpRequest) -> whatsapp_rust::anyhow::Result<StreamingHttpResponse> {
        self.inner.execute_streaming(self.rewrite(request))
    }

    fn supports_upload_streaming(&self) -> bool {
        self.inner.supports_upload_streaming()
    }

    fn execute_upload(
        &self,
        request: HttpRequest,
        body: UploadBody,
        content_length: u64,
    ) -> whatsapp_rust::anyhow::Result<HttpResponse> {
        self.inner.execute_upload(self.rewrite(request), body, content_length)
    }

    fn resource_report(&self) -> Option<HttpResourceReport> {
        self.inner.resource_report()
    }
}

#[cfg(test)]
mod tests {
    use super::plain_http_url;

    fn hosts() -> Vec<String> {
        vec!["127.0.0.1:40123".to_string(), "media.test".to_string()]
    }

    #[test]
    fn listed_hosts_are_reached_over_plain_http() {
        assert_eq!(
            plain_http_url("https://127.0.0.1:40123/mms/image/tok?auth=a&token=tok", &hosts()).as_deref(),
            Some("http://127.0.0.1:40123/mms/image/tok?auth=a&token=tok")
        );
        assert_eq!(plain_http_url("https://media.test/v/t62/x.enc", &hosts()).as_deref(), Some("http://media.test/v/t62/x.enc"));
        assert_eq!(plain_http_url("https://MEDIA.test?token=t", &hosts()).as_deref(), Some("http://MEDIA.test?token=t"));
        assert_eq!(plain_http_url("https://media.test", &hosts()).as_deref(), Some("http://media.test"));
    }

    #[test]
    fn other_urls_are_left_alone() {
        // Another port, another host, a host that only starts like a listed one.
        assert_eq!(plain_http_url("https://127.0.0.1:40124/mms/image/t", &hosts()), None);
        assert_eq!(plain_http_url("https://127.0.0.1/mms/image/t", &hosts()), None);
        assert_eq!(plain_http_url("https://mmg.whatsapp.net/v/t62/x.enc", &hosts()), None);
        assert_eq!(plain_http_url("https://media.test.evil.example/x", &hosts()), None);
        // Already plain, or not a URL the rule is about.
        assert_eq!(plain_http_url("http://media.test/x", &hosts()), None);
        assert_eq!(plain_http_url("ftp://media.test/x", &hosts()), None);
        // Nothing listed: nothing rewritten.
        assert_eq!(plain_http_url("https://media.test/x", &[]), None);
    }
}
