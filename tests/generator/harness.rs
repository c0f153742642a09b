//! Checks the gradients of generated functions (see `mod.rs` for the generator).
//!
//! For every case and every random point `p` (inputs uniform in `[-1.5, 1.5]`) and output
//! cotangent `c` (`1` for scalar outputs, uniform in `[-1, 1]` otherwise), the reverse-mode
//! vector-Jacobian product `g = backward(c)` (through `_grad` for scalar outputs) is compared
//! with two references, one input component `k` at a time:
//!
//! - **forward mode:** the untouched generic function evaluated at `T = Dual<f64>` with the
//!   tangent 1 on input `k`; `sum_j c_j * out_j.eps` must match `g[k]` within
//!   [`DUAL_TOLERANCE`] (relative error as in `autodiff::relative_error`). This reference is
//!   exact up to rounding, so it is checked at every point, smooth or not.
//! - **finite differences:** `autodiff::finite_difference_gradient` (fourth-order central
//!   differences, step `1e-3 max(1, |p_k|)`) of `t -> sum_j c_j f_j(p with p_k = t)` must
//!   match `g[k]` within [`FD_TOLERANCE`] wherever the function is smooth along that line.
//!
//! **How smoothness is decided.** The finite-difference evaluations run the untouched generic
//! function at `T = Probe`, an `f64` wrapper whose comparisons and piecewise primitives
//! record what they decided: the outcome of every `<`, `<=`, `==`, ... (so every `if`,
//! `while` and short-circuit condition), the sign taken by `abs`, the argument chosen by
//! `max`/`min`/`clamp`, the integer part behind `floor`, `ceil`, `round`, `trunc`, `fract`,
//! `signum` and `%`, the sign predicates, and the side of `atan2`'s branch cut. The stencil
//! points `p_k ± h`, `p_k ± 2h` are compared with the centre: if any of them took a different
//! decision, a kink or a jump lies inside the stencil and that component is skipped (counted
//! as `skipped`). Where all five points decide alike, the function is one smooth expression
//! on the whole stencil, and any disagreement is a real error. The forward values of `_grad`
//! (or `_pullback`), of the `Probe` and of the `Dual` evaluations must also be bit-identical.
//!
//! A failing case prints the seed, the batch, the function's name, the point, the numbers
//! and the source of the function and of every generated function it calls.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt;
use std::iter::{Product, Sum};
use std::num::FpCategory;
use std::ops::{
    Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign,
};
use std::panic::{catch_unwind, AssertUnwindSafe};

use autodiff::{finite_difference_gradient, relative_error, Dual};
use num_traits::{Float, Num, NumCast, One, ToPrimitive, Zero};

/// Inputs are drawn from `[-INPUT_BOUND, INPUT_BOUND]` (the generator plans for this range).
pub const INPUT_BOUND: f64 = 1.5;
/// Largest accepted relative error of the gradient against finite differences.
pub const FD_TOLERANCE: f64 = 1e-6;
/// Largest accepted relative error of the gradient against forward-mode `Dual` evaluation.
pub const DUAL_TOLERANCE: f64 = 1e-9;

/// One generated function, as the generated table describes it.
pub struct Case {
    pub name: &'static str,
    /// Number of float inputs (slice elements counted one by one).
    pub inputs: usize,
    /// The flat indices of the inputs that get a cotangent, in gradient order.
    pub active: &'static [usize],
    /// Number of output components.
    pub outputs: usize,
    /// The untouched function at `T = Probe`.
    pub probe: fn(&[Probe]) -> Vec<Probe>,
    /// The untouched function at `T = Dual<f64>`.
    pub dual: fn(&[Dual<f64>]) -> Vec<Dual<f64>>,
    /// The value and `backward(c)` flattened (`_grad` for scalar outputs, `c = [1]`).
    pub vjp: Vjp,
}

/// `(p, c) -> (value, backward(c))`, both flattened.
pub type Vjp = fn(&[f64], &[f64]) -> (Vec<f64>, Vec<f64>);

/// Flattening of values and gradients (`f64`, `Vec<f64>` and tuples of them).
pub trait Flatten {
    fn flatten_into(self, out: &mut Vec<f64>);

    fn flatten(self) -> Vec<f64>
    where
        Self: Sized,
    {
        let mut out = Vec::new();
        self.flatten_into(&mut out);
        out
    }
}

