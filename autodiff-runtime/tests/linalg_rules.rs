//! The nalgebra rules of `rules::linalg`: every rule passes the dot-product test
//! `⟨t, vjp(c)⟩ = ⟨jvp_fd(t), c⟩` in f64 with random `t`, `c` at random shapes (dynamic
//! sizes 1..=6 and static `Matrix3`, `Vector3`, ...); one f32 smoke test per rule family;
//! empty zero cotangents in, empty zeros out; zeros, accumulation and shape panics.

// The bodies of `each_type!` serve heap matrices (borrowed, cloned) and `Copy` static
// ones alike.
#![allow(clippy::op_ref, clippy::clone_on_copy)]

use autodiff_runtime::nalgebra::allocator::Allocator;
use autodiff_runtime::nalgebra::{
    DMatrix, DVector, DefaultAllocator, Dim, Dyn, Matrix1, Matrix2, Matrix3, Matrix4, OMatrix,
    RowDVector, RowVector3, SMatrix, Vector3, U1,
};
use autodiff_runtime::rules::linalg::*;
use autodiff_runtime::{ArrayStorage, Cotangent, Save};

/// Random shapes and points tried per rule and matrix type.
const TRIALS: usize = 8;
/// The finite-difference step along `t`.
const H: f64 = 1e-3;
/// The relative tolerance of the dot-product test.
const TOLERANCE: f64 = 1e-8;

