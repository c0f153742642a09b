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
    /// `y = -x`: `x̄ = -ȳ`.
    neg_d0() = -d;
}
