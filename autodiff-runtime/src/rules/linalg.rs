//! Rules for nalgebra matrices and vectors: `+ - *`, `transpose`, `dot`, norms, `cross`,
//! component-wise products, reductions, `determinant`, `try_inverse`, LU solves and
//! indexing.
//!
//! # Types
//!
//! Every rule is generic over the owned matrix type `OMatrix<T, R, C>`, so one call form
//! serves `DMatrix`, `DVector`, `RowDVector`, `SMatrix`, `SVector`, `Matrix3`, `Vector3`
//! and the other aliases, for `T` = `f32` or `f64` (any [`RealField`]). Operands the rule
//! only reads may also be views (`&Matrix<T, R, C, S>`), except the operands of products,
//! inverses and solves, which are owned because the rules hand their buffers to GEMM.
//!
//! # Zero cotangents
//!
//! Matrix cotangents implement [`Cotangent`]: the zero of a type with a dynamic dimension
//! is empty (`0×0`, length 0) and allocates nothing; the zero of a statically sized type
//! is its zero matrix. Every rule given an empty cotangent returns the zero of its result
//! without doing any work, and [`fit`] gives a parameter's gradient its final shape.
//!
//! # Products
//!
//! The macro cannot see types, so `a * b` always becomes [`mul_d0`]`(&a, &b, d)` and
//! [`mul_d1`]`(&a, &b, d)`, which dispatch through [`MulVjp`] on the operand pair:
//! matrix·matrix, matrix·vector, scalar·matrix, matrix·scalar and scalar·scalar. Matrix
//! products pull back through nalgebra's kernels writing into preallocated outputs, and
//! never copy a transpose: `aᵀ ȳ` is `gemm_tr` (or `ger` when `ȳ` is one row), `ȳ bᵀ` is
//! `gemm` with `bᵀ` a strided view of `b`'s buffer (or `ger` when `b` is a vector; with at
//! most five rows in `ȳ`, `gemm` writes `b ȳᵀ` into a transposed view of `ā`, so that
//! nalgebra's column-by-column fallback runs down `b`'s columns).
//!
//! A transposed view is only ever the *second* operand of `gemm`, and the first vector of
//! `ger` is contiguous: nalgebra's small-matrix path (up to 5 rows or columns, and every
//! non-`f32`/`f64` type) loops over the first operand's columns, and `ger` over its first
//! vector, with an `axpy` that runs out of bounds when their row stride is not 1
//! (dimforge/nalgebra#1616, in 0.33 to 0.35). The output may be a transposed view: `axpy`
//! steps through it by its stride.
//!
//! The arithmetic rules ([`add_d0`], [`sub_d1`], [`neg_d0`], ...) are generic over any
//! cotangent type, scalars included. Names repeat those of the scalar rules, so this module
//! is not re-exported from [`rules`](crate::rules).
//!
//! ```
//! use autodiff_runtime::nalgebra::{Matrix2, Vector2};
//! use autodiff_runtime::rules::linalg::{mul_d0, mul_d1};
//!
//! // y = A x, pulled back from ȳ: Ā = ȳ xᵀ, x̄ = Aᵀ ȳ.
//! let a = Matrix2::new(1.0, 2.0, 3.0, 4.0);
//! let x = Vector2::new(5.0, 6.0);
//! let d = Vector2::new(1.0, -1.0);
//! assert_eq!(mul_d0(&a, &x, d), d * x.transpose());
//! assert_eq!(mul_d1(&a, &x, d), a.transpose() * d);
//!
//! // y = s v: s̄ = ⟨ȳ, v⟩, v̄ = s ȳ.
//! assert_eq!(mul_d0(&2.0, &x, d), -1.0);
//! assert_eq!(mul_d1(&2.0, &x, d), 2.0 * d);
//! ```

use core::ops::Neg;

use nalgebra::allocator::Allocator;
use nalgebra::{
    ClosedAddAssign, DMatrix, DefaultAllocator, Dim, DimMin, Dyn, Matrix, MatrixView,
    MatrixViewMut, OMatrix, RealField, Scalar, Storage, LU,
};
use num_traits::Zero;

use crate::cotangent::{ArrayStorage, Cotangent, Save};

impl<T, R, C> Cotangent for OMatrix<T, R, C>
where
    T: Scalar + Zero + ClosedAddAssign,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    /// Empty (each dynamic dimension 0, no allocation) when a dimension is dynamic; the
    /// zero matrix when both are static.
    #[inline]
    fn zero() -> Self {
        let rows = R::from_usize(R::try_to_usize().unwrap_or(0));
        let cols = C::from_usize(C::try_to_usize().unwrap_or(0));
        Self::zeros_generic(rows, cols)
    }

    /// Adds `other` element-wise; an empty side stands for zero, so it is skipped or
    /// replaced.
    fn accumulate(&mut self, other: Self) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other;
            return;
        }
        check_shape(
            "accumulate",
            "the added cotangent",
            other.shape(),
            self.shape(),
        );
        *self += other;
    }
}

/// A matrix as (part of) a parameter set: its elements are the leaves, in nalgebra's
/// column-major order. An empty gradient (a zero cotangent of a dynamically sized matrix) is
/// skipped.
///
/// ```
/// use autodiff_runtime::nalgebra::DMatrix;
/// use autodiff_runtime::{Differentiable, Sgd};
///
/// let mut w = DMatrix::from_element(2, 2, 1.0);
/// let grad = DMatrix::from_element(2, 2, 0.5);
/// Sgd::new(0.1).step(&mut w, &grad);
/// assert_eq!(w, DMatrix::from_element(2, 2, 0.95));
/// ```
impl<T, R, C> crate::differentiable::Differentiable for OMatrix<T, R, C>
where
    T: Scalar + num_traits::Float,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    fn zero_like(&self) -> Self {
        Self::from_element_generic(self.shape_generic().0, self.shape_generic().1, T::zero())
    }

    fn accumulate_from(&mut self, other: &Self) {
        if other.is_empty() {
            return;
        }
        check_shape(
            "accumulate",
            "the added gradient",
            other.shape(),
            self.shape(),
        );
        for (a, b) in self.as_mut_slice().iter_mut().zip(other.as_slice()) {
            *a = *a + *b;
        }
    }

    fn visit<V: crate::differentiable::ParamVisitor>(&mut self, grad: &Self, visitor: &mut V) {
        if grad.is_empty() && !self.is_empty() {
            return;
        }
        assert_eq!(
            self.shape(),
            grad.shape(),
            "visit: parameter shape {:?} and gradient shape {:?} differ",
            self.shape(),
            grad.shape()
        );
        visitor.leaf(self.as_mut_slice(), grad.as_slice());
    }
}

