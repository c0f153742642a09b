//! Rules for arrays: reading and writing elements, `push`, `swap`, fills and literals.
//!
//! Array cotangents are `Vec<T>` (for slices and vectors) or `[T; N]`. An empty `Vec`
//! stands for zero and grows when an element is touched, so a cotangent never has to be
//! allocated at its primal's length before it is needed; [`fit`] gives a parameter's
//! gradient its final length.

use num_traits::Float;

/// Element access on an array cotangent, for `Vec<T>` (growing on demand) and `[T; N]`.
pub trait ArrayCotangent<T> {
    /// Adds `c` to element `i`.
    fn add_at(&mut self, i: usize, c: T);
    /// Returns element `i` and sets it to zero.
    fn take_at(&mut self, i: usize) -> T;
    /// Swaps elements `i` and `j`.
    fn swap_at(&mut self, i: usize, j: usize);
    /// Element `i` (zero where a vector has not grown that far).
    fn get_at(&self, i: usize) -> T;
    /// The sum of all elements.
    fn total(&self) -> T;
    /// Adds `c[k]` to element `start + k` for every `k`.
    fn add_slice_at(&mut self, start: usize, c: &[T])
    where
        T: Copy,
    {
        for (k, &value) in c.iter().enumerate() {
            self.add_at(start + k, value);
        }
    }
}

/// The first contribution past the end of a lazily grown cotangent: rare (once per vector in
/// a backward pass), so kept out of the inlined hot path. It takes and returns the vector by
/// value: a `&mut Vec` passed to a call that is not inlined would keep the caller's vector
/// (its pointer and length) in memory rather than in registers throughout the caller's loops.
#[cold]
#[inline(never)]
fn grown_with<T: Float>(mut d: Vec<T>, i: usize, c: T) -> Vec<T> {
    d.resize(i + 1, T::zero());
    d[i] = c;
    d
}

impl<T: Float> ArrayCotangent<T> for Vec<T> {
    /// Grows the vector once (when a lazily grown cotangent stops short), then adds
    /// element-wise over the range.
    #[inline]
    fn add_slice_at(&mut self, start: usize, c: &[T])
    where
        T: Copy,
    {
        let end = start + c.len();
        if self.len() < end {
            self.resize(end, T::zero());
        }
        for (slot, &value) in self[start..end].iter_mut().zip(c) {
            *slot = *slot + value;
        }
    }

    #[inline]
    fn add_at(&mut self, i: usize, c: T) {
        match self.get_mut(i) {
            Some(slot) => *slot = *slot + c,
            None => *self = grown_with(core::mem::take(self), i, c),
        }
    }

    #[inline]
    fn take_at(&mut self, i: usize) -> T {
        match self.get_mut(i) {
            Some(slot) => core::mem::replace(slot, T::zero()),
            None => T::zero(),
        }
    }

    #[inline]
    fn swap_at(&mut self, i: usize, j: usize) {
        let needed = i.max(j) + 1;
        if self.is_empty() {
            return;
        }
        if needed > self.len() {
            self.resize(needed, T::zero());
        }
        self.swap(i, j);
    }

    #[inline]
    fn get_at(&self, i: usize) -> T {
        self.get(i).copied().unwrap_or_else(T::zero)
    }

    fn total(&self) -> T {
        self.iter().fold(T::zero(), |acc, &x| acc + x)
    }
}

impl<T: Float, const N: usize> ArrayCotangent<T> for [T; N] {
    #[inline]
    fn add_at(&mut self, i: usize, c: T) {
        self[i] = self[i] + c;
    }

    #[inline]
    fn take_at(&mut self, i: usize) -> T {
        core::mem::replace(&mut self[i], T::zero())
    }

    #[inline]
    fn swap_at(&mut self, i: usize, j: usize) {
        self.swap(i, j);
    }

    #[inline]
    fn get_at(&self, i: usize) -> T {
        self[i]
    }

    fn total(&self) -> T {
        self.iter().fold(T::zero(), |acc, &x| acc + x)
    }
}

/// `y = a[i]`: `ā[i] += ȳ` (a scatter into the array's cotangent).
///
/// ```
/// let mut d: Vec<f64> = Vec::new();
/// autodiff_runtime::rules::index_add(&mut d, &2, 1.5);
/// assert_eq!(d, vec![0.0, 0.0, 1.5]);
/// ```
#[inline]
pub fn index_add<T: Float, C: ArrayCotangent<T>>(d: &mut C, i: &usize, c: T) {
    d.add_at(*i, c);
}