/// SplitMix64: a small, fixed-seed generator so every run tests the same points.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }

    /// A dimension in `1..=6`.
    fn size(&mut self) -> usize {
        1 + (self.next_u64() % 6) as usize
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A point of a vector space the test can flatten, perturb and sample.
trait Point: Clone {
    fn flat(&self) -> Vec<f64>;
    /// `self + a t`.
    fn add_scaled(&self, a: f64, t: &Self) -> Self;
    /// A random point of the same shape.
    fn random_like(&self, rng: &mut Rng) -> Self;
}

impl Point for f64 {
    fn flat(&self) -> Vec<f64> {
        vec![*self]
    }

    fn add_scaled(&self, a: f64, t: &Self) -> Self {
        self + a * t
    }

    fn random_like(&self, rng: &mut Rng) -> Self {
        rng.uniform()
    }
}

impl<R: Dim, C: Dim> Point for OMatrix<f64, R, C>
where
    DefaultAllocator: Allocator<R, C>,
{
    fn flat(&self) -> Vec<f64> {
        self.as_slice().to_vec()
    }

    fn add_scaled(&self, a: f64, t: &Self) -> Self {
        self + t * a
    }

    fn random_like(&self, rng: &mut Rng) -> Self {
        self.map(|_| rng.uniform())
    }
}

/// `⟨a, b⟩`, where an empty side is the zero cotangent.
fn inner(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    assert_eq!(a.len(), b.len(), "inner product of different lengths");
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The dot-product test of one argument: `f` is the primitive as a function of that
/// argument (the others fixed) and `vjp` its rule applied to an output cotangent.
///
/// The JVP is a fourth-order central difference along `t`, whose error (about `1e-13`)
/// is far below the tolerance.
#[track_caller]
fn check<X: Point, Y: Point>(
    name: &str,
    rng: &mut Rng,
    x: &X,
    f: impl Fn(&X) -> Y,
    vjp: impl Fn(Y) -> X,
) {
    let c = f(x).random_like(rng);
    let t = x.random_like(rng);
    let lhs = inner(&t.flat(), &vjp(c.clone()).flat());
    let at = |s: f64| f(&x.add_scaled(s * H, &t)).flat();
    let (p1, m1, p2, m2) = (at(1.0), at(-1.0), at(2.0), at(-2.0));
    let jvp: Vec<f64> = (0..p1.len())
        .map(|i| (m2[i] - p2[i] + 8.0 * (p1[i] - m1[i])) / (12.0 * H))
        .collect();
    let rhs = inner(&jvp, &c.flat());
    // Relative, but with a floor far below any real error for rules whose Jacobian is 0
    // (`normalize` of a 1-vector), where both sides are rounding noise.
    let norms = inner(&t.flat(), &t.flat()).sqrt() * inner(&c.flat(), &c.flat()).sqrt();
    let scale = lhs.abs().max(rhs.abs()).max(1e-6 * norms);
    let error = if lhs == rhs {
        0.0
    } else {
        (lhs - rhs).abs() / scale
    };
    assert!(
        error < TOLERANCE,
        "{name}: <t, vjp(c)> = {lhs}, <jvp_fd(t), c> = {rhs} (relative error {error:e})"
    );
}

/// A random matrix of the given (static or dynamic) shape.
fn random<R: Dim, C: Dim>(rng: &mut Rng, rows: R, cols: C) -> OMatrix<f64, R, C>
where
    DefaultAllocator: Allocator<R, C>,
{
    OMatrix::from_fn_generic(rows, cols, |_, _| rng.uniform())
}

/// A random matrix with entries of magnitude in `[1, 2]`, safe to divide by.
fn away_from_zero<R: Dim, C: Dim>(rng: &mut Rng, rows: R, cols: C) -> OMatrix<f64, R, C>
where
    DefaultAllocator: Allocator<R, C>,
{
    random(rng, rows, cols).map(|v| v.signum() * (1.0 + v.abs()))
}

/// A random square matrix dominated by its diagonal `n I`, so well conditioned.
fn well_conditioned<D: Dim>(rng: &mut Rng, d: D) -> OMatrix<f64, D, D>
where
    DefaultAllocator: Allocator<D, D>,
{
    let n = d.value() as f64;
    let mut a = random(rng, d, d);
    for i in 0..d.value() {
        a[(i, i)] += n + 1.0;
    }
    a
}

fn s<const N: usize>() -> autodiff_runtime::nalgebra::Const<N> {
    autodiff_runtime::nalgebra::Const::<N>
}

/// Runs `$body` with `$x` bound to random matrices of each type: `DMatrix` and `DVector`
/// of random sizes, `RowDVector`, `Matrix3`, `Vector3`, `SMatrix<2, 3>`.
macro_rules! each_type {
    ($rng:ident, $x:ident => $body:block) => {{
        for _ in 0..TRIALS {
            let (r, c) = ($rng.size(), $rng.size());
            let $x: DMatrix<f64> = random(&mut $rng, Dyn(r), Dyn(c));
            $body
        }
        for _ in 0..TRIALS {
            let n = $rng.size();
            let $x: DVector<f64> = random(&mut $rng, Dyn(n), U1);
            $body
        }
        for _ in 0..2 {
            let n = $rng.size();
            let $x: RowDVector<f64> = random(&mut $rng, U1, Dyn(n));
            $body
        }
        for _ in 0..2 {
            let $x: Matrix3<f64> = random(&mut $rng, s::<3>(), s::<3>());
            $body
        }
        for _ in 0..2 {
            let $x: Vector3<f64> = random(&mut $rng, s::<3>(), U1);
            $body
        }
        for _ in 0..2 {
            let $x: SMatrix<f64, 2, 3> = random(&mut $rng, s::<2>(), s::<3>());
            $body
        }
    }};
}

/// Runs `$body` with `$n` a random size and `$x` bound to a square matrix built by
/// `$make(&mut rng, dim)` of each type: `DMatrix` (sizes 1..=6), `Matrix1` to `Matrix4`.
macro_rules! each_square {
    ($rng:ident, $make:ident, $x:ident => $body:block) => {{
        for _ in 0..TRIALS {
            let n = $rng.size();
            let $x: DMatrix<f64> = $make(&mut $rng, Dyn(n));
            $body
        }
        {
            let $x: Matrix1<f64> = $make(&mut $rng, s::<1>());
            $body
        }
        {
            let $x: Matrix2<f64> = $make(&mut $rng, s::<2>());
            $body
        }
        for _ in 0..2 {
            let $x: Matrix3<f64> = $make(&mut $rng, s::<3>());
            $body
        }
        {
            let $x: Matrix4<f64> = $make(&mut $rng, s::<4>());
            $body
        }
    }};
}

fn square<D: Dim>(rng: &mut Rng, d: D) -> OMatrix<f64, D, D>
where
    DefaultAllocator: Allocator<D, D>,
{
    random(rng, d, d)
}

#[test]
fn add_sub_neg() {
    let mut rng = Rng::new(1);
    each_type!(rng, a => {
        let b = a.random_like(&mut rng);
        check("add_d0", &mut rng, &a, |a| a + &b, add_d0);
        check("add_d1", &mut rng, &b, |b| &a + b, add_d1);
        check("sub_d0", &mut rng, &a, |a| a - &b, sub_d0);
        check("sub_d1", &mut rng, &b, |b| &a - b, sub_d1);
        check("neg_d0", &mut rng, &a, |a| -a, neg_d0);
    });
}

/// Both product rules of `a * b` at one point.
fn check_mul<A, B, Y>(rng: &mut Rng, a: &A, b: &B)
where
    A: Point + MulVjp<B, Output = Y>,
    B: Point,
    Y: Point,
    for<'x> &'x A: core::ops::Mul<&'x B, Output = Y>,
{
    check("mul_d0", rng, a, |a| a * b, |d| mul_d0(a, b, d));
    check("mul_d1", rng, b, |b| a * b, |d| mul_d1(a, b, d));
}

#[test]
fn mul_matrix_matrix() {
    let mut rng = Rng::new(2);
    for _ in 0..3 * TRIALS {
        let (m, k, n) = (rng.size(), rng.size(), rng.size());
        let a = random(&mut rng, Dyn(m), Dyn(k));
        let b = random(&mut rng, Dyn(k), Dyn(n));
        check_mul(&mut rng, &a, &b);
    }
    // Above nalgebra's small-size threshold, so through matrixmultiply with strided views.
    let a = random(&mut rng, Dyn(7), Dyn(9));
    let b = random(&mut rng, Dyn(9), Dyn(8));
    check_mul(&mut rng, &a, &b);
    // A product with few rows (an MLP's output layer) against long factors: the adjoints are
    // arranged around nalgebra's column-by-column fallback (`FEW_ROWS`, and `ger` for one
    // row), on both sides of it.
    for (m, k, n) in [(1, 64, 20), (3, 12, 9), (5, 7, 6), (6, 7, 6), (2, 1, 9)] {
        let a = random(&mut rng, Dyn(m), Dyn(k));
        let b = random(&mut rng, Dyn(k), Dyn(n));
        check_mul(&mut rng, &a, &b);
    }
    let a: Matrix3<f64> = random(&mut rng, s::<3>(), s::<3>());
    let b: Matrix3<f64> = random(&mut rng, s::<3>(), s::<3>());
    check_mul(&mut rng, &a, &b);
    let a: SMatrix<f64, 2, 3> = random(&mut rng, s::<2>(), s::<3>());
    let b: SMatrix<f64, 3, 4> = random(&mut rng, s::<3>(), s::<4>());
    check_mul(&mut rng, &a, &b);
}

#[test]
fn mul_matrix_vector() {
    let mut rng = Rng::new(3);
    for _ in 0..2 * TRIALS {
        let (m, k) = (rng.size(), rng.size());
        let a = random(&mut rng, Dyn(m), Dyn(k));
        let x = random(&mut rng, Dyn(k), U1);
        check_mul(&mut rng, &a, &x);
        // The outer product v wᵀ and the inner product wᵀ v as matrix products.
        let v: DVector<f64> = random(&mut rng, Dyn(m), U1);
        let w: RowDVector<f64> = random(&mut rng, U1, Dyn(k));
        check_mul(&mut rng, &v, &w);
        let r: RowDVector<f64> = random(&mut rng, U1, Dyn(m));
        check_mul(&mut rng, &r, &v);
    }
    let a = random(&mut rng, Dyn(8), Dyn(7));
    let x = random(&mut rng, Dyn(7), U1);
    check_mul(&mut rng, &a, &x);
    let a: Matrix3<f64> = random(&mut rng, s::<3>(), s::<3>());
    let x: Vector3<f64> = random(&mut rng, s::<3>(), U1);
    check_mul(&mut rng, &a, &x);
    let r: RowVector3<f64> = random(&mut rng, U1, s::<3>());
    check_mul(&mut rng, &r, &a);
}

#[test]
fn mul_scalar() {
    let mut rng = Rng::new(4);
    each_type!(rng, m => {
        let k = rng.uniform();
        check("mul_d0 (scalar * matrix)", &mut rng, &k, |k| *k * &m, |d| mul_d0(&k, &m, d));
        check("mul_d1 (scalar * matrix)", &mut rng, &m, |m| k * m, |d| mul_d1(&k, &m, d));
        check("mul_d0 (matrix * scalar)", &mut rng, &m, |m| m * k, |d| mul_d0(&m, &k, d));
        check("mul_d1 (matrix * scalar)", &mut rng, &k, |k| &m * *k, |d| mul_d1(&m, &k, d));
    });
    let (a, b) = (rng.uniform(), rng.uniform());
    check(
        "mul_d0 (scalars)",
        &mut rng,
        &a,
        |a| a * b,
        |d| mul_d0(&a, &b, d),
    );
    check(
        "mul_d1 (scalars)",
        &mut rng,
        &b,
        |b| a * b,
        |d| mul_d1(&a, &b, d),
    );
}

#[test]
fn transpose() {
    let mut rng = Rng::new(5);
    each_type!(rng, x => {
        check("transpose_d0", &mut rng, &x, |x| x.transpose(), transpose_d0);
    });
}

#[test]
fn dot() {
    let mut rng = Rng::new(6);
    each_type!(rng, a => {
        let b = a.random_like(&mut rng);
        check("dot_d0", &mut rng, &a, |a| a.dot(&b), |d| dot_d0(&b, d));
        check("dot_d1", &mut rng, &b, |b| a.dot(b), |d| dot_d1(&a, d));
    });
}

#[test]
fn norms() {
    let mut rng = Rng::new(7);
    each_type!(rng, x => {
        // Norms at least 1: `normalize` curves like 1/‖x‖², too sharply near 0 for the
        // finite difference.
        let x = x.map(|v| v.signum() * (1.0 + v.abs()));
        let y = x.norm();
        check("norm_d0", &mut rng, &x, |x| x.norm(), |d| norm_d0(&x, &y, d));
        check("norm_squared_d0", &mut rng, &x, |x| x.norm_squared(), |d| norm_squared_d0(&x, d));
        check("normalize_d0", &mut rng, &x, |x| x.normalize(), |d| normalize_d0(&x, d));
    });
}

#[test]
fn norm_at_zero_is_zero() {
    // ‖x‖ has no gradient at 0; the rule takes the zero subgradient.
    let x = DVector::<f64>::zeros(4);
    assert!(norm_d0(&x, &0.0, 1.0).is_empty());
    let x = Vector3::<f64>::zeros();
    assert_eq!(norm_d0(&x, &0.0, 1.0), Vector3::zeros());
}

#[test]
fn cross() {
    let mut rng = Rng::new(8);
    for _ in 0..TRIALS {
        let a: Vector3<f64> = random(&mut rng, s::<3>(), U1);
        let b: Vector3<f64> = random(&mut rng, s::<3>(), U1);
        check(
            "cross_d0",
            &mut rng,
            &a,
            |a| a.cross(&b),
            |d| cross_d0(&b, d),
        );
        check(
            "cross_d1",
            &mut rng,
            &b,
            |b| a.cross(b),
            |d| cross_d1(&a, d),
        );
        let a: DVector<f64> = random(&mut rng, Dyn(3), U1);
        let b: DVector<f64> = random(&mut rng, Dyn(3), U1);
        check(
            "cross_d0",
            &mut rng,
            &a,
            |a| a.cross(&b),
            |d| cross_d0(&b, d),
        );
        check(
            "cross_d1",
            &mut rng,
            &b,
            |b| a.cross(b),
            |d| cross_d1(&a, d),
        );
    }
    let a: RowVector3<f64> = random(&mut rng, U1, s::<3>());
    let b: RowVector3<f64> = random(&mut rng, U1, s::<3>());
    check(
        "cross_d0",
        &mut rng,
        &a,
        |a| a.cross(&b),
        |d| cross_d0(&b, d),
    );
    check(
        "cross_d1",
        &mut rng,
        &b,
        |b| a.cross(b),
        |d| cross_d1(&a, d),
    );
}

#[test]
fn component_mul_div() {
    let mut rng = Rng::new(9);
    each_type!(rng, a => {
        let b = a.random_like(&mut rng);
        let (r, c) = b.shape_generic();
        let nonzero = away_from_zero(&mut rng, r, c);
        check("component_mul_d0", &mut rng, &a, |a| a.component_mul(&b), |d| component_mul_d0(&b, d));
        check("component_mul_d1", &mut rng, &b, |b| a.component_mul(b), |d| component_mul_d1(&a, d));
        check("component_div_d0", &mut rng, &a, |a| a.component_div(&nonzero), |d| component_div_d0(&nonzero, d));
        check("component_div_d1", &mut rng, &nonzero, |b| a.component_div(b), |d| component_div_d1(&a, &nonzero, d));
    });
}

#[test]
fn map_elementwise() {
    // y = m.map(f) with f(v) = sin(v) v: the pullback of each element keeps v and its sine,
    // as the lifted closure's pullback would, and applies f'(v) = cos(v) v + sin(v)
    let mut rng = Rng::new(20);
    let f = |v: f64| v.sin() * v;
    each_type!(rng, m => {
        let kept: Vec<(f64, f64)> = m.iter().map(|&v| (v, v.sin())).collect();
        check("map_elementwise_d0", &mut rng, &m, |m| m.map(f), |d| {
            map_elementwise_d0(&kept, d, |&(v, sin), d| (v.cos() * v + sin) * d)
        });
    });
}

#[test]
fn map_elementwise_rebuilt_from_element_and_result() {
    // y = m.map(f) with f(v) = v exp(v), its pullback rebuilt from v and y:
    // f'(v) = (1 + v) exp(v) = y + exp(v)
    let mut rng = Rng::new(21);
    let f = |v: f64| v * v.exp();
    each_type!(rng, m => {
        let y = m.map(f);
        check("map_elementwise2_d0", &mut rng, &m, |m| m.map(f), |d| {
            map_elementwise2_d0(m.as_slice(), y.as_slice(), d, |&v, &y, d| (y + v.exp()) * d)
        });
    });
}

#[test]
#[should_panic(expected = "backward of `map`")]
fn map_elementwise2_checks_the_lengths() {
    let (elements, results) = (vec![1.0; 4], vec![1.0; 3]);
    let _ = map_elementwise2_d0(
        &elements,
        &results,
        DMatrix::from_element(2, 2, 1.0),
        |_, _, d| d,
    );
}

#[test]
#[should_panic(expected = "backward of `map`")]
fn map_elementwise_checks_the_cotangent_shape() {
    let kept = vec![1.0; 4];
    let _ = map_elementwise_d0(&kept, DMatrix::from_element(2, 3, 1.0), |_, d| d);
}

#[test]
fn sum_mean() {
    let mut rng = Rng::new(10);
    each_type!(rng, x => {
        check("sum_d0", &mut rng, &x, |x| x.sum(), |d| sum_d0(&x, d));
        check("mean_d0", &mut rng, &x, |x| x.mean(), |d| mean_d0(&x, d));
    });
}

#[test]
fn trace() {
    let mut rng = Rng::new(11);
    each_square!(rng, square, x => {
        check("trace_d0", &mut rng, &x, |x| x.trace(), |d| trace_d0(&x, d));
    });
}

#[test]
fn determinant() {
    let mut rng = Rng::new(12);
    each_square!(rng, square, x => {
        check("determinant_d0", &mut rng, &x, |x| x.determinant(), |d| determinant_d0(&x, d));
    });
    // Larger sizes, through the SVD.
    for n in [7, 9] {
        let x = square(&mut rng, Dyn(n));
        check(
            "determinant_d0",
            &mut rng,
            &x,
            |x| x.determinant(),
            |d| determinant_d0(&x, d),
        );
    }
}

/// The cofactor matrix `∂ det X / ∂ X` by expanding minors, for comparison.
fn cofactors(x: &DMatrix<f64>) -> DMatrix<f64> {
    let n = x.nrows();
    DMatrix::from_fn(n, n, |i, j| {
        let minor = x.clone().remove_row(i).remove_column(j);
        let sign = if (i + j) % 2 == 0 { 1.0 } else { -1.0 };
        sign * minor.determinant()
    })
}

#[test]
fn determinant_at_singular_matrices_is_the_adjugate() {
    let mut rng = Rng::new(13);
    for n in 2..=6 {
        for rank in [n - 1, n - 2] {
            // x = u vᵀ with u: n×rank, v: n×rank has exactly that rank.
            let u = random(&mut rng, Dyn(n), Dyn(rank));
            let v = random(&mut rng, Dyn(n), Dyn(rank));
            let x = &u * v.transpose();
            let got = determinant_d0(&x, 1.5);
            let want = cofactors(&x) * 1.5;
            assert!(
                got.iter().all(|g| g.is_finite()),
                "n = {n}, rank {rank}: {got}"
            );
            let error = (&got - &want).norm();
            assert!(
                error < 1e-12 * want.norm().max(1.0),
                "n = {n}, rank {rank}: {got} vs {want}"
            );
            if rank + 2 <= n {
                assert!(
                    got.norm() < 1e-12,
                    "rank {rank} < n - 1 has a zero adjugate"
                );
            }
        }
    }
    let zero = Matrix3::<f64>::zeros();
    assert_eq!(determinant_d0(&zero, 1.0), Matrix3::zeros());
}

#[test]
fn try_inverse() {
    let mut rng = Rng::new(14);
    each_square!(rng, well_conditioned, x => {
        let y = x.clone().try_inverse().unwrap();
        check("try_inverse_d0", &mut rng, &x, |x| x.clone().try_inverse().unwrap(), |d| try_inverse_d0(&y, d));
    });
    let x = well_conditioned(&mut rng, Dyn(8));
    let y = x.clone().try_inverse().unwrap();
    check(
        "try_inverse_d0",
        &mut rng,
        &x,
        |x| x.clone().try_inverse().unwrap(),
        |d| try_inverse_d0(&y, d),
    );
}

/// `x = A⁻¹ b` at one point, with the rules given the matrix and given its LU.
fn check_solve<D, C>(rng: &mut Rng, a: &OMatrix<f64, D, D>, b: &OMatrix<f64, D, C>)
where
    D: autodiff_runtime::nalgebra::DimMin<D, Output = D>,
    C: Dim,
    DefaultAllocator: Allocator<D, D> + Allocator<D, C> + Allocator<D>,
{
    let solve = |a: &OMatrix<f64, D, D>, b: &OMatrix<f64, D, C>| a.clone().lu().solve(b).unwrap();
    let x = solve(a, b);
    let lu = a.clone().lu();
    check("solve_d0", rng, a, |a| solve(a, b), |d| solve_d0(a, &x, d));
    check("solve_d1", rng, b, |b| solve(a, b), |d| solve_d1(a, d));
    check(
        "solve_d0 (LU)",
        rng,
        a,
        |a| solve(a, b),
        |d| solve_d0(&lu, &x, d),
    );
    check(
        "solve_d1 (LU)",
        rng,
        b,
        |b| solve(a, b),
        |d| solve_d1(&lu, d),
    );
}

#[test]
fn solve() {
    let mut rng = Rng::new(15);
    for _ in 0..TRIALS {
        let (n, k) = (rng.size(), rng.size());
        let a = well_conditioned(&mut rng, Dyn(n));
        let b: DVector<f64> = random(&mut rng, Dyn(n), U1);
        check_solve(&mut rng, &a, &b);
        let b: DMatrix<f64> = random(&mut rng, Dyn(n), Dyn(k));
        check_solve(&mut rng, &a, &b);
        // Rows reversed, so that LU pivots (still well conditioned).
        let a = well_conditioned(&mut rng, Dyn(n));
        let a = DMatrix::from_fn(n, n, |i, j| a[(n - 1 - i, j)]);
        check_solve(&mut rng, &a, &b);
    }
    let a: Matrix3<f64> = well_conditioned(&mut rng, s::<3>());
    let b: Vector3<f64> = random(&mut rng, s::<3>(), U1);
    check_solve(&mut rng, &a, &b);
    let b: SMatrix<f64, 3, 2> = random(&mut rng, s::<3>(), s::<2>());
    check_solve(&mut rng, &a, &b);
}

#[test]
fn solve_with_a_singular_matrix_is_nan() {
    let a = DMatrix::<f64>::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 4.0]);
    let x = DVector::from_vec(vec![1.0, 1.0]);
    let d = DVector::from_vec(vec![1.0, 0.0]);
    assert!(solve_d1(&a, d.clone()).iter().all(|v| v.is_nan()));
    assert!(solve_d0(&a.clone().lu(), &x, d).iter().all(|v| v.is_nan()));
}

