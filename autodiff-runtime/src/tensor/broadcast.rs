//! NumPy broadcasting: the shape two operands broadcast to, elementwise operations over it,
//! and [`unbroadcast_to`], the sum of a broadcast result back to an operand's shape (the
//! adjoint of broadcasting).

use super::{numel, Tensor, TensorElement};

/// The shape `a` and `b` broadcast to (trailing axes aligned, an axis of length 1 stretched to
/// the other's length), or `None` if they are incompatible.
pub(crate) fn broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let n = a.len().max(b.len());
    let axis = |s: &[usize], i: usize| {
        if i + s.len() >= n {
            s[i + s.len() - n]
        } else {
            1
        }
    };
    (0..n)
        .map(|i| match (axis(a, i), axis(b, i)) {
            (x, y) if x == y || y == 1 => Some(x),
            (1, y) => Some(y),
            _ => None,
        })
        .collect()
}

#[track_caller]
fn broadcast_or_panic(op: &str, a: &[usize], b: &[usize]) -> Vec<usize> {
    broadcast_shape(a, b).unwrap_or_else(|| panic!("{op}: shapes {a:?} and {b:?} are incompatible"))
}

/// The strides with which an operand of shape `shape` is read as a tensor of the broadcast
/// shape `out`: row-major strides on its own axes, 0 on stretched and missing ones.
fn strides_in(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; out.len()];
    let offset = out.len() - shape.len();
    let mut stride = 1;
    for (i, &len) in shape.iter().enumerate().rev() {
        strides[offset + i] = if len == 1 { 0 } else { stride };
        stride *= len;
    }
    strides
}

/// A walk over the elements of shape `out` in row-major order that reads two operands with
/// the strides `sa` and `sb`, one row (last axis) at a time.
struct Walk<'s> {
    out: &'s [usize],
    sa: &'s [usize],
    sb: &'s [usize],
}

impl Walk<'_> {
    /// `(len, stride in a, stride in b)` of the last axis; a 0-d walk is one row of length 1.
    fn row(&self) -> (usize, usize, usize) {
        match (self.out.last(), self.sa.last(), self.sb.last()) {
            (Some(&len), Some(&ia), Some(&ib)) => (len, ia, ib),
            _ => (1, 0, 0),
        }
    }

    /// Calls `f` with the offsets of the first element of every row in `a` and `b`.
    fn rows(&self, mut f: impl FnMut(usize, usize)) {
        if self.out.contains(&0) {
            return;
        }
        let outer = &self.out[..self.out.len().saturating_sub(1)];
        let mut index = vec![0; outer.len()];
        let (mut oa, mut ob) = (0, 0);
        loop {
            f(oa, ob);
            let mut axis = outer.len();
            loop {
                if axis == 0 {
                    return;
                }
                axis -= 1;
                index[axis] += 1;
                oa += self.sa[axis];
                ob += self.sb[axis];
                if index[axis] < outer[axis] {
                    break;
                }
                index[axis] = 0;
                oa -= self.sa[axis] * outer[axis];
                ob -= self.sb[axis] * outer[axis];
            }
        }
    }
}

/// `f(a, b)` elementwise over the broadcast shape of `a` and `b`.
///
/// Panics, naming `op` and both shapes, if they do not broadcast.
#[track_caller]
pub(crate) fn zip_with<T: TensorElement>(
    op: &str,
    a: &Tensor<T>,
    b: &Tensor<T>,
    f: impl Fn(T, T) -> T,
) -> Tensor<T> {
    if a.shape == b.shape {
        let data = a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect();
        return Tensor {
            data,
            shape: a.shape.clone(),
        };
    }
    let out = broadcast_or_panic(op, &a.shape, &b.shape);
    let (sa, sb) = (strides_in(&a.shape, &out), strides_in(&b.shape, &out));
    let walk = Walk {
        out: &out,
        sa: &sa,
        sb: &sb,
    };
    let (len, ia, ib) = walk.row();
    let mut data = Vec::with_capacity(numel(&out));
    walk.rows(|oa, ob| match (ia, ib) {
        (1, 1) => data.extend(
            a.data[oa..oa + len]
                .iter()
                .zip(&b.data[ob..ob + len])
                .map(|(&x, &y)| f(x, y)),
        ),
        (1, 0) => {
            let y = b.data[ob];
            data.extend(a.data[oa..oa + len].iter().map(|&x| f(x, y)));
        }
        (0, 1) => {
            let x = a.data[oa];
            data.extend(b.data[ob..ob + len].iter().map(|&y| f(x, y)));
        }
        _ => data.extend((0..len).map(|j| f(a.data[oa + j * ia], b.data[ob + j * ib]))),
    });
    Tensor { data, shape: out }
}

