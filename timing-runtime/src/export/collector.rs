//! The timing series in a program's own `/metrics`, through the Prometheus project's Rust client
//! (`prometheus-client`): a collector its registry asks at each scrape, so that a server that already
//! serves its metrics needs no second port. The families and their numbers are `to_prometheus`'s, written
//! by the client's text encoder (`prometheus_client::encoding::text::encode`): label values are handed to
//! it escaped for the text format, which it does not do itself, so its protobuf encoder would show the
//! escapes of the rare label value that needs them (a quote, a backslash, a line feed).

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::prometheus::{BOUNDS, Families, Label};
use crate::model::{Spread, TrainingSummary};

/// The timing series for a `prometheus-client` registry (feature `prometheus-client`): each scrape
/// reads the run so far, without its call tree (which no series needs), and encodes the families
/// [`TrainingSummary::to_prometheus`] writes.
///
/// ```
/// use prometheus_client::registry::Registry;
///
/// let mut registry = Registry::default();
/// registry.register_collector(Box::new(timing_runtime::TimingCollector::new()));
/// let mut text = String::new();
/// prometheus_client::encoding::text::encode(&mut text, &registry)?;
/// assert!(text.contains("# TYPE timing_steps counter"));
/// # Ok::<(), std::fmt::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct TimingCollector {
    source: fn() -> TrainingSummary,
}

impl fmt::Debug for TimingCollector {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("TimingCollector").finish_non_exhaustive()
    }
}

impl TimingCollector {
    /// A collector of the summaries `source` makes.
    pub(crate) fn with_source(source: fn() -> TrainingSummary) -> Self {
        TimingCollector { source }
    }
}

impl Collector for TimingCollector {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let mut out = Encoder { encoder, failed: None };
        (self.source)().families(&mut out);
        out.failed.map_or(Ok(()), Err)
    }
}

/// The families, given to the client's encoder; the first error stops the rest.
struct Encoder<'e> {
    encoder: DescriptorEncoder<'e>,
    failed: Option<fmt::Error>,
}

impl Encoder<'_> {
    /// Encodes one family with `each` for its series, unless an earlier one failed.
    fn family(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        each: impl FnOnce(&mut MetricEncoder<'_>) -> Result<(), fmt::Error>,
    ) {
        if self.failed.is_some() {
            return;
        }
        // The client's encoder writes a counter's `_total` itself.
        let name = if matches!(kind, MetricType::Counter) { name.strip_suffix("_total").unwrap_or(name) } else { name };
        // Its help is written as given: a help of several lines would break the text format.
        let help = help.replace('\n', " ");
        let result = self.encoder.encode_descriptor(name, &help, None, kind).and_then(|mut metric| each(&mut metric));
        if let Err(error) = result {
            self.failed = Some(error);
        }
    }
}

/// Encodes one series of `metric`, under its label if it has one. The client writes a label's value as
/// it is given (0.23 and 0.24 alike), so the value is given escaped as the text format wants it (a
/// backslash, a double quote and a line feed; names are rarely anything but plain, and then nothing
/// changes): unescaped, a phase named `say "hi"` would break the whole scrape.
fn series(
    metric: &mut MetricEncoder<'_>,
    label: Label<'_>,
    encode: impl FnOnce(&mut MetricEncoder<'_>) -> Result<(), fmt::Error>,
) -> Result<(), fmt::Error> {
    match label {
        Some((key, value)) => {
            let value = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            encode(&mut metric.encode_family(&[(key, value.as_str())])?)
        }
        None => encode(metric),
    }
}

impl Families for Encoder<'_> {
    fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, MetricType::Gauge, |metric| metric.encode_gauge(&value));
    }

    fn counter<'a>(&mut self, name: &str, help: &str, all: impl IntoIterator<Item = (Label<'a>, f64)>) {
        self.family(name, help, MetricType::Counter, |metric| {
            all.into_iter().try_for_each(|(label, value)| {
                series(metric, label, |metric| metric.encode_counter::<NoLabelSet, f64, f64>(&value, None))
            })
        });
    }

    fn histogram<'a>(&mut self, name: &str, help: &str, all: impl IntoIterator<Item = (Label<'a>, &'a Spread, f64)>) {
        self.family(name, help, MetricType::Histogram, |metric| {
            all.into_iter().try_for_each(|(label, spread, sum)| {
                // The client takes each bucket's own count and adds them up; `f64::MAX` is its `+Inf`.
                let mut below = 0;
                let mut buckets: Vec<(f64, u64)> = BOUNDS
                    .iter()
                    .map(|(_, ns)| {
                        let at_most = spread.count_at_most(*ns);
                        let bucket = at_most.saturating_sub(below);
                        below = at_most;
                        #[allow(clippy::cast_precision_loss)]
                        let seconds = *ns as f64 / 1e9;
                        (seconds, bucket)
                    })
                    .collect();
                let count = spread.count();
                buckets.push((f64::MAX, count.saturating_sub(below)));
                series(metric, label, |metric| metric.encode_histogram::<NoLabelSet>(sum, count, &buckets, None))
            })
        });
    }
}