#[test]
fn index() {
    let mut rng = Rng::new(16);
    each_type!(rng, m => {
        let (r, c) = m.shape();
        let (i, j) = (rng.below(r), rng.below(c));
        let k = rng.below(r * c);
        check("index_d0 (i, j)", &mut rng, &m, |m| m[(i, j)], |d| index_d0(&m, &(i, j), d));
        check("index_d0 (k)", &mut rng, &m, |m| m[k], |d| index_d0(&m, &k, d));
        let mut acc = Cotangent::zero();
        index_add(&mut acc, &m, &(i, j), 1.0);
        index_add(&mut acc, &m, &k, 2.0);
        let mut want = index_d0(&m, &(i, j), 1.0);
        want.accumulate(index_d0(&m, &k, 2.0));
        assert_eq!(acc, want);
    });
}

#[test]
#[should_panic(expected = "index (2, 0) is out of bounds for a 2x2 matrix")]
fn index_out_of_bounds_panics() {
    index_d0(&Matrix2::<f64>::zeros(), &(2, 0), 1.0);
}

#[test]
#[should_panic(expected = "backward of `mul`: cannot multiply a 2x3 matrix by a 2x3 matrix")]
fn mul_shape_mismatch_panics() {
    let a = DMatrix::<f64>::zeros(2, 3);
    mul_d0(&a, &a, DMatrix::zeros(2, 3));
}