/// `s = a[start..end]` (a copy of the range): `ā[start + k] += s̄[k]` for every element the
/// slice's cotangent holds (a lazily grown one may stop short of `end`).
///
/// ```
/// let mut d = vec![1.0; 4];
/// autodiff_runtime::rules::slice_add(&mut d, &1, vec![0.5, 2.0]);
/// assert_eq!(d, vec![1.0, 1.5, 3.0, 1.0]);
///
/// // a lazily grown cotangent grows once, to the end of the range
/// let mut lazy: Vec<f64> = vec![1.0];
/// autodiff_runtime::rules::slice_add(&mut lazy, &2, vec![0.5, 2.0]);
/// assert_eq!(lazy, vec![1.0, 0.0, 0.5, 2.0]);
///
/// let mut fixed = [0.0; 3];
/// autodiff_runtime::rules::slice_add(&mut fixed, &1, vec![4.0, 5.0]);
/// assert_eq!(fixed, [0.0, 4.0, 5.0]);
/// ```
#[inline]
pub fn slice_add<T: Float, C: ArrayCotangent<T>>(d: &mut C, start: &usize, c: Vec<T>) {
    d.add_slice_at(*start, &c);
}

/// `y = a[i]`: `ā[i] += ȳ`, into a cotangent allocated at the array's full length (that of a
/// slice or `Vec` parameter). Plain indexing: it never grows the vector, so the optimiser
/// keeps the vector's pointer and length in registers across a loop; the forward pass read
/// `a[i]`, so `i` is in bounds.
///
/// ```
/// let mut d = vec![0.0; 3];
/// autodiff_runtime::rules::index_add_in_bounds(&mut d, &2, 1.5);
/// assert_eq!(d, vec![0.0, 0.0, 1.5]);
/// ```
#[inline]
pub fn index_add_in_bounds<T: Float>(d: &mut [T], i: &usize, c: T) {
    d[*i] = d[*i] + c;
}

/// `y = a[i]` when `ȳ` is the only contribution `ā[i]` gets, into a cotangent allocated at
/// the array's full length and still zero there: `ā[i] = ȳ`, a store without the load of an
/// addition.
///
/// ```
/// let mut d = vec![0.0; 3];
/// autodiff_runtime::rules::index_set_in_bounds(&mut d, &1, 1.5);
/// assert_eq!(d, vec![0.0, 1.5, 0.0]);
/// ```
#[inline]
pub fn index_set_in_bounds<T: Float>(d: &mut [T], i: &usize, c: T) {
    d[*i] = c;
}

/// A cotangent given the length `len` of its array, for an array whose length never
/// changes: unchanged when it already has it (the common case, one comparison), grown with
/// zeros when it is shorter (the zero cotangent, or one handed back by a callee that touched
/// nothing). Element updates of such a cotangent can then index it directly.
///
/// ```
/// use autodiff_runtime::rules::presized;
/// assert_eq!(presized(Vec::<f64>::new(), &2), vec![0.0, 0.0]);
/// assert_eq!(presized(vec![1.0, 2.0], &2), vec![1.0, 2.0]);
/// ```
#[inline]
pub fn presized<T: Float>(d: Vec<T>, len: &usize) -> Vec<T> {
    if d.len() >= *len {
        d
    } else {
        grown_to(d, *len)
    }
}

#[cold]
#[inline(never)]
fn grown_to<T: Float>(mut d: Vec<T>, len: usize) -> Vec<T> {
    d.resize(len, T::zero());
    d
}

/// `b = a` with `b[i] = v`, for a cotangent allocated at its array's full length: as
/// [`index_take`], indexing directly (the forward pass wrote element `i`, so it is in bounds).
///
/// ```
/// let mut d = vec![1.0, 2.0, 3.0];
/// assert_eq!(autodiff_runtime::rules::index_take_in_bounds(&mut d, &1), 2.0);
/// assert_eq!(d, vec![1.0, 0.0, 3.0]);
/// ```
#[inline]
pub fn index_take_in_bounds<T: Float>(d: &mut [T], i: &usize) -> T {
    core::mem::replace(&mut d[*i], T::zero())
}

/// `b = a` with `b[i] += v`, for a cotangent allocated at its array's full length: `v̄ = b̄[i]`
/// read directly.
///
/// ```
/// let d_b = vec![0.5, 2.0];
/// assert_eq!(autodiff_runtime::rules::index_add_d2_in_bounds(&d_b, &1), 2.0);
/// ```
#[inline]
pub fn index_add_d2_in_bounds<T: Float>(d: &[T], i: &usize) -> T {
    d[*i]
}

