//! The neural-network operations: matrix products, `linear`, `conv2d` (im2col + GEMM),
//! `max_pool2d`, activations, `log_softmax` and the losses.

use num_traits::Float;

use super::{cast, gemm, numel, split_at_axis, MatMut, MatRef, Tensor, TensorElement};

/// `ln Σ exp(v)` computed stably around the largest value; `-∞` when empty or all `-∞`.
pub(crate) fn logsumexp<T: Float>(values: impl Iterator<Item = T> + Clone) -> T {
    let max = values.clone().fold(T::neg_infinity(), T::max);
    if max.is_infinite() {
        return max;
    }
    max + values
        .map(|v| (v - max).exp())
        .fold(T::zero(), |s, e| s + e)
        .ln()
}

/// `1 / (1 + e^-x)` without overflow: through `e^x / (1 + e^x)` for negative `x`.
#[inline]
fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// `(rows, in, out)` of `x.linear(w, b)`: `x` is `[..., in]` flattened to `rows × in`, `w` is
/// `[out, in]`.
#[track_caller]
pub(crate) fn linear_dims(x: &[usize], w: &[usize]) -> (usize, usize, usize) {
    match (x.split_last(), w) {
        (Some((&n_in, lead)), &[n_out, w_in]) if n_in == w_in => (numel(lead), n_in, n_out),
        _ => panic!(
            "linear: shapes {x:?} and {w:?} are incompatible (x is [.., in], w is [out, in])"
        ),
    }
}

/// The sizes of a 2-D convolution of an NCHW input with an `[out, in, kh, kw]` weight.
pub(crate) struct ConvGeometry {
    pub(crate) n: usize,
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) o: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) stride: usize,
    pub(crate) padding: usize,
    pub(crate) oh: usize,
    pub(crate) ow: usize,
}

impl ConvGeometry {
    /// Panics, naming both shapes, if `x` is not NCHW, `w` not `[out, in, kh, kw]` with
    /// `in == C`, the stride zero or the kernel larger than the padded input.
    #[track_caller]
    pub(crate) fn new(x: &[usize], w: &[usize], stride: usize, padding: usize) -> Self {
        let (&[n, c, h, xw], &[o, wc, kh, kw]) = (x, w) else {
            panic!("conv2d: shapes {x:?} and {w:?} are incompatible (x is [N, C, H, W], w is [out, in, kh, kw])");
        };
        if c != wc {
            panic!("conv2d: shapes {x:?} and {w:?} are incompatible (the input has {c} channels, the weight expects {wc})");
        }
        if stride == 0 {
            panic!("conv2d: stride must be positive (shapes {x:?} and {w:?})");
        }
        let (ph, pw) = (h + 2 * padding, xw + 2 * padding);
        if kh > ph || kw > pw {
            panic!("conv2d: shapes {x:?} and {w:?} are incompatible (kernel {kh}x{kw} is larger than the padded input {ph}x{pw})");
        }
        Self {
            n,
            c,
            h,
            w: xw,
            o,
            kh,
            kw,
            stride,
            padding,
            oh: (ph - kh) / stride + 1,
            ow: (pw - kw) / stride + 1,
        }
    }

    pub(crate) fn out_shape(&self) -> [usize; 4] {
        [self.n, self.o, self.oh, self.ow]
    }

