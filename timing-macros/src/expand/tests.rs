//! Each expansion form against the output written out by hand.

use proc_macro2::TokenStream;
use quote::quote;

use super::timed;

fn expand(args: TokenStream, item: TokenStream) -> String {
    timed(args, item, true).to_string()
}

fn callsite(name: &str, phase: TokenStream, kind: TokenStream) -> TokenStream {
    // A name given with `name = ...` merges what it names; a function's own name does not.
    let own_name = if name == "solve" { quote!() } else { quote!(.named_after_function()) };
    quote! {
        static __TIMING_CALLSITE: ::timing_runtime::__private::Callsite = ::timing_runtime::__private::Callsite::new(
            #name,
            #phase,
            ::timing_runtime::__private::Kind::#kind,
            ::core::module_path!(),
            ::core::file!(),
            ::core::line!(),
        ) #own_name;
    }
}

#[test]
fn a_function_gets_a_guard_in_front_of_its_untouched_body() {
    let site = callsite("compute", quote!(::core::option::Option::Some("regions")), quote!(Span));
    let expected = quote! {
        #[inline]
        pub(crate) fn compute<T: Copy>(x: T) -> T where T: Default {
            #![allow(unused)]
            let __timing_guard = {
                #site ::timing_runtime::__private::Callsite::enter_as(&__TIMING_CALLSITE, ::timing_runtime::__private::Kind::Span)
            };
            let y = x; y
        }
    };
    let actual = expand(
        quote!(phase = "regions"),
        quote! {
            #[inline]
            pub(crate) fn compute<T: Copy>(x: T) -> T where T: Default {
                #![allow(unused)]
                let y = x; y
            }
        },
    );
    assert_eq!(actual, expected.to_string());
}

#[test]
fn name_and_kind_are_passed_to_the_call_site() {
    let cases = [
        (quote!(step), "make_step", quote!(::core::option::Option::None), quote!(Step)),
        (quote!(batch), "make_step", quote!(::core::option::Option::None), quote!(Batch)),
        (quote!(name = "solve", phase = "error"), "solve", quote!(::core::option::Option::Some("error")), quote!(Span)),
        (quote!(), "make_step", quote!(::core::option::Option::None), quote!(Span)),
    ];
    for (args, name, phase, kind) in cases {
        let site = callsite(name, phase, kind.clone());
        let expected = quote! {
            fn make_step() {
                let __timing_guard = {
                    #site ::timing_runtime::__private::Callsite::enter_as(&__TIMING_CALLSITE, ::timing_runtime::__private::Kind::#kind)
                };
            }
        };
        assert_eq!(
            expand(
                args,
                quote!(
                    fn make_step() {}
                )
            ),
            expected.to_string()
        );
    }
}

#[test]
fn an_impl_trait_in_the_output_type_is_left_to_inference() {
    let actual = expand(
        quote!(),
        quote!(
            async fn f() -> Result<impl Display + Send, Box<dyn Error>> {
                g().await
            }
        ),
    );
    assert!(actual.contains("never :: < Result < _ , Box < dyn Error > > >"), "{actual}");
}

#[test]
fn the_users_level_of_async_yields_async_is_kept_on_the_body() {
    let actual = expand(
        quote!(),
        quote!(
            #[allow(clippy::async_yields_async)]
            async fn f() -> u8 {
                g().await
            }
        ),
    );
    assert!(actual.contains("# [allow (clippy :: async_yields_async)] {"), "{actual}");
    assert!(!actual.contains("deny"), "{actual}");
}

#[test]
fn crate_points_the_expansion_at_a_re_export() {
    let actual = expand(
        quote!(crate = my_lib::timing),
        quote!(
            fn f() {}
        ),
    );
    assert!(actual.contains("my_lib :: timing :: __private :: Callsite :: enter_as"), "{actual}");
    assert!(!actual.contains("timing_runtime"), "{actual}");
}

#[test]
fn a_body_passed_as_a_macro_fragment_is_found_in_its_invisible_group() {
    use proc_macro2::{Delimiter, Group, TokenTree};
    let body = Group::new(Delimiter::None, quote!({ 7 }));
    let mut item = quote!(fn seven() -> u32);
    item.extend([TokenTree::Group(body)]);
    let actual = expand(quote!(), item);
    assert!(actual.contains("__timing_guard"), "{actual}");
    assert!(actual.ends_with("7 }"), "{actual}");
}

