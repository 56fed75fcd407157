//! SPDY/3.1 as Kubernetes streaming clients speak it: frames ([`frame`]), zlib-compressed
//! name/value header blocks ([`headers`]) and a server-side session multiplexing streams
//! over one connection ([`session`]).

pub mod frame;
pub mod headers;
pub mod session;
