//! Zero cotangents and their accumulation, so generated code never has to name a type.
//!
//! Scalars (any [`Float`]) use the free functions [`zero`] and [`accumulate`]; containers
//! (vectors, arrays) implement [`Cotangent`]. The two are kept apart because a blanket
//! implementation of a trait for every `Float` would forbid implementations for standard
//! containers (`num_traits` could one day make `Vec<T>` a `Float`), and because generic
//! user code bounded by `T: Float` alone must still get scalar cotangents.

use num_traits::{Float, One};

/// The zero cotangent of a scalar.
///
/// ```
/// let x_bar: f32 = autodiff_runtime::zero();
/// assert_eq!(x_bar, 0.0);
/// ```
#[inline]
pub fn zero<T: Float>() -> T {
    T::zero()
}

/// Adds the contribution `c` into the accumulated scalar cotangent `acc`.
///
/// ```
/// use autodiff_runtime::{accumulate, zero};
///
/// let mut x_bar: f64 = zero();
/// accumulate(&mut x_bar, 1.5);
/// accumulate(&mut x_bar, -0.5);
/// assert_eq!(x_bar, 1.0);
/// ```
#[inline]
pub fn accumulate<T: Float>(acc: &mut T, c: T) {
    *acc = *acc + c;
}

/// Adds the contribution `c` into `acc` with `add`. Generated code accumulates this way into
/// the cotangent of a call's result whose type nothing but the contributions tells (the
/// zero a generic callee returns): rustc unifies the argument types of a function call
/// before it resolves the method call inside `add`.
///
/// ```
/// use autodiff_runtime::{accumulate, accumulate_with};
///
/// let mut x_bar = 0.25;
/// accumulate_with(&mut x_bar, 1.5, |acc, c| accumulate(acc, c));
/// assert_eq!(x_bar, 1.75);
/// ```
#[inline]
pub fn accumulate_with<C>(acc: &mut C, c: C, add: impl FnOnce(&mut C, C)) {
    add(acc, c)
}

/// One, the cotangent that seeds the pullback of a scalar output.
///
/// ```
/// let seed: f64 = autodiff_runtime::one();
/// assert_eq!(seed, 1.0);
/// ```
#[inline]
pub fn one<T: One>() -> T {
    T::one()
}

/// One of the same type as `value`: the seed of a sum a loop carries, whose type the
/// generated code cannot name.
///
/// ```
/// let s = 2.5f32;
/// let seed = autodiff_runtime::one_like(&s);
/// assert_eq!(seed, 1.0f32);
/// ```
#[inline]
pub fn one_like<T: One>(_value: &T) -> T {
    T::one()
}

/// A pullback's stack of per-iteration records: the stack of an earlier pullback of the same
/// function, emptied, when there is one (its allocation is reused), or a new one. A loop that
/// calls a differentiated function once per iteration passes each call the pullback of the
/// one before, so that the callee's records allocate nothing after the first iteration.
///
/// ```
/// let first = autodiff_runtime::reused_stack::<f64>(None, 4);
/// assert!(first.is_empty() && first.capacity() >= 4);
/// let again = autodiff_runtime::reused_stack(Some(vec![1.0, 2.0]), 1);
/// assert!(again.is_empty() && again.capacity() >= 2);
/// ```
#[inline]
pub fn reused_stack<R>(previous: Option<Vec<R>>, capacity: usize) -> Vec<R> {
    match previous {
        Some(mut stack) => {
            stack.clear();
            stack.reserve(capacity);
            stack
        }
        None => Vec::with_capacity(capacity),
    }
}

/// Whether every element of an array cotangent is zero (an empty one is): the check that
/// no cotangent crossed from one iteration of a loop to the one before it.
///
/// ```
/// use autodiff_runtime::all_zero;
///
/// assert!(all_zero::<f64>(&[]));
/// assert!(all_zero(&[0.0, -0.0]));
/// assert!(!all_zero(&[0.0, f64::NAN]));
/// ```
#[inline]
pub fn all_zero<T: Float>(c: &[T]) -> bool {
    c.iter().all(|x| *x == T::zero())
}

