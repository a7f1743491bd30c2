//! The outputs: the text report, the comparison as text, the Chrome trace, folded stacks, the
//! flamegraph, the Prometheus exposition and the HTML page. Each turns `model` (or `report`) types into
//! bytes and touches nothing recorded, so it works the same with the `timing` feature off (see
//! `docs/architecture.md`).

#[cfg(feature = "json")]
mod chrome;
#[cfg(feature = "prometheus-client")]
pub(crate) mod collector;
mod comparison;
#[cfg(feature = "flamegraph")]
mod flamegraph;
mod folded;
pub(crate) mod format;
#[cfg(feature = "html")]
mod html;
#[cfg(feature = "mlflow")]
pub(crate) mod mlflow;
pub(crate) mod prometheus;
#[cfg(feature = "push")]
pub(crate) mod push;
#[cfg(feature = "serve")]
pub(crate) mod serve;
mod text;