impl<T, R, C, S> Save for Matrix<T, R, C, S>
where
    T: Scalar,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    type Owned = OMatrix<T, R, C>;

    fn save(&self) -> OMatrix<T, R, C> {
        self.clone_owned()
    }
}

impl<T, R, C> ArrayStorage for OMatrix<T, R, C>
where
    T: Scalar,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    /// The elements' bytes when a dimension is dynamic (heap storage), 0 otherwise.
    fn heap_bytes(&self) -> usize {
        if R::is::<Dyn>() || C::is::<Dyn>() {
            self.len() * core::mem::size_of::<T>()
        } else {
            0
        }
    }
}

/// Gives the gradient of a matrix parameter `x` its shape: an empty (zero) cotangent
/// becomes the zero matrix of `x`'s shape; any other is returned as is.
///
/// ```
/// use autodiff_runtime::nalgebra::DMatrix;
/// use autodiff_runtime::rules::linalg::fit;
///
/// let x = DMatrix::from_element(2, 3, 1.0);
/// assert_eq!(fit(DMatrix::zeros(0, 0), &x), DMatrix::zeros(2, 3));
/// ```
pub fn fit<T, R, C, S>(d: OMatrix<T, R, C>, x: &Matrix<T, R, C, S>) -> OMatrix<T, R, C>
where
    T: Scalar + Zero,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    if d.is_empty() && !x.is_empty() {
        zeros_like(x)
    } else {
        d
    }
}

/// `y = a + b`: `ā = ȳ`. Generic over any cotangent type, scalars included.
#[inline]
pub fn add_d0<M>(d: M) -> M {
    d
}

/// `y = a + b`: `b̄ = ȳ`.
#[inline]
pub fn add_d1<M>(d: M) -> M {
    d
}

/// `y = a - b`: `ā = ȳ`.
#[inline]
pub fn sub_d0<M>(d: M) -> M {
    d
}

/// `y = a - b`: `b̄ = -ȳ` (in place for owned matrices; empty stays empty).
#[inline]
pub fn sub_d1<M: Neg<Output = M>>(d: M) -> M {
    -d
}

/// `y = -x`: `x̄ = -ȳ`.
#[inline]
pub fn neg_d0<M: Neg<Output = M>>(d: M) -> M {
    -d
}

/// The pullback of `y = self * rhs` for one pair of operand types.
///
/// Law: for every tangent `(ȧ, ḃ)` and cotangent `ȳ`,
/// `⟨ȳ, ȧ b + a ḃ⟩ = ⟨mul_vjp_lhs(ȳ), ȧ⟩ + ⟨mul_vjp_rhs(ȳ), ḃ⟩` (Frobenius inner products),
/// and an empty `ȳ` gives zero cotangents.
///
/// Implemented for `OMatrix · OMatrix` (any dimensions, so matrix·vector, vector·row and
/// static·static too), and, for `f32` and `f64` concretely (a blanket over `T: RealField`
/// would overlap the matrix impls under coherence), `scalar · OMatrix`, `OMatrix · scalar`
/// and `scalar · scalar`.
pub trait MulVjp<Rhs>: Sized {
    /// The type of the product, and so of its cotangent.
    type Output;

    /// `ā` for `y = a b`.
    fn mul_vjp_lhs(&self, rhs: &Rhs, d: Self::Output) -> Self;

    /// `b̄` for `y = a b`.
    fn mul_vjp_rhs(&self, rhs: &Rhs, d: Self::Output) -> Rhs;
}

/// `y = a * b`: `ā = ȳ bᵀ` (matrix `b`, through `gemm`, as `(b ȳᵀ)ᵀ` when `ȳ` has few
/// rows, or `ger` when `b` is a vector),
/// `ā = ⟨ȳ, b⟩` (scalar `a`, matrix `b`), `ā = ȳ b` (matrix `a`, scalar `b`).
#[inline]
pub fn mul_d0<A: MulVjp<B>, B>(a: &A, b: &B, d: A::Output) -> A {
    a.mul_vjp_lhs(b, d)
}

/// `y = a * b`: `b̄ = aᵀ ȳ` (matrix `a`, through `gemm_tr`, or `ger` when `ȳ` is one row),
/// `b̄ = a ȳ` (scalar `a`),
/// `b̄ = ⟨ȳ, a⟩` (matrix `a`, scalar `b`).
#[inline]
pub fn mul_d1<A: MulVjp<B>, B>(a: &A, b: &B, d: A::Output) -> B {
    a.mul_vjp_rhs(b, d)
}

impl<T, R1, C1, R2, C2> MulVjp<OMatrix<T, R2, C2>> for OMatrix<T, R1, C1>
where
    T: RealField + Copy,
    R1: Dim,
    C1: Dim,
    R2: Dim,
    C2: Dim,
    DefaultAllocator: Allocator<R1, C1> + Allocator<R2, C2> + Allocator<R1, C2>,
{
    type Output = OMatrix<T, R1, C2>;

    /// `ā = ȳ bᵀ`.
    fn mul_vjp_lhs(&self, b: &OMatrix<T, R2, C2>, d: OMatrix<T, R1, C2>) -> Self {
        if d.is_empty() {
            return zero();
        }
        check_product(self.shape(), b.shape(), d.shape());
        let (rows, cols) = self.shape_generic();
        let mut out = OMatrix::zeros_generic(rows, cols);
        if !out.is_empty() {
            if b.ncols() == 1 {
                view_mut(&mut out).ger(
                    T::one(),
                    &view(&d).column(0),
                    &view(b).column(0),
                    T::zero(),
                );
            } else if d.nrows() <= FEW_ROWS {
                // as `āᵀ = b ȳᵀ`: `gemm` below its size threshold runs one `gemv` per column
                // of its result, and `ȳ bᵀ` would make each of them a sum over columns of
                // `ȳ` with as few elements as `ȳ` has rows; `b ȳᵀ` runs one per row of `ȳ`
                // over `b`'s whole columns (the same products, added in the same order)
                view_mut_t(&mut out).gemm(T::one(), &view(b), &view_t(&d), T::zero());
            } else {
                view_mut(&mut out).gemm(T::one(), &view(&d), &view_t(b), T::zero());
            }
        }
        out
    }

    /// `b̄ = aᵀ ȳ`.
    fn mul_vjp_rhs(&self, b: &OMatrix<T, R2, C2>, d: OMatrix<T, R1, C2>) -> OMatrix<T, R2, C2> {
        if d.is_empty() {
            return zero();
        }
        check_product(self.shape(), b.shape(), d.shape());
        let (rows, cols) = b.shape_generic();
        let mut out = OMatrix::zeros_generic(rows, cols);
        if !out.is_empty() {
            let mut o = view_mut(&mut out);
            if d.nrows() == 1 {
                // the outer product `aᵀ ȳ`, a run of `axpy`s down the columns of `b̄`, instead
                // of a one-element dot product per element of `b̄`; `a`'s one row is
                // contiguous, as `ger`'s first vector must be (see the module documentation)
                let (a, d) = (view(self), view(&d));
                o.ger(
                    T::one(),
                    &a.row(0).transpose(),
                    &d.row(0).transpose(),
                    T::zero(),
                );
            } else {
                o.gemm_tr(T::one(), &view(self), &view(&d), T::zero());
            }
        }
        out
    }
}

