//! What `#[timed]` turns a function into. The user's signature and body are re-emitted as they came; the
//! macro only adds a drop guard in front of the body (or, for `async fn`, a future around it). Used by the
//! entry (`expand`) and by `impl_block` for each method: it imports neither.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Ident, LitStr, ReturnType, Type};

use crate::args::{Args, Kind};
use crate::item::TimedFn;

pub(crate) fn expand(args: &Args, function: TimedFn) -> TokenStream {
    let TimedFn { attrs, vis, sig, brace, inner_attrs, body } = function;
    let krate = runtime(args);
    let method = is_method(args, &sig);
    let types = per_type_names(args, &sig);
    // How the span is named: as given; `Type::method` from the `impl` block's type as written; after
    // `Self`'s type, which only the compiler knows, at the first call (a method's own attribute, outside a
    // timed `impl`); or after the function.
    let given = args.name.is_some() && !args.own_name;
    let by_self = method && !given && (args.impl_type.is_none() || types.is_some());
    let mut named = args.clone();
    if by_self {
        named.name = None;
    } else if let (Some(impl_type), false) = (&args.impl_type, given) {
        let name = format!("{}::{}", impl_type.value(), sig.ident.unraw());
        named.name = Some(LitStr::new(&name, impl_type.span()));
        named.own_name = true;
    }
    let callsite = callsite(&named, &sig.ident, &krate);
    let kind = kind(args, &krate);
    let site = match types {
        // `per_type`: the span of this instantiation, found by its type arguments' names at each call (on a
        // method, `Self`'s first: the type parameters of its `impl`).
        Some(types) if method => quote!(#krate::__private::per_type_method(
            &__TIMING_CALLSITE,
            &[::core::any::type_name::<Self>() #(, ::core::any::type_name::<#types>())*]
        )),
        Some(types) => {
            quote!(#krate::__private::per_type(&__TIMING_CALLSITE, &[#(::core::any::type_name::<#types>()),*]))
        }
        None if by_self => quote!(__TIMING_CALLSITE.of_type(::core::any::type_name::<Self>)),
        None => quote!(&__TIMING_CALLSITE),
    };
    if let Some(boxed) = async_trait_body(&sig, &body) {
        // `#[async_trait]` ran first and made the `async fn` a function that boxes an `async` block: time
        // the block's polls, as for an `async fn`, not the call that boxes it.
        let BoxedFuture { boxing, async_move, block } = boxed;
        let timed_body = quote! {
            #(#inner_attrs)*
            #boxing(#krate::__private::Instrumented::new({ #callsite #site }, #async_move #block))
        };
        let timed_body = braced(brace.span(), timed_body);
        return quote!(#(#attrs)* #vis #sig #timed_body);
    }
    // The user's statements stay in a block with the user's braces, whose span (not one made by this macro,
    // whose edition is the macro crate's) decides when the tail expression's temporaries drop: a block of
    // the macro's made edition-2021 bodies drop them as edition 2024 does.
    let timed_body = if sig.asyncness.is_some() && may_await(&body) {
        let future = Ident::new("__timing_future", Span::mixed_site());
        let return_type = fake_return(&sig.output, &krate);
        let user_block = braced(brace.span(), body);
        // The future is an `async` block, which clippy's `async_yields_async` (deny by default) judges by
        // its output, the function's return type, and that may be a future (an `async fn` returning a boxed
        // future is not linted). So the lint is allowed on the generated block and set again on the user's,
        // where it still applies to the user's own `async` blocks: at the level the function's attributes
        // give it, or its default.
        let yields_async = yields_async_level(&attrs);
        // The `async` block stands for the function's body, so it carries the user's `async` and braces: lints
        // that skip code made by macros (clippy's `implicit_return` on the body's tail) still see the user's.
        let asyncness = sig.asyncness.map_or_else(Span::call_site, |asyncness| asyncness.span);
        let async_block = braced(
            brace.span(),
            quote! {
                #return_type
                #yields_async
                #user_block
            },
        );
        let async_move = quote_spanned!(asyncness=> async move);
        quote! {
            #(#inner_attrs)*
            #[allow(clippy::async_yields_async)]
            let #future = #async_move #async_block;
            #[allow(clippy::implicit_return)]
            { #krate::__private::Instrumented::new({ #callsite #site }, #future).await }
        }
    } else {
        // A function, or an `async fn` that never awaits (its future finishes in its first poll, which the
        // guard then covers exactly): the guard in front of the user's statements. For such an `async fn`,
        // awaiting a wrapped future would hide it from clippy's `unused_async`.
        let guard = Ident::new("__timing_guard", Span::mixed_site());
        let (items, rest) = leading_items(body);
        quote! {
            #(#inner_attrs)*
            #items
            let #guard = { #callsite #krate::__private::Callsite::enter_as(#site, #kind) };
            #rest
        }
    };
    let timed_body = braced(brace.span(), timed_body);
    quote!(#(#attrs)* #vis #sig #timed_body)
}

/// The `static` that holds what every call of this function shares: its names, resolved to ids once.
fn callsite(args: &Args, function: &Ident, krate: &TokenStream) -> TokenStream {
    // Named after the function, it is a span of its own; a `name` given merges what it names.
    let own_name =
        if args.name.is_some() && !args.own_name { TokenStream::new() } else { quote!(.named_after_function()) };
    // Written again as plain literals, at the user's: a raw one (`r#"x"#`) re-emitted as written made
    // clippy's `needless_raw_string_hashes` fire at the attribute only with timing on.
    let plain = |lit: &LitStr| LitStr::new(&lit.value(), lit.span());
    let name = args.name.as_ref().map_or_else(|| LitStr::new(&function.unraw().to_string(), Span::call_site()), plain);
    let phase = match args.phase.as_ref().map(plain) {
        Some(phase) => quote!(::core::option::Option::Some(#phase)),
        None => quote!(::core::option::Option::None),
    };
    let kind = kind(args, krate);
    quote! {
        static __TIMING_CALLSITE: #krate::__private::Callsite = #krate::__private::Callsite::new(
            #name,
            #phase,
            #kind,
            ::core::module_path!(),
            ::core::file!(),
            ::core::line!(),
        )#own_name;
    }
}

/// The path of the call site's kind, given to the runtime both in the `static` and where the span opens,
/// where it is a constant that selects the path at compile time.
fn kind(args: &Args, krate: &TokenStream) -> TokenStream {
    let kind = match args.kind {
        Kind::Span => quote!(Span),
        Kind::Step => quote!(Step),
        Kind::Batch => quote!(Batch),
    };
    quote!(#krate::__private::Kind::#kind)
}

/// The path of `timing_runtime` in the user's crate: `crate = path` when given (a crate that re-exports
/// `timed`), otherwise the name the user's Cargo.toml gives `timing-runtime` (it may be renamed), otherwise
/// `::timing_runtime` (outside Cargo, or in the runtime's own doctests, where it is the crate's own name).
fn runtime(args: &Args) -> TokenStream {
    if let Some(path) = &args.krate {
        return path.to_token_stream();
    }
    match crate::locate::runtime_name() {
        Some(name) => {
            let name = Ident::new(&name, Span::call_site());
            quote!(::#name)
        }
        None => quote!(::timing_runtime),
    }
}

/// The attribute that sets `clippy::async_yields_async` on the user's block: the function's own (`allow`,
/// `warn`, `deny`, `forbid` or `expect` naming it, the last one), or `deny`, its default.
fn yields_async_level(attrs: &[syn::Attribute]) -> TokenStream {
    let names_lint = |attr: &syn::Attribute| {
        let level = ["allow", "warn", "deny", "forbid", "expect"].iter().any(|level| attr.path().is_ident(level));
        level && attr.meta.to_token_stream().to_string().replace(' ', "").contains("clippy::async_yields_async")
    };
    match attrs.iter().rev().find(|attr| names_lint(attr)) {
        Some(attr) => {
            let level = attr.path();
            quote!(#[#level(clippy::async_yields_async)])
        }
        None => quote!(#[deny(clippy::async_yields_async)]),
    }
}

/// The items (`use`, `const`, `fn`, ...) at the start of a body, and the rest. The guard goes after them: a
/// statement in front of them would have clippy report them as items after statements
/// (`items_after_statements`), and items do nothing when reached, so the span covers the same work. A body
/// that does not parse is left whole, for rustc to report.
fn leading_items(body: TokenStream) -> (TokenStream, TokenStream) {
    let split = |input: syn::parse::ParseStream| -> syn::Result<(TokenStream, TokenStream)> {
        let mut items = TokenStream::new();
        while !input.is_empty() && matches!(input.fork().parse::<syn::Stmt>(), Ok(syn::Stmt::Item(_))) {
            input.parse::<syn::Item>()?.to_tokens(&mut items);
        }
        Ok((items, input.parse()?))
    };
    syn::parse::Parser::parse2(split, body.clone()).unwrap_or((TokenStream::new(), body))
}

/// The type parameters whose names make the span of an instantiation, under `per_type`, beside `Self`'s on
/// a method; `None` without `per_type`, or with nothing to split by (an error `per_type_error` reports).
fn per_type_names(args: &Args, sig: &syn::Signature) -> Option<Vec<Ident>> {
    args.per_type.as_ref()?;
    let types: Vec<Ident> = sig.generics.type_params().map(|param| param.ident.clone()).collect();
    (!types.is_empty() || is_method(args, sig)).then_some(types)
}

/// `per_type` on a function with nothing to split its span by: no type parameters, and no `Self` whose
/// type arguments could (outside an `impl`, or with no `self` nor `Self` to tell that it is in one).
pub(crate) fn per_type_error(args: &Args, sig: &syn::Signature) -> Option<syn::Error> {
    let per_type = args.per_type.as_ref()?;
    if sig.generics.type_params().next().is_some() || is_method(args, sig) {
        return None;
    }
    Some(syn::Error::new(
        per_type.span(),
        "`per_type` on a function without type parameters: there is nothing to split its span by (on a method \
         of a generic type, give it a `self` receiver or put `#[timed(per_type)]` on its `impl` block)",
    ))
}

/// Whether the function is known to be in an `impl` (or a trait), where `Self` names its type: its `impl`
/// block is timed, it takes `self`, or its signature names `Self`.
fn is_method(args: &Args, sig: &syn::Signature) -> bool {
    fn names_self(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            TokenTree::Ident(ident) => ident == "Self",
            TokenTree::Group(group) => names_self(group.stream()),
            _ => false,
        })
    }
    args.impl_type.is_some()
        || sig.receiver().is_some()
        || names_self(sig.inputs.to_token_stream())
        || names_self(sig.output.to_token_stream())
        || names_self(sig.generics.to_token_stream())
}

/// Whether the function is a method that `#[async_trait]` made from an `async fn`.
pub(crate) fn is_async_trait_method(sig: &syn::Signature, body: &TokenStream) -> bool {
    async_trait_body(sig, body).is_some()
}

/// The body of a method that `#[async_trait]` made from an `async fn`: `Box::pin(async move { ... })`,
/// returning a boxed future bound by the `'async_trait` lifetime.
struct BoxedFuture {
    /// `Box::pin` (any path ending in `Box::pin`).
    boxing: TokenStream,
    async_move: TokenStream,
    block: Group,
}

fn async_trait_body(sig: &syn::Signature, body: &TokenStream) -> Option<BoxedFuture> {
    let ReturnType::Type(_, output) = &sig.output else { return None };
    let names_async_trait = |tokens: TokenStream| {
        tokens.into_iter().any(|token| matches!(token, TokenTree::Ident(ident) if ident == "async_trait"))
    };
    if sig.asyncness.is_some() || !names_async_trait(lifetimes(output.to_token_stream())) {
        return None;
    }
    let tokens: Vec<TokenTree> = body.clone().into_iter().collect();
    let (call, boxing) = tokens.split_last()?;
    let boxing: TokenStream = boxing.iter().cloned().collect();
    let is_box_pin = boxing.to_string().replace(' ', "").ends_with("Box::pin");
    let TokenTree::Group(arguments) = call else { return None };
    let inner: Vec<TokenTree> = arguments.stream().into_iter().collect();
    match (is_box_pin, arguments.delimiter(), inner.as_slice()) {
        (true, Delimiter::Parenthesis, [TokenTree::Ident(word), TokenTree::Ident(mover), TokenTree::Group(block)])
            if word == "async" && mover == "move" && block.delimiter() == Delimiter::Brace =>
        {
            Some(BoxedFuture { boxing, async_move: quote!(#word #mover), block: block.clone() })
        }
        _ => None,
    }
}

/// The lifetimes' names in `tokens`, as identifiers.
fn lifetimes(tokens: TokenStream) -> TokenStream {
    let mut found = TokenStream::new();
    let mut after_quote = false;
    for token in tokens {
        match &token {
            TokenTree::Punct(punct) if punct.as_char() == '\'' => {
                after_quote = true;
                continue;
            }
            TokenTree::Ident(_) if after_quote => found.extend([token.clone()]),
            TokenTree::Group(group) => found.extend(lifetimes(group.stream())),
            _ => {}
        }
        after_quote = false;
    }
    found
}

/// Whether an `async fn` body may suspend: it has an `.await` outside the `async` blocks it makes, or a
/// macro call that may expand to one (`join!`, `select!`): all macros but the standard library's that
/// cannot. An `async` closure counts as may-suspend too (its body need not be braced, so it is not skipped).
fn may_await(body: &TokenStream) -> bool {
    const CANNOT_AWAIT: &[&str] = &[
        "assert",
        "assert_eq",
        "assert_ne",
        "debug_assert",
        "debug_assert_eq",
        "debug_assert_ne",
        "dbg",
        "eprint",
        "eprintln",
        "format",
        "format_args",
        "matches",
        "panic",
        "print",
        "println",
        "todo",
        "unimplemented",
        "unreachable",
        "vec",
        "write",
        "writeln",
        "concat",
        "stringify",
        "line",
        "column",
        "file",
        "module_path",
        "env",
        "option_env",
        "cfg",
        "include_str",
        "include_bytes",
    ];
    let tokens: Vec<TokenTree> = body.clone().into_iter().collect();
    let mut index = 0;
    while let Some(token) = tokens.get(index) {
        match token {
            TokenTree::Ident(ident) if ident == "await" => return true,
            TokenTree::Ident(ident) if ident == "async" => {
                let mut next = index + 1;
                if matches!(tokens.get(next), Some(TokenTree::Ident(word)) if word == "move") {
                    next += 1;
                }
                match tokens.get(next) {
                    // An `async` block of the body's own: its awaits suspend it, not the function.
                    Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Brace => index = next,
                    _ => return true,
                }
            }
            TokenTree::Punct(bang) if bang.as_char() == '!' => {
                let name = match index.checked_sub(1).and_then(|before| tokens.get(before)) {
                    Some(TokenTree::Ident(name)) => Some(name.to_string()),
                    // `!` after anything but a name is a negation, not a macro call.
                    _ => None,
                };
                let Some(name) = name else {
                    index += 1;
                    continue;
                };
                let is_call = matches!(tokens.get(index + 1), Some(TokenTree::Group(_)));
                let keyword = matches!(name.as_str(), "if" | "while" | "return" | "match" | "in" | "else" | "break");
                if is_call && !keyword && !CANNOT_AWAIT.contains(&name.as_str()) {
                    return true;
                }
            }
            TokenTree::Group(group) if may_await(&group.stream()) => return true,
            _ => {}
        }
        index += 1;
    }
    false
}

/// An `async` block's output type is inferred from the first value it returns, so an early `return` or a tail
/// that needs a coercion (`Box<T>` into `Box<dyn Trait>`) would not get one. A `return` of the declared
/// type ahead of the user's code, never taken, fixes the output type first; then every `return` and the tail
/// coerce to it, as in the `async fn` itself, and type errors point at the user's tokens. The value is a call
/// of a function that returns any type (no diverging expression, so no lint to allow), with each `impl
/// Trait` of the type left to inference (`Result<_, Box<dyn Error>>`); nothing for `!`.
fn fake_return(output: &ReturnType, krate: &TokenStream) -> TokenStream {
    let ReturnType::Type(_, ty) = output else { return TokenStream::new() };
    if matches!(**ty, Type::Never(_)) {
        return TokenStream::new();
    }
    let (span, ty) = (ty.span(), without_impl(ty.to_token_stream()));
    // Located at the declared type, so that rustc's note on where the output type comes from points there.
    let value = located_at(quote!(#krate::__private::never::<#ty>()), span);
    quote! {
        if false {
            return #value;
        }
    }
}

/// `tokens` with every span moved to `span`'s location, each keeping its own hygiene.
fn located_at(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut moved = Group::new(group.delimiter(), located_at(group.stream(), span));
                moved.set_span(group.span().located_at(span));
                return TokenTree::Group(moved);
            }
            token.set_span(token.span().located_at(span));
            token
        })
        .collect()
}

/// `tokens` (a type) with each `impl Bounds` replaced by `_`, which a turbofish may hold and inference fills.
fn without_impl(tokens: TokenStream) -> TokenStream {
    let mut out = TokenStream::new();
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Ident(ident) if ident == "impl" => {
                out.extend(quote!(_));
                // The bounds run to the `,` or `>` that ends this argument, at this level of `<...>`.
                let mut depth = 0usize;
                while let Some(next) = tokens.peek() {
                    match next {
                        TokenTree::Punct(punct) if punct.as_char() == '<' => depth += 1,
                        TokenTree::Punct(punct) if punct.as_char() == '>' && depth == 0 => break,
                        TokenTree::Punct(punct) if punct.as_char() == '>' => depth -= 1,
                        TokenTree::Punct(punct) if punct.as_char() == ',' && depth == 0 => break,
                        _ => {}
                    }
                    tokens.next();
                }
            }
            TokenTree::Group(group) => {
                let mut inner = Group::new(group.delimiter(), without_impl(group.stream()));
                inner.set_span(group.span());
                out.extend([TokenTree::Group(inner)]);
            }
            other => out.extend([other]),
        }
    }
    out
}

pub(crate) fn braced(span: Span, tokens: TokenStream) -> Group {
    let mut group = Group::new(Delimiter::Brace, tokens);
    group.set_span(span);
    group
}
