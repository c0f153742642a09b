//! Generated functions that once failed, kept as regression tests (docs/testing.md says how
//! to add one: paste the function, its callees, its wrappers and its table entry that the
//! failure message prints, renaming `fN` if the name is taken).

#![allow(
    clippy::approx_constant,
    clippy::assign_op_pattern,
    clippy::collapsible_if,
    clippy::eq_op,
    clippy::if_same_then_else,
    clippy::let_and_return,
    clippy::map_clone,
    clippy::misrefactored_assign_op,
    clippy::needless_late_init,
    clippy::needless_range_loop,
    clippy::neg_cmp_op_on_partial_ord,
    clippy::nonminimal_bool,
    clippy::unnecessary_to_owned,
    clippy::unused_enumerate_index,
    clippy::useless_vec
)]

#[allow(unused_imports)]
use crate::harness::{Case, Flatten, Probe};
#[allow(unused_imports)]
use autodiff::prelude::*;
#[allow(unused_imports)]
use num_traits::NumAssign;
#[allow(unused_imports)]
use std::iter::{Product, Sum};

// Seed 7, batch 2 of the 20 000-function run: `f686`'s value in `Dual<f64>` was +0.0 where
// `f64` gave -0.0, because `Dual`'s `Sum` started from +0.0 and `std`'s float sums start from
// -0.0 (`s5` below sums negative zeros; `atan` keeps the sign). Fixed in the runtime.

// ---- f631 ----
#[differentiate]
fn f631<T>(x: T, n: usize) -> T
where
    T: Float + NumAssign + Sum + Product,
{
    let mut acc = x;
    for _ in 0..n {
        for _ in 0..1 {
            acc /= T::log((T::from(-0.332).unwrap() * T::from(-1.76).unwrap()).exp() + T::from(0.5).unwrap(), ((x + acc) * T::from(0.285).unwrap()).sin() + T::from(3.5).unwrap()).exp_m1() + T::from(4.313).unwrap();
            let w3 = vec![T::zero(); 4];
            acc = acc * w3[1];
        }
        let w4 = vec![T::zero(); 4];
        acc += w4[2];
    }
    acc
}


// ---- f642 ----
#[differentiate]
fn f642<T: Float + NumAssign + Sum + Product>(x: T) -> T {
    let mut acc = x * x;
    let w1 = vec![x - x, T::from(1.366).unwrap().sinh(), x * acc];
    let mut k2 = 0;
    while ((acc / (acc.abs() + T::from(0.75).unwrap())) > acc) && k2 < 5 {
        k2 += 1;
        for &_ in w1.iter() {
            let t4 = T::atan(w1[0] * T::from(0.238).unwrap());
            acc /= (Float::tanh(acc * T::from(0.275).unwrap()) * Float::tanh(acc * T::from(0.275).unwrap()) + T::from(1.0).unwrap()).cbrt() + T::from(2.26).unwrap();
            acc = ((acc - t4) * T::from(0.226).unwrap()).sin();
        }
    }
    let w5 = vec![T::zero(); 3];
    let w6 = vec![T::zero(); 3];
    acc /= x.clamp(T::from(-1.264).unwrap(), T::from(1.346).unwrap()).exp() + T::from(1.0).unwrap();
    ((acc + w5[2]) * w6[0]) + (x - (w1[2] - x))
}


// ---- f653 ----
#[differentiate]
fn f653<T>(x: T, y: T) -> Vec<T>
where
    T: Float + NumAssign + Sum + Product,
{
    let mut acc = x;
    if (T::from(0.5).unwrap() * T::from(0.5).unwrap() + T::from(0.5).unwrap()).log(acc.abs() + T::from(2.0).unwrap()) <= acc {
        let (b1, b2) = (T::tanh((x.atan() - y.floor()) * T::from(0.491).unwrap()), T::atanh(acc.tanh() * T::from(0.9).unwrap()) / ((f642(((x * (x / (x.exp() + T::from(1.0).unwrap()))) * T::from(0.888).unwrap()).tanh()) * T::from(0.313).unwrap()).sin() + T::from(1.75).unwrap()));
        acc += Float::to_degrees((((b1 * b1 + T::from(0.5).unwrap()) - T::from(0.75).unwrap()).ln_1p() * T::from(2.182).unwrap()).atan() * T::from(0.031).unwrap());
        let t3 = y;
        acc += b2 + t3;
    }
    let mut k4 = 0;
    loop {
        k4 += 1;
        for i6 in 0..1 {
            if T::exp(y) > T::from(-0.569).unwrap() {
                if (x + (T::from(i6).unwrap().abs() + T::from(1.0).unwrap()).log10()).is_sign_negative() {
                    let t7 = T::tanh(((x + y) - acc) * T::from(0.144).unwrap());
                    acc += t7;
                } else {
                    let t8 = x;
                    acc *= (t8 * T::from(1.333).unwrap()).atan() * T::from(0.636).unwrap();
                }
                acc = acc.asinh() - (T::to_radians(T::from(i6).unwrap()) * T::to_radians(T::from(i6).unwrap()) + T::from(0.75).unwrap()).log10();
            } else {
                acc /= f631(((y - (T::from(0.5).unwrap() * x)) * T::from(0.888).unwrap()).sin(), 2).hypot(Float::sin(acc * T::from(0.184).unwrap()) * Float::sin(acc * T::from(0.184).unwrap()) + T::from(0.75).unwrap()) + T::from(4.25).unwrap();
            }
            acc = T::asin((acc * T::from(0.184).unwrap()).sin() * T::from(0.9).unwrap()) * x;
        }
        let w9 = vec![T::zero(); 2];
        if (!((w9[1] + x) > w9[0]) && x >= T::from(-0.659).unwrap()) || k4 >= 3 {
            break;
        }
    }
    let mut out10 = vec![T::zero(); 4];
    out10[0] += (acc * T::from(0.184).unwrap()).sin();
    out10[0] = x * y;
    out10
}