impl Flatten for f64 {
    fn flatten_into(self, out: &mut Vec<f64>) {
        out.push(self);
    }
}

impl Flatten for Vec<f64> {
    fn flatten_into(self, out: &mut Vec<f64>) {
        out.extend(self);
    }
}

macro_rules! flatten_tuple {
    ($($t:ident),+) => {
        impl<$($t: Flatten),+> Flatten for ($($t,)+) {
            #[allow(non_snake_case)]
            fn flatten_into(self, out: &mut Vec<f64>) {
                let ($($t,)+) = self;
                $($t.flatten_into(out);)+
            }
        }
    };
}
flatten_tuple!(A, B);
flatten_tuple!(A, B, C);
flatten_tuple!(A, B, C, D);
flatten_tuple!(A, B, C, D, E);
flatten_tuple!(A, B, C, D, E, F);

// ---------------------------------------------------------------------------------------
// Probe: an f64 that records its branch decisions
// ---------------------------------------------------------------------------------------

thread_local! {
    static DECISIONS: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

fn decide(code: u64) {
    DECISIONS.with(|d| d.borrow_mut().push(code));
}

/// Runs `f`, returning its result and the decisions it took.
pub fn recording<R>(f: impl FnOnce() -> R) -> (R, Vec<u64>) {
    DECISIONS.with(|d| d.borrow_mut().clear());
    let r = f();
    let log = DECISIONS.with(|d| std::mem::take(&mut *d.borrow_mut()));
    (r, log)
}

/// An `f64` whose comparisons and piecewise-defined operations record the branch they take
/// (see the module documentation). Arithmetic is exactly `f64` arithmetic.
#[derive(Clone, Copy, Debug, Default)]
pub struct Probe(pub f64);

fn ordering_code(o: Option<Ordering>) -> u64 {
    match o {
        Some(Ordering::Less) => 1,
        Some(Ordering::Equal) => 2,
        Some(Ordering::Greater) => 3,
        None => 4,
    }
}

impl PartialEq for Probe {
    fn eq(&self, other: &Probe) -> bool {
        let r = self.0 == other.0;
        decide(10 + r as u64);
        r
    }
}

impl PartialOrd for Probe {
    fn partial_cmp(&self, other: &Probe) -> Option<Ordering> {
        let o = self.0.partial_cmp(&other.0);
        decide(ordering_code(o));
        o
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Neg for Probe {
    type Output = Probe;
    fn neg(self) -> Probe {
        Probe(-self.0)
    }
}

macro_rules! probe_binop {
    ($Op:ident $op:ident $OpAssign:ident $op_assign:ident) => {
        impl $Op for Probe {
            type Output = Probe;
            fn $op(self, rhs: Probe) -> Probe {
                Probe(self.0.$op(rhs.0))
            }
        }
        impl $OpAssign for Probe {
            fn $op_assign(&mut self, rhs: Probe) {
                *self = (*self).$op(rhs);
            }
        }
    };
}
probe_binop!(Add add AddAssign add_assign);
probe_binop!(Sub sub SubAssign sub_assign);
probe_binop!(Mul mul MulAssign mul_assign);
probe_binop!(Div div DivAssign div_assign);

impl Rem for Probe {
    type Output = Probe;
    fn rem(self, rhs: Probe) -> Probe {
        // `a % b = a - trunc(a / b) b` jumps where the quotient's integer part changes
        decide((self.0 / rhs.0).trunc().to_bits());
        Probe(self.0 % rhs.0)
    }
}

impl RemAssign for Probe {
    fn rem_assign(&mut self, rhs: Probe) {
        *self = *self % rhs;
    }
}

// Like `f64`'s `Sum`, which starts from -0.0 (so that a sum of -0.0 stays -0.0).
impl Sum for Probe {
    fn sum<I: Iterator<Item = Probe>>(iter: I) -> Probe {
        iter.fold(Probe(-0.0), |a, b| a + b)
    }
}

impl<'a> Sum<&'a Probe> for Probe {
    fn sum<I: Iterator<Item = &'a Probe>>(iter: I) -> Probe {
        iter.fold(Probe(-0.0), |a, b| a + *b)
    }
}

impl Product for Probe {
    fn product<I: Iterator<Item = Probe>>(iter: I) -> Probe {
        iter.fold(Probe(1.0), |a, b| a * b)
    }
}

impl<'a> Product<&'a Probe> for Probe {
    fn product<I: Iterator<Item = &'a Probe>>(iter: I) -> Probe {
        iter.fold(Probe(1.0), |a, b| a * *b)
    }
}

impl Zero for Probe {
    fn zero() -> Probe {
        Probe(0.0)
    }
    fn is_zero(&self) -> bool {
        let r = self.0 == 0.0;
        decide(20 + r as u64);
        r
    }
}

impl One for Probe {
    fn one() -> Probe {
        Probe(1.0)
    }
}

impl Num for Probe {
    type FromStrRadixErr = <f64 as Num>::FromStrRadixErr;
    fn from_str_radix(s: &str, radix: u32) -> Result<Probe, Self::FromStrRadixErr> {
        f64::from_str_radix(s, radix).map(Probe)
    }
}

impl ToPrimitive for Probe {
    fn to_i64(&self) -> Option<i64> {
        self.0.to_i64()
    }
    fn to_u64(&self) -> Option<u64> {
        self.0.to_u64()
    }
    fn to_f64(&self) -> Option<f64> {
        Some(self.0)
    }
}

impl NumCast for Probe {
    fn from<N: ToPrimitive>(n: N) -> Option<Probe> {
        n.to_f64().map(Probe)
    }
}

macro_rules! forward {
    ($($method:ident),*) => {$(
        fn $method(self) -> Probe {
            Probe(self.0.$method())
        }
    )*};
}

macro_rules! constants {
    ($($method:ident),*) => {$(
        fn $method() -> Probe {
            Probe(f64::$method())
        }
    )*};
}

macro_rules! predicates {
    ($($method:ident),*) => {$(
        fn $method(self) -> bool {
            let r = self.0.$method();
            decide(30 + r as u64);
            r
        }
    )*};
}

macro_rules! piecewise {
    ($($method:ident),*) => {$(
        fn $method(self) -> Probe {
            let r = self.0.$method();
            decide(r.to_bits());
            Probe(r)
        }
    )*};
}

impl Float for Probe {
    constants!(
        nan,
        infinity,
        neg_infinity,
        neg_zero,
        min_value,
        min_positive_value,
        epsilon,
        max_value
    );
    predicates!(
        is_nan,
        is_infinite,
        is_finite,
        is_normal,
        is_subnormal,
        is_sign_positive,
        is_sign_negative
    );
    piecewise!(floor, ceil, round, trunc, signum);
    forward!(
        recip, sqrt, exp, exp2, ln, log2, log10, to_degrees, to_radians, cbrt, sin, cos, tan, asin,
        acos, atan, exp_m1, ln_1p, sinh, cosh, tanh, asinh, acosh, atanh
    );

    fn classify(self) -> FpCategory {
        self.0.classify()
    }

    fn fract(self) -> Probe {
        decide(self.0.trunc().to_bits());
        Probe(self.0.fract())
    }

    fn abs(self) -> Probe {
        decide(40 + self.0.is_sign_negative() as u64);
        Probe(self.0.abs())
    }

    fn mul_add(self, a: Probe, b: Probe) -> Probe {
        Probe(self.0.mul_add(a.0, b.0))
    }

    fn powi(self, n: i32) -> Probe {
        Probe(self.0.powi(n))
    }

    fn powf(self, n: Probe) -> Probe {
        Probe(self.0.powf(n.0))
    }

    fn log(self, base: Probe) -> Probe {
        Probe(self.0.log(base.0))
    }

    fn max(self, other: Probe) -> Probe {
        decide(50 + ordering_code(self.0.partial_cmp(&other.0)));
        Probe(self.0.max(other.0))
    }

    fn min(self, other: Probe) -> Probe {
        decide(60 + ordering_code(self.0.partial_cmp(&other.0)));
        Probe(self.0.min(other.0))
    }

    fn clamp(self, lo: Probe, hi: Probe) -> Probe {
        let region = if self.0 < lo.0 {
            0
        } else if self.0 > hi.0 {
            2
        } else {
            1
        };
        decide(70 + region);
        Probe(num_traits::clamp(self.0, lo.0, hi.0))
    }

    fn abs_sub(self, other: Probe) -> Probe {
        decide(80 + (self.0 > other.0) as u64);
        #[allow(deprecated)]
        Probe(self.0.abs_sub(other.0))
    }

    fn hypot(self, other: Probe) -> Probe {
        Probe(self.0.hypot(other.0))
    }

    fn atan2(self, other: Probe) -> Probe {
        // the branch cut: the second argument negative and the first changing sign
        let side = if other.0 < 0.0 {
            1 + self.0.is_sign_negative() as u64
        } else {
            0
        };
        decide(90 + side);
        Probe(self.0.atan2(other.0))
    }

    fn sin_cos(self) -> (Probe, Probe) {
        let (s, c) = self.0.sin_cos();
        (Probe(s), Probe(c))
    }

    fn integer_decode(self) -> (u64, i16, i8) {
        Float::integer_decode(self.0)
    }

    fn copysign(self, sign: Probe) -> Probe {
        decide(100 + sign.0.is_sign_negative() as u64);
        Probe(self.0.copysign(sign.0))
    }
}

// ---------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------

/// splitmix64, for the points and cotangents.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// What to check and how the batch was generated.
#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    pub batch: u64,
    /// Random points per function.
    pub points: usize,
    /// The generated source, for printing failing functions.
    pub source: &'static str,
    /// How to regenerate the batch, for the failure message.
    pub reproduce: String,
}

