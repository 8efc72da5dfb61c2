//! Bytes from a hostile agent through a real GuiConnection over a socketpair: framing across partial reads, fds, pool mapping, inline writes.
//! The entry function lives in `corral_protocol::fuzzing`, so the `fuzz_smoke` test runs it too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| corral_protocol::fuzzing::stream_agent(data));