// ---- f662 ----
#[differentiate]
fn f662<T>(x: T) -> T
where
    T: Float + NumAssign + Sum + Product,
{
    let mut acc = (T::atan((x + T::from(1.695).unwrap()) * T::from(0.625).unwrap()) * T::from(0.031).unwrap()).to_degrees();
    for i1 in 0..2 {
        let mut w2 = vec![T::zero(); 2];
        w2.swap(0, 1);
        acc += T::sin(x * T::from(1.333).unwrap());
        acc = (((acc * T::from(-0.754).unwrap()) - (-(w2[0] + T::from(0.5).unwrap()).log(x.exp() + T::from(2.5).unwrap()).max(w2[i1 % 2]))) * T::from(0.428).unwrap()).sin();
    }
    acc - ((T::from(-1.534).unwrap().exp() + T::from(0.25).unwrap()) - T::from(0.75).unwrap()).ln_1p().max(x)
}


// ---- f679 ----
#[differentiate]
fn f679<T>(n: usize, x: T) -> (T, T)
where
    T: Float + NumAssign + Sum + Product,
{
    let mut acc = ((x * T::from(0.5).unwrap()).tanh() * T::from(0.9).unwrap()).acos();
    for i1 in 1..=2 {
        for _ in (0..2).rev() {
            acc = (acc * T::from(-0.399).unwrap()) * x;
            if (T::atan(acc * T::from(0.388).unwrap()) * x) < T::from(0.667).unwrap() {
                acc = ((acc + (acc + (T::from(1.825).unwrap() + T::from(2.325).unwrap()).log2())) * T::from(0.161).unwrap()).sin();
            } else {
                acc -= ((x + acc.abs()) * T::from(0.301).unwrap()).tanh() * T::from(0.5).unwrap();
            }
            let t3 = ((acc / (T::from(0.164).unwrap() + T::from(1.164).unwrap())) * T::from(0.388).unwrap()).atan();
            acc = (((acc * T::from(-0.827).unwrap()) * t3) * T::from(0.299).unwrap()).sin();
        }
        let t4 = (T::from(i1).unwrap() + T::from(3.75).unwrap()).recip() - (-x);
        let t5 = (acc * T::from(0.388).unwrap()).sin();
        acc = (((acc * T::from(0.273).unwrap()) * t4) * T::from(0.502).unwrap()).atan();
        acc = ((acc + t5) * T::from(0.325).unwrap()).atan();
    }
    (acc, (T::from(0.199).unwrap() + (T::from(-1.87).unwrap() * (acc * T::from(0.388).unwrap()).tanh())) + T::from(n).unwrap())
}


// ---- f686 ----
#[differentiate]
fn f686<T: Float + NumAssign + Sum + Product>(x: T, y: T, z: T) -> (T, T) {
    let mut acc = y;
    acc += (-x).tanh().tan();
    if y > T::from(-1.005).unwrap() {
        let u1 = f653(((z + (x / (z * z + T::from(0.5).unwrap()))) * T::from(0.444).unwrap()).tanh(), Float::sin((y + z) * T::from(0.666).unwrap()));
        for _ in u1.iter() {
            acc -= (x * T::from(1.333).unwrap()).atan() * T::from(0.636).unwrap();
            if x <= T::from(0.275).unwrap() {
                let (p3, q4) = f679(1, Float::atan((y + u1[0].atan()) * T::from(0.651).unwrap()) * T::from(0.954).unwrap());
                acc = (((acc * T::from(0.485).unwrap()) - ((p3 * T::from(0.329).unwrap()).tanh() - (q4 * T::from(0.329).unwrap()).sin())) * T::from(0.368).unwrap()).tanh();
            }
            let s5: T = (0..4).map(|i| (u1[i] * T::from(-1.387).unwrap()).atan() * T::from(i).unwrap()).sum::<T>();
            acc = T::atan((acc.trunc() + T::atan(s5 * T::from(0.063).unwrap())) * T::from(0.207).unwrap());
        }
        let t6 = y + (u1[3].signum() % ((acc * T::from(0.283).unwrap()).sin().exp() + T::from(0.75).unwrap()));
        acc /= t6 * t6 + T::from(1.0).unwrap();
    } else {
        let t7 = (T::from(1.37).unwrap() * z) / ((z + acc).abs() + T::from(0.75).unwrap());
        acc = (((acc * T::from(0.654).unwrap()).atan().exp_m1() + t7) * T::from(0.264).unwrap()).tanh();
    }
    (acc, ((f662(((x + y) * T::from(0.666).unwrap()).atan() * T::from(0.954).unwrap()) - acc) * T::from(0.146).unwrap()).sin())
}



fn run_f686<T: Float + NumAssign + Sum + Product>(p: &[T]) -> Vec<T> {
    let (a, b) = f686(p[0], p[1], p[2]);
    vec![a, b]
}

fn vjp_f686(p: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (y, pullback) = f686_pullback(p[0], p[1], p[2]);
    (y.flatten(), pullback.backward((c[0], c[1])).flatten())
}
// ---- end f686 ----

/// Generated functions that once failed. The compile-time failures the generator found are
/// listed in docs/testing.md (they cannot be kept here while they do not compile).
pub static CASES: &[Case] = &[
    Case { name: "f686", inputs: 3, active: &[0, 1, 2], outputs: 2, probe: run_f686::<Probe>, dual: run_f686::<Dual<f64>>, vjp: vjp_f686 },
];