/// `MulVjp` for products with a scalar of type `$t` on either side, and between scalars.
macro_rules! scalar_mul_vjp {
    ($($t:ty),*) => {$(
        impl<R: Dim, C: Dim> MulVjp<OMatrix<$t, R, C>> for $t
        where
            DefaultAllocator: Allocator<R, C>,
        {
            type Output = OMatrix<$t, R, C>;

            /// `s̄ = ⟨ȳ, m⟩`.
            fn mul_vjp_lhs(&self, m: &OMatrix<$t, R, C>, d: OMatrix<$t, R, C>) -> $t {
                inner("mul", m, d)
            }

            /// `m̄ = s ȳ`.
            fn mul_vjp_rhs(&self, m: &OMatrix<$t, R, C>, d: OMatrix<$t, R, C>) -> OMatrix<$t, R, C> {
                scaled("mul", m.shape(), d, *self)
            }
        }

        impl<R: Dim, C: Dim> MulVjp<$t> for OMatrix<$t, R, C>
        where
            DefaultAllocator: Allocator<R, C>,
        {
            type Output = OMatrix<$t, R, C>;

            /// `m̄ = ȳ s`.
            fn mul_vjp_lhs(&self, s: &$t, d: OMatrix<$t, R, C>) -> Self {
                scaled("mul", self.shape(), d, *s)
            }

            /// `s̄ = ⟨ȳ, m⟩`.
            fn mul_vjp_rhs(&self, _s: &$t, d: OMatrix<$t, R, C>) -> $t {
                inner("mul", self, d)
            }
        }

        impl MulVjp<$t> for $t {
            type Output = $t;

            /// `ā = ȳ b`.
            #[inline]
            fn mul_vjp_lhs(&self, b: &$t, d: $t) -> $t {
                d * b
            }

            /// `b̄ = a ȳ`.
            #[inline]
            fn mul_vjp_rhs(&self, _b: &$t, d: $t) -> $t {
                self * d
            }
        }
    )*};
}

scalar_mul_vjp!(f32, f64);

/// `y = xᵀ`: `x̄ = ȳᵀ`.
#[inline]
pub fn transpose_d0<T, R, C>(d: OMatrix<T, R, C>) -> OMatrix<T, C, R>
where
    T: Scalar,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C> + Allocator<C, R>,
{
    d.transpose()
}

/// `y = a · b = Σ aᵢ bᵢ` (for matrices, the Frobenius product): `ā = ȳ b`.
pub fn dot_d0<T, R, C, S>(b: &Matrix<T, R, C, S>, d: T) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    b.map(|v| v * d)
}

/// `y = a · b`: `b̄ = ȳ a`.
pub fn dot_d1<T, R, C, S>(a: &Matrix<T, R, C, S>, d: T) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    a.map(|v| d * v)
}

/// `y = ‖x‖` (Euclidean, Frobenius for matrices): `x̄ = ȳ x / y`, and `x̄ = 0` at `x = 0`
/// (the zero subgradient; empty for dynamic types).
pub fn norm_d0<T, R, C, S>(x: &Matrix<T, R, C, S>, y: &T, d: T) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    if y.is_zero() {
        return zero();
    }
    let scale = d / *y;
    x.map(|v| v * scale)
}

/// `y = ‖x‖²`: `x̄ = 2 ȳ x`.
pub fn norm_squared_d0<T, R, C, S>(x: &Matrix<T, R, C, S>, d: T) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    let scale = d + d;
    x.map(|v| v * scale)
}

/// `y = u = x / ‖x‖`: `x̄ = (I − u uᵀ) ȳ / ‖x‖ = (ȳ − x (x · ȳ) / ‖x‖²) / ‖x‖`.
///
/// At `x = 0`, where `normalize` itself returns NaN, the cotangent is NaN too.
pub fn normalize_d0<T, R, C, S>(x: &Matrix<T, R, C, S>, d: OMatrix<T, R, C>) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    if d.is_empty() {
        return zero();
    }
    check_shape("normalize", "the cotangent", d.shape(), x.shape());
    let norm = x.norm();
    let along = x.dot(&d) / (norm * norm);
    let mut out = d;
    out.zip_apply(x, |o, xi| *o = (*o - xi * along) / norm);
    out
}

/// `y = a × b` (3-vectors): `ā = b × ȳ`, since `⟨ȳ, a × b⟩ = ⟨a, b × ȳ⟩`.
pub fn cross_d0<T, R, C, S>(b: &Matrix<T, R, C, S>, d: OMatrix<T, R, C>) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    if d.is_empty() {
        return zero();
    }
    check_shape("cross", "the cotangent", d.shape(), b.shape());
    cross3(b, &d)
}

/// `y = a × b`: `b̄ = ȳ × a`, since `⟨ȳ, a × b⟩ = ⟨b, ȳ × a⟩`.
pub fn cross_d1<T, R, C, S>(a: &Matrix<T, R, C, S>, d: OMatrix<T, R, C>) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    if d.is_empty() {
        return zero();
    }
    check_shape("cross", "the cotangent", d.shape(), a.shape());
    cross3(&d, a)
}

/// `y = a ∘ b` (element-wise): `ā = ȳ ∘ b`.
pub fn component_mul_d0<T, R, C, S>(b: &Matrix<T, R, C, S>, d: OMatrix<T, R, C>) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    elementwise("component_mul", d, b, |di, bi| di * bi)
}

