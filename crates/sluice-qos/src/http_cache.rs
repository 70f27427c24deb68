//! stub
#[derive(Debug, Default)]
pub struct HttpCache;
