//! Metrics (Pingora's Prometheus service): a per-server [`Registry`] holding the built-in figures
//! of each proxy service ([`ServiceMetrics`]) and the families a host defines, exposed in the
//! Prometheus text format by a [`MetricsEndpoint`] service with its own listener.
//!
//! Every update is a relaxed atomic operation on memory found before the request (a fixed array
//! slot, or a [`Series`] the host looked up once): no lock, no allocation on the hot path.

mod builtin;
mod endpoint;
mod registry;
mod text;

pub use builtin::{ActiveGuard, RequestFigures, ServiceMetrics};
pub use endpoint::MetricsEndpoint;
pub use registry::{Collect, Family, MetricError, Registry, Series, BUILTIN_PREFIX, DEFAULT_BUCKETS};
pub use text::{Exposition, Kind, CONTENT_TYPE};
