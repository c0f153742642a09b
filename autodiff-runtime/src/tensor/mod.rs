//! [`Tensor`], the n-d row-major array of `f32` or `f64` with PyTorch-like neural-network
//! operations; the rules that differentiate them live in
//! [`rules::tensor`](crate::rules::tensor).

mod broadcast;
mod gemm;
mod nn;
mod ops;

use core::fmt::Debug;
use core::iter::Sum;

use num_traits::Float;

use crate::Cotangent;

pub(crate) use broadcast::{unbroadcast_from, unbroadcast_to};
pub(crate) use gemm::{gemm, MatMut, MatRef};
pub(crate) use nn::{
    col2im, cross_entropy_dims, for_each_argmax, im2col, logsumexp, pool_dims, ConvGeometry,
};

/// A scalar a [`Tensor`] can hold: `f32` or `f64`, the types with GEMM kernels.
///
/// The trait is sealed: its GEMM supertrait cannot be implemented outside this crate.
pub trait TensorElement:
    Float + Debug + Default + Sum + Send + Sync + 'static + gemm::Gemm
{
}

impl TensorElement for f32 {}
impl TensorElement for f64 {}

/// An n-dimensional array of `f32` or `f64`: contiguous row-major storage and a shape.
///
/// Operations follow PyTorch's names and conventions (NCHW images, `[out, in]` weights);
/// each has a vector-Jacobian-product rule in [`rules::tensor`](crate::rules::tensor).
/// `+`, `-` and `*` broadcast between tensors as NumPy does (trailing axes aligned, axes of
/// size 1 stretched), and apply elementwise with a scalar on either side. A shape mismatch
/// panics with a message naming the operation and both shapes.
///
/// As a [`Cotangent`], the *empty* tensor (shape `[]`, no data; [`Cotangent::zero`]) stands
/// for zero: it allocates nothing and rules pass it through without work. It is distinct from
/// a 0-d tensor, which holds one element.
///
/// ```
/// use autodiff_runtime::Tensor;
///
/// // Two samples with three features through a layer of two units.
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, -1.0, 0.0, 1.0], &[2, 3]);
/// let w = Tensor::from_vec(vec![0.5, 0.0, -0.5, 1.0, 1.0, 1.0], &[2, 3]);
/// let b = Tensor::from_vec(vec![0.1, -5.0], &[2]);
/// let h = x.linear(&w, &b).relu();
/// assert_eq!(h.shape(), &[2, 2]);
/// assert_eq!(h.data(), &[0.0, 1.0, 0.0, 0.0]);
///
/// // Broadcasting: a row vector added to every row, then scaled.
/// let y = (&x + &Tensor::from_vec(vec![10.0, 20.0, 30.0], &[3])) * 2.0;
/// assert_eq!(y.data(), &[22.0, 44.0, 66.0, 18.0, 40.0, 62.0]);
/// assert_eq!(y.sum_axis(0).data(), &[40.0, 84.0, 128.0]);
///
/// let loss = x.linear(&w, &b).cross_entropy(&[0, 1]);
/// assert!(loss > 0.0);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T> {
    data: Vec<T>,
    shape: Vec<usize>,
}

/// The number of elements of a tensor of shape `shape` (1 for a 0-d tensor).
pub(crate) fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// `shape` split around `axis` into `(outer, len, inner)`: the product of the axes before it,
/// its length and the product of the axes after it.
#[track_caller]
pub(crate) fn split_at_axis(op: &str, shape: &[usize], axis: usize) -> (usize, usize, usize) {
    if axis >= shape.len() {
        panic!("{op}: axis {axis} is out of range for shape {shape:?}");
    }
    (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    )
}

/// `n` in `T`.
pub(crate) fn cast<T: Float>(n: usize) -> T {
    T::from(n).unwrap()
}

/// Anything with a tensor's shape: a [`Tensor`], or the dimensions a pullback keeps in its
/// place when its backward pass needs nothing else of it (`Vec<usize>`, `[usize]`). The
/// rules that read only a shape (sums, broadcasting `+`/`-`, `reshape`) take either.
///
/// ```
/// use autodiff_runtime::rules::tensor::sum_d0;
/// use autodiff_runtime::Tensor;
///
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
/// // the cotangent of `x.sum()` from the tensor, or from its dimensions alone
/// assert_eq!(sum_d0(&x, 1.5).data(), sum_d0(&vec![2usize, 2], 1.5).data());
/// ```
pub trait Shaped {
    /// The dimensions.
    fn dims(&self) -> &[usize];

