//! Every name the generated code introduces, chosen in one place.

use proc_macro2::{Ident, Span};
use quote::format_ident;

/// The suffixes codegen appends to a value's name for its helpers (`x_saved`, `d_x_shift`,
/// `li_chain`, `j_offset`, `d_x_row`): a user's value or parameter spelled like one would be
/// shadowed by the helper.
const HELPER_SUFFIXES: &[&str] = &[
    "_saved",
    "_carry",
    "_chain",
    "_countdown",
    "_shift",
    "_shift_at",
    "_at_index",
    "_at_next",
    "_start",
    "_trip",
    "_offset",
    "_row",
];

/// Whether `name` has the shape of a local the generated code declares: `loop3`,
/// `call7_slot`, `record2`, `range4`, `branch5`, `d_output`, `d_output1`, or a value's name
/// with a helper suffix (`x_saved`, `s_carry`).
pub fn looks_generated(name: &str) -> bool {
    has_generated_prefix(name)
        || HELPER_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
        || name
            .strip_prefix("d_output")
            .is_some_and(|rest| rest.chars().all(|c| c.is_ascii_digit()))
        || name == "_marker"
}

/// `loop3`, `loop3_stack`, `call7_d0`: a generated prefix and a number, alone or followed by
/// `_`. A numeric suffix does not leave this pattern (`call3_x_1`); a prefix does (`u_call3_x`).
pub fn has_generated_prefix(name: &str) -> bool {
    ["branch", "loop", "call", "range", "record"]
        .iter()
        .any(|prefix| {
            name.strip_prefix(prefix).is_some_and(|rest| {
                let digits =
                    rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                digits > 0 && (rest.len() == digits || rest[digits..].starts_with('_'))
            })
        })
}

/// `rosenbrock_grad` → `RosenbrockPullback`: upper camel case of the name plus `Pullback`.
pub fn pullback_struct(function: &Ident) -> Ident {
    format_ident!(
        "{}Pullback",
        upper_camel(&unraw(function)),
        span = function.span()
    )
}

/// The struct of the hidden all-active pullback used by callers.
pub fn pullback_struct_all(function: &Ident) -> Ident {
    format_ident!(
        "__{}PullbackAll",
        upper_camel(&unraw(function)),
        span = function.span()
    )
}

/// `f` → `f_pullback`.
pub fn pullback_fn(function: &Ident) -> Ident {
    format_ident!("{}_pullback", function, span = function.span())
}

/// `f` → `f_grad`.
pub fn grad_fn(function: &Ident) -> Ident {
    format_ident!("{}_grad", function, span = function.span())
}

/// The hidden pullback in which every float parameter is active; calls from other
/// differentiated functions go through it, so a callee's `wrt` never drops a derivative.
/// A caller derives it from the call path alone: `inner::gauss` → `inner::__autodiff_pullback_gauss`.
pub fn hidden_pullback_fn(function: &Ident) -> Ident {
    format_ident!("__autodiff_pullback_{}", function, span = function.span())
}

/// The hidden forward function that takes an earlier pullback of the same function and
/// reuses the allocations of its record stacks: `gauss` → `__autodiff_reusing_pullback_gauss`
/// (a prefix no [`hidden_pullback_fn`] can produce, whatever the function's name: the one of
/// `reusing_gauss` is `__autodiff_pullback_reusing_gauss`).
pub fn hidden_reusing_pullback_fn(function: &Ident) -> Ident {
    format_ident!(
        "__autodiff_reusing_pullback_{}",
        function,
        span = function.span()
    )
}

/// The parameter of [`hidden_reusing_pullback_fn`]: the caller's slot, holding the earlier
/// pullback if any, where the new one is left.
pub fn previous_pullback() -> Ident {
    format_ident!("__autodiff_previous")
}

/// The parameter of the hidden `__backward_into` receiving where the gradient of parameter
/// `i` goes: `__autodiff_sink0`.
pub fn gradient_sink(i: usize) -> Ident {
    format_ident!("__autodiff_sink{}", i)
}

/// The hidden method of a pullback struct that hands each gradient to a sink the caller
/// chooses (added into the caller's cotangent, returned or dropped).
pub fn backward_into() -> Ident {
    format_ident!("__backward_into")
}

/// The hidden function returning the zero cotangent of a function's output. A caller that
/// cannot see the callee's return type (a `Vec` result passed on without being indexed)
/// starts that result's cotangent here: `inner::gauss` → `inner::__autodiff_zero_output_gauss`.
pub fn hidden_zero_output_fn(function: &Ident) -> Ident {
    format_ident!(
        "__autodiff_zero_output_{}",
        function,
        span = function.span()
    )
}

