//! `#[timed]` on an `impl` block: each method is timed as `#[timed]` would time it, named `Type::method`,
//! with the block's arguments. The name is the method's own, not a `name` given: methods of one name on
//! types of one name (two `impl`s of `fmt`, two modules' `Scene`) are different spans, told apart as
//! functions of one name are.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{Error, ImplItem, ItemImpl, LitStr, Type};

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
    if !enabled {
        return Ok(block.into_token_stream());
    }
    let type_name = type_name(&block.self_ty);
    for item in &mut block.items {
        let ImplItem::Fn(method) = item else { continue };
        // A method with its own `#[timed]` keeps it; a `const fn` or a naked one cannot be timed.
        if method.attrs.iter().any(is_timed_attr)
            || method.sig.constness.is_some()
            || naked_attr(&method.attrs).is_some()
        {
            continue;
        }
        let name = format!("{type_name}::{}", method.sig.ident.unraw());
        let method_args = Args { name: Some(LitStr::new(&name, Span::call_site())), own_name: true, ..args.clone() };
        let function = TimedFn::parse(method.to_token_stream())?;
        *item = ImplItem::Verbatim(crate::expand::expand(&method_args, function));
    }
    Ok(block.into_token_stream())
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
