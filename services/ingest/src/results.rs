//! Helpers of the HTTP push reply. Waiting for results is `livefarm_jobs::SegmentClient`.

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        // A boundary only has to be unlikely to occur in the parts; pid and time will do.
        let seed = u64::from(std::process::id()) ^ livefarm_jobs::now_ms();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 8) * 8)) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A multipart boundary.
pub(crate) fn boundary() -> String {
    random_hex(10)
}
