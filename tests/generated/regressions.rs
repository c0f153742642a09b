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

// The other three mismatches of the same run, with the same cause: f827 and f874 (+0.0 in
// `Dual`, -0.0 in `f64`), f943 (-0.0 in `Dual`, +0.0 in `f64`, a sum of negative zeros
// multiplied by a negative number further on).

// ---- f927 ----
#[differentiate(wrt(y))]
fn f927<T>(z: T, x: T, y: T, n: usize) -> T
where
    T: Float + NumAssign + Sum + Product,
{
    let mut acc = (z.tanh() * T::from(0.9).unwrap()).atanh();
    if (acc + y) < T::from(1.32).unwrap() {
        for _ in 0..n {
            let t2 = (acc * T::from(0.365).unwrap()).atan();
            let t3 = -(acc * T::from(0.365).unwrap()).sin().sin();
            if (z * z + T::from(1.0).unwrap()).ln().is_sign_positive() {
                let l4;
                if t2.is_sign_negative() || t2.to_radians() >= acc {
                    l4 = y * (-(t3 / (t2.abs() + T::from(0.75).unwrap())));
                } else {
                    l4 = ((((t3 - t2) + (x + T::from(2.0).unwrap()).hypot(T::from(-1.194).unwrap())) - (((x * y) * T::from(0.888).unwrap()).sin() * T::from(0.9).unwrap()).acos()) * T::from(0.192).unwrap()).sin();
                }
                let t3 = T::ln(t3 + T::from(1.5).unwrap());
                acc += T::tanh((l4 + t3) * T::from(0.592).unwrap());
            } else {
                if (x * y) < T::from(1.442).unwrap() {
                    continue;
                }
            }
        }
        let t5 = (((acc + T::from(n).unwrap()) - T::from(-1.665).unwrap().cos()) * T::from(0.19).unwrap()).sin();
        acc /= t5 * t5 + T::from(1.25).unwrap();
    }
    acc - ((x - z) + T::from(4.0).unwrap()).log2()
}


// ---- f943 ----
#[differentiate]
fn f943<T>(y: T, x: T) -> (T, T)
where
    T: Float + NumAssign + Sum + Product,
{
    let mut acc = (x.tanh() * T::from(0.9).unwrap()).atanh();
    let mut w1 = vec![T::zero(); 5];
    let t2 = acc;
    for i3 in (0..4).rev() {
        for i4 in 0..3 {
            let l5;
            if x.ceil() <= T::from(0.017).unwrap() {
                l5 = Float::sin(f927(((x + (w1[i4 + 1] * t2)) * T::from(0.27).unwrap()).sin(), ((y + (w1[0] / ((w1[4] * T::from(0.5).unwrap()).tanh().exp() + T::from(0.75).unwrap()))) * T::from(0.292).unwrap()).tanh(), ((y + t2) * T::from(0.672).unwrap()).tanh(), 4) * T::from(0.238).unwrap());
            } else {
                match i3 % 3 {
                    0 => {
                        acc += (T::atan((w1[3] - x) * T::from(0.363).unwrap()).exp() * T::from(0.415).unwrap()).sin() * T::from(0.333).unwrap();
                    }
                    1 => {
                        let t6 = if (T::from(0.378).unwrap() * T::from(0.378).unwrap() + T::from(1.0).unwrap()).hypot(acc) > T::from(0.387).unwrap() { w1[i4 % w1.len()].abs() } else { x };
                        acc -= (t6 * T::from(0.5).unwrap()).tanh() * T::from(0.333).unwrap();
                    }
                    _ => {
                        acc = (((acc * T::from(0.504).unwrap()) * x) * T::from(0.483).unwrap()).atan() * T::from(0.937).unwrap();
                    }
                }
                l5 = (((x.exp() + T::from(0.75).unwrap()).ln().cosh() + T::from(-0.484).unwrap()) * T::from(0.307).unwrap()).tanh();
            }
            let t7 = (((t2.abs() + (w1[i3] * w1[i3 % w1.len()])) * T::from(0.114).unwrap()).sin() * ((t2.abs() + (w1[i3] * w1[i3 % w1.len()])) * T::from(0.114).unwrap()).sin() + T::from(0.5).unwrap()).recip();
            w1[i3 % 5] *= (y * T::from(1.333).unwrap()).sin();
            acc = ((T::ln((acc * T::from(0.365).unwrap()).tanh().exp() + T::from(0.5).unwrap()) + (l5 + t7)) * T::from(0.42).unwrap()).sin();
        }
        let s8 = (0..5).map(|i| (w1[i] * T::from(-0.943).unwrap()).sin() * T::from(i).unwrap()).sum::<T>();
        acc = Float::tanh((T::ln((acc * T::from(0.365).unwrap()).atan() * (acc * T::from(0.365).unwrap()).atan() + T::from(0.5).unwrap()) * (s8 * T::from(0.08).unwrap()).tanh()) * T::from(1.225).unwrap());
    }
    (acc, y)
}



