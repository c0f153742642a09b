//! The benchmark workloads, shared by `benches/gradients.rs`, `examples/bench_report.rs` and
//! `tests/bench_workloads.rs`: each function as `#[differentiate]` sees it, a hand-written
//! adjoint, a `num-dual` forward-mode gradient and a `reverse` tape gradient.

// Each including target uses a different subset of the items; the loops index like ADBench's
// C++ references so the versions can be compared line by line.
#![allow(dead_code, clippy::needless_range_loop)]

pub mod ba;
pub mod gmm;
pub mod lenet;
pub mod lstm;
pub mod mlp;
pub mod rng;
pub mod rosenbrock;
pub mod seed;

use std::ops::{Add, Div, Mul, Neg, Sub};

/// The scalar operations the workloads need from the peers' number types (`num-dual`'s
/// `Dual64`, `reverse`'s `Var`), so one generic body serves both.
pub trait Peer:
    Copy
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<f64, Output = Self>
    + Sub<f64, Output = Self>
    + Mul<f64, Output = Self>
{
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn tanh(self) -> Self;
    fn sqrt(self) -> Self;
    fn recip(self) -> Self;
}

impl Peer for num_dual::Dual64 {
    fn exp(self) -> Self {
        num_dual::DualNum::exp(&self)
    }
    fn ln(self) -> Self {
        num_dual::DualNum::ln(&self)
    }
    fn sin(self) -> Self {
        num_dual::DualNum::sin(&self)
    }
    fn cos(self) -> Self {
        num_dual::DualNum::cos(&self)
    }
    fn tanh(self) -> Self {
        num_dual::DualNum::tanh(&self)
    }
    fn sqrt(self) -> Self {
        num_dual::DualNum::sqrt(&self)
    }
    fn recip(self) -> Self {
        num_dual::DualNum::recip(&self)
    }
}

impl Peer for reverse::Var<'_> {
    fn exp(self) -> Self {
        reverse::Var::exp(&self)
    }
    fn ln(self) -> Self {
        reverse::Var::ln(&self)
    }
    fn sin(self) -> Self {
        reverse::Var::sin(&self)
    }
    fn cos(self) -> Self {
        reverse::Var::cos(&self)
    }
    fn tanh(self) -> Self {
        reverse::Var::tanh(&self)
    }
    fn sqrt(self) -> Self {
        reverse::Var::sqrt(&self)
    }
    fn recip(self) -> Self {
        reverse::Var::recip(&self)
    }
}
