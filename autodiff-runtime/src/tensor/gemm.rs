//! Strided matrix views and the one GEMM call behind every matrix product: `matrixmultiply`
//! reads its operands with arbitrary row and column strides, so a transpose is a view, never
//! a copy.

/// The element types `matrixmultiply` has kernels for. Public only as a sealed supertrait of
/// [`TensorElement`](super::TensorElement): nothing outside the crate can name or implement it.
pub trait Gemm: Sized {
    /// `C ← α A B + β C` for `A` of `m × k`, `B` of `k × n` and `C` of `m × n`, each given by
    /// a pointer and its row and column strides; when `β = 0`, `C` is written without being
    /// read.
    ///
    /// # Safety
    ///
    /// As `matrixmultiply::dgemm`: every element addressed through the strides must be in
    /// bounds, and `C` must not alias `A` or `B` or itself.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! gemm_impl {
    ($t:ty, $f:path) => {
        impl Gemm for $t {
            #[inline]
            unsafe fn gemm_raw(
                m: usize,
                k: usize,
                n: usize,
                alpha: Self,
                a: *const Self,
                rsa: isize,
                csa: isize,
                b: *const Self,
                rsb: isize,
                csb: isize,
                beta: Self,
                c: *mut Self,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: forwarded from the caller's contract.
                unsafe { $f(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

gemm_impl!(f32, matrixmultiply::sgemm);
gemm_impl!(f64, matrixmultiply::dgemm);

/// A read-only `rows × cols` matrix whose element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// The row-major `rows × cols` matrix at the start of `data`.
    pub(crate) fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose, as a view of the same storage.
    pub(crate) fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }

    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// A writable row-major `rows × cols` matrix at the start of `data`.
pub(crate) struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
}

impl<'a, T> MatMut<'a, T> {
    pub(crate) fn new(data: &'a mut [T], rows: usize, cols: usize) -> Self {
        Self { data, rows, cols }
    }
}

/// `C ← α A B + β C` through `matrixmultiply`; with `β = 0`, `C`'s old contents are ignored.
///
/// Panics (as a bug in the caller) if the dimensions disagree or a view overruns its storage.
pub(crate) fn gemm<T: super::TensorElement>(
    alpha: T,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    beta: T,
    c: MatMut<'_, T>,
) {
    assert!(
        a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
        "gemm: [{}, {}] x [{}, {}] into [{}, {}]",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    assert!(a.in_bounds() && b.in_bounds() && c.rows * c.cols <= c.data.len());
    // SAFETY: the views are in bounds (checked above), `c` is a unique borrow and so aliases
    // neither `a` nor `b`, and its row-major strides address distinct elements.
    unsafe {
        T::gemm_raw(
            a.rows,
            a.cols,
            b.cols,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.data.as_mut_ptr(),
            c.cols as isize,
            1,
        );
    }
}