fn run_f943<T: Float + NumAssign + Sum + Product>(p: &[T]) -> Vec<T> {
    let (a, b) = f943(p[0], p[1]);
    vec![a, b]
}

fn vjp_f943(p: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (y, pullback) = f943_pullback(p[0], p[1]);
    (y.flatten(), pullback.backward((c[0], c[1])).flatten())
}
// ---- end f943 ----

// ---- f824 ----
#[differentiate]
fn f824<T: Float + NumAssign + Sum + Product>(xs: &[T], x: T, y: T) -> T {
    let mut acc = -x;
    let t1 = T::tanh(((acc * xs[1]) + T::atan2(T::from(0.5).unwrap(), xs[3].exp() + T::from(0.5).unwrap())) * T::from(0.37).unwrap());
    for _ in xs.iter().copied() {
        let t3 = xs[1];
        let t4 = y;
        acc -= ((t3 - t4) * T::from(0.666).unwrap()).tanh();
    }
    (((acc + t1) + ((y + T::from(-0.661).unwrap()) + Float::mul_add(x, xs[0], x))) * T::from(0.161).unwrap()).atan()
}


// ---- f827 ----
#[differentiate]
fn f827<T: Float + NumAssign + Sum + Product>(x: T, xs: &[T]) -> T {
    let mut acc = xs[2];
    let w1 = vec![T::zero(); 4];
    for (&_, &b3) in w1.iter().zip(xs.iter()) {
        if b3 > T::from(-0.166).unwrap() {
            let b3 = (b3.sin() * T::from(0.85).unwrap()).atanh();
            acc += (b3 * T::from(1.358).unwrap()).sin();
        } else {
            let t4 = (acc + w1[1]) % (xs[2] * xs[2] + T::from(0.5).unwrap());
            let mut k5 = 0;
            loop {
                k5 += 1;
                let t7 = Float::tanh(((w1[2] / (x + T::from(2.5).unwrap())) + Float::to_degrees((x * T::from(1.333).unwrap()).tanh() * T::from(0.05).unwrap())) * T::from(0.291).unwrap());
                let s8 = xs.iter().copied().product::<T>();
                if (x.cosh() >= T::from(0.035).unwrap()) || k5 >= 4 {
                    break;
                }
                acc *= ((t7 - (s8 * T::from(0.395).unwrap()).tanh()) * T::from(1.0).unwrap()).atan() * T::from(0.636).unwrap();
            }
            acc += (t4 * T::from(0.727).unwrap()).tanh();
        }
        let s9 = (0..4).map(|i| (w1[i] * T::from(-0.224).unwrap()).atan() * T::from(i).unwrap()).sum::<T>();
        acc /= ((acc.clamp((w1[0] * T::from(0.5).unwrap()).tanh() - T::from(1.25).unwrap(), (x * T::from(1.333).unwrap()).sin() + T::from(1.25).unwrap()).abs() + T::from(0.5).unwrap()) + T::one()).acosh().exp() + T::from(1.5).unwrap();
        acc *= ((w1[1] + T::from(5.0).unwrap()).ln() * T::from(0.606).unwrap()).tanh();
        acc *= ((s9 * T::from(0.063).unwrap()).atan() * T::from(1.273).unwrap()).tanh();
    }
    acc
}


