//! The randomness seam: the only place the server draws random bytes (the OS's generator).
//! Everything random the server makes — refs and uuids (through the writer's seed key), session
//! refs, generated passwords, keys and nonces — comes from here.

/// Fills `buf` with random bytes from the operating system.
pub fn fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS provides randomness");
}
