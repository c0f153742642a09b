//! The one table that maps syntax (operators, float methods) to derivative rules in the runtime.
//!
//! Each differentiable primitive lists, per argument, the runtime rule giving that argument's
//! cotangent and the forward values the rule reads. The rules themselves, and their math,
//! live in `autodiff-runtime/src/rules/`; the macro only emits calls
//! `::autodiff::__private::rules::<rule>(&read0, &read1, ..., d)`.

/// A forward value a rule reads: an argument of the primitive or its result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The n-th argument (the receiver of a method is argument 0).
    Arg(usize),
    /// The primitive's result.
    Result,
    /// The result of its sibling on the same argument in the same block: `cos x` for
    /// `sin x` and the reverse (see [`SIN_FROM_COS`]).
    Sibling,
    /// Only the shape of the n-th argument (a tensor): when nothing else of the backward
    /// pass reads that tensor, the pullback keeps its dimensions instead of its elements.
    Shape(usize),
}

/// The pullback of one argument: a runtime function and what it reads.
#[derive(Debug)]
pub struct Rule {
    /// The function's name in `autodiff_runtime::rules`.
    pub path: &'static str,
    /// The forward values it takes by reference, in order; the cotangent comes last.
    pub reads: &'static [Read],
}

/// How a primitive's derivative is obtained.
#[derive(Debug)]
pub enum Derivative {
    /// One entry per argument; `None` where the argument cannot carry a derivative (the
    /// integer exponent of `powi`).
    Rules(&'static [Option<Rule>]),
    /// Piecewise constant (`floor`, `signum`) or not a number (`is_nan`): the result is a
    /// constant and no derivative flows through.
    Zero,
}

/// The type of an argument or result, relative to the primitive's first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    /// The type of argument 0 (for floats: the float type itself).
    Same,
    /// `i32`.
    I32,
    /// `bool`.
    Bool,
    /// `usize`.
    Usize,
    /// The element type of argument 0 (a tensor's scalar).
    Elem,
    /// A nalgebra matrix of a shape the macro cannot tell (a product, a transpose).
    Matrix,
    /// The type of argument 1 (the right-hand side of a linear solve).
    Second,
    /// A column of the matrix argument 0 (`m.column(j)`, `m.diagonal()`).
    Column,
    /// A row of the matrix argument 0 (`m.row(i)`).
    Row,
    /// Consecutive rows of the matrix argument 0 (`m.rows(i, n)`): a dynamic number of rows.
    Rows,
    /// Consecutive columns of the matrix argument 0 (`m.columns(j, n)`).
    Columns,
}

/// A primitive operation.
#[derive(Debug)]
pub struct Primitive {
    /// The method or operator name, used in the IR text form.
    pub name: &'static str,
    /// Number of arguments, the receiver included.
    pub arity: usize,
    /// Derivative rules.
    pub derivative: Derivative,
    /// Argument types after the receiver (the receiver is `Ty::Same` by definition).
    pub arg_types: &'static [Ty],
    /// The result type.
    pub result: Ty,
}

macro_rules! read {
    (x) => {
        Read::Arg(0)
    };
    (a) => {
        Read::Arg(0)
    };
    (b) => {
        Read::Arg(1)
    };
    (lo) => {
        Read::Arg(1)
    };
    (hi) => {
        Read::Arg(2)
    };
    (n) => {
        Read::Arg(1)
    };
    (p) => {
        Read::Arg(1)
    };
    (y) => {
        Read::Result
    };
}

macro_rules! rule {
    (none()) => {
        None
    };
    ($path:ident($($read:ident),*)) => {
        Some(Rule { path: stringify!($path), reads: &[$(read!($read)),*] })
    };
}

macro_rules! derivative {
    (zero()) => {
        Derivative::Zero
    };
    ($($path:ident($($read:ident),*))|*) => {
        Derivative::Rules(&[$(rule!($path($($read),*))),*])
    };
}

macro_rules! primitives {
    ($($konst:ident $name:literal [$($arg_ty:ident),*] -> $result:ident : $($path:ident($($read:ident),*))|* ;)*) => {
        $(
            #[doc = concat!("The `", $name, "` primitive.")]
            pub static $konst: Primitive = Primitive {
                name: $name,
                arity: 1 + <[Ty]>::len(&[$(Ty::$arg_ty),*]),
                derivative: derivative!($($path($($read),*))|*),
                arg_types: &[$(Ty::$arg_ty),*],
                result: Ty::$result,
            };
        )*
        /// Every primitive, searched by name.
        pub static ALL: &[&Primitive] = &[$(&$konst),*];
    };
}