/// The outcome of checking a batch.
#[derive(Debug, Default)]
pub struct Report {
    pub functions: usize,
    pub points: usize,
    /// Gradient components compared with finite differences.
    pub fd_checked: usize,
    /// Components not compared with finite differences: a branch decision changes within
    /// the stencil.
    pub fd_skipped: usize,
    /// Of `fd_checked`, those outside the tolerance at the usual step and inside it at a
    /// tenth of the step (the truncation error of a large fifth derivative).
    pub fd_refined: usize,
    /// Gradient components compared with forward mode.
    pub dual_checked: usize,
    pub worst_fd: f64,
    pub worst_dual: f64,
    /// One message per failing function.
    pub failures: Vec<String>,
}

impl Report {
    pub fn summary(&self) -> String {
        format!(
            "{} functions, {} points: {} gradient components against finite differences \
             ({} of them at a tenth of the step, {} more skipped at branch changes), {} against \
             Dual; worst relative error {:.1e} (finite differences), {:.1e} (Dual); {} mismatches",
            self.functions,
            self.points,
            self.fd_checked,
            self.fd_refined,
            self.fd_skipped,
            self.dual_checked,
            self.worst_fd,
            self.worst_dual,
            self.failures.len()
        )
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic)".to_string()
    }
}

fn dot(c: &[f64], y: &[f64]) -> f64 {
    c.iter().zip(y).map(|(a, b)| a * b).sum()
}