#[test]
#[should_panic(
    expected = "backward of `component_mul`: the cotangent is 3x1, but 2x1 was expected"
)]
fn cotangent_shape_mismatch_panics() {
    component_mul_d0(&DVector::<f64>::zeros(2), DVector::zeros(3));
}

#[test]
fn empty_zero_in_empty_zero_out() {
    let m = DMatrix::<f64>::from_element(3, 3, 2.0);
    let v = DVector::<f64>::from_element(3, 2.0);
    let row = RowDVector::<f64>::from_element(3, 2.0);
    let zm = || DMatrix::<f64>::zero();
    let zv = || DVector::<f64>::zero();
    let zr = || RowDVector::<f64>::zero();
    let empty = [
        add_d0(zm()),
        add_d1(zm()),
        sub_d0(zm()),
        sub_d1(zm()),
        neg_d0(zm()),
        mul_d0(&m, &m, zm()),
        mul_d1(&m, &m, zm()),
        mul_d1(&2.0, &m, zm()),
        mul_d0(&m, &2.0, zm()),
        transpose_d0(zm()),
        component_mul_d0(&m, zm()),
        component_mul_d1(&m, zm()),
        component_div_d0(&m, zm()),
        component_div_d1(&m, &m, zm()),
        normalize_d0(&m, zm()),
        try_inverse_d0(&m, zm()),
        solve_d0(&m, &m, zm()),
        solve_d1(&m, zm()),
        solve_d0(&m.clone().lu(), &m, zm()),
    ];
    for (i, e) in empty.iter().enumerate() {
        assert!(e.is_empty(), "result {i} is {}x{}", e.nrows(), e.ncols());
        assert_eq!(e.data.as_vec().capacity(), 0, "result {i} allocated");
    }
    let empty_vectors = [
        mul_d1(&m, &v, zv()),
        mul_d1(&2.0, &v, zv()),
        mul_d0(&v, &2.0, zv()),
        normalize_d0(&v, zv()),
        cross_d0(&v, zv()),
        cross_d1(&v, zv()),
        component_mul_d0(&v, zv()),
        solve_d1(&m, zv()),
        transpose_d0(zr()),
    ];
    for (i, e) in empty_vectors.iter().enumerate() {
        assert!(e.is_empty(), "vector result {i} has length {}", e.len());
        assert_eq!(e.data.as_vec().capacity(), 0, "vector result {i} allocated");
    }
    assert!(mul_d0(&m, &v, zv()).is_empty());
    assert!(solve_d0(&m, &v, zv()).is_empty());
    assert!(mul_d0(&v, &row, zm()).is_empty());
    assert!(mul_d1(&v, &row, zm()).is_empty());
    assert_eq!(mul_d0(&2.0, &m, zm()), 0.0);
    assert_eq!(mul_d1(&m, &2.0, zm()), 0.0);
    // A static operand of a product with an empty cotangent gets its zero matrix.
    let a = Matrix3::<f64>::identity();
    let b = OMatrix::<f64, autodiff_runtime::nalgebra::U3, Dyn>::from_element(4, 1.0);
    let d = OMatrix::<f64, autodiff_runtime::nalgebra::U3, Dyn>::zero();
    assert_eq!(mul_d0(&a, &b, d.clone()), Matrix3::zeros());
    assert!(mul_d1(&a, &b, d).is_empty());
}

