//! The arguments of `#[timed(...)]`: `name = "..."`, `phase = "..."`, `step`, `batch`, `crate = path`.
//! Values from `macro_rules!` fragments (`$p:literal`, `$p:expr`, `$p:path`) arrive wrapped in invisible
//! groups, which are looked through.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Error, Ident, LitStr, Token};

const NAME: &str = "name";
const PHASE: &str = "phase";
const STEP: &str = "step";
const BATCH: &str = "batch";
const CRATE: &str = "crate";
const PER_TYPE: &str = "per_type";
/// Written by `#[timed]` on an `impl` block into the `#[timed(...)]` of a method inside it, never by users:
/// the block's type, for the method's name.
const IMPL: &str = "__impl";
const EXPECTED: &str = "expected one of `name`, `phase`, `step`, `batch`, `crate`, `per_type`";

/// What a timed call stands for in the training loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Span,
    Step,
    Batch,
}

/// The parsed and validated arguments of one `#[timed(...)]`.
#[derive(Clone)]
pub struct Args {
    pub name: Option<LitStr>,
    pub phase: Option<LitStr>,
    pub kind: Kind,
    /// Where `timing_runtime` is, for a crate that re-exports `timed`.
    pub krate: Option<syn::Path>,
    /// `per_type`: a span per instantiation of a generic function, named with its type arguments.
    pub per_type: Option<Ident>,
    /// Set by `#[timed]` on an `impl` block, never written: `name` is the method's own (`Type::method`), so
    /// that methods of one name on types of one name elsewhere stay different spans.
    pub own_name: bool,
    /// The type of the `impl` block the function is in, when `#[timed]` on the block said so (on the block,
    /// or through `__impl` in a method's own attribute): the function may name `Self`.
    pub impl_type: Option<LitStr>,
}

impl Args {
    /// Parses the attribute's arguments, reporting every mistake at once.
    pub fn parse(tokens: TokenStream) -> syn::Result<Self> {
        Parser::parse2(parse_args, tokens)
    }
}

fn parse_args(input: ParseStream) -> syn::Result<Args> {
    let mut args = Args {
        name: None,
        phase: None,
        kind: Kind::Span,
        krate: None,
        per_type: None,
        own_name: false,
        impl_type: None,
    };
    let mut step: Option<Ident> = None;
    let mut batch: Option<Ident> = None;
    let mut errors: Option<Error> = None;
    let mut push = |error: Error| match &mut errors {
        Some(all) => all.combine(error),
        None => errors = Some(error),
    };

    while !input.is_empty() {
        if input.peek(syn::Lit) {
            let literal: syn::Lit = input.parse()?;
            return Err(combined(errors, positional(&literal)));
        }
        let key = match Ident::parse_any(input) {
            Ok(key) => key,
            Err(_) => {
                return Err(combined(errors, input.error(format!("expected an argument, {EXPECTED}"))));
            }
        };
        let key_name = key.unraw().to_string();
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            let value = input.parse::<syn::Expr>()?;
            if reserved_prefix(&value, input) {
                // `x"..."`: one error for the value, rather than one for it and one for a missing comma. (From
                // edition 2021 on, rustc reports the unknown prefix too; the macro cannot tell the edition.)
                input.parse::<TokenStream>()?;
                let error = Error::new_spanned(
                    &value,
                    format!("`{key_name}` must be a string literal: `{key_name} = \"...\"`"),
                );
                return Err(combined(errors, error));
            }
            Some(value)
        } else if input.is_empty() || input.peek(Token![,]) {
            None
        } else if matches!(key_name.as_str(), NAME | PHASE | CRATE) {
            // `phase "x"`: one error, for the missing `=`, rather than one for the value and one for the comma.
            return Err(combined(errors, input.error(format!("expected `=` after `{key_name}`"))));
        } else {
            return Err(combined(errors, input.error("expected `,` between arguments")));
        };
        match key_name.as_str() {
            NAME | PHASE => {
                let slot = if key_name == NAME { &mut args.name } else { &mut args.phase };
                match string_value(&key, value) {
                    Err(error) => push(error),
                    Ok(_) if slot.is_some() => push(duplicate(&key)),
                    Ok(lit) => *slot = Some(lit),
                }
            }
            STEP | BATCH => {
                let slot = if key_name == STEP { &mut step } else { &mut batch };
                if let Some(value) = value {
                    push(Error::new_spanned(
                        value,
                        format!("`{key_name}` takes no value: write `#[timed({key_name})]`"),
                    ));
                } else if slot.is_some() {
                    push(duplicate(&key));
                } else {
                    *slot = Some(key);
                }
            }
            PER_TYPE => match value {
                Some(value) => push(Error::new_spanned(value, "`per_type` takes no value: write `#[timed(per_type)]`")),
                None if args.per_type.is_some() => push(duplicate(&key)),
                None => args.per_type = Some(key),
            },
            IMPL => match value.map(unwrap_groups) {
                Some(syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), .. })) => args.impl_type = Some(lit),
                _ => push(Error::new(key.span(), format!("unknown argument `{key_name}`, {EXPECTED}"))),
            },
            CRATE => match path_value(&key, value) {
                Err(error) => push(error),
                Ok(_) if args.krate.is_some() => push(duplicate(&key)),
                Ok(path) => args.krate = Some(path),
            },
            _ => push(Error::new(key.span(), format!("unknown argument `{key_name}`, {EXPECTED}"))),
        }
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            return Err(combined(errors, input.error("expected `,` between arguments")));
        }
        input.parse::<Token![,]>()?;
    }

    match (step, batch) {
        (Some(_), Some(batch)) => push(Error::new(
            batch.span(),
            "`step` and `batch` cannot be combined: a function is one step or one batch of steps",
        )),
        (Some(_), None) => args.kind = Kind::Step,
        (None, Some(_)) => args.kind = Kind::Batch,
        (None, None) => {}
    }
    match errors {
        Some(errors) => Err(errors),
        None => Ok(args),
    }
}