// ---- f834 ----
#[differentiate]
fn f834<T: Float + NumAssign + Sum + Product>(x: T, xs: &[T], y: T, n: usize, z: T) -> (T, T) {
    let mut acc = y.min(y).round();
    for (&a1, &_) in xs.iter().zip(xs) {
        let mut t3 = (acc * T::from(0.444).unwrap()).tanh();
        t3 -= x;
        for (&_, &_) in xs.iter().zip(xs.iter()) {
            let t6 = a1;
            let w7 = vec![T::from(n).unwrap().abs(); 2];
            acc -= ((t6 + w7[1]) * T::from(0.363).unwrap()).tanh() * T::from(0.5).unwrap();
        }
        acc = (((acc * T::from(-0.767).unwrap()) - t3) * T::from(0.336).unwrap()).tanh();
    }
    let t8 = y;
    for _ in 0..xs.len() {
        let s10 = xs.iter().map(|v| (*v).tanh().tan() + *v).sum::<T>();
        acc *= (s10 * T::from(0.327).unwrap()).sin();
    }
    (acc * t8, t8.max(xs[1] - acc) + z)
}


// ---- f839 ----
#[differentiate]
fn f839<T>(xs: &[T], x: T) -> T
where
    T: Float + NumAssign + Sum + Product,
{
    let mut acc = ((xs[0] * T::from(1.333).unwrap()).sin() * T::from(0.9).unwrap()).atanh() - (-x);
    acc /= x.exp() + T::from(1.0).unwrap();
    acc -= ((Float::hypot(x + T::from(2.0).unwrap(), T::from(-1.615).unwrap()) + (acc - xs[1])) * T::from(0.208).unwrap()).tanh();
    acc = ((acc.ceil() * (xs[2] - (T::from(0.757).unwrap().max(T::from(-1.562).unwrap()) / ((xs[3] + T::from(2.5).unwrap()).cbrt().exp() + T::from(0.75).unwrap())))) * T::from(0.112).unwrap()).sin();
    acc * (xs[3] + T::from(2.5).unwrap()).cbrt()
}


// ---- f874 ----
#[differentiate]
fn f874<T>(x: T, n: usize, xs: &[T], ys: &[T], y: T, z: T) -> T
where
    T: Float + NumAssign + Sum + Product,
{
    let mut acc = T::sin(f827(T::atan((x + f824::<T>(xs, ((ys[n % 2] - (ys[1] - ys[n % 2])) * T::from(0.444).unwrap()).sin(), T::tanh((y * z) * T::from(0.888).unwrap()))) * T::from(0.651).unwrap()) * T::from(0.954).unwrap(), xs) * T::from(0.363).unwrap());
    let mut t1 = f839(xs, ((y + ((xs[n % xs.len()] * T::from(1.333).unwrap()).tanh() * T::from(0.9).unwrap()).atanh()) * T::from(0.672).unwrap()).sin());
    t1 = (t1 * T::from(0.235).unwrap()) * xs[1];
    if Float::acosh((z.exp() + T::from(0.75).unwrap()) + T::one()) < T::from(-1.564).unwrap() {
        let w2 = vec![T::zero(); 4];
        let t3 = T::one();
        acc += w2[1] + t3;
    } else if (x - T::from(-1.238).unwrap().tanh()) > T::from(0.394).unwrap() {
        let mut k4 = 0;
        while (!((T::from(-0.396).unwrap() - y) <= T::from(0.756).unwrap()) && (x * y).is_sign_negative()) && k4 < 2 {
            k4 += 1;
            let t5 = acc;
            t1 /= (t5 * T::from(0.666).unwrap()).atan().exp() + T::from(1.5).unwrap();
        }
    } else {
        let (p6, q7) = f834(((y + z) * T::from(0.666).unwrap()).sin(), ys, ((x * (ys[0] - x)) * T::from(0.444).unwrap()).sin(), 3, T::tanh((y - (z / (z.exp() + T::from(1.0).unwrap()))) * T::from(0.666).unwrap()));
        acc = acc.atan() + ((p6 * T::from(0.266).unwrap()).sin() + (q7 * T::from(0.266).unwrap()).tanh());
    }
    acc + t1
}