/// An array cotangent with every element multiplied by `s`: a gradient computed for a seed
/// of one, applied to the cotangent that arrives later.
///
/// ```
/// let g = autodiff_runtime::scale_elements(vec![1.0, -2.0], 0.5);
/// assert_eq!(g, vec![0.5, -1.0]);
/// ```
#[inline]
pub fn scale_elements<T: Float, C: AsMut<[T]>>(mut c: C, s: T) -> C {
    for x in c.as_mut() {
        *x = *x * s;
    }
    c
}

/// The neutral element `std` starts a float sum from: `-0.0`, so that a sum of negative
/// zeros stays `-0.0`. Generated sums start here to stay bit-identical with `Iterator::sum`.
///
/// ```
/// let start: f64 = autodiff_runtime::sum_identity();
/// assert!(start == 0.0 && start.is_sign_negative());
/// ```
#[inline]
pub fn sum_identity<T: Float>() -> T {
    -T::zero()
}

/// A container that can be the cotangent of an array-valued quantity.
///
/// An empty `Vec` means zero: [`Cotangent::zero`] allocates nothing, and element updates
/// grow the vector on demand, so a cotangent never needs its primal's length up front.
///
/// ```
/// use autodiff_runtime::Cotangent;
///
/// let mut d: Vec<f64> = Cotangent::zero();
/// d.accumulate(vec![1.0, 2.0]);
/// d.accumulate(vec![0.5]);
/// assert_eq!(d, vec![1.5, 2.0]);
/// ```
pub trait Cotangent: Sized {
    /// The additive identity: the cotangent of a value that does not affect the output.
    fn zero() -> Self;

    /// Adds `other` into `self`, as when a value is used more than once.
    fn accumulate(&mut self, other: Self);
}

/// Accumulation for scalar cotangents under the same method name as [`Cotangent`], so
/// generated code can write `d.accumulate(c)` whatever the kind of `d`: a type is either a
/// float or a container, never both, so exactly one of the two traits applies.
///
/// ```
/// use autodiff_runtime::ScalarCotangent;
///
/// let mut d = 1.5_f32;
/// d.accumulate(0.5);
/// assert_eq!(d, 2.0);
/// ```
pub trait ScalarCotangent {
    /// Adds `other` into `self`.
    fn accumulate(&mut self, other: Self);
}

/// Accumulation for the cotangents of `#[derive(Differentiable)]` structs, under the same
/// method name as [`Cotangent`] and [`ScalarCotangent`]: the derive implements it for each
/// struct, so `d.accumulate(c)` in generated code also adds a nested parameter set's
/// cotangent (`Layer::forward(&self.l1, x)` contributes a `Layer` to `d_self.l1`).
///
/// ```
/// use autodiff_runtime::{Differentiable, ParameterSetCotangent, ParamVisitor};
///
/// #[derive(Clone, Debug, PartialEq)]
/// struct Layer { w: f64 }
/// impl Differentiable for Layer {
///     fn zero_like(&self) -> Self { Layer { w: 0.0 } }
///     fn accumulate_from(&mut self, other: &Self) { self.w += other.w; }
///     fn visit<V: ParamVisitor>(&mut self, grad: &Self, visitor: &mut V) {
///         self.w.visit(&grad.w, visitor);
///     }
/// }
/// impl ParameterSetCotangent for Layer {}
///
/// let mut d = Layer { w: 1.0 };
/// d.accumulate(Layer { w: 0.5 });
/// assert_eq!(d, Layer { w: 1.5 });
/// ```
pub trait ParameterSetCotangent: crate::Differentiable {
    /// Adds `other` into `self`, field by field.
    #[inline]
    fn accumulate(&mut self, other: Self) {
        self.accumulate_from(&other);
    }
}

/// Accumulation for values that carry no derivative (integers, `bool`, `char`, `String`),
/// under the same method name as [`ScalarCotangent`]: a differentiated callee returns `()` as
/// the gradient of such an argument, and a caller that read the argument from a parameter
/// set's field (`inner(p.a, p.n)` with `n: usize`) adds it there, which leaves the field as
/// it is.
///
/// ```
/// use autodiff_runtime::ConstantCotangent;
///
/// let mut n = 3_usize;
/// n.accumulate(());
/// assert_eq!(n, 3);
/// ```
pub trait ConstantCotangent {
    /// Adds nothing.
    #[inline]
    fn accumulate(&mut self, _nothing: ()) {}
}