/// The rule of `sin x` when the same block computes `cos x` too (ADBench's Rodrigues rotation
/// uses both): the derivative is that saved value, not `cos x` evaluated again in every
/// backward pass.
pub static SIN_FROM_COS: Rule = Rule {
    path: "sin_d0_with_cos",
    reads: &[Read::Sibling],
};

/// The rule of `cos x` when the same block computes `sin x` too (see [`SIN_FROM_COS`]).
pub static COS_FROM_SIN: Rule = Rule {
    path: "cos_d0_with_sin",
    reads: &[Read::Sibling],
};

/// The rule of the divisor in `1.0 / b` (a sigmoid's `1 / (1 + e^-x)`, Rodrigues' `1 / θ`):
/// `b̄ = -ȳ y²`, the rule of `recip`, where [`DIV`]'s `-(ȳ / b) y` would divide again in every
/// backward pass (a division costs several multiplications).
pub static DIV_OF_ONE: Rule = Rule {
    path: "recip_d0",
    reads: &[Read::Result],
};

// name, argument types after the receiver, result type, then one rule per argument
// (`rule(reads)`; `none()` for an argument without a derivative) or `zero()`.
primitives! {
    ADD "add" [Same] -> Same: add_d0() | add_d1();
    SUB "sub" [Same] -> Same: sub_d0() | sub_d1();
    MUL "mul" [Same] -> Same: mul_d0(b) | mul_d1(a);
    DIV "div" [Same] -> Same: div_d0(b) | div_d1(b, y);
    REM "rem" [Same] -> Same: rem_d0() | rem_d1(a, b);
    NEG "neg" [] -> Same: neg_d0();

    SIN "sin" [] -> Same: sin_d0(x);
    COS "cos" [] -> Same: cos_d0(x);
    TAN "tan" [] -> Same: tan_d0(y);
    ASIN "asin" [] -> Same: asin_d0(x);
    ACOS "acos" [] -> Same: acos_d0(x);
    ATAN "atan" [] -> Same: atan_d0(x);
    ATAN2 "atan2" [Same] -> Same: atan2_d0(a, b) | atan2_d1(a, b);
    SINH "sinh" [] -> Same: sinh_d0(x);
    COSH "cosh" [] -> Same: cosh_d0(x);
    TANH "tanh" [] -> Same: tanh_d0(y);
    ASINH "asinh" [] -> Same: asinh_d0(x);
    ACOSH "acosh" [] -> Same: acosh_d0(x);
    ATANH "atanh" [] -> Same: atanh_d0(x);
    EXP "exp" [] -> Same: exp_d0(y);
    EXP2 "exp2" [] -> Same: exp2_d0(y);
    EXP_M1 "exp_m1" [] -> Same: exp_m1_d0(y);
    LN "ln" [] -> Same: ln_d0(x);
    LOG "log" [Same] -> Same: log_d0(x, b) | log_d1(x, b);
    LOG2 "log2" [] -> Same: log2_d0(x);
    LOG10 "log10" [] -> Same: log10_d0(x);
    LN_1P "ln_1p" [] -> Same: ln_1p_d0(x);
    SQRT "sqrt" [] -> Same: sqrt_d0(y);
    CBRT "cbrt" [] -> Same: cbrt_d0(y);
    POWI "powi" [I32] -> Same: powi_d0(x, n) | none();
    POWF "powf" [Same] -> Same: powf_d0(x, p) | powf_d1(x, y);
    RECIP "recip" [] -> Same: recip_d0(y);
    ABS "abs" [] -> Same: abs_d0(x);
    HYPOT "hypot" [Same] -> Same: hypot_d0(a, y) | hypot_d1(b, y);
    MUL_ADD "mul_add" [Same, Same] -> Same: mul_add_d0(b) | mul_add_d1(x) | mul_add_d2();
    MAX "max" [Same] -> Same: max_d0(a, b) | max_d1(a, b);
    MIN "min" [Same] -> Same: min_d0(a, b) | min_d1(a, b);
    CLAMP "clamp" [Same, Same] -> Same: clamp_d0(x, lo, hi) | clamp_d1(x, lo) | clamp_d2(x, hi);
    FRACT "fract" [] -> Same: fract_d0();
    REM_EUCLID "rem_euclid" [Same] -> Same: rem_euclid_d0() | rem_euclid_d1(a, b);
    TO_DEGREES "to_degrees" [] -> Same: to_degrees_d0();
    TO_RADIANS "to_radians" [] -> Same: to_radians_d0();

    FLOOR "floor" [] -> Same: zero();
    CEIL "ceil" [] -> Same: zero();
    ROUND "round" [] -> Same: zero();
    TRUNC "trunc" [] -> Same: zero();
    SIGNUM "signum" [] -> Same: zero();
    IS_NAN "is_nan" [] -> Bool: zero();
    IS_FINITE "is_finite" [] -> Bool: zero();
    IS_INFINITE "is_infinite" [] -> Bool: zero();
    IS_SIGN_POSITIVE "is_sign_positive" [] -> Bool: zero();
    IS_SIGN_NEGATIVE "is_sign_negative" [] -> Bool: zero();
}