/// `y = a ∘ b`: `b̄ = ȳ ∘ a`.
pub fn component_mul_d1<T, R, C, S>(a: &Matrix<T, R, C, S>, d: OMatrix<T, R, C>) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    elementwise("component_mul", d, a, |di, ai| di * ai)
}

/// `y = a ⊘ b` (element-wise): `ā = ȳ ⊘ b`.
pub fn component_div_d0<T, R, C, S>(b: &Matrix<T, R, C, S>, d: OMatrix<T, R, C>) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    elementwise("component_div", d, b, |di, bi| di / bi)
}

/// `y = a ⊘ b`: `b̄ = −ȳ ∘ a ⊘ b²`.
pub fn component_div_d1<T, R, C, S1, S2>(
    a: &Matrix<T, R, C, S1>,
    b: &Matrix<T, R, C, S2>,
    d: OMatrix<T, R, C>,
) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S1: Storage<T, R, C>,
    S2: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    if d.is_empty() {
        return zero();
    }
    check_shape("component_div", "the divisor", b.shape(), a.shape());
    let mut out = elementwise("component_div", d, a, |di, ai| -(di * ai));
    out.zip_apply(b, |o, bi| *o /= bi * bi);
    out
}

/// `y = Σ xᵢ`: `x̄ = ȳ 𝟙`.
pub fn sum_d0<T, R, C, S>(x: &Matrix<T, R, C, S>, d: T) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    let (rows, cols) = x.shape_generic();
    OMatrix::from_element_generic(rows, cols, d)
}

/// `y = Σ xᵢ / n`: `x̄ = (ȳ / n) 𝟙`.
pub fn mean_d0<T, R, C, S>(x: &Matrix<T, R, C, S>, d: T) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    let (rows, cols) = x.shape_generic();
    let n = T::from_usize(x.len().max(1)).expect("a length is a float");
    OMatrix::from_element_generic(rows, cols, d / n)
}

/// `y = tr X = Σ Xᵢᵢ`: `X̄ = ȳ I`.
pub fn trace_d0<T, D, S>(x: &Matrix<T, D, D, S>, d: T) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    S: Storage<T, D, D>,
    DefaultAllocator: Allocator<D, D>,
{
    check_square("trace", x.shape());
    let mut out = zeros_like(x);
    out.fill_diagonal(d);
    out
}

/// `y = det X`: `X̄ = ȳ adj(X)ᵀ`, which is `ȳ det(X) X⁻ᵀ` for invertible `X`.
///
/// The adjugate keeps the cotangent finite and exact at singular matrices (where `X⁻ᵀ`
/// does not exist): it is nonzero at rank `n − 1` and zero at lower rank. Sizes up to 3 use
/// the closed-form cofactors; larger matrices use the SVD `X = U Σ Vᵀ`, where
/// `adj(X)ᵀ = det(U) det(V) U diag(∏_{j≠i} σⱼ) Vᵀ` (no division by a singular value).
pub fn determinant_d0<T, D, S>(x: &Matrix<T, D, D, S>, d: T) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    S: Storage<T, D, D>,
    DefaultAllocator: Allocator<D, D>,
{
    check_square("determinant", x.shape());
    let mut out = zeros_like(x);
    match x.nrows() {
        0 => {}
        1 => out[0] = T::one(),
        2 => {
            out[(0, 0)] = x[(1, 1)];
            out[(0, 1)] = -x[(1, 0)];
            out[(1, 0)] = -x[(0, 1)];
            out[(1, 1)] = x[(0, 0)];
        }
        3 => {
            // Row i of the cofactor matrix is row (i+1) × row (i+2).
            for i in 0..3 {
                let (a, b) = ((i + 1) % 3, (i + 2) % 3);
                out[(i, 0)] = x[(a, 1)] * x[(b, 2)] - x[(a, 2)] * x[(b, 1)];
                out[(i, 1)] = x[(a, 2)] * x[(b, 0)] - x[(a, 0)] * x[(b, 2)];
                out[(i, 2)] = x[(a, 0)] * x[(b, 1)] - x[(a, 1)] * x[(b, 0)];
            }
        }
        n => {
            let cofactors = cofactors_svd(DMatrix::from_iterator(n, n, x.iter().copied()));
            for (o, c) in out.iter_mut().zip(cofactors.iter()) {
                *o = *c;
            }
        }
    }
    out *= d;
    out
}

/// `Y = X⁻¹` (`try_inverse`, unwrapped): `X̄ = −Yᵀ Ȳ Yᵀ`, through `gemm_tr` and `gemm`,
/// reading `Y` transposed in place.
pub fn try_inverse_d0<T, D>(y: &OMatrix<T, D, D>, d: OMatrix<T, D, D>) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    DefaultAllocator: Allocator<D, D>,
{
    if d.is_empty() {
        return zero();
    }
    check_square("try_inverse", y.shape());
    check_shape("try_inverse", "the cotangent", d.shape(), y.shape());
    let mut left = zeros_like(y);
    view_mut(&mut left).gemm_tr(-T::one(), &view(y), &view(&d), T::zero());
    let mut out = d;
    view_mut(&mut out).gemm(T::one(), &view(&left), &view_t(y), T::zero());
    out
}

/// A square matrix `A`, or a factorisation of it, that solves the transposed system
/// `Aᵀ z = ȳ` of the solve rules.
///
/// Passing the [`LU`] the forward pass computed (`a.lu()`) reuses that factorisation: the
/// rules then do two triangular solves and no factorisation. Passing the matrix itself
/// factorises `Aᵀ` once per call.
pub trait TransposeSolve<T: RealField, D: Dim> {
    /// Overwrites `z` with `A⁻ᵀ z`; returns `false` (leaving `z` unspecified) when `A` is
    /// singular.
    fn solve_transpose_mut<C: Dim>(&self, z: &mut OMatrix<T, D, C>) -> bool
    where
        DefaultAllocator: Allocator<D, C>;
}

impl<T, D> TransposeSolve<T, D> for OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: DimMin<D, Output = D>,
    DefaultAllocator: Allocator<D, D> + Allocator<D>,
{
    fn solve_transpose_mut<C: Dim>(&self, z: &mut OMatrix<T, D, C>) -> bool
    where
        DefaultAllocator: Allocator<D, C>,
    {
        check_square("solve", self.shape());
        check_rows("solve", self.nrows(), z.nrows());
        self.transpose().lu().solve_mut(z)
    }
}

