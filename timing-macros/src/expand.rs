//! The attribute's entry: what it is put on (a function, an `impl` block, or something it refuses), the
//! mistakes that are errors whatever the feature, and the expansion (`function`, `impl_block`) when on.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::quote;

use crate::args::{Args, Kind};
use crate::function::{braced, expand, is_async_trait_method, per_type_error};
use crate::impl_block;
use crate::item::{TimedFn, is_timed_attr, naked_attr};

/// Expands `#[timed(args)] item`. With `enabled` false the item comes back exactly as written once the
/// arguments check out. On error the item is emitted beside the error, so that the error is the only one.
pub fn timed(args: TokenStream, item: TokenStream, enabled: bool) -> TokenStream {
    if is_statement_or_expression(&item) || is_key_value_attribute() {
        // rustc has already refused an attribute macro there, or in this form (`#[timed = ...]`); a second
        // error would only repeat it, and output read as an expression (`compile_error!(..) || 1`) would add
        // errors of its own.
        return item;
    }
    let args = Args::parse(args);
    if let Ok(block) = syn::parse2::<syn::ItemImpl>(item.clone()) {
        let expanded = args.and_then(|args| impl_block::expand(&args, block, enabled));
        return expanded.unwrap_or_else(|error| with_item(&error, item));
    }
    let mut function = TimedFn::parse(item.clone());
    // What rustc says of a doc comment on a parameter changes once a macro has passed it on (it arrives as a
    // `#[doc]` attribute): said here as rustc says it of the comment, and the comment left out.
    if let Some(error) = function.as_mut().ok().and_then(param_docs) {
        let mut output = error.to_compile_error();
        match function {
            Ok(function) => match args {
                Ok(args) if enabled => output.extend(expand(&args, function)),
                Ok(_) => output.extend(reassemble(function)),
                Err(args_error) => {
                    output.extend(args_error.to_compile_error());
                    output.extend(reassemble(function));
                }
            },
            Err(_) => output.extend(item),
        }
        return output;
    }
    match (args, function) {
        (Ok(args), Ok(function)) => match function.attrs.iter().find(|attr| is_timed_attr(attr)) {
            Some(twice) => {
                let error = syn::Error::new_spanned(twice, "`#[timed]` is already applied to this function");
                let mut function = function;
                function.attrs.retain(|attr| !is_timed_attr(attr));
                let mut output = error.to_compile_error();
                output.extend(reassemble(function));
                output
            }
            None => match misplaced_kind(&args, &function).or_else(|| per_type_error(&args, &function.sig)) {
                Some(error) => with_item(&error, item),
                None if enabled => expand(&args, function),
                None => item,
            },
        },
        (Err(mut error), Err(item_error)) => {
            error.combine(item_error);
            with_item(&error, item)
        }
        (Err(error), Ok(_)) | (Ok(_), Err(error)) => with_item(&error, item),
    }
}

/// The doc comments on the function's parameters, taken off, as one error at each.
fn param_docs(function: &mut TimedFn) -> Option<syn::Error> {
    let mut errors: Option<syn::Error> = None;
    for input in &mut function.sig.inputs {
        let attrs = match input {
            syn::FnArg::Receiver(receiver) => &mut receiver.attrs,
            syn::FnArg::Typed(typed) => &mut typed.attrs,
        };
        attrs.retain(|attr| {
            if !attr.path().is_ident("doc") {
                return true;
            }
            let error =
                syn::Error::new_spanned(attr, "documentation comments cannot be applied to function parameters");
            match &mut errors {
                Some(all) => all.combine(error),
                None => errors = Some(error),
            }
            false
        });
    }
    errors
}

/// What `#[timed]` cannot time, whatever its arguments and whether the feature is on: a naked function, and
/// a step or batch that is an `async fn`.
fn misplaced_kind(args: &Args, function: &TimedFn) -> Option<syn::Error> {
    if let Some(naked) = naked_attr(&function.attrs) {
        return Some(syn::Error::new_spanned(
            naked,
            "`#[timed]` cannot be applied to a naked function: its body is a single `naked_asm!`, with no room \
             for a timer",
        ));
    }
    // A step or a batch is one call on one thread, which an `async fn`, whose polls may run anywhere, is not.
    let kind = match args.kind {
        Kind::Span => return None,
        Kind::Step => "step",
        Kind::Batch => "batch",
    };
    let span = match function.sig.asyncness {
        Some(asyncness) => asyncness.span,
        None if is_async_trait_method(&function.sig, &function.body) => function.sig.ident.span(),
        None => return None,
    };
    Some(syn::Error::new(
        span,
        format!(
            "`#[timed({kind})]` cannot be applied to an `async fn`: a {kind} is one call on one thread; \
             time the `async fn` with `#[timed]` and mark the synchronous function that drives it"
        ),
    ))
}

/// A statement or an expression (a closure, an `async` block, a block, a call), which rustc does not accept
/// an attribute macro on: not an item (which starts with a keyword, an attribute or a macro's name and `!`).
fn is_statement_or_expression(item: &TokenStream) -> bool {
    const ITEM_KEYWORDS: &[&str] = &[
        "pub",
        "use",
        "const",
        "static",
        "type",
        "struct",
        "enum",
        "union",
        "trait",
        "impl",
        "mod",
        "extern",
        "fn",
        "unsafe",
        "crate",
        "self",
        "macro_rules",
        "default",
        "safe",
    ];
    let tokens: Vec<TokenTree> = item.clone().into_iter().collect();
    match (tokens.first(), tokens.get(1)) {
        (Some(TokenTree::Ident(first)), second) if first == "async" => {
            !matches!(second, Some(TokenTree::Ident(next)) if next == "fn" || next == "unsafe" || next == "extern")
        }
        (Some(TokenTree::Ident(first)), second) => {
            let macro_call = matches!(second, Some(TokenTree::Punct(bang)) if bang.as_char() == '!');
            first == "let" || first == "move" || !(macro_call || ITEM_KEYWORDS.contains(&first.to_string().as_str()))
        }
        (Some(TokenTree::Punct(first)), _) => first.as_char() == '|',
        (Some(TokenTree::Group(group)), _) => group.delimiter() == Delimiter::Brace,
        _ => false,
    }
}

/// Whether the attribute was written `#[timed = ...]`, which rustc refuses ("key-value macro attributes are
/// not supported") before passing the value on as if it were the arguments.
fn is_key_value_attribute() -> bool {
    let Some(text) = Span::call_site().source_text() else { return false };
    let after_path = text
        .trim_start_matches("#[")
        .trim_start_matches(|c: char| c.is_alphanumeric() || c == '_' || c == ':' || c.is_whitespace());
    after_path.starts_with('=')
}

fn with_item(error: &syn::Error, item: TokenStream) -> TokenStream {
    let mut output = error.to_compile_error();
    output.extend(item);
    output
}

fn reassemble(function: TimedFn) -> TokenStream {
    let TimedFn { attrs, vis, sig, brace, inner_attrs, body } = function;
    let body = braced(brace.span(), quote!(#(#inner_attrs)* #body));
    quote!(#(#attrs)* #vis #sig #body)
}

#[cfg(test)]
mod tests;
