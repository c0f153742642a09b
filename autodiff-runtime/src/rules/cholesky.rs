//! Rules for the Cholesky factorisation `A = L Lᵀ` (`a.cholesky().unwrap()`) and what is
//! computed from it: `solve`, `l`, `determinant`, `ln_determinant` and `inverse`.
//!
//! The generated code carries a factorisation as its lower factor `L`, an owned matrix of
//! `A`'s type: each operation on it is a function of `L` with rules of its own, and
//! [`factor_d0`] takes the summed `L̄` to `Ā`.
//!
//! nalgebra reads only the lower triangle of `A` and takes the upper one to mirror it, so
//! `Ā` is the derivative with respect to the entries read: for a gradient `G` of a function of
//! a symmetric `A` (`df = ⟨G, dA⟩` for symmetric `dA`), `Āᵢⱼ = Gᵢⱼ + Gⱼᵢ` below the
//! diagonal, `Āᵢᵢ = Gᵢᵢ` on it and `0` above. A matrix built symmetric from the parameters
//! gets the same parameter gradient either way; one whose upper triangle differs gets the
//! true one, that of the function as nalgebra computes it.
//!
//! ```
//! use autodiff_runtime::nalgebra::{Matrix2, Vector2};
//! use autodiff_runtime::rules::cholesky::{factor, solve};
//!
//! let a = Matrix2::new(4.0, 2.0, 2.0, 3.0);
//! let l = factor(&a);
//! assert!((l * l.transpose() - a).norm() < 1e-12);
//! let x = solve(&l, &Vector2::new(1.0, 2.0));
//! assert!((a * x - Vector2::new(1.0, 2.0)).norm() < 1e-12);
//! ```

use nalgebra::allocator::Allocator;
use nalgebra::{DefaultAllocator, Dim, Matrix, OMatrix, RealField, Storage};

use crate::cotangent::Cotangent;

/// `a.cholesky().unwrap()`: the lower factor `L` of `A = L Lᵀ` (zeros above the diagonal).
///
/// # Panics
///
/// If `a` is not square or not positive definite (as `unwrap` on nalgebra's `None` would,
/// with a message naming the operation).
#[track_caller]
pub fn factor<T, D, S>(a: &Matrix<T, D, D, S>) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    S: Storage<T, D, D>,
    DefaultAllocator: Allocator<D, D>,
{
    assert!(
        a.is_square(),
        "cholesky: the matrix must be square, not {}x{}",
        a.nrows(),
        a.ncols()
    );
    match a.clone_owned().cholesky() {
        Some(c) => c.unpack(),
        None => panic!(
            "cholesky: the {}x{} matrix is not positive definite",
            a.nrows(),
            a.ncols()
        ),
    }
}

/// `L = chol(A)`: with `P = Φ(Lᵀ L̄)` (the lower triangle of `Lᵀ L̄`, its diagonal halved)
/// the symmetric gradient is `G = L⁻ᵀ P L⁻¹` (Murray 2016, from `dA = dL Lᵀ + L dLᵀ`, so
/// `L⁻¹ dA L⁻ᵀ = X + Xᵀ` with `X = L⁻¹ dL` lower triangular and `dL = L Φ(L⁻¹ dA L⁻ᵀ)`);
/// `Ā` holds it on the lower triangle (see the module). Entries of `L̄` above the diagonal,
/// where `L` is zero whatever `A` is, are ignored.
pub fn factor_d0<T, D>(l: &OMatrix<T, D, D>, d: OMatrix<T, D, D>) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    if d.is_empty() {
        return Cotangent::zero();
    }
    check_factor_shape("cholesky", d.shape(), l.shape());
    let n = l.nrows();
    let mut p = l.transpose() * d.lower_triangle();
    for j in 0..n {
        for i in 0..j {
            p[(i, j)] = T::zero();
        }
        p[(j, j)] *= T::from_subset(&0.5);
    }
    // X = P L⁻¹, as Xᵀ = L⁻ᵀ Pᵀ; then G = L⁻ᵀ X
    let mut xt = p.transpose();
    l.tr_solve_lower_triangular_mut(&mut xt);
    let mut g = xt.transpose();
    l.tr_solve_lower_triangular_mut(&mut g);
    let mut out = g.clone();
    for j in 0..n {
        for i in 0..j {
            out[(i, j)] = T::zero();
        }
        for i in j + 1..n {
            out[(i, j)] = g[(i, j)] + g[(j, i)];
        }
    }
    out
}