/// The trip counts of loops over `x.windows(k)`, `x.chunks(k)` and `x.chunks_exact(k)`, as
/// `rules::windows_count(len, k)` and its siblings: integers, through which no derivative
/// flows, which panic on a zero `k` with the slice method's own message. Never looked up by
/// name (a user's method of the same name stays the user's).
pub static CHUNK_COUNTS: [Primitive; 3] = [
    chunk_count("windows_count"),
    chunk_count("chunks_count"),
    chunk_count("chunks_exact_count"),
];

const fn chunk_count(name: &'static str) -> Primitive {
    Primitive {
        name,
        arity: 2,
        derivative: Derivative::Zero,
        arg_types: &[Ty::Usize],
        result: Ty::Usize,
    }
}

/// Whether `p` is one of [`CHUNK_COUNTS`], emitted as a call of the runtime function.
pub fn is_chunk_count(p: &Primitive) -> bool {
    CHUNK_COUNTS.iter().any(|q| std::ptr::eq(q, p))
}

/// The primitive called `name` with `arity` arguments (receiver included), if any.
/// Operators are not found here; see [`binary`] and [`NEG`].
pub fn method(name: &str, arity: usize) -> Option<&'static Primitive> {
    ALL.iter()
        .copied()
        .filter(|p| !matches!(p.name, "add" | "sub" | "mul" | "div" | "rem" | "neg"))
        .find(|p| p.name == name && p.arity == arity)
}

/// Whether some primitive is called `name`, whatever its arity.
pub fn is_method_name(name: &str) -> bool {
    ALL.iter().any(|p| p.name == name)
}

/// How many arguments (after the receiver) the primitives called `name` take, in words:
/// `"one argument"`, `"no argument"`, `"two arguments"`.
pub fn argument_counts(name: &str) -> String {
    let words = |n: usize| match n {
        0 => "no argument",
        1 => "one argument",
        2 => "two arguments",
        _ => "more arguments",
    };
    let mut counts: Vec<usize> = ALL
        .iter()
        .filter(|p| p.name == name)
        .map(|p| p.arity - 1)
        .collect();
    counts.sort_unstable();
    counts.dedup();
    counts
        .iter()
        .map(|n| words(*n))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The primitive behind an arithmetic operator.
pub fn binary(op: crate::ir::BinaryOp) -> Option<&'static Primitive> {
    use crate::ir::BinaryOp;
    match op {
        BinaryOp::Add => Some(&ADD),
        BinaryOp::Sub => Some(&SUB),
        BinaryOp::Mul => Some(&MUL),
        BinaryOp::Div => Some(&DIV),
        BinaryOp::Rem => Some(&REM),
        BinaryOp::Bit(_) | BinaryOp::Compare(_) => None,
    }
}

/// Operations on `Tensor<T>`, whose rules live in `autodiff_runtime::rules::tensor`.
pub mod tensor {
    use super::{Derivative, Primitive, Read, Rule, Ty};