impl<T, D> TransposeSolve<T, D> for LU<T, D, D>
where
    T: RealField + Copy,
    D: DimMin<D, Output = D>,
    DefaultAllocator: Allocator<D, D> + Allocator<D>,
{
    /// `P A = L U`, so `Aᵀ = Uᵀ Lᵀ P`: solve `Uᵀ w = z`, then `Lᵀ v = w`, then `z = Pᵀ v`.
    fn solve_transpose_mut<C: Dim>(&self, z: &mut OMatrix<T, D, C>) -> bool
    where
        DefaultAllocator: Allocator<D, C>,
    {
        let u = self.u();
        check_square("solve", u.shape());
        check_rows("solve", u.nrows(), z.nrows());
        if !u.tr_solve_upper_triangular_mut(z) {
            return false;
        }
        // L has a unit diagonal, so this solve cannot fail.
        self.l().tr_solve_lower_triangular_mut(z);
        self.p().inv_permute_rows(z);
        true
    }
}

/// `x = A⁻¹ b` (through LU): `Ā = −(A⁻ᵀ x̄) xᵀ = −b̄ xᵀ`, with `ger` for a vector `x` and
/// `gemm` (reading `x` transposed in place) for several right-hand sides.
///
/// `a` is the matrix or, to reuse the forward factorisation, its [`LU`]. If `A` is singular
/// (the forward solve returned `None`), the cotangent is NaN.
pub fn solve_d0<T, D, C, A>(a: &A, x: &OMatrix<T, D, C>, d: OMatrix<T, D, C>) -> OMatrix<T, D, D>
where
    T: RealField + Copy,
    D: Dim,
    C: Dim,
    A: TransposeSolve<T, D>,
    DefaultAllocator: Allocator<D, D> + Allocator<D, C>,
{
    if d.is_empty() {
        return zero();
    }
    check_shape("solve", "the cotangent", d.shape(), x.shape());
    let z = solve_d1(a, d);
    let rows = x.shape_generic().0;
    let mut out = OMatrix::zeros_generic(rows, rows);
    if !out.is_empty() {
        let mut o = view_mut(&mut out);
        if x.ncols() == 1 {
            o.ger(
                -T::one(),
                &view(&z).column(0),
                &view(x).column(0),
                T::zero(),
            );
        } else {
            o.gemm(-T::one(), &view(&z), &view_t(x), T::zero());
        }
    }
    out
}

/// `x = A⁻¹ b` (through LU): `b̄ = A⁻ᵀ x̄`.
///
/// `a` is the matrix or its [`LU`]. If `A` is singular, the cotangent is NaN.
pub fn solve_d1<T, D, C, A>(a: &A, d: OMatrix<T, D, C>) -> OMatrix<T, D, C>
where
    T: RealField + Copy,
    D: Dim,
    C: Dim,
    A: TransposeSolve<T, D>,
    DefaultAllocator: Allocator<D, C>,
{
    if d.is_empty() {
        return zero();
    }
    let mut z = d;
    if !a.solve_transpose_mut(&mut z) {
        z.fill(T::zero() / T::zero());
    }
    z
}

/// The index of one element: `usize` as in `v[i]` (column-major for matrices, as in
/// nalgebra) or `(row, column)` as in `m[(i, j)]`.
pub trait ElementIndex {
    /// The column-major offset of the element in a matrix of shape `(rows, columns)`;
    /// panics when out of bounds.
    fn offset(&self, shape: (usize, usize)) -> usize;
}

impl ElementIndex for usize {
    #[track_caller]
    fn offset(&self, (rows, cols): (usize, usize)) -> usize {
        assert!(
            *self < rows * cols,
            "backward of indexing: index {self} is out of bounds for a {rows}x{cols} matrix"
        );
        *self
    }
}

impl ElementIndex for (usize, usize) {
    #[track_caller]
    fn offset(&self, (rows, cols): (usize, usize)) -> usize {
        let (i, j) = *self;
        assert!(
            i < rows && j < cols,
            "backward of indexing: index ({i}, {j}) is out of bounds for a {rows}x{cols} matrix"
        );
        i + j * rows
    }
}

/// `y = m[idx]`: `m̄ = ȳ eᵢₓ`, the zero matrix of `m`'s shape with `ȳ` at `idx` (the
/// primal gives the shape, since a cotangent may be the empty zero).
///
/// In a loop, [`index_add`] scatters into one cotangent instead of allocating one per
/// element.
///
/// ```
/// use autodiff_runtime::nalgebra::{Matrix2, Vector3};
/// use autodiff_runtime::rules::linalg::index_d0;
///
/// let m = Matrix2::new(1.0, 2.0, 3.0, 4.0);
/// assert_eq!(index_d0(&m, &(0, 1), 5.0), Matrix2::new(0.0, 5.0, 0.0, 0.0));
/// assert_eq!(index_d0(&Vector3::zeros(), &2, 5.0), Vector3::new(0.0, 0.0, 5.0));
/// ```
#[track_caller]
pub fn index_d0<T, R, C, S, I>(m: &Matrix<T, R, C, S>, idx: &I, d: T) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    I: ElementIndex,
    DefaultAllocator: Allocator<R, C>,
{
    let mut out = zeros_like(m);
    out[idx.offset(m.shape())] = d;
    out
}

/// `y = Matrix::new(a₀, a₁, …)` (`Vector3::new(x, y, z)`, `Matrix2::new(m11, m12, m21, m22)`):
/// `āₖ = ȳ` at element `k` in row-major order, the order in which `new` takes them.
///
/// ```
/// use autodiff_runtime::nalgebra::{Matrix2x3, Vector3};
/// use autodiff_runtime::rules::linalg::new_d;
///
/// let d = Vector3::new(1.0, 2.0, 3.0);
/// assert_eq!(new_d(&d, 2), 3.0);
/// // the second argument of `Matrix2x3::new` is the element at row 0, column 1
/// let d = Matrix2x3::new(1.0, 2.0, 3.0, 4.0, 5.0, 6.0);
/// assert_eq!(new_d(&d, 1), 2.0);
/// assert_eq!(new_d(&d, 3), 4.0);
/// ```
#[inline]
pub fn new_d<T, R, C, S>(d: &Matrix<T, R, C, S>, k: usize) -> T
where
    T: Scalar + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
{
    let columns = d.ncols();
    d[(k / columns, k % columns)]
}