/// The field holding the record of the n-th branch.
pub fn branch_field(index: usize) -> Ident {
    format_ident!("branch{}", index)
}

/// The variant of an arm: `Then`/`Else` for `if`, `Arm0`, `Arm1`, ... for `match`.
pub fn arm_variant(is_if: bool, arm: usize) -> Ident {
    match (is_if, arm) {
        (true, 0) => format_ident!("Then"),
        (true, _) => format_ident!("Else"),
        (false, n) => format_ident!("Arm{}", n),
    }
}

/// The variable holding a callee's pullback while the backward pass replays a call.
pub fn call_pullback(index: usize) -> Ident {
    format_ident!("call{}", index)
}

/// The output cotangent parameter of `backward`.
pub fn output_cotangent() -> Ident {
    Ident::new("d_output", Span::call_site())
}

/// The phantom field of generic pullback structs.
pub fn marker_field() -> Ident {
    Ident::new("_marker", Span::call_site())
}

/// The identifier without a raw `r#` prefix.
pub fn unraw(ident: &Ident) -> String {
    use syn::ext::IdentExt;
    ident.unraw().to_string()
}

/// `log_sum_exp` → `LogSumExp`; a prefix keeps names that would start with a digit valid.
pub fn upper_camel(name: &str) -> String {
    let camel = upper_camel_parts(name);
    match camel.chars().next() {
        Some(c) if !c.is_ascii_digit() => camel,
        _ => format!("Fn{camel}"),
    }
}

fn upper_camel_parts(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// The lifetime binding the hidden items' deferred bounds on settings structs
/// (`for<'__autodiff_any> Settings: Differentiable + Clone`).
pub fn deferred_bound_lifetime() -> syn::Lifetime {
    syn::Lifetime::new("'__autodiff_any", proc_macro2::Span::call_site())
}

/// Whether `predicate` is one of those deferred bounds.
pub fn is_deferred_bound(predicate: &syn::WherePredicate) -> bool {
    matches!(predicate, syn::WherePredicate::Type(t)
        if t.lifetimes.as_ref().is_some_and(|l| l.lifetimes.iter().any(|p| matches!(p,
            syn::GenericParam::Lifetime(l) if l.lifetime == deferred_bound_lifetime()))))
}

/// The first segment of the path a method called on a field of a parameter set is read with:
/// `__autodiff_method::forward(&net.layers[0], x)` stands for `net.layers[0].forward(x)`, a
/// `#[differentiate]` method of a type the macro cannot name. The generated code calls it,
/// and its hidden entry points, with method syntax on the first argument.
pub const METHOD_FORM: &str = "__autodiff_method";

/// The method a call of [`METHOD_FORM`] stands for.
pub fn method_form(path: &syn::ExprPath) -> Option<&Ident> {
    let segments = &path.path.segments;
    (path.qself.is_none()
        && path.path.leading_colon.is_none()
        && segments.len() == 2
        && segments[0].ident == METHOD_FORM)
        .then(|| &segments[1].ident)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_names_are_upper_camel_case() {
        let f = Ident::new("rosenbrock", Span::call_site());
        assert_eq!(pullback_struct(&f).to_string(), "RosenbrockPullback");
        let g = Ident::new("log_sum_exp", Span::call_site());
        assert_eq!(pullback_struct(&g).to_string(), "LogSumExpPullback");
        assert_eq!(
            hidden_pullback_fn(&g).to_string(),
            "__autodiff_pullback_log_sum_exp"
        );
    }

    #[test]
    fn hidden_names_of_different_functions_differ() {
        let names = |name: &str| {
            let f = Ident::new(name, Span::call_site());
            [
                hidden_pullback_fn(&f).to_string(),
                hidden_reusing_pullback_fn(&f).to_string(),
                hidden_zero_output_fn(&f).to_string(),
            ]
        };
        let mut all: Vec<String> = ["g", "reusing_g", "pullback_g", "zero_output_g"]
            .iter()
            .flat_map(|name| names(name))
            .collect();
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count, "{all:?}");
    }

    #[test]
    fn generated_shapes_are_recognised() {
        for name in [
            "loop3",
            "loop3_stack",
            "call7_slot",
            "call7_previous",
            "record2",
            "d_output",
            "d_output1",
            "x_saved",
            "s_carry",
            "li_chain",
            "d_x_shift",
        ] {
            assert!(looks_generated(name), "{name}");
        }
        for name in [
            "loop",
            "loops3",
            "u_loop3",
            "x_saved_1",
            "d_output_1",
            "recorded",
            "x",
            "call_count",
        ] {
            assert!(!looks_generated(name), "{name}");
        }
    }
}