fn run_f874<T: Float + NumAssign + Sum + Product>(p: &[T]) -> Vec<T> {
    vec![f874(p[0], 2, &p[1..5], &p[5..7], p[7], p[8])]
}

fn vjp_f874(p: &[f64], _: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (y, g) = f874_grad(p[0], 2, &p[1..5], &p[5..7], p[7], p[8]);
    (vec![y], g.flatten())
}
// ---- end f874 ----

// wrappers of f827 (defined above, as a callee of f874)

fn run_f827<T: Float + NumAssign + Sum + Product>(p: &[T]) -> Vec<T> {
    vec![f827(p[0], &p[1..5])]
}

fn vjp_f827(p: &[f64], _: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (y, g) = f827_grad(p[0], &p[1..5]);
    (vec![y], g.flatten())
}
// ---- end f827 ----

// Seed 97, batch 1: `f559`'s `_grad` did not compile (E0283). Its loop became an eager loop
// whose record kept only a count of the inner loop and the marker of the type parameters:
// the record, a local in the iteration, needed its type written out.

// ---- f559 ----
#[differentiate]
fn f559<T: Float + NumAssign + Sum + Product>(y: T, xs: &[T], x: T, ys: &[T]) -> T {
    let mut acc = xs[0].tanh().tan() - y;
    for _ in 0..1 {
        let mut w2 = vec![T::zero(); 5];
        for (&a3, &_) in ys.iter().zip(ys.iter()) {
            w2[0] *= (a3 * T::from(1.333).unwrap()).tanh();
        }
        acc += w2[0];
    }
    acc - x
}

fn run_f559<T: Float + NumAssign + Sum + Product>(p: &[T]) -> Vec<T> {
    vec![f559(p[0], &p[1..3], p[3], &p[4..9])]
}

fn vjp_f559(p: &[f64], _: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (y, g) = f559_grad(p[0], &p[1..3], p[3], &p[4..9]);
    (vec![y], g.flatten())
}
// ---- end f559 ----

/// Generated functions that once failed. The compile-time failures the generator found are
/// listed in docs/testing.md (they cannot be kept here while they do not compile).
pub static CASES: &[Case] = &[
    Case { name: "f559", inputs: 9, active: &[0, 1, 2, 3, 4, 5, 6, 7, 8], outputs: 1, probe: run_f559::<Probe>, dual: run_f559::<Dual<f64>>, vjp: vjp_f559 },
    Case { name: "f943", inputs: 2, active: &[0, 1], outputs: 2, probe: run_f943::<Probe>, dual: run_f943::<Dual<f64>>, vjp: vjp_f943 },
    Case { name: "f874", inputs: 9, active: &[0, 1, 2, 3, 4, 5, 6, 7, 8], outputs: 1, probe: run_f874::<Probe>, dual: run_f874::<Dual<f64>>, vjp: vjp_f874 },
    Case { name: "f827", inputs: 5, active: &[0, 1, 2, 3, 4], outputs: 1, probe: run_f827::<Probe>, dual: run_f827::<Dual<f64>>, vjp: vjp_f827 },
    Case { name: "f686", inputs: 3, active: &[0, 1, 2], outputs: 2, probe: run_f686::<Probe>, dual: run_f686::<Dual<f64>>, vjp: vjp_f686 },
];