/// `chol.solve(&b)`: `x = A⁻¹ b = L⁻ᵀ (L⁻¹ b)`, the two triangular solves of nalgebra's
/// `Cholesky::solve`, so that the value is the function's to the last bit.
pub fn solve<T, D, C, S>(l: &OMatrix<T, D, D>, b: &Matrix<T, D, C, S>) -> OMatrix<T, D, C>
where
    T: RealField + Copy,
    D: Dim,
    C: Dim,
    S: Storage<T, D, C>,
    DefaultAllocator: Allocator<D, D> + Allocator<D, C>,
{
    let mut x = b.clone_owned();
    l.solve_lower_triangular_unchecked_mut(&mut x);
    l.ad_solve_lower_triangular_unchecked_mut(&mut x);
    x
}

/// `x = A⁻¹ b` with `A = L Lᵀ`: `Ā = −b̄ xᵀ` (`b̄` from [`solve_d1`]), so with `dA = dL Lᵀ +
/// L dLᵀ`, `L̄ = (Ā + Āᵀ) L = −(b̄ xᵀ + x b̄ᵀ) L`.
pub fn solve_d0<T, D, C>(
    l: &OMatrix<T, D, D>,
    x: &OMatrix<T, D, C>,
    d: OMatrix<T, D, C>,
) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    C: Dim,
    DefaultAllocator: Allocator<D, D> + Allocator<D, C> + Allocator<C, D>,
{
    if d.is_empty() {
        return Cotangent::zero();
    }
    check_factor_shape("cholesky solve", d.shape(), x.shape());
    let b = solve(l, &d);
    let outer = &b * x.transpose();
    -((&outer + outer.transpose()) * l)
}

/// `x = A⁻¹ b`: `b̄ = A⁻ᵀ x̄ = A⁻¹ x̄` (`A` is symmetric), the same two triangular solves.
pub fn solve_d1<T, D, C>(l: &OMatrix<T, D, D>, d: OMatrix<T, D, C>) -> OMatrix<T, D, C>
where
    T: RealField + Copy,
    D: Dim,
    C: Dim,
    DefaultAllocator: Allocator<D, D> + Allocator<D, C>,
{
    if d.is_empty() {
        return d;
    }
    solve(l, &d)
}

/// `chol.l()`: the factor itself, copied.
pub fn l<T, D>(l: &OMatrix<T, D, D>) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    l.clone()
}

/// `chol.l()`: `L̄` passes through ([`factor_d0`] reads its lower triangle).
pub fn l_d0<T, D>(d: OMatrix<T, D, D>) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    d
}

/// `chol.determinant()`: `det A = (∏ Lᵢᵢ)²`.
pub fn determinant<T, D>(l: &OMatrix<T, D, D>) -> T
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    let product = (0..l.nrows()).fold(T::one(), |p, i| p * l[(i, i)]);
    product * product
}

/// `y = (∏ Lᵢᵢ)²`: `L̄ᵢᵢ = 2 y ȳ / Lᵢᵢ`, zero off the diagonal.
pub fn determinant_d0<T, D>(l: &OMatrix<T, D, D>, y: &T, d: T) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    diagonal_cotangent(l, |lii| (*y + *y) * d / lii)
}

/// `chol.ln_determinant()`: `ln det A = Σ ln Lᵢᵢ²`, summed as nalgebra does.
pub fn ln_determinant<T, D>(l: &OMatrix<T, D, D>) -> T
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    (0..l.nrows()).fold(T::zero(), |s, i| s + (l[(i, i)] * l[(i, i)]).ln())
}

/// `y = Σ ln Lᵢᵢ²`: `L̄ᵢᵢ = 2 ȳ / Lᵢᵢ`, zero off the diagonal.
pub fn ln_determinant_d0<T, D>(l: &OMatrix<T, D, D>, d: T) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    diagonal_cotangent(l, |lii| (d + d) / lii)
}

/// `chol.inverse()`: `A⁻¹ = L⁻ᵀ L⁻¹`, the identity solved with the factor.
pub fn inverse<T, D>(l: &OMatrix<T, D, D>) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    let (rows, cols) = l.shape_generic();
    solve(l, &OMatrix::identity_generic(rows, cols))
}

/// `Y = A⁻¹` with `A = L Lᵀ`: `Ā = −Yᵀ Ȳ Yᵀ = −Y Ȳ Y` (`Y` is symmetric), so
/// `L̄ = (Ā + Āᵀ) L`.
pub fn inverse_d0<T, D>(
    l: &OMatrix<T, D, D>,
    y: &OMatrix<T, D, D>,
    d: OMatrix<T, D, D>,
) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    if d.is_empty() {
        return Cotangent::zero();
    }
    check_factor_shape("cholesky inverse", d.shape(), y.shape());
    let a = -(y * d * y);
    (&a + a.transpose()) * l
}