    macro_rules! read {
        (x) => {
            Read::Arg(0)
        };
        (a) => {
            Read::Arg(0)
        };
        (b) => {
            Read::Arg(1)
        };
        (w) => {
            Read::Arg(1)
        };
        (arg1) => {
            Read::Arg(1)
        };
        (stride) => {
            Read::Arg(3)
        };
        (padding) => {
            Read::Arg(4)
        };
        (shape_of_a) => {
            Read::Shape(0)
        };
        (shape_of_b) => {
            Read::Shape(1)
        };
        (y) => {
            Read::Result
        };
    }

    macro_rules! rule {
        (none()) => {
            None
        };
        ($path:ident($($read:ident),*)) => {
            Some(Rule { path: concat!("tensor::", stringify!($path)), reads: &[$(read!($read)),*] })
        };
    }

    macro_rules! derivative {
        (zero()) => {
            Derivative::Zero
        };
        ($($path:ident($($read:ident),*))|*) => {
            Derivative::Rules(&[$(rule!($path($($read),*))),*])
        };
    }

    macro_rules! tensor_ops {
        ($($konst:ident $name:literal $arity:literal $(($($arg:ident),*))? -> $result:ident : $($path:ident($($read:ident),*))|* ;)*) => {
            $(
                #[doc = concat!("`Tensor::", $name, "`.")]
                pub static $konst: Primitive = Primitive {
                    name: $name,
                    arity: $arity,
                    derivative: derivative!($($path($($read),*))|*),
                    arg_types: &[$($(Ty::$arg),*)?],
                    result: Ty::$result,
                };
            )*
            /// Every tensor method, searched by name.
            pub static METHODS: &[&Primitive] = &[$(&$konst),*];
        };
    }

    // name, arity (receiver included), the types of the arguments after the receiver where
    // the analysis can tell them (`Same`: tensors like the receiver, so that `p.w` in
    // `x.matmul(&p.w)` is known to be one), result (`Same`: a tensor; `Elem`: its scalar),
    // then one rule per argument
    tensor_ops! {
        MATMUL "matmul" 2 (Same) -> Same: matmul_d0(b) | matmul_d1(a);
        LINEAR "linear" 3 (Same, Same) -> Same: linear_d0(w) | linear_d1(x) | linear_d2();
        CONV2D "conv2d" 5 (Same, Same, Usize, Usize) -> Same: conv2d_d0(x, w, stride, padding) | conv2d_d1(x, w, stride, padding) | conv2d_d2() | none() | none();
        MAX_POOL2D "max_pool2d" 2 -> Same: max_pool2d_d0(x, arg1) | none();
        RELU "relu" 1 -> Same: relu_d0(y);
        TANH "tanh" 1 -> Same: tanh_d0(y);
        SIGMOID "sigmoid" 1 -> Same: sigmoid_d0(y);
        EXP "exp" 1 -> Same: exp_d0(y);
        LN "ln" 1 -> Same: ln_d0(x);
        SQRT "sqrt" 1 -> Same: sqrt_d0(y);
        ABS "abs" 1 -> Same: abs_d0(x);
        SIN "sin" 1 -> Same: sin_d0(x);
        COS "cos" 1 -> Same: cos_d0(x);
        POWI "powi" 2 -> Same: powi_d0(x, arg1) | none();
        TRANSPOSE "transpose" 1 -> Same: transpose_d0();
        LOG_SOFTMAX "log_softmax" 2 -> Same: log_softmax_d0(y, arg1) | none();
        CROSS_ENTROPY "cross_entropy" 2 -> Elem: cross_entropy_d0(x, arg1) | none();
        MSE "mse" 2 (Same) -> Elem: mse_d0(x, arg1) | mse_d1(x, arg1);
        RESHAPE "reshape" 2 -> Same: reshape_d0(shape_of_a) | none();
        SUM "sum" 1 -> Elem: sum_d0(shape_of_a);
        MEAN "mean" 1 -> Elem: mean_d0(shape_of_a);
        SUM_AXIS "sum_axis" 2 -> Same: sum_axis_d0(shape_of_a, arg1) | none();
        ADD "add" 2 -> Same: add_d0(shape_of_a) | add_d1(shape_of_b);
        SUB "sub" 2 -> Same: sub_d0(shape_of_a) | sub_d1(shape_of_b);
        MUL "mul" 2 -> Same: mul_d0(a, b) | mul_d1(a, b);
        NEG "neg" 1 -> Same: neg_d0();
        MUL_SCALAR "mul_scalar" 2 -> Same: mul_scalar_d0(b) | mul_scalar_d1(a);
        SCALAR_MUL "scalar_mul" 2 -> Same: mul_scalar_d1(b) | mul_scalar_d0(a);
        ADD_SCALAR "add_scalar" 2 -> Same: add_scalar_d0() | add_scalar_d1();
        SCALAR_ADD "scalar_add" 2 -> Same: add_scalar_d1() | add_scalar_d0();
        SUB_SCALAR "sub_scalar" 2 -> Same: sub_scalar_d0() | sub_scalar_d1();
        SCALAR_SUB "scalar_sub" 2 -> Same: add_scalar_d1() | neg_d0();
    }