    /// The length of one patch: a row of the im2col matrix.
    pub(crate) fn patch(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// The output positions per image: a column of the im2col matrix.
    pub(crate) fn pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// The elements of one input image.
    pub(crate) fn image(&self) -> usize {
        self.c * self.h * self.w
    }

    /// The range of output positions along an axis of input length `len` whose input
    /// coordinate `out * stride + k - padding` lies inside the image.
    fn valid(&self, k: usize, len: usize, out_len: usize) -> core::ops::Range<usize> {
        let s = self.stride;
        let lo = self.padding.saturating_sub(k).div_ceil(s);
        let hi = if len + self.padding > k {
            ((len + self.padding - k - 1) / s + 1).min(out_len)
        } else {
            0
        };
        lo.min(hi)..hi
    }

    /// Visits the entries of the im2col matrix that read the image (the others read padding)
    /// as runs along an output row: `f(at, columns, image_row, ix)` says that entries
    /// `at + columns` of the matrix read image elements `image_row + ix`,
    /// `image_row + ix + stride`, and so on.
    fn for_each_run(&self, mut f: impl FnMut(usize, core::ops::Range<usize>, usize, usize)) {
        let pixels = self.pixels();
        for c in 0..self.c {
            for ki in 0..self.kh {
                let ys = self.valid(ki, self.h, self.oh);
                for kj in 0..self.kw {
                    let row = (c * self.kh + ki) * self.kw + kj;
                    let xs = self.valid(kj, self.w, self.ow);
                    if xs.is_empty() {
                        continue;
                    }
                    for oy in ys.clone() {
                        let iy = oy * self.stride + ki - self.padding;
                        let ix0 = xs.start * self.stride + kj - self.padding;
                        f(
                            row * pixels + oy * self.ow,
                            xs.clone(),
                            (c * self.h + iy) * self.w,
                            ix0,
                        );
                    }
                }
            }
        }
    }
}

/// Unfolds one image `x` (`C × H × W`) into `cols`, the `patch × pixels` matrix whose column
/// `p` holds the receptive field of output position `p` (zeros where it covers padding).
pub(crate) fn im2col<T: TensorElement>(x: &[T], g: &ConvGeometry, cols: &mut [T]) {
    if g.padding > 0 {
        cols.fill(T::zero());
    }
    let s = g.stride;
    g.for_each_run(|dst, xs, src, ix0| {
        let dst = &mut cols[dst + xs.start..dst + xs.end];
        if s == 1 {
            dst.copy_from_slice(&x[src + ix0..src + ix0 + dst.len()]);
        } else {
            for (j, v) in dst.iter_mut().enumerate() {
                *v = x[src + ix0 + j * s];
            }
        }
    });
}

/// The adjoint of [`im2col`]: adds every entry of `cols` into the image element it was read
/// from.
pub(crate) fn col2im<T: TensorElement>(cols: &[T], g: &ConvGeometry, x: &mut [T]) {
    let s = g.stride;
    g.for_each_run(|src, xs, dst, ix0| {
        let src = &cols[src + xs.start..src + xs.end];
        for (j, &v) in src.iter().enumerate() {
            let e = &mut x[dst + ix0 + j * s];
            *e = *e + v;
        }
    });
}

/// The sizes `(planes, h, w, oh, ow)` of `max_pool2d(k)` on an NCHW input.
#[track_caller]
pub(crate) fn pool_dims(x: &[usize], k: usize) -> (usize, usize, usize, usize, usize) {
    let &[n, c, h, w] = x else {
        panic!("max_pool2d: input of shape {x:?} is not 4-D (NCHW)");
    };
    if k == 0 || k > h || k > w {
        panic!("max_pool2d: kernel size {k} does not fit the input of shape {x:?}");
    }
    (n * c, h, w, h / k, w / k)
}

/// Calls `f` with the index in `x` of the maximum of every `k × k` window, in the output's
/// row-major order. Ties go to the first maximum in the window's row-major order; NaN counts
/// as the maximum, so it propagates.
pub(crate) fn for_each_argmax<T: TensorElement>(x: &Tensor<T>, k: usize, mut f: impl FnMut(usize)) {
    let (planes, h, w, oh, ow) = pool_dims(&x.shape, k);
    let data = &x.data;
    if k == 2 {
        // the common window as a tree, two independent comparisons and then their winners,
        // selected rather than branched on (which element wins is unpredictable); the first
        // of equal maxima and the first NaN still win, as below
        let pick = |(i, a): (usize, T), (j, b): (usize, T)| {
            let later_wins = (b > a) | (b.is_nan() & !a.is_nan());
            if later_wins {
                (j, b)
            } else {
                (i, a)
            }
        };
        for p in 0..planes {
            for oy in 0..oh {
                let top = (p * h + oy * 2) * w;
                let (upper, lower) = (&data[top..top + 2 * ow], &data[top + w..top + w + 2 * ow]);
                for ox in 0..ow {
                    let (l, r) = (2 * ox, 2 * ox + 1);
                    let first = pick((top + l, upper[l]), (top + r, upper[r]));
                    let second = pick((top + w + l, lower[l]), (top + w + r, lower[r]));
                    f(pick(first, second).0);
                }
            }
        }
        return;
    }
    for p in 0..planes {
        for oy in 0..oh {
            for ox in 0..ow {
                let start = (p * h + oy * k) * w + ox * k;
                let (mut best, mut max) = (start, data[start]);
                for i in 0..k {
                    let row = start + i * w;
                    for (idx, &v) in data[row..row + k].iter().enumerate() {
                        if v > max || (v.is_nan() && !max.is_nan()) {
                            (best, max) = (row + idx, v);
                        }
                    }
                }
                f(best);
            }
        }
    }
}

impl<T: TensorElement> Tensor<T> {
    /// The matrix product of `[m, k]` and `[k, n]` tensors.
    ///
    /// Panics if either is not 2-D or the inner dimensions differ.
    #[track_caller]
    pub fn matmul(&self, other: &Self) -> Self {
        let (&[m, k], &[k2, n]) = (&self.shape[..], &other.shape[..]) else {
            panic!(
                "matmul: shapes {:?} and {:?} are incompatible (both must be 2-D)",
                self.shape, other.shape
            );
        };
        if k != k2 {
            panic!(
                "matmul: shapes {:?} and {:?} are incompatible",
                self.shape, other.shape
            );
        }
        let mut out = vec![T::zero(); m * n];
        gemm(
            T::one(),
            MatRef::new(&self.data, m, k),
            MatRef::new(&other.data, k, n),
            T::zero(),
            MatMut::new(&mut out, m, n),
        );
        Self {
            data: out,
            shape: vec![m, n],
        }
    }