/// `M = DMatrix::from_column_slice(r, c, s)` (also `from_vec`, and the fixed-size and vector
/// forms): `M[(i, j)] = s[i + j r]`, so `s̄[i + j r] = M̄[(i, j)]`, the cotangent's elements in
/// nalgebra's own column-major order. An empty cotangent (zero) gives an empty `Vec` (zero).
///
/// ```
/// use autodiff_runtime::nalgebra::Matrix2x3;
/// use autodiff_runtime::rules::linalg::from_column_slice_d;
///
/// let d = Matrix2x3::new(1.0, 2.0, 3.0, 4.0, 5.0, 6.0);
/// assert_eq!(from_column_slice_d(&d), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
/// ```
pub fn from_column_slice_d<T, R, C, S>(d: &Matrix<T, R, C, S>) -> Vec<T>
where
    T: Scalar + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
{
    d.iter().copied().collect()
}

/// `M = DMatrix::from_row_slice(r, c, s)`: `M[(i, j)] = s[i c + j]`, so `s̄[i c + j] =
/// M̄[(i, j)]`, the cotangent read row by row. An empty cotangent (zero) gives an empty `Vec`.
///
/// ```
/// use autodiff_runtime::nalgebra::Matrix2x3;
/// use autodiff_runtime::rules::linalg::from_row_slice_d;
///
/// let d = Matrix2x3::new(1.0, 2.0, 3.0, 4.0, 5.0, 6.0);
/// assert_eq!(from_row_slice_d(&d), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
/// ```
pub fn from_row_slice_d<T, R, C, S>(d: &Matrix<T, R, C, S>) -> Vec<T>
where
    T: Scalar + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
{
    let (rows, columns) = d.shape();
    let mut out = Vec::with_capacity(rows * columns);
    for i in 0..rows {
        out.extend((0..columns).map(|j| d[(i, j)]));
    }
    out
}

/// `y = m[idx]`, accumulated: `m̄[idx] += ȳ`, first giving an empty `acc` the shape of `m`.
#[track_caller]
pub fn index_add<T, R, C, S, I>(acc: &mut OMatrix<T, R, C>, m: &Matrix<T, R, C, S>, idx: &I, d: T)
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    I: ElementIndex,
    DefaultAllocator: Allocator<R, C>,
{
    if acc.is_empty() && !m.is_empty() {
        *acc = zeros_like(m);
    }
    check_shape(
        "indexing",
        "the accumulated cotangent",
        acc.shape(),
        m.shape(),
    );
    let k = idx.offset(m.shape());
    acc[k] += d;
}

/// `m[idx] = v`: `v̄ = m̄'[idx]`, and the old element gets nothing: it is taken out of the
/// cotangent and zeroed there. An empty cotangent (zero) gives zero.
///
/// ```
/// use autodiff_runtime::nalgebra::DMatrix;
/// use autodiff_runtime::rules::linalg::index_take;
///
/// let mut d = DMatrix::from_row_slice(2, 2, &[1.0, 2.0, 3.0, 4.0]);
/// assert_eq!(index_take(&mut d, &(0, 1)), 2.0);
/// assert_eq!(d, DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 3.0, 4.0]));
/// ```
#[track_caller]
pub fn index_take<T, R, C, I>(d: &mut OMatrix<T, R, C>, idx: &I) -> T
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    I: ElementIndex,
    DefaultAllocator: Allocator<R, C>,
{
    if d.is_empty() {
        return T::zero();
    }
    let k = idx.offset(d.shape());
    core::mem::replace(&mut d[k], T::zero())
}

/// `y = m.column(j)` (owned): `m̄[:, j] += ȳ`, first giving an empty `acc` the shape of `m`.
///
/// ```
/// use autodiff_runtime::nalgebra::{DMatrix, DVector};
/// use autodiff_runtime::rules::linalg::column_add;
///
/// let m = DMatrix::from_element(2, 3, 1.0);
/// let mut acc = DMatrix::zeros(0, 0);
/// column_add(&mut acc, &m, &2, DVector::from_vec(vec![5.0, 6.0]));
/// assert_eq!(acc, DMatrix::from_row_slice(2, 3, &[0.0, 0.0, 5.0, 0.0, 0.0, 6.0]));
/// ```
#[track_caller]
pub fn column_add<T, R, C, S>(
    acc: &mut OMatrix<T, R, C>,
    m: &Matrix<T, R, C, S>,
    j: &usize,
    d: OMatrix<T, R, nalgebra::U1>,
) where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C> + Allocator<R, nalgebra::U1>,
{
    if d.is_empty() {
        return;
    }
    part_accumulator(acc, m, "column");
    check_shape("column", "the cotangent", d.shape(), (m.nrows(), 1));
    let mut column = acc.column_mut(*j);
    column += d;
}

/// `y = m.row(i)` (owned): `m̄[i, :] += ȳ`, first giving an empty `acc` the shape of `m`.
#[track_caller]
pub fn row_add<T, R, C, S>(
    acc: &mut OMatrix<T, R, C>,
    m: &Matrix<T, R, C, S>,
    i: &usize,
    d: OMatrix<T, nalgebra::U1, C>,
) where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C> + Allocator<nalgebra::U1, C>,
{
    if d.is_empty() {
        return;
    }
    part_accumulator(acc, m, "row");
    check_shape("row", "the cotangent", d.shape(), (1, m.ncols()));
    let mut row = acc.row_mut(*i);
    row += d;
}

/// `y = m.diagonal()`: `m̄[k, k] += ȳ[k]`, first giving an empty `acc` the shape of `m`.
#[track_caller]
pub fn diagonal_add<T, R, C, S>(
    acc: &mut OMatrix<T, R, C>,
    m: &Matrix<T, R, C, S>,
    d: OMatrix<T, R, nalgebra::U1>,
) where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C> + Allocator<R, nalgebra::U1>,
{
    if d.is_empty() {
        return;
    }
    part_accumulator(acc, m, "diagonal");
    let n = m.nrows().min(m.ncols());
    check_shape("diagonal", "the cotangent", d.shape(), (n, 1));
    for k in 0..n {
        acc[(k, k)] += d[k];
    }
}

/// `y = m.rows(i, n)` (owned): `m̄[i..i + n, :] += ȳ`, first giving an empty `acc` the shape of
/// `m`.
#[track_caller]
pub fn rows_add<T, R, C, S>(
    acc: &mut OMatrix<T, R, C>,
    m: &Matrix<T, R, C, S>,
    i: &usize,
    d: OMatrix<T, Dyn, C>,
) where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C> + Allocator<Dyn, C>,
{
    if d.is_empty() {
        return;
    }
    part_accumulator(acc, m, "rows");
    let mut rows = acc.rows_mut(*i, d.nrows());
    rows += d;
}

