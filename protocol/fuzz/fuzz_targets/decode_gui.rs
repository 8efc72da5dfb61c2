//! GUI → agent frames decoded one after the other (what an agent does with the GUI domain's bytes).
//! The entry function lives in `corral_protocol::fuzzing`, so the `fuzz_smoke` test runs it too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| corral_protocol::fuzzing::decode_gui(data));
