//! Fuzz target: SMTP, POP3 and IMAP greetings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = picket_netscan::service::mail::identify_smtp(data, true);
    let _ = picket_netscan::service::mail::identify_pop3(data);
    let _ = picket_netscan::service::mail::identify_imap(data);
});