    /// The affine layer `x wᵀ + b` on the last axis: `x` is `[..., in]` (usually
    /// `[N, in]`), `w` is `[out, in]`, `b` is `[out]`; the result is `[..., out]`.
    ///
    /// Panics if the shapes do not fit.
    #[track_caller]
    pub fn linear(&self, w: &Self, b: &Self) -> Self {
        let (rows, n_in, n_out) = linear_dims(&self.shape, &w.shape);
        if b.shape != [n_out] {
            panic!(
                "linear: shapes {:?} and {:?} are incompatible (the bias must be [{n_out}])",
                w.shape, b.shape
            );
        }
        let mut out = Vec::with_capacity(rows * n_out);
        for _ in 0..rows {
            out.extend_from_slice(&b.data);
        }
        gemm(
            T::one(),
            MatRef::new(&self.data, rows, n_in),
            MatRef::new(&w.data, n_out, n_in).t(),
            T::one(),
            MatMut::new(&mut out, rows, n_out),
        );
        let mut shape = self.shape.clone();
        *shape.last_mut().unwrap() = n_out;
        Self { data: out, shape }
    }

    /// The 2-D cross-correlation (PyTorch's `conv2d`) of an NCHW input with a weight
    /// `[out, in, kh, kw]` and a bias `[out]`, zero padding `padding` on every side:
    /// `[N, out, (H + 2p - kh) / stride + 1, (W + 2p - kw) / stride + 1]`.
    ///
    /// Each image is unfolded (im2col) and multiplied by the weight in one GEMM.
    /// Panics if the shapes do not fit or `stride` is zero.
    #[track_caller]
    pub fn conv2d(&self, w: &Self, b: &Self, stride: usize, padding: usize) -> Self {
        let g = ConvGeometry::new(&self.shape, &w.shape, stride, padding);
        if b.shape != [g.o] {
            panic!(
                "conv2d: shapes {:?} and {:?} are incompatible (the bias must be [{}])",
                w.shape, b.shape, g.o
            );
        }
        let (patch, pixels, image) = (g.patch(), g.pixels(), g.image());
        let mut out = vec![T::zero(); g.n * g.o * pixels];
        let mut cols = vec![T::zero(); patch * pixels];
        let weight = MatRef::new(&w.data, g.o, patch);
        for i in 0..g.n {
            im2col(&self.data[i * image..(i + 1) * image], &g, &mut cols);
            let out_i = &mut out[i * g.o * pixels..(i + 1) * g.o * pixels];
            for (o, &bias) in b.data.iter().enumerate() {
                out_i[o * pixels..(o + 1) * pixels].fill(bias);
            }
            gemm(
                T::one(),
                weight,
                MatRef::new(&cols, patch, pixels),
                T::one(),
                MatMut::new(out_i, g.o, pixels),
            );
        }
        Self {
            data: out,
            shape: g.out_shape().to_vec(),
        }
    }

