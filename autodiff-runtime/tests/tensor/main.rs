//! Tests of `Tensor` and its rules: forward operations against naive loops, every rule's
//! dot-product test, shape panics, f32 smoke tests, hand-assembled network gradients, and a
//! timing of LeNet-sized layers (`--ignored`, in release).

mod f32;
mod forward;
mod network;
mod panics;
mod perf;
mod rules;
mod support;