macro_rules! constant_cotangent {
    ($($t:ty),*) => {$(
        impl ConstantCotangent for $t {}
    )*};
}
constant_cotangent!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, bool, char, String
);

/// A cotangent that starts at zero with no value to shape it: floats, integers and `bool`,
/// fixed-length arrays of those, and structs of those (`#[derive(Differentiable)]`
/// implements it for a struct whose fields are all such types or type parameters). The
/// backward pass of a function that keeps a struct returned by a differentiated callee in a
/// loop or a branch starts that struct's cotangent here; a vector has no zero of unknown
/// length, so a struct with one cannot be kept that way.
///
/// ```
/// use autodiff_runtime::ZeroCotangent;
///
/// let zero: [f64; 3] = ZeroCotangent::zero_cotangent();
/// assert_eq!(zero, [0.0; 3]);
/// ```
#[diagnostic::on_unimplemented(
    message = "the cotangent of `{Self}` has no zero without a value to shape it",
    label = "a struct that a differentiated function keeps in a loop or a branch",
    note = "a struct returned by a #[differentiate] function can be kept in a loop or a branch of another when its fields are floats, integers, `bool`s or fixed-length arrays of floats (`#[derive(Differentiable)]` then makes its zero); a `Vec` field has no zero of unknown length: return the vector apart, or pass the struct on without keeping it"
)]
pub trait ZeroCotangent {
    /// The zero cotangent.
    fn zero_cotangent() -> Self;
}

macro_rules! zero_cotangent {
    ($zero:expr => $($t:ty),*) => {$(
        impl ZeroCotangent for $t {
            #[inline]
            fn zero_cotangent() -> Self {
                $zero
            }
        }
    )*};
}
zero_cotangent!(0.0 => f32, f64);
zero_cotangent!(0 => i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize);
zero_cotangent!(false => bool);

impl<T: Float> ZeroCotangent for crate::Dual<T> {
    #[inline]
    fn zero_cotangent() -> Self {
        crate::Dual::new(T::zero(), T::zero())
    }
}

impl<Z: ZeroCotangent, const N: usize> ZeroCotangent for [Z; N] {
    #[inline]
    fn zero_cotangent() -> Self {
        core::array::from_fn(|_| Z::zero_cotangent())
    }
}

impl<T: Float> ScalarCotangent for T {
    #[inline]
    fn accumulate(&mut self, other: Self) {
        *self = *self + other;
    }
}

impl<T: Float> Cotangent for Vec<T> {
    #[inline]
    fn zero() -> Self {
        Vec::new()
    }

    // inlined so that the common first contribution (to an empty cotangent) is a move
    #[inline]
    fn accumulate(&mut self, other: Self) {
        if self.is_empty() {
            *self = other;
        } else {
            *self = added(core::mem::take(self), other);
        }
    }
}

/// `acc + other` element-wise, `acc` first growing to `other`'s length. By value, so that the
/// caller's vector never has its address taken: a `&mut Vec` passed to a call that is not
/// inlined would keep the vector's pointer and length in memory across the caller's loops.
fn added<T: Float>(mut acc: Vec<T>, other: Vec<T>) -> Vec<T> {
    if acc.len() < other.len() {
        acc.resize(other.len(), T::zero());
    }
    for (a, b) in acc.iter_mut().zip(other) {
        *a = *a + b;
    }
    acc
}

impl<T: Float, const N: usize> Cotangent for [T; N] {
    #[inline]
    fn zero() -> Self {
        [T::zero(); N]
    }

    #[inline]
    fn accumulate(&mut self, other: Self) {
        for (a, b) in self.iter_mut().zip(other) {
            *a = *a + b;
        }
    }
}

/// An owned copy of an array the backward pass reads, taken when the forward pass saves it.
///
/// ```
/// use autodiff_runtime::Save;
///
/// let x = [1.0, 2.0];
/// let slice: &[f64] = &x;
/// assert_eq!(Save::save(&slice), vec![1.0, 2.0]);
/// assert_eq!(Save::save(&x), [1.0, 2.0]);
/// ```
pub trait Save {
    /// The owned type stored in the pullback struct.
    type Owned;