fn probe_values(case: &Case, p: &[f64]) -> (Vec<f64>, Vec<u64>) {
    let q: Vec<Probe> = p.iter().map(|&v| Probe(v)).collect();
    let (out, log) = recording(|| (case.probe)(&q));
    (out.iter().map(|v| v.0).collect(), log)
}

/// Fourth-order central differences of `t ↦ c · f(p with p_k = t)` with a tenth of
/// [`finite_difference_gradient`]'s step, `h = 1e-4 · max(1, |p_k|)`; `None` when a branch
/// decision on this stencil differs from the centre's `log`.
fn fine_difference(case: &Case, p: &[f64], k: usize, c: &[f64], log: &[u64]) -> Option<f64> {
    let h = 1e-4 * p[k].abs().max(1.0);
    let at = |offset: f64| -> Option<f64> {
        let mut q = p.to_vec();
        q[k] = p[k] + offset;
        let (v, l) = catch_unwind(AssertUnwindSafe(|| probe_values(case, &q))).ok()?;
        (l == log).then(|| dot(c, &v))
    };
    let (plus, minus) = (at(h)?, at(-h)?);
    let (plus2, minus2) = (at(2.0 * h)?, at(-2.0 * h)?);
    Some((8.0 * (plus - minus) - (plus2 - minus2)) / (12.0 * h))
}