#[test]
fn an_async_fn_that_never_suspends_gets_the_guard_of_a_function() {
    for body in [
        quote!({ 1 }),
        quote!({
            println!("{}", 1);
            todo!()
        }),
        quote!({
            let f = async { g().await };
            f
        }),
    ] {
        let actual = expand(quote!(), quote!(async fn f() -> u8 #body));
        assert!(actual.contains("__timing_guard"), "{actual}");
        assert!(!actual.contains("Instrumented"), "{actual}");
    }
    for body in [
        quote!({ g().await }),
        quote!({ tokio::join!(a, b) }),
        quote!({
            let f = async move |x| x;
            1
        }),
    ] {
        let actual = expand(quote!(), quote!(async fn f() -> u8 #body));
        assert!(actual.contains("Instrumented"), "{actual}");
    }
}

#[test]
fn a_raw_identifier_is_named_without_its_prefix() {
    let actual = expand(
        quote!(),
        quote!(
            fn r#match() {}
        ),
    );
    assert!(actual.contains("\"match\""), "{actual}");
}

#[test]
fn an_async_fn_is_wrapped_in_a_future_that_returns_its_output_type_first() {
    let site = callsite("fetch", quote!(::core::option::Option::None), quote!(Span));
    let expected = quote! {
        async fn fetch(n: u8) -> Result<Box<dyn Display>, E> {
            #[allow(clippy::async_yields_async)]
            let __timing_future = async move {
                if false {
                    return ::timing_runtime::__private::never::<Result<Box<dyn Display>, E> >();
                }
                #[deny(clippy::async_yields_async)]
                { Ok(Box::new(n.await)) }
            };
            #[allow(clippy::implicit_return)]
            { ::timing_runtime::__private::Instrumented::new({ #site &__TIMING_CALLSITE }, __timing_future).await }
        }
    };
    let actual = expand(
        quote!(),
        quote!(
            async fn fetch(n: u8) -> Result<Box<dyn Display>, E> {
                Ok(Box::new(n.await))
            }
        ),
    );
    assert_eq!(actual, expected.to_string());
}

#[test]
fn an_async_fn_returning_impl_trait_or_unit_is_not_given_a_type() {
    for item in [
        quote!(
            async fn f() -> impl Display {
                g().await
            }
        ),
        quote!(
            async fn f() {
                g().await
            }
        ),
    ] {
        let actual = expand(quote!(), item);
        assert!(!actual.contains("never :: < impl"), "{actual}");
        assert!(actual.contains("async move {"), "{actual}");
    }
}

#[test]
fn off_returns_the_item_token_for_token() {
    let item = quote! {
        /// Docs.
        #[must_use]
        pub fn f<'a>(x: &'a str) -> &'a str { #![allow(unused)] x }
    };
    assert_eq!(timed(quote!(phase = "p"), item.clone(), false).to_string(), item.to_string());
}

#[test]
fn off_still_checks_the_arguments() {
    let actual = timed(
        quote!(phaze = "p"),
        quote!(
            fn f() {}
        ),
        false,
    )
    .to_string();
    assert!(actual.contains("compile_error"), "{actual}");
    assert!(actual.contains("unknown argument `phaze`"), "{actual}");
}

fn error_of(args: TokenStream, item: TokenStream) -> String {
    let output = timed(args, item, true).to_string();
    assert!(output.contains("compile_error"), "no error in {output}");
    output
}

#[test]
fn each_mistake_has_its_message() {
    let function = quote!(
        fn f() {}
    );
    let cases = [
        (quote!(phaze = "x"), "unknown argument `phaze`, expected one of `name`, `phase`, `step`, `batch`"),
        (quote!(phase = "a", phase = "b"), "duplicate argument `phase`"),
        (quote!(step, step), "duplicate argument `step`"),
        (quote!(phase = 3), "`phase` must be a string literal"),
        (quote!(name = ""), "`name` must not be empty"),
        (quote!("regions"), "expected an argument name, found a literal: write `phase = \\\"regions\\\"`"),
        (quote!(phase), "`phase` needs a value"),
        (quote!(phase = "a" x), "expected `,` between arguments"),
        (quote!(step, batch), "`step` and `batch` cannot be combined"),
        (quote!(step = true), "`step` takes no value"),
    ];
    for (args, message) in cases {
        let output = error_of(args.clone(), function.clone());
        assert!(output.contains(message), "`{args}`: expected `{message}` in {output}");
    }
}

#[test]
fn all_mistakes_are_reported_at_once() {
    let output = error_of(
        quote!(phaze = "x", name = 1),
        quote!(
            fn f() {}
        ),
    );
    assert!(output.contains("unknown argument `phaze`") && output.contains("`name` must be a string literal"));
}

#[test]
fn the_item_is_emitted_beside_the_error() {
    let output = error_of(
        quote!(phaze = "x"),
        quote!(
            fn kept() {}
        ),
    );
    assert!(output.ends_with("fn kept () { }"), "{output}");
}

#[test]
fn items_that_are_not_functions_with_bodies_are_refused() {
    let cases = [
        (
            quote!(
                struct S;
            ),
            "not a `struct`",
        ),
        (
            quote!(
                mod m {}
            ),
            "not a module",
        ),
        (
            quote!(
                const fn f() {}
            ),
            "cannot be applied to a `const fn`",
        ),
        (
            quote!(
                fn f();
            ),
            "needs a function with a body",
        ),
        (
            quote!(
                static X: u8 = 1;
            ),
            "can only be applied to a function",
        ),
    ];
    for (item, message) in cases {
        let args = if message.contains("async") { quote!(step) } else { quote!() };
        let output = error_of(args, item.clone());
        assert!(output.contains(message), "`{item}`: expected `{message}` in {output}");
    }
}

#[test]
fn a_second_timed_is_refused_and_dropped() {
    let output = error_of(
        quote!(),
        quote!(
            #[timed(step)]
            fn f() {}
        ),
    );
    assert!(output.contains("already applied"), "{output}");
    assert!(output.ends_with("fn f () { }"), "{output}");
}

#[test]
fn a_statement_is_left_to_rustc_which_refuses_the_attribute_itself() {
    let item = quote!(let steps = 10;);
    assert_eq!(timed(quote!(), item.clone(), true).to_string(), item.to_string());
}

/// With timing off, every `#[timed]` function of a real crate (the workspace's `tests/accepted.rs`, which
/// holds every accepted shape of function) comes back token for token as the same function unannotated.
#[test]
fn off_expands_an_annotated_crate_to_the_unannotated_crate() {
    use syn::visit_mut::VisitMut;

    struct Expand {
        checked: usize,
        mismatches: Vec<String>,
    }

    impl Expand {
        fn check<T: Clone + quote::ToTokens>(&mut self, function: &T, attrs: fn(&mut T) -> &mut Vec<syn::Attribute>) {
            let mut unannotated = function.clone();
            let Some(index) = attrs(&mut unannotated).iter().position(crate::item::is_timed_attr) else {
                return;
            };
            let attr = attrs(&mut unannotated).remove(index);
            let args = match &attr.meta {
                syn::Meta::List(list) => list.tokens.clone(),
                _ => TokenStream::new(),
            };
            let expected = quote!(#unannotated).to_string();
            let expanded = timed(args, quote!(#unannotated), false).to_string();
            if expanded != expected {
                self.mismatches.push(format!("{expanded}\n  !=\n{expected}"));
            }
            self.checked += 1;
        }
    }

    impl VisitMut for Expand {
        fn visit_item_fn_mut(&mut self, function: &mut syn::ItemFn) {
            self.check(function, |function| &mut function.attrs);
            syn::visit_mut::visit_item_fn_mut(self, function);
        }

        fn visit_impl_item_fn_mut(&mut self, function: &mut syn::ImplItemFn) {
            self.check(function, |function| &mut function.attrs);
            syn::visit_mut::visit_impl_item_fn_mut(self, function);
        }

        fn visit_trait_item_fn_mut(&mut self, function: &mut syn::TraitItemFn) {
            self.check(function, |function| &mut function.attrs);
            syn::visit_mut::visit_trait_item_fn_mut(self, function);
        }
    }

    let source = include_str!("../../../tests/accepted.rs");
    let mut file = syn::parse_file(source).expect("tests/accepted.rs parses");
    let mut expand = Expand { checked: 0, mismatches: Vec::new() };
    expand.visit_file_mut(&mut file);
    assert!(expand.mismatches.is_empty(), "{}", expand.mismatches.join("\n\n"));
    assert!(expand.checked >= 35, "only {} functions checked", expand.checked);
}

#[test]
fn leading_items_stay_ahead_of_the_guard() {
    let actual = expand(
        quote!(),
        quote!(
            fn f() -> u32 {
                use std::ops::Add;
                const ONE: u32 = 1;
                let two = ONE.add(1);
                const THREE: u32 = 3;
                two + THREE
            }
        ),
    );
    let guard = actual.find("let __timing_guard").expect("a guard");
    assert!(actual.find("use std :: ops :: Add").is_some_and(|at| at < guard), "{actual}");
    assert!(actual.find("const ONE").is_some_and(|at| at < guard), "{actual}");
    assert!(actual.find("let two").is_some_and(|at| at > guard), "{actual}");
    assert!(actual.find("const THREE").is_some_and(|at| at > guard), "{actual}");
}

#[test]
fn an_async_trait_method_has_its_boxed_future_instrumented() {
    let actual = expand(
        quote!(),
        quote!(
            fn fetch<'life0, 'async_trait>(
                &'life0 self,
            ) -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = u8> + ::core::marker::Send + 'async_trait>>
            {
                Box::pin(async move {
                    let __ret: u8 = { 1 };
                    __ret
                })
            }
        ),
    );
    assert!(actual.contains("Box :: pin (:: timing_runtime :: __private :: Instrumented :: new"), "{actual}");
    assert!(!actual.contains("__timing_guard"), "{actual}");
    // The same body in a function of the user's, without `'async_trait`, is timed as a function.
    let plain = expand(
        quote!(),
        quote!(
            fn build() -> Pin<Box<dyn Future<Output = u8>>> {
                Box::pin(async move { 1 })
            }
        ),
    );
    assert!(plain.contains("__timing_guard") && !plain.contains("Instrumented"), "{plain}");
}

#[test]
fn an_impl_block_gets_each_method_timed_as_type_and_method() {
    let actual = expand(
        quote!(phase = "update"),
        quote!(
            impl<D: Copy> Scene<D> {
                fn new(d: D) -> Self {
                    Scene(d)
                }
                #[timed(name = "kept")]
                fn kept(&self) {}
                const fn constant() -> u8 {
                    1
                }
            }
        ),
    );
    // Expanded in place, named `Type::method` as its own name (so that another `Scene::new` elsewhere stays
    // apart), with the block's phase.
    let site = "Callsite :: new (\"Scene::new\" , :: core :: option :: Option :: Some (\"update\")";
    assert!(actual.contains(site), "{actual}");
    assert!(actual.contains(") . named_after_function () ;"), "{actual}");
    // A method's own attribute stays, told the block's type (its name given stays as given).
    assert!(actual.contains("# [timed (name = \"kept\" , __impl = \"Scene\")] fn kept"), "{actual}");
    assert!(!actual.contains("Scene::constant"), "{actual}");
}

/// A small generator for the property tests: xorshift, seeded, so that a failing case can be replayed.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Argument lists made of the pieces users write, right and wrong, in any order: every one expands
/// without a panic, keeps the function, and an error is reported as `compile_error!` at most once per
/// piece of input.
#[test]
fn any_argument_list_expands_without_a_panic_and_keeps_the_function() {
    const PIECES: &[&str] = &[
        "name",
        "phase",
        "step",
        "batch",
        "crate",
        "per_type",
        "__impl",
        "=",
        ",",
        ",",
        "\"x\"",
        "\"\"",
        "\"a b\"",
        "r#\"raw\"#",
        "1",
        "1.5",
        "'c'",
        "b\"bytes\"",
        "true",
        "::",
        "path::to",
        "(",
        ")",
        "[1]",
        "{}",
        "#",
        "!",
        "-",
        "x\"y\"",
        "\"s\"suffix",
        "name = \"n\"",
        "phase = \"p\"",
        "crate = ::c",
        "unknown",
    ];
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let items = [
        quote!(
            fn f(x: u8) -> u8 {
                x
            }
        ),
        quote!(
            async fn f() -> u8 {
                g().await
            }
        ),
        quote!(impl S { fn f(&self) {} }),
        quote!(
            fn f<T: Copy>(x: T) -> T {
                x
            }
        ),
    ];
    for case in 0..3_000 {
        let count = random.below(7);
        let text: Vec<&str> = (0..count).map(|_| PIECES[random.below(PIECES.len())]).collect();
        let Ok(args) = text.join(" ").parse::<TokenStream>() else { continue };
        let item = items[case % items.len()].clone();
        let outcome = std::panic::catch_unwind(|| timed(args.clone(), item, true).to_string());
        let output = outcome.unwrap_or_else(|_| panic!("#[timed({args})] panicked"));
        assert!(output.contains("fn f"), "#[timed({args})] lost the function: {output}");
        let errors = output.matches("compile_error").count();
        assert!(errors <= count.max(1), "#[timed({args})]: {errors} errors for {count} pieces: {output}");
        // And with the feature off, the same errors.
        let off = timed(args.clone(), items[case % items.len()].clone(), false).to_string();
        assert_eq!(off.matches("compile_error").count(), errors, "#[timed({args})] on and off differ: {off}");
    }
}