    /// The tensor method called `name` with `arity` arguments, receiver included.
    pub fn method(name: &str, arity: usize) -> Option<&'static Primitive> {
        METHODS
            .iter()
            .copied()
            .find(|p| p.name == name && p.arity == arity)
    }

    /// Whether `name` is a method only tensors have (so the receiver must be a tensor).
    pub fn is_tensor_only(name: &str) -> bool {
        matches!(
            name,
            "matmul"
                | "linear"
                | "conv2d"
                | "max_pool2d"
                | "relu"
                | "sigmoid"
                | "log_softmax"
                | "cross_entropy"
                | "mse"
                | "reshape"
                | "sum_axis"
        )
    }
}

/// Whether `rule` only reads its cotangent (it takes `impl Borrow<Tensor<T>>`): a cotangent
/// that several rules read is lent to these rather than cloned for each.
pub fn borrows_cotangent(rule: &Rule) -> bool {
    matches!(
        rule.path,
        "tensor::matmul_d0"
            | "tensor::matmul_d1"
            | "tensor::linear_d0"
            | "tensor::linear_d1"
            | "tensor::conv2d_d0"
            | "tensor::conv2d_d1"
    )
}

/// Whether the method call written for `p` only borrows its receiver (`&self`): every
/// method of our tensors, and nalgebra's except `try_inverse` (which consumes it) and
/// `solve` (written through a copy of it).
pub fn borrows_receiver(p: &Primitive) -> bool {
    let listed = |methods: &[&Primitive]| methods.iter().any(|q| std::ptr::eq(*q, p));
    let operator = matches!(p.name, "add" | "sub" | "mul" | "neg")
        || p.name.ends_with("_scalar")
        || p.name.starts_with("scalar_");
    !operator
        && (listed(tensor::METHODS)
            || (listed(linalg::METHODS)
                && !std::ptr::eq(p, &linalg::INVERSE)
                && !std::ptr::eq(p, &linalg::SOLVE))
            || std::ptr::eq(p, &linalg::NROWS)
            || std::ptr::eq(p, &linalg::NCOLS)
            || linalg::is_part(p))
}

/// Operations on nalgebra matrices and vectors, whose rules live in
/// `autodiff_runtime::rules::linalg`.
pub mod linalg {
    use super::{Derivative, Primitive, Read, Rule, Ty};

    macro_rules! read {
        (a) => {
            Read::Arg(0)
        };
        (x) => {
            Read::Arg(0)
        };
        (b) => {
            Read::Arg(1)
        };
        (y) => {
            Read::Result
        };
    }

    macro_rules! rule {
        ($path:ident($($read:ident),*)) => {
            Some(Rule { path: concat!("linalg::", stringify!($path)), reads: &[$(read!($read)),*] })
        };
    }

    macro_rules! linalg_ops {
        ($($konst:ident $name:literal $arity:literal -> $result:ident : $($path:ident($($read:ident),*))|* ;)*) => {
            $(
                #[doc = concat!("`", $name, "` on nalgebra values.")]
                pub static $konst: Primitive = Primitive {
                    name: $name,
                    arity: $arity,
                    derivative: Derivative::Rules(&[$(rule!($path($($read),*))),*]),
                    arg_types: &[],
                    result: Ty::$result,
                };
            )*
            /// Every nalgebra method, searched by name.
            pub static METHODS: &[&Primitive] = &[$(&$konst),*];
        };
    }

