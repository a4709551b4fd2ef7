#![no_main]

// The CEL parser and interpreter panic on some input, and `baton::policy` catches that on
// purpose (a refusal, or an error that decides nothing). libfuzzer-sys's panic hook aborts on
// every panic, caught or not, so this target keeps a quiet hook: a panic that escapes the
// entry function is still caught by libfuzzer-sys and reported as a crash.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    baton_fuzz::policy_expr(data)
});
