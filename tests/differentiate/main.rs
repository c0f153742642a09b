//! Gradients of differentiated functions, each checked against an independent reference.

mod composition;
mod control_flow;
mod primitives;
mod seed;
