//! What `#[timed]` turns a function into. The user's signature and body are re-emitted as they came; the
//! macro only adds a drop guard in front of the body (or, for `async fn`, a future around it).

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{Ident, LitStr, ReturnType, Type};

use crate::args::{Args, Kind};
use crate::item::{TimedFn, is_timed_attr};

/// Expands `#[timed(args)] item`. With `enabled` false the item comes back exactly as written once the
/// arguments check out. On error the item is emitted beside the error, so that the error is the only one.
pub fn timed(args: TokenStream, item: TokenStream, enabled: bool) -> TokenStream {
    if is_let_statement(&item) {
        // rustc has already refused an attribute macro on a statement; a second error would only repeat it.
        return item;
    }
    let args = Args::parse(args);
    let function = TimedFn::parse(item.clone());
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
            None => match misplaced_kind(&args, &function) {
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

/// A step or a batch is one call on one thread, which an `async fn`, whose polls may run anywhere, is not.
fn misplaced_kind(args: &Args, function: &TimedFn) -> Option<syn::Error> {
    let kind = match args.kind {
        Kind::Span => return None,
        Kind::Step => "step",
        Kind::Batch => "batch",
    };
    let asyncness = function.sig.asyncness?;
    Some(syn::Error::new(
        asyncness.span,
        format!(
            "`#[timed({kind})]` cannot be applied to an `async fn`: a {kind} is one call on one thread; \
             time the `async fn` with `#[timed]` and mark the synchronous function that drives it"
        ),
    ))
}

fn is_let_statement(item: &TokenStream) -> bool {
    matches!(item.clone().into_iter().next(), Some(TokenTree::Ident(ident)) if ident == "let")
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

fn expand(args: &Args, function: TimedFn) -> TokenStream {
    let TimedFn { attrs, vis, sig, brace, inner_attrs, body } = function;
    let callsite = callsite(args, &sig.ident);
    let kind = kind(args);
    // The braces are the macro's: with the user's span, rustc would call them unnecessary (`unused_braces`).
    let user_block = braced(Span::call_site(), body);
    let timed_body = if sig.asyncness.is_some() {
        let output = output_hint(&sig.output, user_block);
        quote! {
            #(#inner_attrs)*
            ::timing_runtime::__private::Instrumented::new(
                { #callsite &__TIMING_CALLSITE },
                async move { #output },
            )
            .await
        }
    } else {
        let guard = Ident::new("__timing_guard", Span::mixed_site());
        quote! {
            #(#inner_attrs)*
            let #guard = { #callsite ::timing_runtime::__private::Callsite::enter_as(&__TIMING_CALLSITE, #kind) };
            #user_block
        }
    };
    let timed_body = braced(brace.span(), timed_body);
    quote!(#(#attrs)* #vis #sig #timed_body)
}

/// The `static` that holds what every call of this function shares: its names, resolved to ids once.
fn callsite(args: &Args, function: &Ident) -> TokenStream {
    let name = args.name.clone().unwrap_or_else(|| LitStr::new(&function.unraw().to_string(), Span::call_site()));
    let phase = match &args.phase {
        Some(phase) => quote!(::core::option::Option::Some(#phase)),
        None => quote!(::core::option::Option::None),
    };
    let kind = kind(args);
    quote! {
        static __TIMING_CALLSITE: ::timing_runtime::__private::Callsite = ::timing_runtime::__private::Callsite::new(
            #name,
            #phase,
            #kind,
            ::core::module_path!(),
            ::core::file!(),
            ::core::line!(),
        );
    }
}

/// The path of the call site's kind, given to the runtime both in the `static` and where the span opens,
/// where it is a constant that selects the path at compile time.
fn kind(args: &Args) -> TokenStream {
    let kind = match args.kind {
        Kind::Span => quote!(Span),
        Kind::Step => quote!(Step),
        Kind::Batch => quote!(Batch),
    };
    quote!(::timing_runtime::__private::Kind::#kind)
}

/// An `async` block's output type is inferred from its tail, so a tail that needs a coercion (`Box<T>` into
/// `Box<dyn Trait>`) would not get one. Passing the block through a function with the declared type gives it
/// the expected type back, where the type can be named in a turbofish (not `impl Trait`, not `!`).
fn output_hint(output: &ReturnType, user_block: Group) -> TokenStream {
    match output {
        ReturnType::Type(_, ty) if nameable(ty) => {
            quote!(::timing_runtime::__private::output::<#ty>(#user_block))
        }
        _ => user_block.into_token_stream(),
    }
}

fn nameable(ty: &Type) -> bool {
    fn no_impl(tokens: TokenStream) -> bool {
        tokens.into_iter().all(|token| match token {
            TokenTree::Ident(ident) => ident != "impl",
            TokenTree::Group(group) => no_impl(group.stream()),
            _ => true,
        })
    }
    !matches!(ty, Type::Never(_)) && no_impl(ty.to_token_stream())
}

fn braced(span: Span, tokens: TokenStream) -> Group {
    let mut group = Group::new(Delimiter::Brace, tokens);
    group.set_span(span);
    group
}

#[cfg(test)]
mod tests;
