//! The extended Rosenbrock function `sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2`, the
//! chained form the loop tests use.

use super::rng::Rng;
use autodiff::prelude::*;
use num_dual::Dual64;
use reverse::{Gradient, Tape};

pub fn input(n: usize) -> Vec<f64> {
    let mut rng = Rng::new(0x5eed_0000 + n as u64);
    rng.uniforms(n, -1.5, 1.5)
}

#[differentiate]
pub fn rosenbrock(x: &[f64]) -> f64 {
    let mut sum = 0.0;
    for i in 0..x.len() - 1 {
        let t = x[i + 1] - x[i] * x[i];
        let u = 1.0 - x[i];
        sum += 100.0 * t * t + u * u;
    }
    sum
}

/// The same function on a fixed-length array, as one writes it for a known small `n`: its
/// gradient is an array too, with no allocation.
#[differentiate]
pub fn rosenbrock_array<const N: usize>(x: &[f64; N]) -> f64 {
    let mut sum = 0.0;
    for i in 0..N - 1 {
        let t = x[i + 1] - x[i] * x[i];
        let u = 1.0 - x[i];
        sum += 100.0 * t * t + u * u;
    }
    sum
}

/// [`hand_grad`] for [`rosenbrock_array`]: the same sweep, into an array.
pub fn hand_grad_array<const N: usize>(x: &[f64; N]) -> (f64, [f64; N]) {
    let mut g = [0.0; N];
    let sum = hand_sweep(x, &mut g);
    (sum, g)
}

/// One fused loop: the value and both of each term's contributions, the one to `x[i + 1]`
/// carried to the next iteration in a register rather than added through memory.
pub fn hand_grad(x: &[f64]) -> (f64, Vec<f64>) {
    let mut g = vec![0.0; x.len()];
    let sum = hand_sweep(x, &mut g);
    (sum, g)
}

/// The loop of both hand-written adjoints: the value, and the gradient written into `g`.
#[inline(always)]
fn hand_sweep(x: &[f64], g: &mut [f64]) -> f64 {
    let n = x.len();
    let mut sum = 0.0;
    let mut carry = 0.0;
    for i in 0..n - 1 {
        let (xi, next) = (x[i], x[i + 1]);
        let t = next - xi * xi;
        let u = 1.0 - xi;
        sum += 100.0 * t * t + u * u;
        g[i] = carry - 400.0 * xi * t - 2.0 * u;
        carry = 200.0 * t;
    }
    g[n - 1] = carry;
    sum
}

fn rosenbrock_dual(x: &[Dual64]) -> Dual64 {
    let mut sum = Dual64::from(0.0);
    for i in 0..x.len() - 1 {
        let t = x[i + 1] - x[i] * x[i];
        let u = -x[i] + 1.0;
        sum += t * t * 100.0 + u * u;
    }
    sum
}

/// Forward mode, `n` passes; `passes` limits them to the first inputs (for estimates on large
/// inputs), the rest of the gradient is left zero.
pub fn dual_grad(x: &[f64], passes: usize) -> (f64, Vec<f64>) {
    let mut xd: Vec<Dual64> = x.iter().map(|&v| Dual64::from(v)).collect();
    let mut g = vec![0.0; x.len()];
    let mut value = 0.0;
    for (i, gi) in g.iter_mut().enumerate().take(passes) {
        xd[i].eps = 1.0;
        let y = rosenbrock_dual(&xd);
        xd[i].eps = 0.0;
        value = y.re;
        *gi = y.eps;
    }
    (value, g)
}

pub fn tape_grad(tape: &Tape, x: &[f64]) -> (f64, Vec<f64>) {
    tape.clear();
    let v = tape.add_vars(x);
    let mut sum = tape.add_var(0.0);
    for i in 0..v.len() - 1 {
        let t = v[i + 1] - v[i] * v[i];
        let u = 1.0 - v[i];
        sum = sum + 100.0 * t * t + u * u;
    }
    let g = sum.grad();
    (sum.val(), g.wrt(&v))
}