/// Checks one case at `options.points` random points; `Err` describes the first mismatch.
pub fn check_case(
    index: usize,
    case: &Case,
    options: &Options,
    report: &mut Report,
) -> Result<(), String> {
    for point in 0..options.points {
        let mut rng = Rng(options
            .seed
            .wrapping_mul(0x9e37_79b9)
            .wrapping_add(options.batch.wrapping_mul(0x1000_0001))
            .wrapping_add((index as u64) << 20)
            .wrapping_add(point as u64));
        let p: Vec<f64> = (0..case.inputs)
            .map(|_| rng.uniform(-INPUT_BOUND, INPUT_BOUND))
            .collect();
        let c: Vec<f64> = if case.outputs == 1 {
            vec![1.0]
        } else {
            (0..case.outputs).map(|_| rng.uniform(-1.0, 1.0)).collect()
        };
        report.points += 1;
        let at = format!("at p = {p:?}, output cotangent c = {c:?}");

        let (y, g) = catch_unwind(AssertUnwindSafe(|| (case.vjp)(&p, &c)))
            .map_err(|e| format!("reverse mode panicked {at}: {}", panic_message(&*e)))?;
        let (center, log) = catch_unwind(AssertUnwindSafe(|| probe_values(case, &p)))
            .map_err(|e| format!("the function panicked {at}: {}", panic_message(&*e)))?;
        if g.len() != case.active.len() {
            return Err(format!(
                "the gradient has {} components, expected {} {at}",
                g.len(),
                case.active.len()
            ));
        }
        if center.iter().any(|v| !v.is_finite()) {
            return Err(format!(
                "the value is not finite {at}: {center:?} (generator bug)"
            ));
        }
        let same_bits = |a: &[f64], b: &[f64]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        if !same_bits(&y, &center) {
            return Err(format!(
                "the value from reverse mode {y:?} differs from the function's {center:?} {at}"
            ));
        }
        if g.iter().any(|v| !v.is_finite()) {
            return Err(format!("the gradient is not finite {at}: {g:?}"));
        }

        for (slot, &k) in case.active.iter().enumerate() {
            // forward mode
            let duals: Vec<Dual<f64>> = p
                .iter()
                .enumerate()
                .map(|(j, &v)| {
                    if j == k {
                        Dual::variable(v)
                    } else {
                        Dual::constant(v)
                    }
                })
                .collect();
            let out = catch_unwind(AssertUnwindSafe(|| (case.dual)(&duals))).map_err(|e| {
                format!("the Dual evaluation panicked {at}: {}", panic_message(&*e))
            })?;
            let re: Vec<f64> = out.iter().map(|d| d.re).collect();
            if !same_bits(&re, &center) {
                return Err(format!(
                    "the value at T = Dual<f64> {re:?} differs from the function's {center:?} {at}"
                ));
            }
            let tangent: f64 = c.iter().zip(&out).map(|(c, d)| c * d.eps).sum();
            let err = relative_error(g[slot], tangent);
            report.dual_checked += 1;
            report.worst_dual = report.worst_dual.max(err);
            // (a NaN error fails too)
            if err.is_nan() || err > DUAL_TOLERANCE {
                return Err(format!(
                    "gradient component {slot} (input {k}): reverse mode {} but forward mode (Dual) {} \
                     (relative error {err:.2e} > {DUAL_TOLERANCE:e}) {at}",
                    g[slot], tangent
                ));
            }

            // finite differences where the branch decisions agree over the stencil
            let logs = RefCell::new(Vec::new());
            let mut q = p.clone();
            let fd = catch_unwind(AssertUnwindSafe(|| {
                finite_difference_gradient(
                    |t: &[f64]| {
                        let mut q = q.clone();
                        q[k] = t[0];
                        let (v, l) = probe_values(case, &q);
                        logs.borrow_mut().push((v.clone(), l));
                        dot(&c, &v)
                    },
                    &[p[k]],
                )[0]
            }))
            .map_err(|e| {
                format!(
                    "the function panicked near the point {at}: {}",
                    panic_message(&*e)
                )
            })?;
            q[k] = p[k];
            let logs = logs.into_inner();
            let smooth = logs.iter().all(|(_, l)| *l == log);
            if !smooth {
                report.fd_skipped += 1;
                continue;
            }
            if let Some((v, _)) = logs.iter().find(|(v, _)| v.iter().any(|x| !x.is_finite())) {
                return Err(format!(
                    "the value is not finite next to the point (input {k} moved by at most \
                     2e-3 max(1, |p_k|)): {v:?} {at} (generator bug)"
                ));
            }
            let mut err = relative_error(g[slot], fd);
            report.fd_checked += 1;
            let mut fine = None;
            if err > FD_TOLERANCE {
                // the step's truncation error grows with the fifth derivative; a tenth of the
                // step shrinks it 10^4-fold, where a wrong derivative stays as wrong
                fine = fine_difference(case, &p, k, &c, &log);
                if let Some(fine) = fine {
                    let fine_err = relative_error(g[slot], fine);
                    if fine_err <= FD_TOLERANCE {
                        report.fd_refined += 1;
                        err = fine_err;
                    }
                }
            }
            report.worst_fd = report.worst_fd.max(err);
            if err.is_nan() || err > FD_TOLERANCE {
                let fine = match fine {
                    Some(fine) => format!(", {fine} with a tenth of the step"),
                    None => String::new(),
                };
                return Err(format!(
                    "gradient component {slot} (input {k}): reverse mode {} but finite differences {fd}{fine} \
                     (relative error {err:.2e} > {FD_TOLERANCE:e}); forward mode (Dual) gives {tangent} {at}",
                    g[slot]
                ));
            }
        }
    }
    Ok(())
}

