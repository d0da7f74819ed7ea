//! Kerberos state is process-global: MIT reads `KRB5_CONFIG`, `KRB5CCNAME` and
//! `KRB5_CLIENT_KTNAME` from the environment, and libgssapi offers no call that takes a specific
//! cache or keytab. So every in-harness Kerberos login runs in a child process (this same binary,
//! re-executed) with its own environment. Scenarios can then run concurrently, each against its own
//! realm, without a global lock.
//!
//! Every binary of the harness calls [`dispatch`] first thing in `main`.

/// If this process was started as a probe child, runs the probe and exits; otherwise returns.
pub fn dispatch() {
    use crate::probe::gss::{CHILD_VAR, GSS_LOGIN};
    match std::env::var(CHILD_VAR).as_deref() {
        Ok(GSS_LOGIN) => {
            let code = crate::probe::gss::child_main();
            std::process::exit(code);
        }
        Ok(other) => {
            eprintln!("unknown {CHILD_VAR}={other}");
            std::process::exit(70);
        }
        Err(_) => {}
    }
}