    /// Copies the value.
    fn save(&self) -> Self::Owned;
}

impl<T: Clone> Save for [T] {
    type Owned = Vec<T>;
    fn save(&self) -> Vec<T> {
        self.to_vec()
    }
}

impl<T: Clone> Save for Vec<T> {
    type Owned = Vec<T>;
    fn save(&self) -> Vec<T> {
        self.clone()
    }
}

impl<T: Clone, const N: usize> Save for [T; N] {
    type Owned = [T; N];
    fn save(&self) -> [T; N] {
        self.clone()
    }
}

impl<S: Save + ?Sized> Save for &S {
    type Owned = S::Owned;
    fn save(&self) -> S::Owned {
        (**self).save()
    }
}

/// The heap storage of a saved array, for [`saved_bytes`](crate) reports of pullback structs.
///
/// ```
/// use autodiff_runtime::ArrayStorage;
///
/// let v: Vec<f64> = Vec::with_capacity(4);
/// assert_eq!(v.heap_bytes(), 32);
/// assert_eq!([1.0f32; 3].heap_bytes(), 0);
/// ```
pub trait ArrayStorage {
    /// Bytes allocated on the heap.
    fn heap_bytes(&self) -> usize;
}

impl<T> ArrayStorage for Vec<T> {
    fn heap_bytes(&self) -> usize {
        self.capacity() * core::mem::size_of::<T>()
    }
}

impl<T, const N: usize> ArrayStorage for [T; N] {
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// Checks that the cotangent given to `backward` of the function `function` has the length
/// of the output it stands for, and panics with both lengths otherwise.
///
/// ```should_panic
/// autodiff_runtime::check_cotangent_len("cumsum", &[1.0, 2.0], &3);
/// ```
#[track_caller]
pub fn check_cotangent_len<T>(function: &str, cotangent: &[T], output_len: &usize) {
    if cotangent.len() != *output_len {
        panic!(
            "backward of `{function}`: the output cotangent has length {}, but the output has length {output_len}",
            cotangent.len()
        );
    }
}

/// The shape of a tensor or matrix, for checking the cotangent given to `backward`.
pub trait ShapeOf {
    /// The dimensions.
    fn shape_of(&self) -> Vec<usize>;
}

impl<S: ShapeOf + ?Sized> ShapeOf for &S {
    fn shape_of(&self) -> Vec<usize> {
        (**self).shape_of()
    }
}

impl<T: crate::tensor::TensorElement> ShapeOf for crate::tensor::Tensor<T> {
    fn shape_of(&self) -> Vec<usize> {
        self.shape().to_vec()
    }
}

impl<T, R: nalgebra::Dim, C: nalgebra::Dim, S: nalgebra::RawStorage<T, R, C>> ShapeOf
    for nalgebra::Matrix<T, R, C, S>
{
    fn shape_of(&self) -> Vec<usize> {
        vec![self.nrows(), self.ncols()]
    }
}

/// Checks that the cotangent given to `backward` of `function` has the output's shape, and
/// panics naming the function and both shapes otherwise.
///
/// ```should_panic
/// autodiff_runtime::check_cotangent_shape("layer", &[2, 3], &vec![2, 4]);
/// ```
#[track_caller]
pub fn check_cotangent_shape(function: &str, cotangent: &[usize], output: &Vec<usize>) {
    if cotangent != output.as_slice() {
        panic!("backward of `{function}`: the output cotangent has shape {cotangent:?}, but the output has shape {output:?}");
    }
}

/// Where the backward pass of a differentiated function puts the gradient of one argument.
///
/// A caller whose own cotangent receives that gradient passes it as `&mut G`: the gradient
/// is added into it, and a vector gradient is accumulated directly in the caller's buffer,
/// without a temporary vector per call. Otherwise the gradient is returned
/// ([`ReturnGradient`]) or dropped ([`DropGradient`]).
///
/// ```
/// use autodiff_runtime::{DropGradient, GradientSink, ReturnGradient};
///
/// let add = |target: &mut f64, g: f64| *target += g;
/// let mut target = 1.0;
/// GradientSink::finish(&mut target, 0.5, add);
/// assert_eq!(target, 1.5);
/// assert_eq!(GradientSink::finish(ReturnGradient, 0.5, add), 0.5);
/// GradientSink::finish(DropGradient, 0.5, add);
/// ```
pub trait GradientSink<G> {
    /// What the backward pass returns for this argument: the gradient, or nothing.
    type Out;