/// Checks every case; failures are collected in the report with the function's source.
pub fn check_all(cases: &[Case], options: &Options) -> Report {
    let mut report = Report::default();
    let trace = std::env::var_os("GRADIENT_FUZZ_TRACE").is_some();
    for (index, case) in cases.iter().enumerate() {
        if trace {
            eprintln!("checking {}", case.name);
        }
        report.functions += 1;
        if let Err(message) = check_case(index, case, options, &mut report) {
            report.failures.push(format!(
                "MISMATCH in generated function `{}` (seed {}, batch {}): {message}\n\
                 reproduce with: {}\n\
                 source (callees first):\n{}\n\
                 as a regression case (docs/testing.md), its wrappers and table entry:\n{}",
                case.name,
                options.seed,
                options.batch,
                options.reproduce,
                function_source(options.source, case.name),
                regression_snippet(options.source, case.name)
            ));
        }
    }
    report
}

/// The text of a function and of the generated functions it calls (transitively), from the
/// generated file, callees first.
pub fn function_source(source: &str, name: &str) -> String {
    let mut names = vec![name.to_string()];
    let mut i = 0;
    while i < names.len() {
        let text = function_text(source, &names[i]);
        for callee in called_functions(&text) {
            if !names.contains(&callee) {
                names.push(callee);
            }
        }
        i += 1;
    }
    names.sort_by_key(|n| n[1..].parse::<usize>().unwrap_or(usize::MAX));
    names
        .iter()
        .map(|n| format!("// ---- {n} ----\n{}", function_text(source, n)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The wrappers of a generated function and its line of the `CASES` table.
pub fn regression_snippet(source: &str, name: &str) -> String {
    let start_marker = format!("// ---- {name} ----\n");
    let end_marker = format!("// ---- end {name} ----");
    let wrappers = match (source.find(&start_marker), source.find(&end_marker)) {
        (Some(a), Some(b)) => {
            let block = &source[a..b];
            block
                .find("\nfn run_")
                .map(|k| block[k..].to_string())
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    let entry = format!("Case {{ name: \"{name}\",");
    let line = source
        .lines()
        .find(|l| l.trim_start().starts_with(&entry))
        .unwrap_or("")
        .trim();
    format!("{wrappers}{end_marker}\n\n{line}\n")
}

/// The `#[differentiate] fn name ...` item of the generated file.
fn function_text(source: &str, name: &str) -> String {
    let start_marker = format!("// ---- {name} ----\n");
    let Some(start) = source.find(&start_marker) else {
        return format!("(source of `{name}` not found)\n");
    };
    let body = &source[start + start_marker.len()..];
    let end = [body.find("\nfn run_"), body.find("\n// ---- ")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(body.len());
    body[..end + 1].to_string()
}

/// Names `f123` followed by `(` or `::<` in a function's text.
fn called_functions(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let header_end = text.find('{').unwrap_or(0);
    let mut i = header_end;
    while i < bytes.len() {
        let word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if bytes[i] == b'f' && word_start {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 && (text[j..].starts_with('(') || text[j..].starts_with("::<")) {
                out.push(text[i..j].to_string());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}
