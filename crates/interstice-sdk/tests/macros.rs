//! Compile-time checks of the SDK macros: mistakes are errors at the offending span.

#[test]
fn macro_diagnostics() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