/// `b = a` with `b[i] -= v`, for a cotangent allocated at its array's full length:
/// `v̄ = -b̄[i]` read directly.
///
/// ```
/// let d_b = vec![0.5, 2.0];
/// assert_eq!(autodiff_runtime::rules::index_sub_d2_in_bounds(&d_b, &1), -2.0);
/// ```
#[inline]
pub fn index_sub_d2_in_bounds<T: Float>(d: &[T], i: &usize) -> T {
    -d[*i]
}

/// `b = a` with `b[i] = v`: `v̄ = b̄[i]`, and `ā = b̄` with element `i` zeroed (the old
/// element was overwritten, so nothing flows back to it).
///
/// ```
/// let mut d = vec![1.0, 2.0, 3.0];
/// assert_eq!(autodiff_runtime::rules::index_take(&mut d, &1), 2.0);
/// assert_eq!(d, vec![1.0, 0.0, 3.0]);
/// ```
#[inline]
pub fn index_take<T: Float, C: ArrayCotangent<T>>(d: &mut C, i: &usize) -> T {
    d.take_at(*i)
}

/// `b = a` with `b.push(v)` (where `a.len() == len`): `v̄ = b̄[len]`, and `ā` is `b̄`
/// truncated to `len`.
///
/// ```
/// let mut d = vec![1.0, 2.0, 3.0];
/// assert_eq!(autodiff_runtime::rules::pop_take(&mut d, &2), 3.0);
/// assert_eq!(d, vec![1.0, 2.0]);
/// ```
#[inline]
pub fn pop_take<T: Float>(d: &mut Vec<T>, len: &usize) -> T {
    let value = d.get(*len).copied().unwrap_or_else(T::zero);
    d.truncate(*len);
    value
}

/// `b = a` with `b.swap(i, j)`: `ā` is `b̄` with elements `i` and `j` swapped back.
#[inline]
pub fn swap<T: Float, C: ArrayCotangent<T>>(d: &mut C, i: &usize, j: &usize) {
    d.swap_at(*i, *j);
}

/// `b = vec![v; n]` or `[v; N]`: `v̄ = Σ b̄`.
#[inline]
pub fn sum_all<T: Float, C: ArrayCotangent<T>>(d: &C) -> T {
    d.total()
}

/// `b = [a₀, a₁, ...]`: `āₖ = b̄[k]`.
#[inline]
pub fn element<T: Float, C: ArrayCotangent<T>>(d: &C, k: usize) -> T {
    d.get_at(k)
}

/// How many windows `x.windows(size)` yields from `len` elements: `len + 1 - size`, none
/// when `size > len`. The trip count of a loop over windows; a zero `size` panics with the
/// message of `windows` itself, as the differentiated function would.
///
/// ```
/// use autodiff_runtime::rules::windows_count;
/// assert_eq!(windows_count(5, 2), [0.0; 5].windows(2).count());
/// assert_eq!(windows_count(1, 3), 0);
/// assert!(std::panic::catch_unwind(|| windows_count(4, 0)).is_err());
/// ```
#[inline]
pub fn windows_count(len: usize, size: usize) -> usize {
    assert!(size != 0, "window size must be non-zero");
    (len + 1).saturating_sub(size)
}

/// How many chunks `x.chunks(size)` yields from `len` elements (the last may be shorter); a
/// zero `size` panics with the message of `chunks`.
///
/// ```
/// use autodiff_runtime::rules::chunks_count;
/// assert_eq!(chunks_count(7, 3), [0.0; 7].chunks(3).count());
/// assert!(std::panic::catch_unwind(|| chunks_count(4, 0)).is_err());
/// ```
#[inline]
pub fn chunks_count(len: usize, size: usize) -> usize {
    assert!(size != 0, "chunk size must be non-zero");
    len.div_ceil(size)
}

/// How many chunks `x.chunks_exact(size)` yields from `len` elements (a shorter remainder is
/// left out); a zero `size` panics with the message of `chunks_exact`.
///
/// ```
/// use autodiff_runtime::rules::chunks_exact_count;
/// assert_eq!(chunks_exact_count(7, 3), [0.0; 7].chunks_exact(3).count());
/// assert!(std::panic::catch_unwind(|| chunks_exact_count(4, 0)).is_err());
/// ```
#[inline]
pub fn chunks_exact_count(len: usize, size: usize) -> usize {
    assert!(size != 0, "chunk size must be non-zero");
    len / size
}