#[test]
fn zeros_and_accumulation() {
    let z = DMatrix::<f64>::zero();
    assert_eq!(z.shape(), (0, 0));
    assert_eq!(z.data.as_vec().capacity(), 0);
    assert_eq!(DVector::<f32>::zero().len(), 0);
    assert_eq!(Matrix3::<f64>::zero(), Matrix3::zeros());
    assert_eq!(Vector3::<f32>::zero(), Vector3::zeros());

    let mut acc = DMatrix::<f64>::zero();
    acc.accumulate(DMatrix::from_element(2, 3, 1.0));
    assert_eq!(acc, DMatrix::from_element(2, 3, 1.0));
    acc.accumulate(DMatrix::zero());
    acc.accumulate(DMatrix::from_element(2, 3, 0.5));
    assert_eq!(acc, DMatrix::from_element(2, 3, 1.5));

    let mut acc = Vector3::new(1.0, 2.0, 3.0);
    acc.accumulate(Vector3::new(1.0, 1.0, 1.0));
    assert_eq!(acc, Vector3::new(2.0, 3.0, 4.0));

    let x = DVector::from_vec(vec![1.0, 2.0]);
    assert_eq!(fit(DVector::zero(), &x), DVector::zeros(2));
    assert_eq!(fit(x.clone(), &x), x);
}