    /// The maximum of every `k × k` window (stride `k`) of an NCHW input:
    /// `[N, C, H / k, W / k]`, rows and columns that do not fill a window dropped.
    ///
    /// Panics if the input is not 4-D or `k` is zero or larger than the image.
    #[track_caller]
    pub fn max_pool2d(&self, k: usize) -> Self {
        let (planes, _, _, oh, ow) = pool_dims(&self.shape, k);
        let mut data = Vec::with_capacity(planes * oh * ow);
        for_each_argmax(self, k, |i| data.push(self.data[i]));
        let shape = vec![self.shape[0], self.shape[1], oh, ow];
        Self { data, shape }
    }

    /// `max(x, 0)` elementwise (NaN stays NaN).
    pub fn relu(&self) -> Self {
        self.map(|x| if x < T::zero() { T::zero() } else { x })
    }

    /// `tanh x` elementwise.
    pub fn tanh(&self) -> Self {
        self.map(Float::tanh)
    }

    /// The logistic function `1 / (1 + e^-x)` elementwise, exact to rounding for any `x`
    /// (no overflow for large `|x|`).
    pub fn sigmoid(&self) -> Self {
        self.map(sigmoid)
    }

    /// `x - ln Σ exp(x)` along `axis`, computed around the maximum so that large inputs do
    /// not overflow.
    ///
    /// Panics if `axis` is out of range.
    #[track_caller]
    pub fn log_softmax(&self, axis: usize) -> Self {
        let (outer, len, inner) = split_at_axis("log_softmax", &self.shape, axis);
        let mut out = self.clone();
        for o in 0..outer {
            for i in 0..inner {
                let base = o * len * inner + i;
                let lane = (0..len).map(|j| self.data[base + j * inner]);
                let lse = logsumexp(lane);
                for j in 0..len {
                    let y = &mut out.data[base + j * inner];
                    *y = *y - lse;
                }
            }
        }
        out
    }

    /// The cross-entropy of logits `[N, C]` with integer class labels: the mean over the
    /// batch of `-log softmax(x)[i, labels[i]]`, computed stably as
    /// `logsumexp(x[i]) - x[i, labels[i]]`.
    ///
    /// Panics if the logits are not `[labels.len(), C]` or a label is not below `C`.
    #[track_caller]
    pub fn cross_entropy(&self, labels: &[usize]) -> T {
        let (n, c) = cross_entropy_dims(&self.shape, labels);
        let total = (0..n).fold(T::zero(), |acc, i| {
            let row = &self.data[i * c..(i + 1) * c];
            acc + logsumexp(row.iter().copied()) - row[labels[i]]
        });
        total / cast(n)
    }

    /// The mean squared error `mean((x - target)²)` of tensors of one shape.
    ///
    /// Panics if the shapes differ.
    #[track_caller]
    pub fn mse(&self, target: &Self) -> T {
        if self.shape != target.shape {
            panic!(
                "mse: shapes {:?} and {:?} are incompatible",
                self.shape, target.shape
            );
        }
        let total = self
            .data
            .iter()
            .zip(&target.data)
            .fold(T::zero(), |acc, (&x, &t)| acc + (x - t) * (x - t));
        total / cast(self.data.len())
    }
}

/// `(N, C)` of cross-entropy logits, after checking them against the labels.
#[track_caller]
pub(crate) fn cross_entropy_dims(x: &[usize], labels: &[usize]) -> (usize, usize) {
    let &[n, c] = x else {
        panic!(
            "cross_entropy: shapes {x:?} and [{}] are incompatible (logits are [N, C])",
            labels.len()
        );
    };
    if n != labels.len() {
        panic!(
            "cross_entropy: shapes {x:?} and [{}] are incompatible (one label per row)",
            labels.len()
        );
    }
    if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| l >= c) {
        panic!("cross_entropy: label {l} at position {i} is out of range for {c} classes");
    }
    (n, c)
}
