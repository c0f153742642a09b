//! Rules for the arithmetic operators `+`, `-`, `*`, `/`, `%` and unary `-`.

use num_traits::Float;

scalar_rules! {
    cotangent d;

    /// `y = a + b`: `ā = ȳ`.
    add_d0() = d;
    /// `y = a + b`: `b̄ = ȳ`.
    add_d1() = d;
    /// `y = a - b`: `ā = ȳ`.
    sub_d0() = d;
    /// `y = a - b`: `b̄ = -ȳ`.
    sub_d1() = -d;
    /// `y = a * b`: `ā = ȳ b`.
    mul_d0(b) = d * b;
    /// `y = a * b`: `b̄ = a ȳ`.
    mul_d1(a) = a * d;
    /// `y = a / b`: `ā = ȳ / b`.
    div_d0(b) = d / b;
    /// `y = a / b`: `b̄ = -ȳ a / b² = -(ȳ / b) y`. Written with the quotient `ȳ / b` of
    /// [`div_d0`], which the optimiser then computes once when both operands are active (a
    /// division costs several multiplications).
    div_d1(b, y) = -(d / b) * y;
    /// `y = a % b = a - b trunc(a / b)` (the float remainder): `ā = ȳ`, since the
    /// truncated quotient is locally constant.
    rem_d0() = d;
    /// `y = a % b = a - b trunc(a / b)`: `b̄ = -ȳ trunc(a / b)`.
    rem_d1(a, b) = -d * (a / b).trunc();
    /// `y = a.rem_euclid(b) = a - b q`, `q = a.div_euclid(b)` (the Euclidean remainder,
    /// never negative): `ā = ȳ`, since `q` is locally constant.
    rem_euclid_d0() = d;
    /// `y = a.rem_euclid(b) = a - b q`: `b̄ = -ȳ q`.
    rem_euclid_d1(a, b) = -d * div_euclid(a, b);
    /// `y = -x`: `x̄ = -ȳ`.
    neg_d0() = -d;
}

/// `a.div_euclid(b)` for any float, as the standard library computes it for `f64`: the
/// truncated quotient, moved one step down (or up, for a negative `b`) when the remainder is
/// negative.
fn div_euclid<T: Float>(a: T, b: T) -> T {
    let q = (a / b).trunc();
    if a % b < T::zero() {
        if b > T::zero() {
            q - T::one()
        } else {
            q + T::one()
        }
    } else {
        q
    }
}