#[test]
#[should_panic(
    expected = "backward of `accumulate`: the added cotangent is 3x2, but 2x3 was expected"
)]
fn accumulating_a_different_shape_panics() {
    let mut acc = DMatrix::<f64>::zeros(2, 3);
    acc.accumulate(DMatrix::zeros(3, 2));
}

#[test]
fn save_and_heap_bytes() {
    let m = DMatrix::<f64>::from_element(2, 3, 1.0);
    let view = m.columns(0, 2);
    assert_eq!(Save::save(&view), DMatrix::from_element(2, 2, 1.0));
    assert_eq!(Save::save(&&m), m);
    assert_eq!(m.heap_bytes(), 48);
    assert_eq!(Matrix3::<f32>::zeros().heap_bytes(), 0);
}

/// `|got - want| ≤ 1e-4 |want|` for an f32 result against its f64 counterpart.
#[track_caller]
fn close<R: Dim, C: Dim>(got: OMatrix<f32, R, C>, want: OMatrix<f64, R, C>)
where
    DefaultAllocator: Allocator<R, C>,
{
    let error = (got.map(f64::from) - &want).norm();
    assert!(
        error <= 1e-4 * want.norm().max(1e-30),
        "f32 {got} vs f64 {want}"
    );
}

/// The f32 copy of an f64 matrix.
fn lower<R: Dim, C: Dim>(m: &OMatrix<f64, R, C>) -> OMatrix<f32, R, C>
where
    DefaultAllocator: Allocator<R, C>,
{
    m.map(|v| v as f32)
}

