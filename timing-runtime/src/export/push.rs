//! Pushing a summary to a Prometheus Pushgateway, for runs too short to be scraped (a training job that
//! ends): an HTTP `PUT` of the exposition under a job and an instance, which replaces what that job and
//! instance pushed before. Blocking, with a time limit on the whole exchange; every failure is an error
//! returned, never a panic or a wait without end.

use std::fmt;
use std::time::Duration;

use crate::model::TrainingSummary;

/// Why a push failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError {
    /// The gateway's address, the job or the instance cannot be used (an empty job, an address that is not
    /// `http://host:port`).
    Invalid(String),
    /// The gateway could not be reached, or did not answer in time.
    Transport(String),
    /// The gateway answered with a status other than success.
    Refused {
        /// The HTTP status.
        status: u16,
        /// What the gateway said.
        body: String,
    },
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Invalid(why) => write!(f, "cannot push: {why}"),
            PushError::Transport(why) => write!(f, "could not reach the Pushgateway: {why}"),
            PushError::Refused { status, body } => {
                write!(f, "the Pushgateway refused the metrics (HTTP {status}): {}", body.trim())
            }
        }
    }
}

impl std::error::Error for PushError {}

/// The time the whole exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);

impl TrainingSummary {
    /// Pushes this summary's [Prometheus exposition](TrainingSummary::to_prometheus) to the Pushgateway at
    /// `gateway` (`http://host:port`), as job `job` and instance `instance`, replacing what that job and
    /// instance pushed before. Waits at most ten seconds.
    ///
    /// ```no_run
    /// let run = timing_runtime::summary();
    /// if let Err(error) = run.push("http://127.0.0.1:9091", "train", "worker-1") {
    ///     eprintln!("{error}");
    /// }
    /// ```
    ///
    /// # Errors
    /// [`PushError::Invalid`] for an empty job or a gateway address that is not `http://`, before anything
    /// is sent; [`PushError::Transport`] when the gateway cannot be reached or does not answer in time;
    /// [`PushError::Refused`] when it answers with an error status.
    pub fn push(&self, gateway: &str, job: &str, instance: &str) -> Result<(), PushError> {
        let url = push_url(gateway, job, instance)?;
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).http_status_as_error(false).build().into();
        let response = agent
            .put(&url)
            .header("Content-Type", "text/plain; version=0.0.4")
            .send(self.to_prometheus())
            .map_err(|error| PushError::Transport(error.to_string()))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response.into_body().read_to_string().unwrap_or_default();
        Err(PushError::Refused { status, body })
    }
}

/// The grouping key's URL: label values in the Pushgateway's base64 form, so that any value (a slash, a
/// space) is carried as it is.
fn push_url(gateway: &str, job: &str, instance: &str) -> Result<String, PushError> {
    if job.is_empty() {
        return Err(PushError::Invalid("the job name is empty".into()));
    }
    let Some(rest) = gateway.strip_prefix("http://") else {
        return Err(PushError::Invalid(format!("`{gateway}` is not an http:// address")));
    };
    if rest.trim_end_matches('/').is_empty() {
        return Err(PushError::Invalid(format!("`{gateway}` has no host")));
    }
    let gateway = gateway.trim_end_matches('/');
    let mut url = format!("{gateway}/metrics/job@base64/{}", base64_url(job));
    if !instance.is_empty() {
        url.push_str(&format!("/instance@base64/{}", base64_url(instance)));
    }
    Ok(url)
}

/// `text` in base64 with the URL-safe alphabet and no padding (RFC 4648, section 5), as the Pushgateway
/// reads a path segment ending in `@base64`; a few lines rather than a dependency.
fn base64_url(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let value =
            chunk.iter().enumerate().fold(0u32, |value, (index, byte)| value | u32::from(*byte) << (16 - 8 * index));
        for index in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(value >> (18 - 6 * index) & 63) as usize]));
        }
    }
    // An empty value is written `=` (the gateway's way to say "empty").
    if out.is_empty() {
        out.push('=');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_url_is_rfc_4648_without_padding() {
        let cases = [("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("a/b c", "YS9iIGM"), ("", "=")];
        for (text, encoded) in cases {
            assert_eq!(base64_url(text), encoded, "{text}");
        }
        // The URL-safe characters where the standard alphabet has + and /.
        assert_eq!(base64_url("\u{fb}\u{ff}"), "w7vDvw");
        assert_eq!(base64_url(">>>???"), "Pj4-Pz8_");
    }

    #[test]
    fn bad_arguments_are_refused_before_anything_is_sent() {
        let run = TrainingSummary::default();
        assert!(matches!(run.push("http://127.0.0.1:1", "", "x"), Err(PushError::Invalid(_))));
        assert!(matches!(run.push("https://example.invalid", "job", "x"), Err(PushError::Invalid(_))));
        assert!(matches!(run.push("http://", "job", "x"), Err(PushError::Invalid(_))));
        let url = push_url("http://127.0.0.1:9091/", "train", "worker 1").expect("valid");
        assert_eq!(url, "http://127.0.0.1:9091/metrics/job@base64/dHJhaW4/instance@base64/d29ya2VyIDE");
    }

    #[test]
    fn a_gateway_that_is_not_there_is_an_error_not_a_hang() {
        // A port nothing listens on: refused at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("its address");
        drop(listener);
        let started = std::time::Instant::now();
        let error =
            TrainingSummary::default().push(&format!("http://{address}"), "job", "x").expect_err("nothing there");
        assert!(matches!(error, PushError::Transport(_)), "{error}");
        assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
    }

    #[test]
    fn a_gateway_that_never_answers_times_out() {
        // Accepts the connection and reads nothing: the time limit ends the push.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("its address");
        let holder = std::thread::spawn(move || {
            listener.accept().map(|(stream, _)| {
                std::thread::sleep(TIMEOUT + Duration::from_secs(2));
                drop(stream);
            })
        });
        let started = std::time::Instant::now();
        let error = TrainingSummary::default().push(&format!("http://{address}"), "job", "x").expect_err("no answer");
        assert!(matches!(error, PushError::Transport(_)), "{error}");
        assert!(started.elapsed() < TIMEOUT + Duration::from_secs(2), "{:?}", started.elapsed());
        drop(holder);
    }
}