fn string_value(key: &Ident, value: Option<syn::Expr>) -> syn::Result<LitStr> {
    let key_name = key.unraw().to_string();
    let Some(value) = value else {
        return Err(Error::new(key.span(), format!("`{key_name}` needs a value: write `{key_name} = \"...\"`")));
    };
    match unwrap_groups(value) {
        syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(lit), .. }) => {
            if !lit.suffix().is_empty() {
                Err(Error::new(lit.span(), format!("`{key_name}` must be a string literal without a suffix")))
            } else if lit.value().trim().is_empty() {
                Err(Error::new(lit.span(), format!("`{key_name}` must not be empty")))
            } else {
                Ok(lit)
            }
        }
        other => {
            Err(Error::new_spanned(other, format!("`{key_name}` must be a string literal: `{key_name} = \"...\"`")))
        }
    }
}

fn path_value(key: &Ident, value: Option<syn::Expr>) -> syn::Result<syn::Path> {
    let Some(value) = value else {
        return Err(Error::new(key.span(), "`crate` needs a value: write `crate = path::to::timing_runtime`"));
    };
    match unwrap_groups(value) {
        syn::Expr::Path(syn::ExprPath { attrs, qself: None, path }) if attrs.is_empty() => Ok(path),
        other => Err(Error::new_spanned(other, "`crate` must be a path: `crate = path::to::timing_runtime`")),
    }
}

/// The expression inside the invisible groups that `macro_rules!` puts around a fragment it passes on.
fn unwrap_groups(mut value: syn::Expr) -> syn::Expr {
    while let syn::Expr::Group(group) = value {
        value = *group.expr;
    }
    value
}

/// Whether `value` and the literal after it were written as one token with an unknown prefix (`x"y"`),
/// which rustc reports and then passes on as an identifier and a literal.
fn reserved_prefix(value: &syn::Expr, input: ParseStream) -> bool {
    let (syn::Expr::Path(path), Ok(literal)) = (value, input.fork().parse::<syn::Lit>()) else { return false };
    let (Some(prefix), Some(text)) = (path.path.get_ident(), proc_macro2::Span::call_site().source_text()) else {
        return false;
    };
    let literal = quote::ToTokens::to_token_stream(&literal).to_string();
    text.contains(&format!("{prefix}{literal}"))
}

fn positional(literal: &syn::Lit) -> Error {
    let hint = match literal {
        syn::Lit::Str(text) => format!(": write `phase = \"{0}\"` or `name = \"{0}\"`", text.value()),
        _ => String::new(),
    };
    Error::new(literal.span(), format!("expected an argument name, found a literal{hint}"))
}

fn duplicate(key: &Ident) -> Error {
    Error::new(key.span(), format!("duplicate argument `{}`", key.unraw()))
}

fn combined(earlier: Option<Error>, last: Error) -> Error {
    match earlier {
        Some(mut all) => {
            all.combine(last);
            all
        }
        None => last,
    }
}