#[track_caller]
fn close_scalar(got: f32, want: f64) {
    assert!(
        (f64::from(got) - want).abs() <= 1e-4 * want.abs(),
        "f32 {got} vs f64 {want}"
    );
}

#[test]
fn f32_arithmetic_and_products() {
    let mut rng = Rng::new(17);
    let a = random(&mut rng, Dyn(4), Dyn(3));
    let b = random(&mut rng, Dyn(3), Dyn(5));
    let v = random(&mut rng, Dyn(3), U1);
    let d = random(&mut rng, Dyn(4), Dyn(5));
    let dv = random(&mut rng, Dyn(4), U1);
    let (a32, b32, v32) = (lower(&a), lower(&b), lower(&v));
    let (d32, dv32) = (lower(&d), lower(&dv));
    close(neg_d0(d32.clone()), neg_d0(d.clone()));
    close(sub_d1(d32.clone()), sub_d1(d.clone()));
    close(mul_d0(&a32, &b32, d32.clone()), mul_d0(&a, &b, d.clone()));
    close(mul_d1(&a32, &b32, d32.clone()), mul_d1(&a, &b, d.clone()));
    close(mul_d0(&a32, &v32, dv32.clone()), mul_d0(&a, &v, dv.clone()));
    close(mul_d1(&a32, &v32, dv32), mul_d1(&a, &v, dv));
    close(
        mul_d1(&2.0f32, &b32, b32.clone()),
        mul_d1(&2.0, &b, b.clone()),
    );
    close_scalar(
        mul_d1(&b32, &2.0f32, b32.clone()),
        mul_d1(&b, &2.0, b.clone()),
    );
    close_scalar(mul_d0(&3.0f32, &2.0f32, 1.0f32), mul_d0(&3.0, &2.0, 1.0));
    close(transpose_d0(d32), transpose_d0(d));
}

