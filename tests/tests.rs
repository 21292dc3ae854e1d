//! The integration tests: one binary, themed modules, shared helpers in `util`.

mod it;
