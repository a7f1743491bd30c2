//! The function `#[timed]` is put on, parsed only as far as the expansion needs: the body stays tokens, so a
//! body that does not parse is reported by the compiler, at the user's token, not by this macro.

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use syn::parse::{ParseStream, Parser};
use syn::{Attribute, Error, Signature, Token, Visibility};

/// A function with a body: `#(#attrs)* #vis #sig { #(#inner_attrs)* #body }`.
pub struct TimedFn {
    pub attrs: Vec<Attribute>,
    pub vis: Visibility,
    pub sig: Signature,
    pub brace: Group,
    pub inner_attrs: Vec<Attribute>,
    pub body: TokenStream,
}

impl TimedFn {
    /// Parses `tokens` as a function with a body, or says which token makes it something else.
    pub fn parse(tokens: TokenStream) -> syn::Result<Self> {
        Parser::parse2(Self::parse_item, tokens)
    }

    fn parse_item(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis: Visibility = input.parse()?;
        if !starts_signature(input) {
            return Err(not_a_function(input));
        }
        if input.peek(Token![const]) && !input.peek2(syn::token::Brace) {
            let constness: Token![const] = input.fork().parse()?;
            return Err(Error::new(
                constness.span,
                "`#[timed]` cannot be applied to a `const fn`: a clock cannot be read in const evaluation",
            ));
        }
        let sig: Signature = input.parse()?;
        if input.peek(Token![;]) {
            let semi: Token![;] = input.parse()?;
            return Err(Error::new(semi.span, "`#[timed]` needs a function with a body"));
        }
        let brace = match body_group(input.parse::<TokenTree>()?) {
            Ok(group) => group,
            Err(other) => {
                return Err(Error::new(other.span(), "expected the function's body `{ ... }`"));
            }
        };
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the function's body"));
        }
        let (inner_attrs, body) = Parser::parse2(split_inner_attrs, brace.stream())?;
        Ok(TimedFn { attrs, vis, sig, brace, inner_attrs, body })
    }
}

/// The body's braces, also when a `macro_rules!` passed the body as a `$body:block` fragment, which arrives
/// wrapped in an invisible group; the token itself when it is no body.
fn body_group(token: TokenTree) -> Result<Group, TokenTree> {
    match token {
        TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => Ok(group),
        TokenTree::Group(group) if group.delimiter() == Delimiter::None => {
            let mut inner = group.stream().into_iter();
            match (inner.next(), inner.next()) {
                (Some(only), None) => body_group(only).map_err(|_| TokenTree::Group(group)),
                _ => Err(TokenTree::Group(group)),
            }
        }
        other => Err(other),
    }
}

fn split_inner_attrs(input: ParseStream) -> syn::Result<(Vec<Attribute>, TokenStream)> {
    let inner = input.call(Attribute::parse_inner)?;
    let rest: TokenStream = input.parse()?;
    Ok((inner, rest))
}

fn starts_signature(input: ParseStream) -> bool {
    let fork = input.fork();
    loop {
        if fork.peek(Token![fn]) {
            return true;
        }
        let modifier = fork.parse::<Token![const]>().is_ok()
            || fork.parse::<Token![async]>().is_ok()
            || fork.parse::<Token![unsafe]>().is_ok()
            || fork.parse::<syn::Abi>().is_ok();
        if !modifier {
            return false;
        }
    }
}

fn not_a_function(input: ParseStream) -> Error {
    let what = input.fork().parse::<TokenTree>().map(|token| token.to_string()).unwrap_or_default();
    let message = match what.as_str() {
        "struct" | "enum" | "union" | "trait" | "type" => {
            format!("`#[timed]` can only be applied to a function, not a `{what}`")
        }
        "mod" => "`#[timed]` can only be applied to a function, not a module".to_owned(),
        _ => "`#[timed]` can only be applied to a function".to_owned(),
    };
    input.error(message)
}

/// The `#[naked]` or `#[unsafe(naked)]` attribute among `attrs`: a naked function's body is one
/// `naked_asm!`, with no room for a timer.
pub fn naked_attr(attrs: &[Attribute]) -> Option<&Attribute> {
    attrs.iter().find(|attr| {
        attr.path().is_ident("naked")
            || (attr.path().is_ident("unsafe")
                && attr.parse_args::<syn::Path>().is_ok_and(|inner| inner.is_ident("naked")))
    })
}

/// Whether `attr` is another `#[timed]` (or `#[timing_runtime::timed]`) on the same function.
pub fn is_timed_attr(attr: &Attribute) -> bool {
    attr.path().segments.last().is_some_and(|segment| segment.ident == "timed")
}
