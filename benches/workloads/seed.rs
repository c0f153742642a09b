//! The seed function `ln(x1) + x1*x2 - sin(x2)`.

use super::Peer;
use autodiff::prelude::*;
use num_dual::Dual64;
use reverse::{Gradient, Tape};

pub const POINT: (f64, f64) = (2.0, 5.0);

#[differentiate]
pub fn seed(x1: f64, x2: f64) -> f64 {
    x1.ln() + x1 * x2 - x2.sin()
}

/// The adjoint as one would write it by hand: `(1/x1 + x2, x1 - cos x2)`.
pub fn hand_grad(x1: f64, x2: f64) -> (f64, (f64, f64)) {
    let value = x1.ln() + x1 * x2 - x2.sin();
    (value, (1.0 / x1 + x2, x1 - x2.cos()))
}

fn seed_dual(x1: Dual64, x2: Dual64) -> Dual64 {
    x1.ln() + x1 * x2 - x2.sin()
}

/// Forward mode: one pass per input.
pub fn dual_grad(x1: f64, x2: f64) -> (f64, (f64, f64)) {
    let a = seed_dual(Dual64::new(x1, 1.0), Dual64::new(x2, 0.0));
    let b = seed_dual(Dual64::new(x1, 0.0), Dual64::new(x2, 1.0));
    (a.re, (a.eps, b.eps))
}

/// The tape crate, on a tape reused between calls (cleared, not reallocated).
pub fn tape_grad(tape: &Tape, x1: f64, x2: f64) -> (f64, (f64, f64)) {
    tape.clear();
    let a = tape.add_var(x1);
    let b = tape.add_var(x2);
    let y = a.ln() + a * b - b.sin();
    let g = y.grad();
    (y.val(), (g.wrt(&a), g.wrt(&b)))
}