/// `y = m.columns(j, n)` (owned): `m̄[:, j..j + n] += ȳ`, first giving an empty `acc` the
/// shape of `m`.
#[track_caller]
pub fn columns_add<T, R, C, S>(
    acc: &mut OMatrix<T, R, C>,
    m: &Matrix<T, R, C, S>,
    j: &usize,
    d: OMatrix<T, R, Dyn>,
) where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C> + Allocator<R, Dyn>,
{
    if d.is_empty() {
        return;
    }
    part_accumulator(acc, m, "columns");
    let mut columns = acc.columns_mut(*j, d.ncols());
    columns += d;
}

/// Gives an empty accumulated cotangent the shape of `m` and checks a full one's.
#[track_caller]
fn part_accumulator<T, R, C, S>(acc: &mut OMatrix<T, R, C>, m: &Matrix<T, R, C, S>, op: &str)
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    if acc.is_empty() && !m.is_empty() {
        *acc = zeros_like(m);
    }
    check_shape(op, "the accumulated cotangent", acc.shape(), m.shape());
}

/// The zero cotangent of type `M` (empty for dynamic types).
#[inline]
fn zero<M: Cotangent>() -> M {
    M::zero()
}

/// The zero matrix of `x`'s shape.
fn zeros_like<T, R, C, S>(x: &Matrix<T, R, C, S>) -> OMatrix<T, R, C>
where
    T: Scalar + Zero,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    let (rows, cols) = x.shape_generic();
    OMatrix::zeros_generic(rows, cols)
}

/// A matrix with dynamic shape and strides, so that one kernel call serves every operand
/// type and a transpose is a view of the same buffer. A transposed view must not be the
/// first operand of `gemm` (see the module documentation).
type View<'a, T> = MatrixView<'a, T, Dyn, Dyn, Dyn, Dyn>;
type ViewMut<'a, T> = MatrixViewMut<'a, T, Dyn, Dyn, Dyn, Dyn>;

fn view<T, R, C>(m: &OMatrix<T, R, C>) -> View<'_, T>
where
    T: Scalar,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    let (rows, cols) = m.shape();
    View::from_slice_with_strides_generic(m.as_slice(), Dyn(rows), Dyn(cols), Dyn(1), Dyn(rows))
}

/// `mᵀ` as a view: the same column-major buffer with the strides swapped.
fn view_t<T, R, C>(m: &OMatrix<T, R, C>) -> View<'_, T>
where
    T: Scalar,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    let (rows, cols) = m.shape();
    View::from_slice_with_strides_generic(m.as_slice(), Dyn(cols), Dyn(rows), Dyn(rows), Dyn(1))
}

/// The row count of a product's cotangent up to which its adjoint products are arranged
/// around `gemm`'s column-by-column fallback (nalgebra hands products with a dimension of 5
/// or less to it, and larger ones to `matrixmultiply`).
const FEW_ROWS: usize = 5;

/// `mᵀ` as a mutable view of a non-empty matrix.
fn view_mut_t<T, R, C>(m: &mut OMatrix<T, R, C>) -> ViewMut<'_, T>
where
    T: Scalar,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    strided_view_mut(m, true)
}

/// A mutable view of a non-empty matrix.
fn view_mut<T, R, C>(m: &mut OMatrix<T, R, C>) -> ViewMut<'_, T>
where
    T: Scalar,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    strided_view_mut(m, false)
}

/// `m`, or `mᵀ` with the strides swapped, as a mutable view of its column-major buffer.
fn strided_view_mut<T, R, C>(m: &mut OMatrix<T, R, C>, transposed: bool) -> ViewMut<'_, T>
where
    T: Scalar,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    let (rows, cols) = m.shape();
    let (shape, strides) = if transposed {
        ((cols, rows), (rows, 1))
    } else {
        ((rows, cols), (1, rows))
    };
    ViewMut::from_slice_with_strides_generic(
        m.as_mut_slice(),
        Dyn(shape.0),
        Dyn(shape.1),
        Dyn(strides.0),
        Dyn(strides.1),
    )
}

/// `⟨m, d⟩`, zero for an empty `d`.
fn inner<T, R, C>(op: &str, m: &OMatrix<T, R, C>, d: OMatrix<T, R, C>) -> T
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    if d.is_empty() {
        return T::zero();
    }
    check_shape(op, "the cotangent", d.shape(), m.shape());
    m.dot(&d)
}

/// `s d` in place, empty for an empty `d`.
fn scaled<T, R, C>(
    op: &str,
    shape: (usize, usize),
    mut d: OMatrix<T, R, C>,
    s: T,
) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    if d.is_empty() {
        return zero();
    }
    check_shape(op, "the cotangent", d.shape(), shape);
    d *= s;
    d
}

/// `f(dᵢ, xᵢ)` element-wise into `d`'s buffer, empty for an empty `d`.
fn elementwise<T, R, C, S>(
    op: &str,
    d: OMatrix<T, R, C>,
    x: &Matrix<T, R, C, S>,
    f: impl Fn(T, T) -> T,
) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    if d.is_empty() {
        return zero();
    }
    check_shape(op, "the cotangent", d.shape(), x.shape());
    let mut out = d;
    out.zip_apply(x, |o, xi| *o = f(*o, xi));
    out
}

/// `u × v` for 3-element matrices, in the shape of `v`.
#[track_caller]
fn cross3<T, R, C, S1, S2>(u: &Matrix<T, R, C, S1>, v: &Matrix<T, R, C, S2>) -> OMatrix<T, R, C>
where
    T: RealField + Copy,
    R: Dim,
    C: Dim,
    S1: Storage<T, R, C>,
    S2: Storage<T, R, C>,
    DefaultAllocator: Allocator<R, C>,
{
    assert!(
        u.len() == 3 && v.len() == 3,
        "backward of `cross`: the operands must have 3 elements, not {} and {}",
        u.len(),
        v.len()
    );
    let mut out = zeros_like(v);
    out[0] = u[1] * v[2] - u[2] * v[1];
    out[1] = u[2] * v[0] - u[0] * v[2];
    out[2] = u[0] * v[1] - u[1] * v[0];
    out
}