    /// The number of elements: the product of the dimensions.
    fn count(&self) -> usize {
        self.dims().iter().product()
    }
}

impl<T: TensorElement> Shaped for Tensor<T> {
    fn dims(&self) -> &[usize] {
        self.shape()
    }

    fn count(&self) -> usize {
        self.numel()
    }
}

impl Shaped for [usize] {
    fn dims(&self) -> &[usize] {
        self
    }
}

impl Shaped for Vec<usize> {
    fn dims(&self) -> &[usize] {
        self
    }
}

/// Elementwise functions under the float methods' names.
macro_rules! elementwise_methods {
    ($($(#[$doc:meta])* $name:ident;)*) => {
        impl<T: TensorElement> Tensor<T> {
            $(
                $(#[$doc])*
                pub fn $name(&self) -> Self {
                    self.map(Float::$name)
                }
            )*
        }
    };
}

elementwise_methods! {
    /// `eˣ` elementwise.
    exp;
    /// `ln x` elementwise (NaN below 0, `-∞` at 0, as for floats).
    ln;
    /// `√x` elementwise.
    sqrt;
    /// `|x|` elementwise.
    abs;
    /// `sin x` elementwise.
    sin;
    /// `cos x` elementwise.
    cos;
}

impl<T: TensorElement> Tensor<T> {
    /// The tensor of shape `shape` holding `data` in row-major order.
    ///
    /// Panics if `data` does not have as many elements as the shape.
    #[track_caller]
    pub fn from_vec(data: Vec<T>, shape: &[usize]) -> Self {
        let n = numel(shape);
        if data.len() != n {
            panic!(
                "from_vec: {} elements do not fill shape {shape:?} ({n} elements)",
                data.len()
            );
        }
        Self {
            data,
            shape: shape.to_vec(),
        }
    }

    /// The tensor of shape `shape` filled with zeros.
    pub fn zeros(shape: &[usize]) -> Self {
        Self::full(shape, T::zero())
    }

    /// The tensor of shape `shape` filled with `value`.
    pub fn full(shape: &[usize], value: T) -> Self {
        Self {
            data: vec![value; numel(shape)],
            shape: shape.to_vec(),
        }
    }

    /// The shape: one length per axis, outermost first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements in row-major order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// The elements in row-major order, for updating in place (optimizers).
    pub fn data_mut(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// The elements in row-major order, without copying.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The number of axes.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Whether this is the empty tensor [`Cotangent::zero`] returns, which stands for zero.
    pub fn is_zero_cotangent(&self) -> bool {
        self.shape.is_empty() && self.data.is_empty()
    }

    /// The same elements under shape `shape`.
    ///
    /// Panics if the shapes have different numbers of elements.
    #[track_caller]
    pub fn reshape(&self, shape: &[usize]) -> Self {
        self.clone().into_reshape(shape)
    }

    /// [`reshape`](Self::reshape) without copying the elements.
    #[track_caller]
    pub fn into_reshape(mut self, shape: &[usize]) -> Self {
        if numel(shape) != self.data.len() {
            panic!(
                "reshape: shapes {:?} and {shape:?} have different numbers of elements",
                self.shape
            );
        }
        self.shape = shape.to_vec();
        self
    }

    /// `f` applied to every element.
    pub fn map(&self, f: impl Fn(T) -> T) -> Self {
        Self {
            data: self.data.iter().map(|&x| f(x)).collect(),
            shape: self.shape.clone(),
        }
    }

    /// The transpose of a 2-D tensor: `[m, n]` → `[n, m]`.
    ///
    /// Panics unless the tensor is 2-D.
    ///
    /// ```
    /// use autodiff_runtime::Tensor;
    ///
    /// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    /// let t = a.transpose();
    /// assert_eq!(t.shape(), &[3, 2]);
    /// assert_eq!(t.data(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// ```
    #[track_caller]
    pub fn transpose(&self) -> Self {
        let &[rows, cols] = self.shape.as_slice() else {
            panic!("transpose: shape {:?} is not 2-D", self.shape);
        };
        let mut data = Vec::with_capacity(self.data.len());
        for j in 0..cols {
            data.extend((0..rows).map(|i| self.data[i * cols + j]));
        }
        Self {
            data,
            shape: vec![cols, rows],
        }
    }

    /// `xⁿ` elementwise, for an integer `n`.
    ///
    /// ```
    /// use autodiff_runtime::Tensor;
    ///
    /// let x = Tensor::from_vec(vec![1.0, -2.0, 3.0], &[3]);
    /// assert_eq!(x.powi(2).data(), &[1.0, 4.0, 9.0]);
    /// ```
    pub fn powi(&self, n: i32) -> Self {
        self.map(|x| x.powi(n))
    }

    /// `f` applied to every element in place.
    pub(crate) fn map_in_place(mut self, f: impl Fn(T) -> T) -> Self {
        for x in &mut self.data {
            *x = f(*x);
        }
        self
    }

    /// The sum of all elements.
    pub fn sum(&self) -> T {
        self.data.iter().copied().sum()
    }

    /// The mean of all elements (NaN for an empty tensor).
    pub fn mean(&self) -> T {
        self.sum() / cast(self.data.len())
    }

    /// The sums along `axis`: a tensor with that axis removed.
    ///
    /// Panics if `axis` is out of range.
    #[track_caller]
    pub fn sum_axis(&self, axis: usize) -> Self {
        let (outer, len, inner) = split_at_axis("sum_axis", &self.shape, axis);
        let mut data = vec![T::zero(); outer * inner];
        if inner > 0 {
            for (out, block) in data
                .chunks_exact_mut(inner)
                .zip(self.data.chunks_exact(len * inner))
            {
                for row in block.chunks_exact(inner) {
                    for (o, &x) in out.iter_mut().zip(row) {
                        *o = *o + x;
                    }
                }
            }
        }
        let mut shape = self.shape.clone();
        shape.remove(axis);
        Self { data, shape }
    }
}

impl<T: TensorElement> Cotangent for Tensor<T> {
    /// The empty tensor, which stands for zero and allocates nothing.
    #[inline]
    fn zero() -> Self {
        Self {
            data: Vec::new(),
            shape: Vec::new(),
        }
    }

    /// Elementwise `self += other`, where the empty tensor is zero.
    ///
    /// Panics if neither is empty and their shapes differ.
    #[track_caller]
    fn accumulate(&mut self, other: Self) {
        if other.is_zero_cotangent() {
            return;
        }
        if self.is_zero_cotangent() {
            *self = other;
            return;
        }
        if self.shape != other.shape {
            panic!(
                "accumulate: cotangent shapes {:?} and {:?} differ",
                self.shape, other.shape
            );
        }
        for (a, b) in self.data.iter_mut().zip(other.data) {
            *a = *a + b;
        }
    }
}

impl<T: TensorElement> crate::cotangent::Save for Tensor<T> {
    type Owned = Tensor<T>;
    fn save(&self) -> Tensor<T> {
        self.clone()
    }
}

impl<T> crate::cotangent::ArrayStorage for Tensor<T> {
    fn heap_bytes(&self) -> usize {
        self.data.capacity() * core::mem::size_of::<T>()
            + self.shape.capacity() * core::mem::size_of::<usize>()
    }
}

impl<T: TensorElement> crate::differentiable::Differentiable for Tensor<T> {
    fn zero_like(&self) -> Self {
        Tensor::zeros(self.shape())
    }

    fn accumulate_from(&mut self, other: &Self) {
        crate::cotangent::Cotangent::accumulate(self, other.clone());
    }

    fn visit<V: crate::differentiable::ParamVisitor>(&mut self, grad: &Self, visitor: &mut V) {
        if grad.is_zero_cotangent() {
            return;
        }
        assert_eq!(
            self.shape(),
            grad.shape(),
            "visit: parameter shape {:?} and gradient shape {:?} differ",
            self.shape(),
            grad.shape()
        );
        visitor.leaf(&mut self.data, &grad.data);
    }
}