/// Gives the gradient of a slice or vector parameter its length `len`, filling elements no
/// contribution reached with zeros.
///
/// ```
/// assert_eq!(autodiff_runtime::rules::fit(vec![1.0], &3), vec![1.0, 0.0, 0.0]);
/// ```
#[inline]
pub fn fit<T: Float>(mut d: Vec<T>, len: &usize) -> Vec<T> {
    d.resize(*len, T::zero());
    d
}

/// `b = a` with `b[i] += v`: `v̄ = b̄[i]`, and `ā = b̄` (every element passes through).
///
/// ```
/// let d_b = vec![0.5, 2.0];
/// assert_eq!(autodiff_runtime::rules::index_add_d2(&d_b, &1), 2.0);
/// ```
#[inline]
pub fn index_add_d2<T: Float, C: ArrayCotangent<T>>(d: &C, i: &usize) -> T {
    d.get_at(*i)
}

/// `b = a` with `b[i] -= v`: `v̄ = -b̄[i]`, and `ā = b̄`.
///
/// ```
/// let d_b = vec![0.5, 2.0];
/// assert_eq!(autodiff_runtime::rules::index_sub_d2(&d_b, &1), -2.0);
/// ```
#[inline]
pub fn index_sub_d2<T: Float, C: ArrayCotangent<T>>(d: &C, i: &usize) -> T {
    -d.get_at(*i)
}

/// A cotangent that can be made from the `Vec` cotangent of a copy (`x.to_vec()`).
pub trait FromVecCotangent<T> {
    /// Converts the copy's cotangent.
    fn from_vec_cotangent(d: Vec<T>) -> Self;
}

impl<T> FromVecCotangent<T> for Vec<T> {
    fn from_vec_cotangent(d: Vec<T>) -> Self {
        d
    }
}

impl<T: Float, const N: usize> FromVecCotangent<T> for [T; N] {
    fn from_vec_cotangent(d: Vec<T>) -> Self {
        core::array::from_fn(|i| d.get(i).copied().unwrap_or_else(T::zero))
    }
}

/// A callee's gradient of a fixed-length array argument `&x`, `x: [T; N]`, which the callee
/// may take as an array (an array gradient) or as a slice (a `Vec` gradient, zero past its
/// end).
pub trait IntoFixedCotangent<A> {
    /// Converts the gradient to the cotangent of the array.
    fn into_fixed_cotangent(self) -> A;
}

impl<T: Float, const N: usize> IntoFixedCotangent<[T; N]> for [T; N] {
    #[inline]
    fn into_fixed_cotangent(self) -> [T; N] {
        self
    }
}

impl<T: Float, const N: usize> IntoFixedCotangent<[T; N]> for Vec<T> {
    #[inline]
    fn into_fixed_cotangent(self) -> [T; N] {
        assert!(
            self.len() <= N,
            "the gradient of a `[_; {N}]` argument has {} elements",
            self.len()
        );
        <[T; N]>::from_vec_cotangent(self)
    }
}

/// The cotangent of a fixed-length array passed to a differentiated function, from the
/// callee's gradient of that argument (see [`IntoFixedCotangent`]).
///
/// ```
/// use autodiff_runtime::rules::fixed_array_cotangent;
///
/// let from_slice: [f64; 3] = fixed_array_cotangent(vec![1.0, 2.0, 3.0]);
/// assert_eq!(from_slice, [1.0, 2.0, 3.0]);
/// let from_array: [f64; 2] = fixed_array_cotangent([0.5, 1.5]);
/// assert_eq!(from_array, [0.5, 1.5]);
/// ```
#[inline]
pub fn fixed_array_cotangent<A, C: IntoFixedCotangent<A>>(gradient: C) -> A {
    gradient.into_fixed_cotangent()
}

/// `v = x.to_vec()`: `x̄ = v̄`, as the cotangent type of `x` (a `Vec` or a fixed array).
///
/// ```
/// let d: [f64; 3] = autodiff_runtime::rules::to_vec_d0(vec![1.0, 2.0]);
/// assert_eq!(d, [1.0, 2.0, 0.0]);
/// ```
#[inline]
pub fn to_vec_d0<T, C: FromVecCotangent<T>>(d: Vec<T>) -> C {
    C::from_vec_cotangent(d)
}