/// A cotangent of `L` that is `f(Lᵢᵢ)` on the diagonal and zero elsewhere.
fn diagonal_cotangent<T, D>(l: &OMatrix<T, D, D>, f: impl Fn(T) -> T) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    let (rows, cols) = l.shape_generic();
    let mut out = OMatrix::zeros_generic(rows, cols);
    for i in 0..l.nrows() {
        out[(i, i)] = f(l[(i, i)]);
    }
    out
}

#[track_caller]
fn check_factor_shape(op: &str, got: (usize, usize), want: (usize, usize)) {
    assert!(
        got == want,
        "backward of `{op}`: the cotangent is {}x{}, but {}x{} was expected",
        got.0,
        got.1,
        want.0,
        want.1
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{DMatrix, DVector};

    /// A symmetric positive definite matrix and a direction that changes its lower triangle
    /// only (the entries nalgebra reads).
    fn spd(n: usize) -> (DMatrix<f64>, DMatrix<f64>) {
        let b = DMatrix::from_fn(n, n, |i, j| ((i * n + j) as f64 * 0.7).sin());
        let a = &b * b.transpose() + DMatrix::identity(n, n) * n as f64;
        let t = DMatrix::from_fn(n, n, |i, j| {
            if i >= j {
                ((i + 2 * j) as f64).cos()
            } else {
                0.0
            }
        });
        (a, t)
    }

    /// `⟨Ā, t⟩` against the central difference of `⟨c, f(A + h t)⟩`: the dot-product test.
    fn check<F, G>(f: F, pullback: G, c: &DMatrix<f64>)
    where
        F: Fn(&DMatrix<f64>) -> DMatrix<f64>,
        G: Fn(&DMatrix<f64>) -> DMatrix<f64>,
    {
        let (a, t) = spd(4);
        let h = 1e-6;
        let jvp = (f(&(&a + &t * h)) - f(&(&a - &t * h))) / (2.0 * h);
        let want = c.dot(&jvp);
        let got = pullback(&a).dot(&t);
        assert!(
            (got - want).abs() < 1e-7 * (1.0 + want.abs()),
            "{got} against {want}"
        );
    }

    #[test]
    fn the_factor_passes_the_dot_product_test() {
        let c = DMatrix::from_fn(4, 4, |i, j| ((3 * i + j) as f64 * 0.3).cos());
        check(factor, |a| factor_d0(&factor(a), c.clone()), &c);
    }

    #[test]
    fn solves_pass_the_dot_product_test() {
        let b = DVector::from_fn(4, |i, _| i as f64 - 1.5);
        let c = DVector::from_fn(4, |i, _| (i as f64).sin() + 0.5);
        let c_matrix = DMatrix::from_column_slice(4, 1, c.as_slice());
        let f = |a: &DMatrix<f64>| {
            let x = solve(&factor(a), &b);
            DMatrix::from_column_slice(4, 1, x.as_slice())
        };
        check(
            f,
            |a| {
                let l = factor(a);
                let x = solve(&l, &b);
                factor_d0(&l, solve_d0(&l, &x, c.clone()))
            },
            &c_matrix,
        );
        // b̄ = A⁻¹ c
        let (a, _) = spd(4);
        let got = solve_d1(&factor(&a), c.clone());
        let want = a.clone().lu().solve(&c).expect("invertible");
        assert!((got - want).norm() < 1e-12);
    }

    #[test]
    fn determinants_and_inverses_pass_the_dot_product_test() {
        let one = DMatrix::from_element(1, 1, 1.0);
        let det = |a: &DMatrix<f64>| DMatrix::from_element(1, 1, determinant(&factor(a)));
        check(
            det,
            |a| {
                let l = factor(a);
                factor_d0(&l, determinant_d0(&l, &determinant(&l), 1.0))
            },
            &one,
        );
        let ln_det = |a: &DMatrix<f64>| DMatrix::from_element(1, 1, ln_determinant(&factor(a)));
        check(
            ln_det,
            |a| {
                let l = factor(a);
                factor_d0(&l, ln_determinant_d0(&l, 1.0))
            },
            &one,
        );
        let c = DMatrix::from_fn(4, 4, |i, j| ((i + 5 * j) as f64 * 0.2).sin());
        check(
            |a| inverse(&factor(a)),
            |a| {
                let l = factor(a);
                factor_d0(&l, inverse_d0(&l, &inverse(&l), c.clone()))
            },
            &c,
        );
        let (a, _) = spd(4);
        assert!((inverse(&factor(&a)) * &a - DMatrix::identity(4, 4)).norm() < 1e-12);
        assert!((determinant(&factor(&a)) - a.determinant()).abs() < 1e-9 * a.determinant());
    }

    #[test]
    #[should_panic(expected = "cholesky: the 2x2 matrix is not positive definite")]
    fn an_indefinite_matrix_panics_naming_the_operation() {
        factor(&DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 2.0, 1.0]));
    }
}
