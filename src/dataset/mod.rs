//! The dataset on disk, as the rooms that write and read it (sink, report,
//! query, pipeline) share it: where its own files live (`layout`), where it is (`location`) and the
//! names of its fixed columns (`schema`). It
//! imports nothing of theirs.

pub mod layout;
pub mod location;
pub mod schema;