#[test]
fn f32_vector_rules() {
    let mut rng = Rng::new(18);
    let x: Vector3<f64> = random(&mut rng, s::<3>(), U1);
    let b: Vector3<f64> = away_from_zero(&mut rng, s::<3>(), U1);
    let d: Vector3<f64> = random(&mut rng, s::<3>(), U1);
    let (x32, b32, d32) = (lower(&x), lower(&b), lower(&d));
    close(dot_d0(&b32, 0.5), dot_d0(&b, 0.5));
    close(dot_d1(&x32, 0.5), dot_d1(&x, 0.5));
    close(norm_d0(&x32, &x32.norm(), 0.5), norm_d0(&x, &x.norm(), 0.5));
    close(norm_squared_d0(&x32, 0.5), norm_squared_d0(&x, 0.5));
    close(normalize_d0(&x32, d32), normalize_d0(&x, d));
    close(cross_d0(&b32, d32), cross_d0(&b, d));
    close(cross_d1(&x32, d32), cross_d1(&x, d));
    close(component_mul_d0(&b32, d32), component_mul_d0(&b, d));
    close(component_mul_d1(&x32, d32), component_mul_d1(&x, d));
    close(component_div_d0(&b32, d32), component_div_d0(&b, d));
    close(
        component_div_d1(&x32, &b32, d32),
        component_div_d1(&x, &b, d),
    );
    close(index_d0(&x32, &1, 0.5), index_d0(&x, &1, 0.5));
    close(
        index_d0(&DMatrix::<f32>::zeros(2, 3), &(1, 2), 0.5),
        index_d0(&DMatrix::zeros(2, 3), &(1, 2), 0.5),
    );
}

#[test]
fn f32_matrix_rules() {
    let mut rng = Rng::new(19);
    for n in [3, 5] {
        let x = well_conditioned(&mut rng, Dyn(n));
        let b: DVector<f64> = random(&mut rng, Dyn(n), U1);
        let d = random(&mut rng, Dyn(n), Dyn(n));
        let dv: DVector<f64> = random(&mut rng, Dyn(n), U1);
        let (x32, b32, d32, dv32) = (lower(&x), lower(&b), lower(&d), lower(&dv));
        close(sum_d0(&x32, 0.5), sum_d0(&x, 0.5));
        close(mean_d0(&x32, 0.5), mean_d0(&x, 0.5));
        close(trace_d0(&x32, 0.5), trace_d0(&x, 0.5));
        close(determinant_d0(&x32, 0.5), determinant_d0(&x, 0.5));
        let (y, y32) = (
            x.clone().try_inverse().unwrap(),
            x32.clone().try_inverse().unwrap(),
        );
        close(try_inverse_d0(&y32, d32), try_inverse_d0(&y, d));
        let (s, s32) = (
            x.clone().lu().solve(&b).unwrap(),
            x32.clone().lu().solve(&b32).unwrap(),
        );
        close(
            solve_d0(&x32, &s32, dv32.clone()),
            solve_d0(&x, &s, dv.clone()),
        );
        close(
            solve_d1(&x32.clone().lu(), dv32),
            solve_d1(&x.clone().lu(), dv),
        );
    }
}