    // name, arity (receiver included), result (`Same`: the receiver's type; `Elem`: its
    // scalar; `Matrix`: a matrix of another shape), then one rule per argument
    linalg_ops! {
        TRANSPOSE "transpose" 1 -> Matrix: transpose_d0();
        DOT "dot" 2 -> Elem: dot_d0(b) | dot_d1(a);
        NORM "norm" 1 -> Elem: norm_d0(x, y);
        NORM_SQUARED "norm_squared" 1 -> Elem: norm_squared_d0(x);
        NORMALIZE "normalize" 1 -> Same: normalize_d0(x);
        CROSS "cross" 2 -> Same: cross_d0(b) | cross_d1(a);
        COMPONENT_MUL "component_mul" 2 -> Same: component_mul_d0(b) | component_mul_d1(a);
        COMPONENT_DIV "component_div" 2 -> Same: component_div_d0(b) | component_div_d1(a, b);
        SUM "sum" 1 -> Elem: sum_d0(x);
        MEAN "mean" 1 -> Elem: mean_d0(x);
        TRACE "trace" 1 -> Elem: trace_d0(x);
        DETERMINANT "determinant" 1 -> Elem: determinant_d0(x);
        ADD "add" 2 -> Same: add_d0() | add_d1();
        SUB "sub" 2 -> Same: sub_d0() | sub_d1();
        MUL "mul" 2 -> Matrix: mul_d0(a, b) | mul_d1(a, b);
        NEG "neg" 1 -> Same: neg_d0();
        INVERSE "try_inverse" 1 -> Same: try_inverse_d0(y);
        SOLVE "solve" 2 -> Second: solve_d0(a, y) | solve_d1(a);
    }

    /// `m.nrows()`: an integer, through which no derivative flows.
    pub static NROWS: Primitive = Primitive {
        name: "nrows",
        arity: 1,
        derivative: Derivative::Zero,
        arg_types: &[],
        result: Ty::Usize,
    };

    /// `m.ncols()`: an integer, through which no derivative flows.
    pub static NCOLS: Primitive = Primitive {
        name: "ncols",
        arity: 1,
        derivative: Derivative::Zero,
        arg_types: &[],
        result: Ty::Usize,
    };

    /// `m.column(j)`, owned: its cotangent is added into column `j` of `m̄` (`column_add`,
    /// which reads `m` for the shape of an empty `m̄`).
    pub static COLUMN: Primitive = Primitive {
        name: "column",
        arity: 2,
        derivative: Derivative::Rules(&[
            Some(Rule {
                path: "linalg::column_add",
                reads: &[Read::Arg(0), Read::Arg(1)],
            }),
            None,
        ]),
        arg_types: &[Ty::Usize],
        result: Ty::Column,
    };

    /// `m.row(i)`, owned: its cotangent is added into row `i` of `m̄` (`row_add`).
    pub static ROW: Primitive = Primitive {
        name: "row",
        arity: 2,
        derivative: Derivative::Rules(&[
            Some(Rule {
                path: "linalg::row_add",
                reads: &[Read::Arg(0), Read::Arg(1)],
            }),
            None,
        ]),
        arg_types: &[Ty::Usize],
        result: Ty::Row,
    };

    /// `m.diagonal()`: its cotangent is added onto the diagonal of `m̄` (`diagonal_add`).
    pub static DIAGONAL: Primitive = Primitive {
        name: "diagonal",
        arity: 1,
        derivative: Derivative::Rules(&[Some(Rule {
            path: "linalg::diagonal_add",
            reads: &[Read::Arg(0)],
        })]),
        arg_types: &[],
        result: Ty::Column,
    };

    /// `m.rows(i, n)`, owned: its cotangent is added into those rows of `m̄` (`rows_add`).
    pub static ROWS: Primitive = Primitive {
        name: "rows",
        arity: 3,
        derivative: Derivative::Rules(&[
            Some(Rule {
                path: "linalg::rows_add",
                reads: &[Read::Arg(0), Read::Arg(1)],
            }),
            None,
            None,
        ]),
        arg_types: &[Ty::Usize, Ty::Usize],
        result: Ty::Rows,
    };

    /// `m.columns(j, n)`, owned: its cotangent is added into those columns of `m̄`
    /// (`columns_add`).
    pub static COLUMNS: Primitive = Primitive {
        name: "columns",
        arity: 3,
        derivative: Derivative::Rules(&[
            Some(Rule {
                path: "linalg::columns_add",
                reads: &[Read::Arg(0), Read::Arg(1)],
            }),
            None,
            None,
        ]),
        arg_types: &[Ty::Usize, Ty::Usize],
        result: Ty::Columns,
    };