/// `a + b` (for `f = +`) written into `a`'s storage when `b` broadcasts to `a`'s shape, and
/// into a new tensor otherwise.
#[track_caller]
pub(crate) fn zip_into_lhs<T: TensorElement>(
    op: &str,
    a: Tensor<T>,
    b: &Tensor<T>,
    f: impl Fn(T, T) -> T,
) -> Tensor<T> {
    let out = broadcast_or_panic(op, &a.shape, &b.shape);
    if out == a.shape {
        zip_in_place(a, b, f)
    } else {
        zip_with(op, &a, b, f)
    }
}

/// `a + b` (for `f = +`) written into `b`'s storage when `a` broadcasts to `b`'s shape, and
/// into a new tensor otherwise.
#[track_caller]
pub(crate) fn zip_into_rhs<T: TensorElement>(
    op: &str,
    a: &Tensor<T>,
    b: Tensor<T>,
    f: impl Fn(T, T) -> T,
) -> Tensor<T> {
    let out = broadcast_or_panic(op, &a.shape, &b.shape);
    if out == b.shape {
        zip_in_place(b, a, |y, x| f(x, y))
    } else {
        zip_with(op, a, &b, f)
    }
}

/// `dst[i] = f(dst[i], other[i])` where `other` broadcasts to `dst`'s shape.
fn zip_in_place<T: TensorElement>(
    mut dst: Tensor<T>,
    other: &Tensor<T>,
    f: impl Fn(T, T) -> T,
) -> Tensor<T> {
    if dst.shape == other.shape {
        for (x, &y) in dst.data.iter_mut().zip(&other.data) {
            *x = f(*x, y);
        }
        return dst;
    }
    let (sd, so) = (
        strides_in(&dst.shape, &dst.shape),
        strides_in(&other.shape, &dst.shape),
    );
    let walk = Walk {
        out: &dst.shape,
        sa: &sd,
        sb: &so,
    };
    let (len, _, io) = walk.row();
    let mut data = core::mem::take(&mut dst.data);
    walk.rows(|od, oo| {
        let row = &mut data[od..od + len];
        if io == 0 {
            let y = other.data[oo];
            row.iter_mut().for_each(|x| *x = f(*x, y));
        } else {
            let src = &other.data[oo..oo + len];
            row.iter_mut().zip(src).for_each(|(x, &y)| *x = f(*x, y));
        }
    });
    dst.data = data;
    dst
}

/// `d` summed over the axes along which a tensor of shape `shape` was broadcast to `d`'s
/// shape, giving a tensor of shape `shape`.
///
/// Panics, naming `op`, if `shape` does not broadcast to `d`'s shape.
#[track_caller]
pub(crate) fn unbroadcast_to<T: TensorElement>(
    op: &str,
    d: Tensor<T>,
    shape: &[usize],
) -> Tensor<T> {
    if d.shape == shape {
        return d;
    }
    unbroadcast_from(op, &d, shape)
}

/// [`unbroadcast_to`] of a borrowed `d`: a copy when `d` has `shape` already.
#[track_caller]
pub(crate) fn unbroadcast_from<T: TensorElement>(
    op: &str,
    d: &Tensor<T>,
    shape: &[usize],
) -> Tensor<T> {
    if d.shape == shape {
        return d.clone();
    }
    if broadcast_shape(shape, &d.shape).as_deref() != Some(&d.shape[..]) {
        panic!("{op}: shape {shape:?} does not broadcast to {:?}", d.shape);
    }
    let (st, sd) = (strides_in(shape, &d.shape), strides_in(&d.shape, &d.shape));
    let walk = Walk {
        out: &d.shape,
        sa: &st,
        sb: &sd,
    };
    let (len, it, _) = walk.row();
    let mut data = vec![T::zero(); numel(shape)];
    walk.rows(|ot, od| {
        let src = &d.data[od..od + len];
        if it == 0 {
            data[ot] = data[ot] + src.iter().copied().sum();
        } else {
            let dst = &mut data[ot..ot + len];
            dst.iter_mut().zip(src).for_each(|(x, &y)| *x = *x + y);
        }
    });
    Tensor {
        data,
        shape: shape.to_vec(),
    }
}