/// The transposed adjugate `adj(X)ᵀ` (the cofactor matrix) through the SVD.
fn cofactors_svd<T: RealField + Copy>(x: DMatrix<T>) -> DMatrix<T> {
    let n = x.nrows();
    let svd = x.svd(true, true);
    let (u, v_t) = match (svd.u, svd.v_t) {
        (Some(u), Some(v_t)) => (u, v_t),
        _ => unreachable!("the SVD was asked for both U and Vᵀ"),
    };
    let sigma = svd.singular_values;
    let sign = if u.determinant() * v_t.determinant() < T::zero() {
        -T::one()
    } else {
        T::one()
    };
    // others[i] = ∏_{j≠i} σⱼ, from prefix and suffix products.
    let mut others = vec![sign; n];
    let mut acc = T::one();
    for (o, s) in others.iter_mut().zip(sigma.iter()) {
        *o *= acc;
        acc *= *s;
    }
    acc = T::one();
    for (o, s) in others.iter_mut().zip(sigma.iter()).rev() {
        *o *= acc;
        acc *= *s;
    }
    let mut scaled_u = u;
    for (mut column, o) in scaled_u.column_iter_mut().zip(others) {
        column *= o;
    }
    let mut out = DMatrix::zeros(n, n);
    out.gemm(T::one(), &scaled_u, &v_t, T::zero());
    out
}

/// `y = m.map(f)`, element-wise: `m̄ₖ = f′(mₖ) ȳₖ`. The forward pass kept the pullback of
/// the scalar function `f` at every element, in nalgebra's (column-major) element order;
/// `backward` applies one of them to one element of ȳ. ȳ's buffer is reused for m̄.
///
/// ```
/// use autodiff_runtime::nalgebra::DVector;
/// use autodiff_runtime::rules::linalg::map_elementwise_d0;
///
/// // y = tanh(m): the pullback of each element keeps tanh(mₖ), and m̄ₖ = (1 − yₖ²) ȳₖ.
/// let m = DVector::from_vec(vec![0.5_f64, -1.0]);
/// let kept: Vec<f64> = m.iter().map(|v| v.tanh()).collect();
/// let d = DVector::from_vec(vec![1.0, 2.0]);
/// let d_m = map_elementwise_d0(&kept, d, |y, d| (1.0 - y * y) * d);
/// assert!((d_m[1] - 2.0 * (1.0 - 1f64.tanh().powi(2))).abs() < 1e-15);
/// ```
#[track_caller]
pub fn map_elementwise_d0<T, R, C, P>(
    pullbacks: &[P],
    mut d: OMatrix<T, R, C>,
    mut backward: impl FnMut(&P, T) -> T,
) -> OMatrix<T, R, C>
where
    T: Scalar + Copy,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    if !map_cotangent_fits(&d, pullbacks.len(), pullbacks.len()) {
        return d;
    }
    // over the contiguous buffer: nalgebra's element iterator steps through strides
    for (dk, pullback) in d.as_mut_slice().iter_mut().zip(pullbacks) {
        *dk = backward(pullback, *dk);
    }
    d
}

/// [`map_elementwise_d0`] for a map whose scalar pullback is rebuilt from two values per
/// element (the element `mₖ` and the result `yₖ`, read from `m` and `y` in the same order)
/// instead of kept: `m̄ₖ = backward(mₖ, yₖ, ȳₖ)`.
///
/// ```
/// use autodiff_runtime::nalgebra::DVector;
/// use autodiff_runtime::rules::linalg::map_elementwise2_d0;
///
/// // y = m exp(m): m̄ₖ = (1 + mₖ) exp(mₖ) ȳₖ = (yₖ + exp(mₖ)) ȳₖ
/// let m = DVector::from_vec(vec![0.5_f64, -1.0]);
/// let y = m.map(|v| v * v.exp());
/// let d = DVector::from_vec(vec![1.0, 2.0]);
/// let d_m = map_elementwise2_d0(m.as_slice(), y.as_slice(), d, |&m, &y, d| (y + m.exp()) * d);
/// assert!((d_m[1] - 2.0 * 0.0).abs() < 1e-15); // (1 - 1) e⁻¹
/// ```
#[track_caller]
pub fn map_elementwise2_d0<T, R, C, P>(
    elements: &[P],
    results: &[P],
    d: OMatrix<T, R, C>,
    backward: impl Fn(&P, &P, T) -> T,
) -> OMatrix<T, R, C>
where
    T: Scalar + Copy,
    R: Dim,
    C: Dim,
    DefaultAllocator: Allocator<R, C>,
{
    let mut d = d;
    if !map_cotangent_fits(&d, elements.len(), results.len()) {
        return d;
    }
    for ((dk, element), result) in d.as_mut_slice().iter_mut().zip(elements).zip(results) {
        *dk = backward(element, result, *dk);
    }
    d
}

/// Whether the backward pass of a `map` over `elements` elements with `results` results has
/// work to do with cotangent `d`: not when `d` is the empty zero cotangent (and `m̄` is zero
/// too); otherwise `d` must have one element per element of the map, or this panics.
#[track_caller]
fn map_cotangent_fits<T: Scalar, R: Dim, C: Dim>(
    d: &OMatrix<T, R, C>,
    elements: usize,
    results: usize,
) -> bool
where
    DefaultAllocator: Allocator<R, C>,
{
    if d.is_empty() && elements > 0 {
        return false;
    }
    assert!(
        d.len() == elements && d.len() == results,
        "backward of `map`: the output cotangent is {}x{} ({} elements), but the map has {} elements (and {} results)",
        d.nrows(),
        d.ncols(),
        d.len(),
        elements,
        results
    );
    true
}

#[track_caller]
fn check_shape(op: &str, what: &str, got: (usize, usize), want: (usize, usize)) {
    assert!(
        got == want,
        "backward of `{op}`: {what} is {}x{}, but {}x{} was expected",
        got.0,
        got.1,
        want.0,
        want.1
    );
}

#[track_caller]
fn check_square(op: &str, shape: (usize, usize)) {
    assert!(
        shape.0 == shape.1,
        "backward of `{op}`: the matrix must be square, not {}x{}",
        shape.0,
        shape.1
    );
}

#[track_caller]
fn check_rows(op: &str, rows: usize, rhs_rows: usize) {
    assert!(
        rows == rhs_rows,
        "backward of `{op}`: the matrix has {rows} rows but the right-hand side has {rhs_rows}"
    );
}

#[track_caller]
fn check_product(a: (usize, usize), b: (usize, usize), d: (usize, usize)) {
    assert!(
        a.1 == b.0,
        "backward of `mul`: cannot multiply a {}x{} matrix by a {}x{} matrix",
        a.0,
        a.1,
        b.0,
        b.1
    );
    check_shape("mul", "the cotangent", d, (a.0, b.1));
}
