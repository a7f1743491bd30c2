//! `#[timed]` on an `impl` block: each method is timed as `#[timed]` would time it, named `Type::method`,
//! with the block's arguments. The name is the method's own, not a `name` given: methods of one name on
//! types of one name (two `impl`s of `fmt`, two modules' `Scene`) are different spans, told apart as
//! functions of one name are.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::{Attribute, Error, ImplItem, ItemImpl, LitStr, MacroDelimiter, Meta, MetaList, Type};

use crate::args::{Args, Kind};
use crate::item::{TimedFn, is_timed_attr, naked_attr};

/// The block with its methods annotated, or the reason it cannot be (`name`, `step` or `batch` on a block).
pub fn expand(args: &Args, mut block: ItemImpl, enabled: bool) -> syn::Result<TokenStream> {
    if let Some(name) = &args.name {
        return Err(Error::new_spanned(name, "`name` on an `impl` block: each method is named `Type::method`"));
    }
    if args.kind != Kind::Span {
        let kind = if args.kind == Kind::Step { "step" } else { "batch" };
        return Err(Error::new(
            block.impl_token.span,
            format!("`{kind}` on an `impl` block: put `#[timed({kind})]` on the method that is one {kind}"),
        ));
    }
    if let Some(per_type) = &args.per_type {
        let generic_method = block
            .items
            .iter()
            .any(|item| matches!(item, ImplItem::Fn(method) if method.sig.generics.type_params().next().is_some()));
        if block.generics.type_params().next().is_none() && !generic_method {
            return Err(Error::new(
                per_type.span(),
                "`per_type` on an `impl` of a type without type parameters, whose methods have none: there is \
                 nothing to split their spans by",
            ));
        }
    }
    if !enabled {
        return Ok(block.into_token_stream());
    }
    let type_name = LitStr::new(&type_name(&block.self_ty), Span::call_site());
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        // A method with its own `#[timed]` keeps it, told the block's type so that it is named as its
        // neighbours are; a `const fn` or a naked one cannot be timed.
        if let Some(attr) = method.attrs.iter_mut().find(|attr| is_timed_attr(attr)) {
            tell_type(attr, &type_name);
            continue;
        }
        if method.sig.constness.is_some() || naked_attr(&method.attrs).is_some() {
            continue;
        }
        let method_args = Args { impl_type: Some(type_name.clone()), ..args.clone() };
        let function = TimedFn::parse(method.to_token_stream())?;
        *item = ImplItem::Verbatim(crate::function::expand(&method_args, function));
    }
    Ok(block.into_token_stream())
}

/// Adds `__impl = "Type"` to a method's own `#[timed]` inside a timed `impl`, after the arguments written
/// (whose tokens, and so whose errors' places, are left as they are).
fn tell_type(attr: &mut Attribute, type_name: &LitStr) {
    let told = quote!(__impl = #type_name);
    match &mut attr.meta {
        Meta::Path(path) => {
            attr.meta = Meta::List(MetaList {
                path: path.clone(),
                delimiter: MacroDelimiter::Paren(Default::default()),
                tokens: told,
            });
        }
        Meta::List(list) => {
            let written = std::mem::take(&mut list.tokens);
            let comma = match written.clone().into_iter().last() {
                None => TokenStream::new(),
                Some(TokenTree::Punct(punct)) if punct.as_char() == ',' => TokenStream::new(),
                Some(_) => quote!(,),
            };
            list.tokens = quote!(#written #comma #told);
        }
        // `#[timed = ...]`: rustc refuses it; left for that error.
        Meta::NameValue(_) => {}
    }
}

/// The type's name as reports show it: its path's last segment without generic arguments (`Scene` for
/// `Scene<D>`), or the type as written.
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().map_or_else(String::new, |segment| segment.ident.unraw().to_string())
        }
        other => other.to_token_stream().to_string(),
    }
}