    /// The parts of a matrix read as owned vectors or matrices, whose cotangents are added
    /// into the matrix's in place.
    pub static PARTS: [&Primitive; 5] = [&COLUMN, &ROW, &DIAGONAL, &ROWS, &COLUMNS];

    /// Whether `p` is one of [`PARTS`].
    pub fn is_part(p: &Primitive) -> bool {
        PARTS.iter().any(|q| std::ptr::eq(*q, p))
    }

    /// The nalgebra method called `name` with `arity` arguments, receiver included.
    pub fn method(name: &str, arity: usize) -> Option<&'static Primitive> {
        METHODS
            .iter()
            .copied()
            .chain([&NROWS, &NCOLS])
            .chain(PARTS)
            .find(|p| p.name == name && p.arity == arity)
    }

    /// Whether `name` is a method only nalgebra values have here.
    pub fn is_matrix_only(name: &str) -> bool {
        matches!(
            name,
            "transpose"
                | "nrows"
                | "ncols"
                | "dot"
                | "norm"
                | "norm_squared"
                | "normalize"
                | "cross"
                | "component_mul"
                | "component_div"
                | "trace"
                | "determinant"
                | "column"
                | "row"
                | "diagonal"
                | "rows"
                | "columns"
        )
    }
}

/// The Cholesky factorisation (`a.cholesky().unwrap()`) and what is computed from it, whose
/// rules live in `autodiff_runtime::rules::cholesky`. The factorisation is carried as its
/// lower factor `L`, a matrix of `a`'s type; each operation is a runtime function of it,
/// `rules::cholesky::<forward>` (see [`forward`]).
pub mod cholesky {
    use super::{Derivative, Primitive, Read, Rule, Ty};

    macro_rules! cholesky_ops {
        ($($konst:ident $name:literal $arity:literal -> $result:ident : $($path:ident($($read:expr),*))|* ;)*) => {
            $(
                #[doc = concat!("`", $name, "`: an operation on a Cholesky factor.")]
                pub static $konst: Primitive = Primitive {
                    name: $name,
                    arity: $arity,
                    derivative: Derivative::Rules(&[$(Some(Rule {
                        path: concat!("cholesky::", stringify!($path)),
                        reads: &[$($read),*],
                    })),*]),
                    arg_types: &[],
                    result: Ty::$result,
                };
            )*
            /// Every operation on a factor.
            pub static ALL: &[&Primitive] = &[$(&$konst),*];
        };
    }

    // name, arity, result, then one rule per argument with the forward values it reads
    cholesky_ops! {
        FACTOR "cholesky" 1 -> Same: factor_d0(Read::Result);
        SOLVE "cholesky_solve" 2 -> Second: solve_d0(Read::Arg(0), Read::Result) | solve_d1(Read::Arg(0));
        L "cholesky_l" 1 -> Same: l_d0();
        DETERMINANT "cholesky_determinant" 1 -> Elem: determinant_d0(Read::Arg(0), Read::Result);
        LN_DETERMINANT "cholesky_ln_determinant" 1 -> Elem: ln_determinant_d0(Read::Arg(0));
        INVERSE "cholesky_inverse" 1 -> Same: inverse_d0(Read::Arg(0), Read::Result);
    }

    /// Whether `p` is one of [`ALL`].
    pub fn is_cholesky(p: &Primitive) -> bool {
        ALL.iter().any(|q| std::ptr::eq(*q, p))
    }

    /// The runtime function computing `p` forward: `factor` for the factorisation, the
    /// method's name for the others (`cholesky_solve` → `solve`).
    pub fn forward(p: &Primitive) -> &'static str {
        p.name.strip_prefix("cholesky_").unwrap_or("factor")
    }

    /// The operation of the method `name` with `arity` arguments (the factor included) on a
    /// factor: `solve`, `l`, `determinant`, `ln_determinant`, `inverse`.
    pub fn method(name: &str, arity: usize) -> Option<&'static Primitive> {
        ALL.iter()
            .copied()
            .filter(|p| !std::ptr::eq(*p, &FACTOR))
            .find(|p| forward(p) == name && p.arity == arity)
    }
}