    /// The cotangent the gradient is added to, when the caller passed one.
    fn target(&mut self) -> Option<&mut G>;

    /// Hands the gradient over: added into the target with `add`, returned, or dropped.
    fn finish(self, gradient: G, add: impl FnOnce(&mut G, G)) -> Self::Out;
}

impl<G> GradientSink<G> for &mut G {
    type Out = ();

    #[inline]
    fn target(&mut self) -> Option<&mut G> {
        Some(self)
    }

    #[inline]
    fn finish(self, gradient: G, add: impl FnOnce(&mut G, G)) {
        add(self, gradient)
    }
}

/// The [`GradientSink`] that returns the gradient, as `backward` does.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReturnGradient;

impl<G> GradientSink<G> for ReturnGradient {
    type Out = G;

    #[inline]
    fn target(&mut self) -> Option<&mut G> {
        None
    }

    #[inline]
    fn finish(self, gradient: G, _add: impl FnOnce(&mut G, G)) -> G {
        gradient
    }
}

/// The [`GradientSink`] of an argument whose gradient the caller does not need.
#[derive(Clone, Copy, Debug, Default)]
pub struct DropGradient;

impl<G> GradientSink<G> for DropGradient {
    type Out = ();

    #[inline]
    fn target(&mut self) -> Option<&mut G> {
        None
    }

    #[inline]
    fn finish(self, _gradient: G, _add: impl FnOnce(&mut G, G)) {}
}

/// The vector a gradient of length `len` accumulates in: the sink's target itself when it is
/// no longer than `len` (grown to it with zeros; an empty or short vector cotangent is zero
/// past its end), so what the caller has accumulated so far stays in; otherwise zeros.
/// [`finish_gradient_buffer`] hands it back.
///
/// ```
/// use autodiff_runtime::{finish_gradient_buffer, gradient_buffer, ReturnGradient};
///
/// let mut caller = vec![1.0];
/// let mut sink = &mut caller;
/// let mut buffer = gradient_buffer(&mut sink, 3);
/// assert_eq!(buffer, vec![1.0, 0.0, 0.0]);
/// buffer[2] += 0.5;
/// finish_gradient_buffer(sink, buffer, &3);
/// assert_eq!(caller, vec![1.0, 0.0, 0.5]);
///
/// let mut sink = ReturnGradient;
/// let buffer: Vec<f64> = gradient_buffer(&mut sink, 2);
/// assert_eq!(finish_gradient_buffer(sink, buffer, &2), vec![0.0, 0.0]);
/// ```
#[inline]
pub fn gradient_buffer<T: Float, S: GradientSink<Vec<T>>>(sink: &mut S, len: usize) -> Vec<T> {
    match sink.target() {
        // the common case, a caller's cotangent of the full length, is only moved
        Some(target) if target.len() == len => core::mem::take(target),
        Some(target) if target.len() < len => {
            let mut buffer = core::mem::take(target);
            buffer.resize(len, T::zero());
            buffer
        }
        _ => vec![T::zero(); len],
    }
}

/// Hands over the vector [`gradient_buffer`] gave out: back into the target it was taken
/// from (which is empty now), added into a target it was not taken from, or returned at
/// length `len`.
// always inlined: called out of line, it stores the vector back word by word, and the next
// `gradient_buffer` of the same target loads it as a pair, which store forwarding cannot
// serve (GMM d = 2 built in another crate where it had not been inlined: 176 → 160 µs)
#[inline(always)]
pub fn finish_gradient_buffer<T: Float, S: GradientSink<Vec<T>>>(
    sink: S,
    buffer: Vec<T>,
    len: &usize,
) -> S::Out {
    let buffer = if buffer.len() == *len {
        buffer
    } else {
        crate::rules::fit(buffer, len)
    };
    sink.finish(buffer, |target, gradient| {
        if target.is_empty() {
            *target = gradient;
        } else {
            Cotangent::accumulate(target, gradient);
        }
    })
}
