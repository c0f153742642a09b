//! Parses the attribute and classifies the signature: which parameters can be active, what
//! the output is.

use proc_macro2::{Span, TokenStream};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, Ident, ItemFn, Pat, ReturnType, Token, Type};

use crate::errors::Errors;
use crate::ir::ParamRole;
use crate::names;

/// The options of `#[differentiate(...)]`.
#[derive(Default, Debug)]
pub struct Options {
    /// `wrt(a, b)`: the parameters to differentiate with respect to; `None` means all
    /// float parameters.
    pub wrt: Option<Vec<Ident>>,
    /// `dump`: print the generated code at compile time.
    pub dump: bool,
    /// `partials(x = expr, ..)`: the partial derivative with respect to each float parameter,
    /// given instead of derived from the body (`partials.rs`), with the option's span.
    pub partials: Option<(Span, Vec<(Ident, syn::Expr)>)>,
}

enum OptionItem {
    Wrt(Vec<Ident>, Span),
    Dump,
    Partials(Vec<(Ident, syn::Expr)>, Span),
}

/// `x = expr` inside `partials(..)`.
struct Partial {
    name: Ident,
    expr: syn::Expr,
}

impl Parse for Partial {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        input.parse::<Token![=]>()?;
        Ok(Partial {
            name,
            expr: input.parse()?,
        })
    }
}

impl Parse for OptionItem {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let name: Ident = input.parse()?;
        match name.to_string().as_str() {
            "wrt" => {
                let content;
                syn::parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                if names.is_empty() {
                    return Err(syn::Error::new(
                        name.span(),
                        "`wrt()` names no parameter; list the parameters to differentiate with respect to, e.g. `wrt(x)`, or drop `wrt` to use all float parameters",
                    ));
                }
                Ok(OptionItem::Wrt(names.into_iter().collect(), name.span()))
            }
            "dump" => Ok(OptionItem::Dump),
            "partials" => {
                let content;
                syn::parenthesized!(content in input);
                let partials = Punctuated::<Partial, Token![,]>::parse_terminated(&content)?;
                if partials.is_empty() {
                    return Err(syn::Error::new(
                        name.span(),
                        "`partials()` gives no derivative; write one per float parameter, e.g. `partials(x = 2.0 * x)`",
                    ));
                }
                Ok(OptionItem::Partials(
                    partials.into_iter().map(|p| (p.name, p.expr)).collect(),
                    name.span(),
                ))
            }
            other => Err(syn::Error::new(
                name.span(),
                format!("unknown option `{other}`; expected `wrt(...)`, `partials(...)` or `dump`"),
            )),
        }
    }
}

/// Parses the attribute's arguments.
pub fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let items =
        syn::parse::Parser::parse2(Punctuated::<OptionItem, Token![,]>::parse_terminated, attr)?;
    let mut options = Options::default();
    for item in items {
        match item {
            OptionItem::Wrt(names, span) => {
                if options.wrt.is_some() {
                    return Err(syn::Error::new(
                        span,
                        "`wrt` is given twice; list all parameters in one `wrt(...)`",
                    ));
                }
                options.wrt = Some(names);
            }
            OptionItem::Dump => options.dump = true,
            OptionItem::Partials(partials, span) => {
                if options.partials.is_some() {
                    return Err(syn::Error::new(
                        span,
                        "`partials` is given twice; list all partial derivatives in one `partials(...)`",
                    ));
                }
                options.partials = Some((span, partials));
            }
        }
    }
    Ok(options)
}

/// The kind of an array type.
#[derive(Clone, Debug)]
pub enum ArrayKind {
    /// `Vec<T>`, `&[T]`, `&Vec<T>`: a vector whose cotangent is a `Vec<T>`.
    Vec,
    /// `[T; N]`, `&[T; N]`: fixed length, cotangent `[T; N]`.
    Fixed(TokenStream),
    /// `Tensor<T>`, `&Tensor<T>`: cotangent `Tensor<T>`.
    Tensor,
    /// A nalgebra matrix or vector (`DMatrix<T>`, `Vector3<T>`, ...), with its owned type
    /// when known: the cotangent has that type.
    Matrix(Option<Box<Type>>),
}

impl ArrayKind {
    /// The owned container of this kind holding `elem`.
    pub fn container(&self, elem: &Type) -> Type {
        match self {
            ArrayKind::Vec => syn::parse_quote!(::std::vec::Vec<#elem>),
            ArrayKind::Fixed(len) => syn::parse_quote!([#elem; #len]),
            ArrayKind::Tensor => syn::parse_quote!(::autodiff::Tensor<#elem>),
            ArrayKind::Matrix(Some(ty)) => (**ty).clone(),
            // no nameable type: callers check for it before asking
            ArrayKind::Matrix(None) => elem.clone(),
        }
    }
}

/// `&[T]`, `Vec<T>`, `&Vec<T>`, `[T; N]` or `&[T; N]`: the array kind and element type.
pub fn array_type(ty: &Type) -> Option<(ArrayKind, Type)> {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => match &*r.elem {
            Type::Slice(s) => Some((ArrayKind::Vec, (*s.elem).clone())),
            other => array_type(other),
        },
        Type::Paren(p) => array_type(&p.elem),
        Type::Array(a) => {
            let len = &a.len;
            Some((ArrayKind::Fixed(quote::quote!(#len)), (*a.elem).clone()))
        }
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last()?;
            if is_nalgebra_name(&last.ident.to_string()) {
                let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
                    return None;
                };
                let Some(syn::GenericArgument::Type(elem)) = args.args.first() else {
                    return None;
                };
                return Some((ArrayKind::Matrix(Some(Box::new(ty.clone()))), elem.clone()));
            }
            let kind = match last.ident.to_string().as_str() {
                "Vec" => ArrayKind::Vec,
                "Tensor" => ArrayKind::Tensor,
                _ => return None,
            };
            match &last.arguments {
                syn::PathArguments::AngleBracketed(args) if args.args.len() == 1 => {
                    match &args.args[0] {
                        syn::GenericArgument::Type(elem) => Some((kind, elem.clone())),
                        _ => None,
                    }
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// The element type and the row and column dimensions (as nalgebra dimension types) of a
/// nalgebra matrix type, e.g. `DVector<f64>` → `(f64, Dyn, U1)`.
pub fn matrix_dims(ty: &Type) -> Option<(Type, TokenStream, TokenStream)> {
    let ty = strip_reference(ty);
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let generic: Vec<TokenStream> = args.args.iter().map(|a| quote::quote!(#a)).collect();
    let syn::GenericArgument::Type(elem) = args.args.first()? else {
        return None;
    };
    let nalgebra = quote::quote!(::autodiff::nalgebra);
    let dyn_ = quote::quote!(#nalgebra::Dyn);
    let one = quote::quote!(#nalgebra::U1);
    let konst = |n: &str| -> Option<TokenStream> {
        let n: syn::LitInt = syn::parse_str(n).ok()?;
        Some(quote::quote!(#nalgebra::Const<#n>))
    };
    let name = last.ident.to_string();
    let (rows, cols) = match (name.as_str(), generic.len()) {
        ("DMatrix", 1) => (dyn_.clone(), dyn_),
        ("DVector", 1) => (dyn_, one),
        ("RowDVector", 1) => (one, dyn_),
        ("SMatrix", 3) => {
            let (r, c) = (&generic[1], &generic[2]);
            (
                quote::quote!(#nalgebra::Const<#r>),
                quote::quote!(#nalgebra::Const<#c>),
            )
        }
        ("SVector", 2) => {
            let r = &generic[1];
            (quote::quote!(#nalgebra::Const<#r>), one)
        }
        ("OMatrix", 3) => (generic[1].clone(), generic[2].clone()),
        ("OVector", 2) => (generic[1].clone(), one),
        (_, 1) => {
            let (prefix, rest) = ["RowVector", "Vector", "Matrix"]
                .iter()
                .find_map(|prefix| Some((*prefix, name.strip_prefix(prefix)?)))?;
            match (prefix, rest.split_once('x')) {
                ("Matrix", Some((r, c))) => (konst(r)?, konst(c)?),
                ("Matrix", None) => (konst(rest)?, konst(rest)?),
                ("Vector", None) => (konst(rest)?, one),
                ("RowVector", None) => (one, konst(rest)?),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(((*elem).clone(), rows, cols))
}

/// The type of the matrix product `a * b`, when both types are known.
pub fn product_type(a: &Type, b: &Type) -> Option<Type> {
    let (elem, rows, _) = matrix_dims(a)?;
    let (_, _, cols) = matrix_dims(b)?;
    Some(syn::parse_quote!(::autodiff::nalgebra::OMatrix<#elem, #rows, #cols>))
}

/// The type of `a * b` for `a` of unknown type (a data matrix read from a struct's field,
/// `&data.x * beta`) and `b` with a dynamic number of rows: `a` has a dynamic number of
/// columns then, and is taken for a matrix with a dynamic number of rows too (a `DMatrix`),
/// so the product has a dynamic number of rows and `b`'s columns. A matrix with fixed rows
/// and dynamic columns would make rustc report the mismatch.
pub fn product_type_of_unknown_left(b: &Type) -> Option<Type> {
    let (elem, rows, cols) = matrix_dims(b)?;
    let rows_name = rows.to_string();
    (rows_name.ends_with("Dyn") || rows_name.ends_with("Dynamic"))
        .then(|| syn::parse_quote!(::autodiff::nalgebra::OMatrix<#elem, #rows, #cols>))
}

/// The type of the transpose of a matrix of type `ty`, when known.
pub fn transpose_type(ty: &Type) -> Option<Type> {
    // a tensor's transpose is a tensor of the same element type
    if let Some((ArrayKind::Tensor, elem)) = array_type(ty) {
        return Some(ArrayKind::Tensor.container(&elem));
    }
    let (elem, rows, cols) = matrix_dims(ty)?;
    Some(syn::parse_quote!(::autodiff::nalgebra::OMatrix<#elem, #cols, #rows>))
}

/// The type of `m.column(j)` (owned) and of a square matrix's `diagonal()`: a vector of the
/// matrix's rows.
pub fn column_type(ty: &Type) -> Option<Type> {
    let (elem, rows, _) = matrix_dims(ty)?;
    Some(syn::parse_quote!(::autodiff::nalgebra::OMatrix<#elem, #rows, ::autodiff::nalgebra::U1>))
}

/// The type of `m.row(i)` (owned): a row vector of the matrix's columns.
pub fn row_type(ty: &Type) -> Option<Type> {
    let (elem, _, cols) = matrix_dims(ty)?;
    Some(syn::parse_quote!(::autodiff::nalgebra::OMatrix<#elem, ::autodiff::nalgebra::U1, #cols>))
}

/// The type of `m.rows(i, n)` (owned): a dynamic number of the matrix's rows.
pub fn rows_type(ty: &Type) -> Option<Type> {
    let (elem, _, cols) = matrix_dims(ty)?;
    Some(syn::parse_quote!(::autodiff::nalgebra::OMatrix<#elem, ::autodiff::nalgebra::Dyn, #cols>))
}

/// The type of `m.columns(j, n)` (owned): a dynamic number of the matrix's columns.
pub fn columns_type(ty: &Type) -> Option<Type> {
    let (elem, rows, _) = matrix_dims(ty)?;
    Some(syn::parse_quote!(::autodiff::nalgebra::OMatrix<#elem, #rows, ::autodiff::nalgebra::Dyn>))
}

/// nalgebra's matrix and vector type names.
fn is_nalgebra_name(name: &str) -> bool {
    matches!(
        name,
        "DMatrix" | "DVector" | "RowDVector" | "SMatrix" | "SVector" | "OMatrix" | "OVector"
    ) || ["Matrix", "Vector", "RowVector"].iter().any(|prefix| {
        name.strip_prefix(prefix).is_some_and(|rest| {
            !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit() || c == 'x')
        })
    })
}

/// The cotangent type of a parameter or output of type `ty`: arrays become owned
/// containers, borrowed values their owned type.
pub fn cotangent_type(ty: &Type) -> Type {
    match array_type(ty) {
        Some((kind, elem)) => kind.container(&elem),
        None => strip_reference(ty).clone(),
    }
}

/// A classified parameter.
#[derive(Clone, Debug)]
pub struct SigParam {
    /// Its name in the generated code: the user's, unless that is spelled like a generated
    /// local (see [`avoid_generated_names`]).
    pub name: Ident,
    /// Its name as the function's body spells it.
    pub source: Ident,
    /// Its declared type.
    pub ty: Type,
    /// Whether it can carry a derivative.
    pub role: ParamRole,
    /// A nested container of floats (`&[Vec<f64>]`, `&[[f64; 3]]`): never differentiated,
    /// so taken only as data that `wrt` leaves out.
    pub nested_floats: bool,
}

/// What the function returns.
#[derive(Clone, Debug)]
pub enum Output {
    /// A single float: `_grad` is generated.
    Scalar(Type),
    /// A tuple of floats: `backward` takes a tuple of cotangents.
    Tuple(Vec<Type>),
    /// A `Vec<T>` or `[T; N]` of floats: `backward` takes a cotangent of the same type.
    Array(Type),
    /// A user struct (`#[derive(Differentiable)]`) the body builds with a struct expression:
    /// one value per field, `backward` takes a cotangent of the same type.
    Struct(StructOutput),
}

/// The struct a function returns, as its struct expressions build it.
#[derive(Clone, Debug)]
pub struct StructOutput {
    /// The declared type, `State<T>`.
    pub ty: Type,
    /// The path that builds it and takes its cotangent apart, without generic arguments
    /// (`State`): they are inferred from the fields.
    pub path: syn::Path,
    /// Its fields, in the order of their names: the order of the function's yielded values.
    /// Empty when no struct expression of that name builds it: the function then returns
    /// one value of the struct's type (a struct a callee returned), whose cotangent
    /// `backward` takes whole.
    pub fields: Vec<Ident>,
}

/// The signature facts every later stage needs.
#[derive(Clone, Debug)]
pub struct Signature {
    /// Parameters in order.
    pub params: Vec<SigParam>,
    /// The output.
    pub output: Output,
    /// The declared return type.
    pub return_type: Type,
}

const INTEGER_TYPES: &[&str] = &[
    "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
];

/// Types that carry no derivative besides the integers.
const OTHER_CONSTANT_TYPES: &[&str] = &["bool", "char", "str", "String"];

/// Whether `ty` is a primitive integer type (`usize`, `i32`, ...), which no derivative can
/// pass through.
pub fn is_integer_type(ty: &Type) -> bool {
    single_ident(ty).is_some_and(|id| INTEGER_TYPES.contains(&id.to_string().as_str()))
}

/// Names of the function's generic type parameters.
pub fn type_params(item: &ItemFn) -> Vec<Ident> {
    item.sig
        .generics
        .params
        .iter()
        .filter_map(|p| match p {
            GenericParam::Type(t) => Some(t.ident.clone()),
            _ => None,
        })
        .collect()
}

fn single_ident(ty: &Type) -> Option<&Ident> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.get_ident(),
        _ => None,
    }
}

/// Whether `ty` is `f32`, `f64` or one of the generic type parameters.
pub fn is_float_type(ty: &Type, generics: &[Ident]) -> bool {
    match single_ident(ty) {
        Some(id) => id == "f32" || id == "f64" || generics.contains(id),
        None => matches!(ty, Type::Paren(p) if is_float_type(&p.elem, generics)),
    }
}

fn is_constant_type(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => is_constant_type(&r.elem),
        Type::Paren(p) => is_constant_type(&p.elem),
        _ => single_ident(ty).is_some_and(|id| {
            let id = id.to_string();
            INTEGER_TYPES.contains(&id.as_str()) || OTHER_CONSTANT_TYPES.contains(&id.as_str())
        }),
    }
}

/// A path to a user type without generic arguments (an enum or a settings struct): the
/// macro treats it as a constant, matched on or passed along.
/// `Spring<T>` for a parameter set `&Spring<T>` of a generic user struct: the type whose
/// derived `Differentiable` the generated code needs (and which `T: Float` does not give).
pub fn generic_parameter_set(param: &SigParam) -> Option<&Type> {
    let ty = strip_reference(&param.ty);
    let generic = matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| !s.arguments.is_none()));
    // a tuple's elements may be type parameters, whose `Float` bound does not give
    // `Differentiable`; the bound holds for concrete tuples
    let tuple = matches!(ty, Type::Tuple(t) if !t.elems.is_empty());
    (param.role == ParamRole::Float
        && (generic && is_user_enum_like(ty) && !is_float_type(ty, &[]) || tuple))
        .then_some(ty)
}

pub fn is_user_enum_like(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last();
            // a generic user struct (`Spring<T>`) too, but not a container the rules know
            let plain_or_generic_struct = |s: &syn::PathSegment| {
                s.arguments.is_none()
                    || matches!(s.arguments, syn::PathArguments::AngleBracketed(_))
                        && array_type(ty).is_none()
            };
            last.is_some_and(|s| {
                plain_or_generic_struct(s)
                    && s.ident
                        .to_string()
                        .chars()
                        .next()
                        .is_some_and(char::is_uppercase)
            }) && !matches!(
                last.map(|s| s.ident.to_string()).as_deref(),
                Some(
                    "Vec"
                        | "String"
                        | "Box"
                        | "Option"
                        | "Result"
                        | "Rc"
                        | "Arc"
                        | "HashMap"
                        | "HashSet"
                        | "BTreeMap"
                        | "BTreeSet"
                        | "VecDeque"
                        | "Cell"
                        | "RefCell"
                        | "Mutex"
                        | "RwLock"
                        | "Cow"
                        | "PhantomData"
                )
            )
        }
        _ => false,
    }
}

/// Whether the body reads fields of `name`, calls a method on it or passes it to a call:
/// then it is a parameter set (`#[derive(Differentiable)]`); a user type that is only
/// matched on or compared is a constant.
fn used_as_parameter_set(block: &syn::Block, name: &Ident) -> bool {
    struct Uses<'a> {
        name: &'a Ident,
        found: bool,
    }
    impl Uses<'_> {
        fn names(&self, e: &syn::Expr) -> bool {
            match e {
                syn::Expr::Path(p) => p.path.is_ident(self.name),
                syn::Expr::Reference(r) => self.names(&r.expr),
                syn::Expr::Paren(p) => self.names(&p.expr),
                _ => false,
            }
        }
    }
    impl<'ast> syn::visit::Visit<'ast> for Uses<'_> {
        fn visit_expr(&mut self, e: &'ast syn::Expr) {
            match e {
                syn::Expr::Field(f) if self.names(&f.base) => self.found = true,
                syn::Expr::MethodCall(m)
                    if self.names(&m.receiver) || m.args.iter().any(|a| self.names(a)) =>
                {
                    self.found = true
                }
                syn::Expr::Call(c) if c.args.iter().any(|a| self.names(a)) => self.found = true,
                _ => {}
            }
            syn::visit::visit_expr(self, e);
        }
    }
    let mut uses = Uses { name, found: false };
    syn::visit::Visit::visit_block(&mut uses, block);
    uses.found
}

/// A user type (a struct of parameters when it carries derivatives), or a tuple of floats.
pub fn is_parameter_set_type(ty: &Type) -> bool {
    let ty = strip_reference(ty);
    is_user_enum_like(ty) || matches!(ty, Type::Tuple(t) if !t.elems.is_empty())
}

/// A tuple of one to eight elements, each a float, a fixed-length array of floats or a
/// constant, at least one carrying a derivative (`(f64, f64)`, `(T, usize)`): a parameter
/// read by its fields (`p.0`) or taken apart (`let (r, theta) = p;`), whose cotangent is a
/// tuple of the same type.
pub fn is_float_tuple(ty: &Type, generics: &[Ident]) -> bool {
    let Type::Tuple(tuple) = ty else { return false };
    let float_element = |t: &Type| {
        is_float_type(t, generics)
            || matches!(t, Type::Array(_))
                && array_type(t).is_some_and(|(_, elem)| is_float_type(&elem, generics))
    };
    (1..=8).contains(&tuple.elems.len())
        && tuple.elems.iter().any(float_element)
        && tuple
            .elems
            .iter()
            .all(|t| float_element(t) || is_constant_type(t) || is_constant_element(t))
}

/// A struct parameter whose fields the body reads is kept whole by the pullbacks, whose
/// structs have no lifetimes: one borrowing its data (`Data<'a>`) is an error at the lifetime.
fn reject_borrowing_struct(ty: &Type, errors: &mut Errors) {
    let ty = strip_reference(ty);
    if !is_user_enum_like(ty) {
        return;
    }
    struct Borrowed(Option<syn::Lifetime>);
    impl<'ast> syn::visit::Visit<'ast> for Borrowed {
        fn visit_lifetime(&mut self, lifetime: &'ast syn::Lifetime) {
            if lifetime.ident != "static" && self.0.is_none() {
                self.0 = Some(lifetime.clone());
            }
        }
    }
    let mut borrowed = Borrowed(None);
    syn::visit::Visit::visit_type(&mut borrowed, ty);
    if let Some(lifetime) = borrowed.0 {
        errors.push_spanned(
            &lifetime,
            "a struct that borrows its data cannot be kept by the pullback; let it own the data (`Vec<f64>` instead of `&[f64]`), or pass the borrowed slices as parameters of their own",
        );
    }
}

pub fn strip_reference(ty: &Type) -> &Type {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => &r.elem,
        Type::Paren(p) => strip_reference(&p.elem),
        other => other,
    }
}

fn classify_param(
    ty: &Type,
    generics: &[Ident],
    body: Option<(&syn::Block, &Ident)>,
    errors: &mut Errors,
) -> Option<ParamRole> {
    if is_float_type(ty, generics) {
        return Some(ParamRole::Float);
    }
    if is_user_enum_like(strip_reference(ty)) {
        let parameter_set = body.is_some_and(|(block, name)| used_as_parameter_set(block, name));
        return Some(if parameter_set {
            ParamRole::Float
        } else {
            ParamRole::Constant
        });
    }
    if is_constant_type(ty) || is_constant_element(strip_reference(ty)) {
        return Some(ParamRole::Constant);
    }
    if is_float_tuple(strip_reference(ty), generics) {
        return Some(ParamRole::Float);
    }
    if let Some((_, elem)) = array_type(ty) {
        if is_float_type(&elem, generics) {
            return Some(ParamRole::Float);
        }
        if is_constant_type(&elem) || is_constant_element(&elem) {
            return Some(ParamRole::Constant);
        }
    }
    if is_nested_float_container(ty, generics) {
        // data (a batch of samples) when `wrt` leaves it out, an error otherwise (`active_set`)
        return Some(ParamRole::Constant);
    }
    match ty {
        Type::Reference(r) if r.mutability.is_some() => errors.push_spanned(
            {
                let (and, mutability) = (&r.and_token, &r.mutability);
                quote::quote!(#and #mutability)
            },
            "`&mut` parameters cannot be differentiated; take the value and return the result instead",
        ),
        _ => errors.push_spanned(ty, unsupported_parameter(ty, generics)),
    }
    None
}

/// An element of a constant table (`edges: &[(usize, usize)]`, `triangles: &[[usize; 3]]`):
/// an integer, `bool` or `char`, or a tuple or array of them; all are `Copy`, so the
/// generated code reads them as the function does.
fn is_constant_element(ty: &Type) -> bool {
    match ty {
        Type::Paren(p) => is_constant_element(&p.elem),
        Type::Tuple(t) => !t.elems.is_empty() && t.elems.iter().all(is_constant_element),
        Type::Array(a) => is_constant_element(&a.elem),
        _ => single_ident(ty).is_some_and(|id| {
            INTEGER_TYPES.contains(&id.to_string().as_str()) || id == "bool" || id == "char"
        }),
    }
}

/// `&[Vec<f64>]`, `&[[f64; 3]]`, `Vec<(f64, f64)>`: a container whose elements are
/// containers or tuples holding floats.
fn is_nested_float_container(ty: &Type, generics: &[Ident]) -> bool {
    let nested = array_type(ty).is_some_and(|(_, elem)| {
        matches!(elem, Type::Array(_) | Type::Tuple(_) | Type::Slice(_))
            || array_type(&elem).is_some()
    });
    nested && mentions_float(ty, generics)
}

/// Whether a float appears anywhere in `ty` (`Vec<Vec<f64>>`, `&[(f64, f64)]`).
fn mentions_float(ty: &Type, generics: &[Ident]) -> bool {
    struct Floats<'a> {
        generics: &'a [Ident],
        found: bool,
    }
    impl<'ast> syn::visit::Visit<'ast> for Floats<'_> {
        fn visit_type(&mut self, ty: &'ast Type) {
            if is_float_type(ty, self.generics) {
                self.found = true;
            }
            syn::visit::visit_type(self, ty);
        }
    }
    let mut floats = Floats {
        generics,
        found: false,
    };
    syn::visit::Visit::visit_type(&mut floats, ty);
    floats.found
}

/// The message for a parameter type the macro does not take, with what to pass instead.
fn unsupported_parameter(ty: &Type, generics: &[Ident]) -> String {
    let text = crate::ir::tokens_text(&quote::quote!(#ty));
    let outer = match strip_reference(ty) {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    };
    match (ty, outer.as_deref()) {
        (Type::ImplTrait(_) | Type::TraitObject(_) | Type::BareFn(_), _) => format!(
            "parameters of type `{text}` are not supported by #[differentiate]: the generated code cannot see into a function passed in; call a #[differentiate] function by name instead"
        ),
        (_, Some("Option")) => format!(
            "`{text}` parameters are not supported by #[differentiate]; take the value itself (unwrap it before the call, with a `bool` for whether it is there)"
        ),
        (_, Some("Box" | "Rc" | "Arc" | "Cow")) => {
            let inner = match strip_reference(ty) {
                Type::Path(p) => match p.path.segments.last().map(|s| &s.arguments) {
                    Some(syn::PathArguments::AngleBracketed(args)) => args
                        .args
                        .iter()
                        .find_map(|a| match a {
                            syn::GenericArgument::Type(t) => Some(t),
                            _ => None,
                        })
                        .map(|t| crate::ir::tokens_text(&quote::quote!(#t))),
                    _ => None,
                },
                _ => None,
            };
            format!(
                "`{text}` parameters are not supported by #[differentiate]; take a reference to the contents (`&{}`), passed as `&*b`",
                inner.as_deref().unwrap_or("T")
            )
        }
        (_, Some("HashMap" | "HashSet" | "BTreeMap" | "BTreeSet" | "VecDeque")) => format!(
            "`{text}` parameters are not supported by #[differentiate]; pass the numbers in a slice (`&[f64]`) and look up their positions before the call (positions as `usize` are constants)"
        ),
        _ if is_nested_float_container(ty, generics) => format!(
            "nested arrays of floats (`{text}`) are not supported by #[differentiate]; keep the numbers in one flat slice or array (element `(i, j)` at `i * cols + j`), or use a nalgebra matrix (`DMatrix<f64>`, `Matrix3<f64>`)"
        ),
        _ => format!(
            "parameters of type `{text}` are not supported by #[differentiate]; differentiate floats (`f32`, `f64`, a generic `T: Float`), slices, `Vec`s and arrays of them, nalgebra vectors and matrices, `Tensor`s or `#[derive(Differentiable)]` structs; integers, `bool`s and tables of them (`&[(usize, usize)]`) are constants"
        ),
    }
}

fn classify_output(
    ty: &Type,
    generics: &[Ident],
    block: &syn::Block,
    errors: &mut Errors,
) -> Option<Output> {
    if is_float_type(ty, generics) {
        return Some(Output::Scalar(ty.clone()));
    }
    if is_user_enum_like(ty) {
        return struct_output(ty, block);
    }
    if let Some((_, elem)) = array_type(ty) {
        if is_float_type(&elem, generics) && !matches!(ty, Type::Reference(_)) {
            return Some(Output::Array(ty.clone()));
        }
    }
    if let Type::Tuple(tuple) = ty {
        let element_ok = |e: &Type| {
            is_float_type(e, generics)
                || !matches!(e, Type::Reference(_))
                    && array_type(e).is_some_and(|(_, elem)| is_float_type(&elem, generics))
        };
        if !tuple.elems.is_empty() && tuple.elems.iter().all(element_ok) {
            return Some(Output::Tuple(tuple.elems.iter().cloned().collect()));
        }
    }
    errors.push_spanned(
        ty,
        format!(
            "#[differentiate] functions must return a float (`f32`, `f64`, a generic `T`), a `Vec` or array of floats, a tuple of those, or a struct built in the body (`State {{ x: .., v: .. }}`); `{}` has no derivative to compute",
            crate::ir::tokens_text(&quote::quote!(#ty))
        ),
    );
    None
}

/// A user struct as the output: its fields are those of the first struct expression of that
/// type in the body (`State { x: .., v: .. }`; rustc makes every other one list the same).
fn struct_output(ty: &Type, block: &syn::Block) -> Option<Output> {
    let Type::Path(type_path) = ty else {
        return None;
    };
    let mut path = type_path.path.clone();
    for segment in &mut path.segments {
        segment.arguments = syn::PathArguments::None;
    }
    let name = path.segments.last()?.ident.clone();
    let mut finder = StructExpressions {
        name: &name,
        first: None,
    };
    // the body's final value first: an earlier expression of that name may be another type's
    if let Some(syn::Stmt::Expr(syn::Expr::Struct(tail), None)) = block.stmts.last() {
        syn::visit::Visit::visit_expr_struct(&mut finder, tail);
    }
    if finder.first.is_none() {
        syn::visit::Visit::visit_block(&mut finder, block);
    }
    let mut fields = finder.first.unwrap_or_default();
    fields.sort_by_key(|f| f.to_string());
    Some(Output::Struct(StructOutput {
        ty: ty.clone(),
        path,
        fields,
    }))
}

/// Finds the fields of the first struct expression whose path ends in `name` (or is `Self`).
struct StructExpressions<'a> {
    name: &'a Ident,
    first: Option<Vec<Ident>>,
}

impl<'ast> syn::visit::Visit<'ast> for StructExpressions<'_> {
    fn visit_expr_struct(&mut self, e: &'ast syn::ExprStruct) {
        let last = e.path.segments.last().map(|s| &s.ident);
        if self.first.is_none()
            && e.qself.is_none()
            && last.is_some_and(|id| id == self.name || id == "Self")
        {
            let named: Option<Vec<Ident>> = e
                .fields
                .iter()
                .map(|f| match &f.member {
                    syn::Member::Named(id) => Some(id.clone()),
                    syn::Member::Unnamed(_) => None,
                })
                .collect();
            if let Some(named) = named.filter(|n| !n.is_empty()) {
                self.first = Some(named);
            }
        }
        syn::visit::visit_expr_struct(self, e);
    }

    // a closure's struct expressions are not the function's value
    fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}

    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

/// Checks the function's shape and classifies its parameters and output.
pub fn signature(item: &ItemFn, errors: &mut Errors) -> Option<Signature> {
    let sig = &item.sig;
    let before = errors.len();
    if let Some(token) = &sig.asyncness {
        errors.push(token.span(), "`async fn` cannot be differentiated; differentiate a synchronous function and call it from async code");
    }
    if let Some(token) = &sig.unsafety {
        errors.push(token.span(), "`unsafe fn` cannot be differentiated; move the unsafe part out and differentiate a safe function");
    }
    if let Some(token) = &sig.constness {
        errors.push(
            token.span(),
            "`const fn` cannot be differentiated; remove `const`",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.push_spanned(abi, "`extern` functions cannot be differentiated; differentiate a Rust function and wrap it");
    }
    if let Some(variadic) = &sig.variadic {
        errors.push_spanned(variadic, "variadic functions cannot be differentiated");
    }
    let generics = type_params(item);
    let mut params = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.push_spanned(
                receiver,
                "a method needs #[differentiate] on its `impl` block too (the pullback struct cannot be generated inside an `impl`); put `#[differentiate]` above `impl` as well",
            ),
            FnArg::Typed(typed) => {
                let name = match &*typed.pat {
                    Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
                    other => {
                        errors.push_spanned(other, "parameter patterns are not supported; bind the parameter to a name and destructure it in the body");
                        continue;
                    }
                };
                if let Some(role) = classify_param(&typed.ty, &generics, Some((&item.block, &name)), errors) {
                    if role == ParamRole::Float {
                        reject_borrowing_struct(&typed.ty, errors);
                    }
                    let nested_floats = role == ParamRole::Constant && is_nested_float_container(&typed.ty, &generics);
                    params.push(SigParam { source: name.clone(), name, ty: (*typed.ty).clone(), role, nested_floats });
                }
            }
        }
    }
    let (output, return_type) = match &sig.output {
        ReturnType::Default => {
            errors.push(
                sig.ident.span(),
                "a #[differentiate] function must return a value; add a return type such as `-> f64`",
            );
            (None, None)
        }
        ReturnType::Type(_, ty) => (
            classify_output(ty, &generics, &item.block, errors),
            Some((**ty).clone()),
        ),
    };
    if errors.len() > before {
        return None;
    }
    Some(Signature {
        params,
        output: output?,
        return_type: return_type?,
    })
}

/// Renames the parameters spelled like a local of the generated code (`loop3`, `x_saved`, see
/// [`names::looks_generated`]), which would otherwise be shadowed by it: `loop3` becomes
/// `u_loop3`, `x_saved` becomes `x_saved_1`. Only the generated functions see the new names;
/// call after `wrt` is resolved, which names the parameters as the user does.
pub fn avoid_generated_names(sig: &mut Signature) {
    let mut taken: Vec<String> = sig.params.iter().map(|p| p.name.to_string()).collect();
    for i in 0..sig.params.len() {
        let name = names::unraw(&sig.params[i].name);
        if !names::looks_generated(&name) {
            continue;
        }
        let base = if names::has_generated_prefix(&name) {
            format!("u_{name}")
        } else {
            name
        };
        let mut candidate = base.clone();
        let mut k = 1;
        while taken.contains(&candidate) || names::looks_generated(&candidate) {
            candidate = format!("{base}_{k}");
            k += 1;
        }
        let span = sig.params[i].name.span();
        sig.params[i].name = Ident::new(&candidate, span);
        taken.push(candidate);
    }
}

/// Resolves `wrt(...)` to one flag per parameter: true where the parameter is active.
pub fn active_set(sig: &Signature, options: &Options, errors: &mut Errors) -> Vec<bool> {
    let all: Vec<bool> = sig
        .params
        .iter()
        .map(|p| p.role == ParamRole::Float)
        .collect();
    // nested containers of floats are data only, which `wrt` must leave out
    let named = |p: &SigParam| options.wrt.as_ref().is_none_or(|wrt| wrt.contains(&p.name));
    let others = sig.params.iter().any(|p| p.role == ParamRole::Float);
    for p in sig.params.iter().filter(|p| p.nested_floats && named(p)) {
        let ty = &p.ty;
        let mut message = unsupported_parameter(ty, &[]);
        if others {
            message.push_str(&format!(
                "; to pass it as data that is not differentiated (a batch of samples), list the parameters to differentiate in `#[differentiate(wrt(..))]` and leave `{}` out",
                p.name
            ));
        }
        errors.push_spanned(ty, message);
    }
    let Some(wrt) = &options.wrt else { return all };
    let mut active = vec![false; sig.params.len()];
    for name in wrt {
        match sig.params.iter().position(|p| p.name == *name) {
            None => errors.push(
                name.span(),
                format!(
                    "`wrt` names `{name}`, which is not a parameter; the parameters are: {}",
                    sig.params.iter().map(|p| format!("`{}`", p.name)).collect::<Vec<_>>().join(", ")
                ),
            ),
            Some(i) if sig.params[i].nested_floats => {}
            Some(i) if sig.params[i].role != ParamRole::Float => errors.push(
                name.span(),
                format!("`{name}` cannot carry a derivative (its type is not a float); remove it from `wrt`"),
            ),
            Some(i) if active[i] => errors.push(name.span(), format!("`{name}` appears twice in `wrt`")),
            Some(i) => active[i] = true,
        }
    }
    active
}
